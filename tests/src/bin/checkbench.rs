//! Check-runner benchmark: one `conclave agent -dev` (release binary) running N HTTP checks (default
//! 10,000) at a 10 s interval against a local HTTP server. Prints how long registering them took, how
//! long until every check passed, then, over a measuring window, the probes/s the target saw and the
//! agent process's CPU (percent of one core, from /proc/<pid>/stat) and resident memory (VmRSS).
//!
//! `cargo run --release -p conclave-tests --bin checkbench [-- CHECKS [WINDOW_SECONDS]]`

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_tests::harness::{eventually, Cluster};

const SUBNET: u8 = 63;
const INTERVAL: &str = "10s";
const REGISTER_THREADS: usize = 8;
const TARGET_THREADS: usize = 4;

/// An HTTP server answering `200 ok` to every request on one connection each, counting requests.
fn start_target(ip: &str) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind target");
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(AtomicU64::new(0));
    for _ in 0..TARGET_THREADS {
        let (listener, served) = (listener.try_clone().unwrap(), served.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                let _ = stream.shutdown(Shutdown::Write);
                served.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    (port, served)
}

/// CPU time of `pid` (user + system) in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    // Fields after the command name (which is in parentheses and may contain spaces).
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/pid/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

fn passing_checks(agent: &str) -> Option<usize> {
    let body = ureq::get(&format!("{agent}/v1/health/state/passing")).call().ok()?.into_string().ok()?;
    let rows: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(rows.as_array()?.iter().filter(|c| c["CheckID"].as_str().is_some_and(|id| id.starts_with("service:"))).count())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let checks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let window = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(30));
    let cluster = Cluster::dev(SUBNET);
    let agent = cluster.agents[0].http();
    let pid = cluster.agents[0].pid().expect("agent running");
    let target_ip = format!("127.0.{SUBNET}.9");
    let (port, served) = start_target(&target_ip);
    let idle_rss = rss_mib(pid);

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..REGISTER_THREADS)
        .map(|_| {
            let (next, agent, target_ip) = (next.clone(), agent.clone(), target_ip.clone());
            std::thread::spawn(move || {
                let http = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= checks {
                        return;
                    }
                    let body = format!(
                        r#"{{"ID":"exporter-{i}","Name":"exporter","Port":{port},"Address":"{target_ip}",
                        "Check":{{"HTTP":"http://{target_ip}:{port}/metrics?i={i}","Interval":"{INTERVAL}"}}}}"#
                    );
                    let reply = http.put(&format!("{agent}/v1/agent/service/register")).send_string(&body);
                    assert!(reply.is_ok(), "registration {i} failed: {reply:?}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("register worker");
    }
    let registered_in = started.elapsed();
    eventually(Duration::from_secs(180), "every check passing", || (passing_checks(&agent)? >= checks).then_some(()));
    let all_passing_in = started.elapsed();

    let (cpu_before, served_before, window_started) = (cpu_secs(pid), served.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(window);
    let elapsed = window_started.elapsed().as_secs_f64();
    let cpu_percent = (cpu_secs(pid) - cpu_before) / elapsed * 100.0;
    let probes_per_sec = (served.load(Ordering::Relaxed) - served_before) as f64 / elapsed;
    let rss = rss_mib(pid);

    println!("checks: {checks} HTTP checks at a {INTERVAL} interval, one -dev agent, loopback target");
    println!(
        "registered in {:.1} s ({:.0}/s)",
        registered_in.as_secs_f64(),
        checks as f64 / registered_in.as_secs_f64()
    );
    println!("all passing after {:.1} s", all_passing_in.as_secs_f64());
    println!("| window | probes/s | agent CPU (% of one core) | agent RSS | RSS idle before |");
    println!("|---|---|---|---|---|");
    println!("| {elapsed:.0} s | {probes_per_sec:.0} | {cpu_percent:.1}% | {rss:.0} MiB | {idle_rss:.0} MiB |");
}

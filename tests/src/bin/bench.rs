//! Benchmark: starts a 3-server Conclave cluster on loopback (release binary, data dirs with fsync) and
//! prints registrations/s with 1 and 64 concurrent clients with p50/p99 latency, and linearizable
//! (default-mode) reads/s. Clients spread over the three servers; followers forward writes to the leader
//! and take a read index from it.
//!
//! `cargo run --release -p conclave-tests --bin bench [-- SECONDS_PER_PHASE]`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_tests::harness::Cluster;

struct Phase {
    ops: u64,
    errors: u64,
    latencies_us: Vec<u64>,
    elapsed: Duration,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank] as f64 / 1000.0
}

fn run_phase(urls: &[String], clients: usize, duration: Duration, op: fn(&ureq::Agent, &str, u64) -> bool) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (stop, errors, url) = (stop.clone(), errors.clone(), urls[client % urls.len()].clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                let mut latencies = Vec::new();
                let mut sequence = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let begin = Instant::now();
                    if op(&agent, &url, (client as u64) << 32 | sequence) {
                        latencies.push(begin.elapsed().as_micros() as u64);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    sequence += 1;
                }
                latencies
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us: Vec<u64> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    latencies_us.sort_unstable();
    Phase {
        ops: latencies_us.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        latencies_us,
        elapsed: started.elapsed(),
    }
}

fn register(agent: &ureq::Agent, url: &str, id: u64) -> bool {
    let body =
        format!(r#"{{"Node":"bench","Address":"10.2.0.1","Service":{{"ID":"b{id}","Service":"bench","Port":80}}}}"#);
    // Reading the body to the end returns the connection to ureq's pool (else every request reconnects).
    agent.put(&format!("{url}/v1/catalog/register")).send_string(&body).is_ok_and(|r| r.into_string().is_ok())
}

fn read(agent: &ureq::Agent, url: &str, _: u64) -> bool {
    agent.get(&format!("{url}/v1/catalog/service/consul")).call().is_ok_and(|r| r.into_string().is_ok())
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let mut cluster = Cluster::servers(60, 3);
    let leader = cluster.wait_leader();
    let urls: Vec<String> = cluster.agents.iter().map(|a| a.http()).collect();
    println!("Conclave benchmark: 3 servers on 127.0.60.1-3, leader s{}, {seconds}s per phase", leader + 1);
    println!("{:<34} {:>8} {:>10} {:>9} {:>9} {:>7}", "workload", "clients", "ops/s", "p50 ms", "p99 ms", "errors");
    for (name, op) in [
        ("catalog register (PUT)", register as fn(&ureq::Agent, &str, u64) -> bool),
        ("linearizable read (GET, default)", read),
    ] {
        for clients in [1, 64] {
            let phase = run_phase(&urls, clients, duration, op);
            println!(
                "{:<34} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                name,
                clients,
                phase.ops as f64 / phase.elapsed.as_secs_f64(),
                percentile(&phase.latencies_us, 0.50),
                percentile(&phase.latencies_us, 0.99),
                phase.errors
            );
        }
    }
}

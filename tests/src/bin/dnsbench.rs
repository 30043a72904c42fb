//! DNS benchmark against dnsmasq: starts a Conclave `-dev` agent on 127.0.210.1 with N services
//! (`svc0..svcN-1`, one instance each on its own node, registered through `/v1/catalog/register`), runs
//! `dnsperf` against its DNS port for a few seconds, stops it, then starts `dnsmasq` on 127.0.210.2
//! serving the same names from a hosts file (`--no-resolv --no-hosts --addn-hosts=FILE`, no upstream)
//! and runs the same `dnsperf` query file against it. Both are asked the same A queries
//! (`svcK.service.consul`) over UDP; the figures printed are dnsperf's queries/s, average latency and lost
//! queries. Without dnsperf it stops; without dnsmasq only Conclave's figures are printed.
//!
//! `cargo run --release -p conclave-tests --bin dnsbench [-- SECONDS [SERVICES [CLIENTS]]]`
//! (`$DNSPERF_BIN` and `$DNSMASQ_BIN` override `/usr/bin/dnsperf` and `/usr/sbin/dnsmasq`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;

/// The two servers get their own loopback addresses (clear of the tests' subnets) and the same port.
const CONCLAVE_IP: &str = "127.0.210.1";
const DNSMASQ_IP: &str = "127.0.210.2";
const DNS_PORT: u16 = 8600;

/// What dnsperf reported for one run.
#[derive(Default)]
struct Figures {
    queries_per_sec: f64,
    avg_latency_ms: f64,
    lost: String,
    completed: String,
}

fn address_of(service: usize) -> String {
    format!("10.40.{}.{}", service / 250, service % 250 + 1)
}

/// Runs dnsperf and picks its summary lines.
fn dnsperf(binary: &Path, ip: &str, queries: &Path, seconds: u64, clients: usize) -> (Figures, String) {
    let args = [
        "-s".to_string(),
        ip.to_string(),
        "-p".to_string(),
        DNS_PORT.to_string(),
        "-d".to_string(),
        queries.display().to_string(),
        "-l".to_string(),
        seconds.to_string(),
        "-c".to_string(),
        clients.to_string(),
        "-q".to_string(),
        "100".to_string(),
        "-t".to_string(),
        "2".to_string(),
    ];
    let command = format!("{} {}", binary.display(), args.join(" "));
    let output = Command::new(binary).args(&args).output().expect("run dnsperf");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut figures = Figures::default();
    for line in text.lines().map(str::trim) {
        let value = |prefix: &str| line.strip_prefix(prefix).map(|v| v.trim().to_string());
        if let Some(v) = value("Queries per second:") {
            figures.queries_per_sec = v.parse().unwrap_or(0.0);
        } else if let Some(v) = value("Average Latency (s):") {
            let seconds: f64 = v.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
            figures.avg_latency_ms = seconds * 1000.0;
        } else if let Some(v) = value("Queries lost:") {
            figures.lost = v;
        } else if let Some(v) = value("Queries completed:") {
            figures.completed = v;
        }
    }
    if figures.queries_per_sec == 0.0 {
        eprintln!("dnsperf printed:\n{text}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    (figures, command)
}

fn print(name: &str, figures: &Figures) {
    println!(
        "{name:<10} {:>12.0} {:>16.3} {:>24} {:>24}",
        figures.queries_per_sec, figures.avg_latency_ms, figures.completed, figures.lost
    );
}

/// Answers `svc{last}` once the last registration has reached the DNS interface.
fn wait_for_dns(ip: &str, name: &str) {
    eventually(Duration::from_secs(30), &format!("{name} answered by {ip}"), || {
        let output = Command::new("dig")
            .args([&format!("@{ip}"), "-p", &DNS_PORT.to_string(), "+short", "+time=1", "+tries=1", name])
            .output()
            .ok()?;
        (!String::from_utf8_lossy(&output.stdout).trim().is_empty()).then_some(())
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let services: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let clients: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4);
    let dnsperf_bin = PathBuf::from(std::env::var("DNSPERF_BIN").unwrap_or_else(|_| "/usr/bin/dnsperf".into()));
    let dnsmasq_bin = PathBuf::from(std::env::var("DNSMASQ_BIN").unwrap_or_else(|_| "/usr/sbin/dnsmasq".into()));
    if !dnsperf_bin.exists() {
        println!("dnsperf not found at {} (Debian's dnsperf): nothing to measure", dnsperf_bin.display());
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let queries = dir.path().join("queries.txt");
    let hosts = dir.path().join("hosts");
    let query_lines: String = (0..services).map(|i| format!("svc{i}.service.consul A\n")).collect();
    let host_lines: String = (0..services).map(|i| format!("{} svc{i}.service.consul\n", address_of(i))).collect();
    std::fs::write(&queries, query_lines).expect("query file");
    std::fs::write(&hosts, host_lines).expect("hosts file");
    println!(
        "DNS benchmark: {services} services, {seconds}s per server, dnsperf UDP with {clients} clients and at most 100 \
         queries outstanding, A queries for svc0..svc{}.service.consul round-robin",
        services - 1
    );

    // Conclave first, stopped before dnsmasq starts so the two never share the CPUs.
    let (conclave, command) = {
        let mut cluster = Cluster::dev(210);
        let url = cluster.agents[0].http();
        for i in 0..services {
            let body = format!(
                r#"{{"Node":"node{i}","Address":"{}","Service":{{"Service":"svc{i}","Port":8080}}}}"#,
                address_of(i)
            );
            let reply = http::put(&format!("{url}/v1/catalog/register"), &body).expect("register");
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
        wait_for_dns(CONCLAVE_IP, &format!("svc{}.service.consul", services - 1));
        let result = dnsperf(&dnsperf_bin, CONCLAVE_IP, &queries, seconds, clients);
        cluster.agents[0].stop();
        result
    };
    println!("conclave: {command}");

    let dnsmasq = if dnsmasq_bin.exists() {
        let mut child = Command::new(&dnsmasq_bin)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                &format!("--port={DNS_PORT}"),
                &format!("--listen-address={DNSMASQ_IP}"),
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                &format!("--addn-hosts={}", hosts.display()),
                "--user=root",
                "--pid-file=",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnsmasq");
        wait_for_dns(DNSMASQ_IP, &format!("svc{}.service.consul", services - 1));
        let (figures, command) = dnsperf(&dnsperf_bin, DNSMASQ_IP, &queries, seconds, clients);
        println!("dnsmasq:  {command}");
        let _ = child.kill();
        let _ = child.wait();
        Some(figures)
    } else {
        println!("dnsmasq not found at {}: printing Conclave's figures only", dnsmasq_bin.display());
        None
    };

    println!();
    println!("{:<10} {:>12} {:>16} {:>24} {:>24}", "server", "queries/s", "avg latency ms", "completed", "lost");
    print("conclave", &conclave);
    if let Some(dnsmasq) = &dnsmasq {
        print("dnsmasq", dnsmasq);
        if dnsmasq.queries_per_sec > 0.0 {
            println!("(conclave/dnsmasq queries/s: {:.2}x)", conclave.queries_per_sec / dnsmasq.queries_per_sec);
        }
    }
}

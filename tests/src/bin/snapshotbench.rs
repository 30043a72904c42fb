//! Memory of a snapshot save and restore: starts one Conclave server on loopback (release binary, fsync
//! on, its own data dir), fills its KV store with MEGABYTES of incompressible 512 KiB values, then takes
//! `conclave snapshot save` and `conclave snapshot restore` of that archive and prints the server's
//! resident memory: after the load, and its peak (`VmHWM`, reset through `/proc/PID/clear_refs` before
//! each phase) while saving and while restoring, each as a multiple of the state's encoded size. While
//! the save runs, one client writes a small key in a loop: the longest of those writes shows how long
//! the save holds the state.
//!
//! `cargo run --release -p conclave-tests --bin snapshotbench [-- MEGABYTES]` (default 1024).

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_tests::harness::{binary, Cluster};
use conclave_tests::http;

const VALUE_BYTES: usize = 512 << 10;
const WRITERS: u64 = 4;

/// Kibibytes of one `/proc/PID/status` line (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in status"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB")
}

/// Resets the process's peak resident memory to its current one.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("write /proc/PID/clear_refs");
}

/// Incompressible bytes, different for every key.
fn value(key: u64) -> Vec<u8> {
    let mut x = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(VALUE_BYTES);
    while out.len() < VALUE_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(VALUE_BYTES);
    out
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn run_cli(args: &[&str]) -> String {
    let output = Command::new(binary()).args(args).output().expect("run conclave");
    assert!(output.status.success(), "conclave {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the probe writer saw: writes answered 200, writes refused (the server's own request timeout),
/// and the longest wait for an answer of either kind.
struct ProbeResult {
    written: u64,
    timed_out: u64,
    longest: Duration,
}

/// Writes a small key in a loop until told to stop.
fn write_probe(base: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<ProbeResult> {
    std::thread::spawn(move || {
        let mut result = ProbeResult { written: 0, timed_out: 0, longest: Duration::ZERO };
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let url = format!("{base}/v1/kv/probe");
            let reply = http::request("PUT", &url, Some(b"x"), Duration::from_secs(120)).expect("probe PUT");
            match reply.status {
                200 => result.written += 1,
                500 if reply.body.contains("timed out") => result.timed_out += 1,
                other => panic!("probe PUT: {other} {}", reply.body),
            }
            result.longest = result.longest.max(started.elapsed());
        }
        result
    })
}

fn main() {
    let megabytes: u64 = std::env::args().nth(1).map(|a| a.parse().expect("MEGABYTES")).unwrap_or(1024);
    let keys = megabytes * (1 << 20) / VALUE_BYTES as u64;
    let mut cluster = Cluster::servers(217, 1);
    cluster.wait_leader();
    let base = cluster.agents[0].http();
    let pid = cluster.agents[0].pid().expect("server pid");
    let idle_kib = status_kib(pid, "VmRSS");

    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let next = next.clone();
            let base = base.clone();
            std::thread::spawn(move || loop {
                let key = next.fetch_add(1, Ordering::Relaxed);
                if key >= keys {
                    return;
                }
                let url = format!("{base}/v1/kv/bulk/{key:08}");
                let reply = http::request("PUT", &url, Some(&value(key)), Duration::from_secs(60)).expect("PUT");
                assert_eq!(reply.status, 200, "PUT {url}: {}", reply.body);
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer");
    }
    let load_s = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let loaded_kib = status_kib(pid, "VmRSS");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bench.snap").display().to_string();
    let http_addr = format!("-http-addr={base}");
    reset_peak(pid);
    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe = write_probe(base.clone(), stop_probe.clone());
    let started = Instant::now();
    let saved = run_cli(&["snapshot", "save", &http_addr, &file]);
    let save_s = started.elapsed().as_secs_f64();
    let save_peak_kib = status_kib(pid, "VmHWM");
    stop_probe.store(true, Ordering::Relaxed);
    let probe = probe.join().expect("probe");
    let inspected = run_cli(&["snapshot", "inspect", &file]);
    let state_bytes: u64 = inspected
        .lines()
        .find_map(|l| l.strip_prefix("Size").map(|n| n.trim().parse().expect("Size")))
        .expect("a Size row");
    let archive_bytes = std::fs::metadata(&file).expect("archive").len();

    std::thread::sleep(Duration::from_secs(1));
    reset_peak(pid);
    let before_restore_kib = status_kib(pid, "VmRSS");
    let started = Instant::now();
    run_cli(&["snapshot", "restore", &http_addr, &file]);
    let restore_s = started.elapsed().as_secs_f64();
    let restore_peak_kib = status_kib(pid, "VmHWM");
    std::thread::sleep(Duration::from_secs(2));
    let restored_kib = status_kib(pid, "VmRSS");
    let check = http::get(&format!("{base}/v1/kv/bulk/{:08}?raw", keys - 1)).expect("GET");
    assert_eq!(check.status, 200, "the last key after the restore");

    let state_mib = state_bytes as f64 / (1 << 20) as f64;
    let ratio = |kib: u64| mib(kib) / state_mib;
    println!("snapshotbench: {keys} keys of {} KiB, {}", VALUE_BYTES >> 10, saved.trim());
    println!(
        "state (encoded)        {state_mib:>9.1} MiB   archive {:.1} MiB",
        archive_bytes as f64 / (1 << 20) as f64
    );
    println!("server RSS idle        {:>9.1} MiB", mib(idle_kib));
    println!(
        "server RSS loaded      {:>9.1} MiB   {:.2}x state   (load {load_s:.1} s)",
        mib(loaded_kib),
        ratio(loaded_kib)
    );
    println!(
        "peak RSS during save   {:>9.1} MiB   {:.2}x state   ({save_s:.1} s)",
        mib(save_peak_kib),
        ratio(save_peak_kib)
    );
    println!(
        "peak RSS during restore{:>9.1} MiB   {:.2}x state   ({restore_s:.1} s, {:.1} MiB before)",
        mib(restore_peak_kib),
        ratio(restore_peak_kib),
        mib(before_restore_kib)
    );
    println!(
        "writes during save       {:>6}      {} timed out, longest wait {:.0} ms",
        probe.written,
        probe.timed_out,
        probe.longest.as_secs_f64() * 1000.0
    );
    for line in cluster.agents[0].log().lines() {
        if line.contains("snapshot state encoded") || line.contains("snapshot written") {
            println!("server log: {}", line.split_once("conclave::event: ").map_or(line, |(_, event)| event));
        }
    }
    println!("server RSS restored    {:>9.1} MiB   {:.2}x state", mib(restored_kib), ratio(restored_kib));
}

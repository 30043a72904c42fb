//! Hostile connections against a real `conclave agent -dev`: 140 slowloris connections (idle, stalled
//! mid request line, trickling a header byte a second) and a thousand concurrent blocking queries on one
//! key. Proves that the slow connections neither starve ordinary clients (status reads and a KV write are
//! served promptly meanwhile) nor stay open forever (the server closes every one within a minute), and
//! that the thousand parked queries hold no answer back from other requests, are woken by none but a
//! write to their key, and all answer the new value within 5 s of that write.
//!
//! Every case is checked and the failures are reported together (see `conclave_tests::matrix`). Subnets
//! 127.0.98.x and 127.0.99.x are this file's, one per test.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_tests::http;
use conclave_tests::matrix::{dev, Matrix, Snapshot};
use conclave_tests::raw_http::{base64, connect};

// ---------------------------------------------------------------------------------------------------
// Slowloris

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slow {
    /// Connects and sends nothing.
    Idle,
    /// Sends half a request line and stops.
    Stalled,
    /// Sends the request line and a header, then one byte of a header value every second, forever.
    Trickle,
}

struct SlowConn {
    kind: Slow,
    stream: TcpStream,
    opened: Instant,
    closed_after: Option<Duration>,
    answer: Vec<u8>,
}

impl SlowConn {
    /// Whether the server has closed the connection (reading whatever it sent first).
    fn poll_closed(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

#[test]
fn slowloris_connections_neither_starve_the_agent_nor_stay_open_forever() {
    let (_lock, mut cluster) = dev(98);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let before = Snapshot::take(agent);
    let ip = agent.ip.clone();
    // Consul (Go's net/http with a ReadHeaderTimeout) closes these; a bound of a minute is generous.
    let bound = Duration::from_secs(60);

    // 140 connections: under Consul's default of 200 concurrent connections per client address.
    let mut conns = Vec::new();
    for (kind, count) in [(Slow::Trickle, 100), (Slow::Idle, 20), (Slow::Stalled, 20)] {
        for _ in 0..count {
            let mut stream = connect(&ip).expect("connect a slow connection");
            let start: &[u8] = match kind {
                Slow::Idle => b"",
                Slow::Stalled => b"GET /v1/status/le",
                Slow::Trickle => b"GET /v1/status/leader HTTP/1.1\r\nHost: slow\r\nX-Slow: ",
            };
            stream.write_all(start).expect("start a slow request");
            stream.set_nonblocking(true).expect("non-blocking");
            conns.push(SlowConn { kind, stream, opened: Instant::now(), closed_after: None, answer: Vec::new() });
        }
    }
    let conns = Arc::new(Mutex::new(conns));

    // One thread trickles a byte a second into every open trickle connection and notes when each closes.
    let started = Instant::now();
    let watcher = {
        let conns = conns.clone();
        std::thread::spawn(move || {
            let mut last_trickle = Instant::now();
            while started.elapsed() < bound + Duration::from_secs(15) {
                let mut conns = conns.lock().unwrap();
                let trickle = last_trickle.elapsed() >= Duration::from_secs(1);
                for conn in conns.iter_mut().filter(|c| c.closed_after.is_none()) {
                    let mut closed = conn.poll_closed();
                    if !closed && trickle && conn.kind == Slow::Trickle {
                        closed = matches!(conn.stream.write(b"a"), Err(e) if e.kind() != ErrorKind::WouldBlock);
                    }
                    if closed {
                        conn.closed_after = Some(conn.opened.elapsed());
                    }
                }
                if trickle {
                    last_trickle = Instant::now();
                }
                if conns.iter().all(|c| c.closed_after.is_some()) {
                    return;
                }
                drop(conns);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // Meanwhile ordinary clients are served promptly.
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    for i in 0..40 {
        let t = Instant::now();
        let reply = http::request("GET", &agent.url("/v1/status/leader"), None, Duration::from_secs(10));
        let took = t.elapsed();
        slowest = slowest.max(took);
        let ok = matches!(&reply, Ok(r) if r.status == 200) && took < Duration::from_secs(2);
        m.check(
            &format!("GET /v1/status/leader #{i} during the slowloris"),
            ok,
            format!("{:?} after {took:?}", reply.map(|r| r.status)),
        );
        served += usize::from(ok);
        if i == 20 {
            let reply = http::put(&agent.url("/v1/kv/during-slowloris"), "ok");
            m.check(
                "a KV write during the slowloris",
                matches!(&reply, Ok(r) if r.status == 200),
                format!("{:?}", reply.map(|r| r.status)),
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("slowloris: {served}/40 status reads served, slowest {slowest:?}");

    watcher.join().expect("watcher thread");
    let conns = conns.lock().unwrap();
    for kind in [Slow::Idle, Slow::Stalled, Slow::Trickle] {
        let of_kind: Vec<&SlowConn> = conns.iter().filter(|c| c.kind == kind).collect();
        let times: Vec<Duration> = of_kind.iter().filter_map(|c| c.closed_after).collect();
        let open = of_kind.len() - times.len();
        let answers: BTreeSet<String> = of_kind
            .iter()
            .filter(|c| !c.answer.is_empty())
            .map(|c| String::from_utf8_lossy(&c.answer).lines().next().unwrap_or_default().to_string())
            .collect();
        let within = times.iter().filter(|t| **t <= bound).count();
        let summary = format!(
            "{} connections: {} closed (earliest {:?}, latest {:?}), {} still open after {:?}; answers sent: {:?}",
            of_kind.len(),
            times.len(),
            times.iter().min(),
            times.iter().max(),
            open,
            started.elapsed(),
            answers
        );
        eprintln!("slowloris {kind:?}: {summary}");
        m.check(
            &format!("{kind:?} slowloris connections closed by the server within {bound:?}"),
            within == of_kind.len(),
            summary,
        );
    }
    drop(conns);
    m.still_serving(agent, "the slowloris");

    before.with_kv("during-slowloris", b"ok").check_against(agent, &mut m);
    m.finish("slowloris_connections_neither_starve_the_agent_nor_stay_open_forever");
}

// ---------------------------------------------------------------------------------------------------
// A thousand concurrent blocking queries

#[test]
fn a_thousand_blocking_queries_all_wake_on_one_write_and_the_agent_keeps_answering() {
    let (_lock, mut cluster) = dev(99);
    let agent = &mut cluster.agents[0];
    let mut m = Matrix::default();
    let ip = agent.ip.clone();
    const WATCHERS: usize = 1000;

    assert_eq!(http::put(&agent.url("/v1/kv/watched"), "v0").unwrap().status, 200);
    let before = Snapshot::take(agent);
    let index = http::get(&agent.url("/v1/kv/watched")).unwrap().index();
    assert!(index > 0);

    // Open every connection and send its blocking query.
    let request =
        format!("GET /v1/kv/watched?index={index}&wait=30s HTTP/1.1\r\nHost: {ip}:8500\r\nConnection: close\r\n\r\n");
    let opening = Instant::now();
    let mut streams = Vec::with_capacity(WATCHERS);
    let mut open_errors = Vec::new();
    for _ in 0..WATCHERS {
        match connect(&ip).and_then(|mut s| s.write_all(request.as_bytes()).map(|()| s)) {
            Ok(stream) => streams.push(stream),
            Err(e) => open_errors.push(e.to_string()),
        }
    }
    let sent_after = opening.elapsed();
    m.check(
        &format!("open {WATCHERS} blocking queries"),
        open_errors.is_empty(),
        format!("{} failed: {:?}", open_errors.len(), open_errors.first()),
    );
    eprintln!("blocking: {} queries sent in {sent_after:?}", streams.len());

    // None answers before the key changes, not even when another key does.
    let early = |streams: &[TcpStream]| -> Vec<String> {
        let mut early = Vec::new();
        let mut buf = [0u8; 512];
        for stream in streams {
            stream.set_nonblocking(true).expect("non-blocking");
            match stream.peek(&mut buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Ok(0) => early.push("closed".into()),
                Ok(n) => early.push(String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or_default().to_string()),
                Err(e) => early.push(e.to_string()),
            }
            stream.set_nonblocking(false).expect("blocking");
        }
        early
    };
    std::thread::sleep(Duration::from_secs(2));
    let answered = early(&streams);
    m.check(
        "no blocking query answers before a change",
        answered.is_empty(),
        format!("{} answered early: {:?}", answered.len(), answered.iter().take(3).collect::<Vec<_>>()),
    );

    // The agent keeps answering everything else meanwhile.
    let mut slowest = Duration::ZERO;
    for (method, path, body) in [
        ("GET", "/v1/status/leader", None),
        ("GET", "/v1/catalog/services", None),
        ("PUT", "/v1/kv/other", Some(b"noise".as_slice())),
        ("GET", "/v1/kv/other", None),
        ("GET", "/v1/agent/self", None),
        ("GET", "/v1/health/service/consul", None),
    ] {
        let t = Instant::now();
        let reply = http::request(method, &agent.url(path), body, Duration::from_secs(10));
        let took = t.elapsed();
        slowest = slowest.max(took);
        m.check(
            &format!("{method} {path} with {WATCHERS} queries parked"),
            matches!(&reply, Ok(r) if r.status == 200) && took < Duration::from_secs(2),
            format!("{:?} after {took:?}", reply.map(|r| (r.status, r.body))),
        );
    }
    eprintln!("blocking: other requests answered, slowest {slowest:?}");
    std::thread::sleep(Duration::from_secs(1));
    let answered = early(&streams);
    m.check(
        "a write to another key wakes none of them",
        answered.is_empty(),
        format!("{} answered: {:?}", answered.len(), answered.iter().take(3).collect::<Vec<_>>()),
    );

    // One write wakes them all.
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    stream.set_read_timeout(Some(Duration::from_secs(45))).expect("read timeout");
                    let mut buf = Vec::new();
                    let result = stream.read_to_end(&mut buf);
                    (Instant::now(), result.map(|_| buf).map_err(|e| e.to_string()))
                })
                .expect("spawn a reader")
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let written = Instant::now();
    let reply = http::put(&agent.url("/v1/kv/watched"), "v1");
    m.check("the waking write", matches!(&reply, Ok(r) if r.status == 200), format!("{:?}", reply.map(|r| r.status)));

    let mut latencies = Vec::new();
    let mut wrong = Vec::new();
    for reader in readers {
        let (at, result) = reader.join().expect("reader thread");
        match result {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let status_ok = text.starts_with("HTTP/1.1 200");
                let new_index = text
                    .lines()
                    .find_map(|l| l.to_lowercase().strip_prefix("x-consul-index:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if status_ok && new_index > index && text.contains(&base64(b"v1")) {
                    latencies.push(at.saturating_duration_since(written));
                } else {
                    wrong.push(text.lines().next().unwrap_or("empty answer").to_string());
                }
            }
            Err(e) => wrong.push(e),
        }
    }
    latencies.sort();
    let woken = latencies.len();
    let last = latencies.last().copied().unwrap_or_default();
    let median = latencies.get(woken / 2).copied().unwrap_or_default();
    eprintln!(
        "blocking: {woken}/{WATCHERS} woken with the new value, median {median:?}, last {last:?}; wrong: {}",
        wrong.len()
    );
    m.check(
        &format!("all {WATCHERS} blocking queries answer the new value"),
        woken == WATCHERS && wrong.is_empty(),
        format!("{woken} did; {} wrong, e.g. {:?}", wrong.len(), wrong.iter().take(3).collect::<Vec<_>>()),
    );
    m.check(
        "all of them within 5 s of the write",
        last < Duration::from_secs(5),
        format!("last after {last:?}, median {median:?}"),
    );
    m.still_serving(agent, "waking the blocking queries");

    before.with_kv("watched", b"v1").with_kv("other", b"noise").check_against(agent, &mut m);
    m.finish("a_thousand_blocking_queries_all_wake_on_one_write_and_the_agent_keeps_answering");
}

//! The `check-flaps` workload: HTTP check targets that go up and down on a schedule drawn from the seed,
//! one instance per target registered on a server agent with an HTTP check (the seed's payload shape),
//! and an observer that keeps asking `/v1/health/service/web?passing` of random servers. The targets'
//! schedule and every answer go into the history for `checker::health`.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::checker::{HealthObservation, History, TargetSpan};
use crate::client::{call, now_us};

pub const SERVICE: &str = "web";
pub const TARGETS: usize = 4;
/// The port every target serves its health endpoint on.
const TARGET_PORT: u16 = 80;
/// The checks' interval and timeout, as registered.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(500);
const OBSERVE_EVERY: Duration = Duration::from_millis(500);
/// How long a failed push of check results can keep the catalog behind once the cluster is calm: a write
/// blocked for the request timeout (7 s) while its server was cut off, then the anti-entropy retry (5 s),
/// the restart of a crashed server and an election.
pub const ANTI_ENTROPY_BOUND: Duration = Duration::from_secs(15);
/// How long after a target's state (and the cluster) settled every answer must agree with it.
pub const SETTLE_BOUND: Duration =
    Duration::from_millis(CHECK_INTERVAL.as_millis() as u64 + CHECK_TIMEOUT.as_millis() as u64 + 15_000);

pub fn target_name(index: usize) -> String {
    format!("t{index}")
}

pub fn instance_id(index: usize) -> String {
    format!("web-{index}")
}

/// A target's up and down periods until `until`: alternating, starting up, each 2–30 s long.
pub fn draw_spans(rng: &mut ChaCha8Rng, target: usize, until: Duration) -> Vec<TargetSpan> {
    let mut spans = Vec::new();
    let mut at = Duration::ZERO;
    let mut up = true;
    while at < until {
        let length = Duration::from_millis(rng.gen_range(2_000..30_000));
        spans.push(TargetSpan {
            target,
            up,
            from_us: at.as_micros() as u64,
            until_us: (at + length).as_micros() as u64,
        });
        at += length;
        up = !up;
    }
    spans
}

fn is_up(spans: &[TargetSpan], now_us: u64) -> bool {
    spans.iter().find(|s| s.from_us <= now_us && now_us < s.until_us).is_none_or(|s| s.up)
}

/// A target host: answers every HTTP request 200 while up and 503 while down.
pub async fn serve_target(spans: Rc<Vec<TargetSpan>>) -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind((IpAddr::from([0, 0, 0, 0]), TARGET_PORT)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let spans = spans.clone();
        tokio::task::spawn_local(async move {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let (code, body) = if is_up(&spans, now_us()) { (200, "up") } else { (503, "down") };
            let reply =
                format!("HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(reply.as_bytes()).await;
        });
    }
}

/// Registers instance `index` on `server`'s agent, retrying until the agent takes it.
pub async fn register(server: SocketAddr, index: usize, target_ip: IpAddr) {
    let body = serde_json::json!({
        "ID": instance_id(index),
        "Name": SERVICE,
        "Address": target_ip.to_string(),
        "Port": TARGET_PORT,
        "checks": [{
            "http": format!("http://{target_ip}:{TARGET_PORT}/health"),
            "interval": format!("{}ms", CHECK_INTERVAL.as_millis()),
            "timeout": format!("{}ms", CHECK_TIMEOUT.as_millis()),
        }],
    })
    .to_string()
    .into_bytes();
    loop {
        if let Ok(response) = call(server, "PUT", "/v1/agent/service/register", body.clone()).await {
            if response.status == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asks random servers which instances pass, every `OBSERVE_EVERY` until `stop_at`.
pub async fn observe(
    servers: Vec<(u32, SocketAddr)>,
    mut rng: ChaCha8Rng,
    history: Rc<RefCell<History>>,
    stop_at: Duration,
) {
    let path = format!("/v1/health/service/{SERVICE}?passing");
    while now_us() < stop_at.as_micros() as u64 {
        let (server_id, server) = servers[rng.gen_range(0..servers.len())];
        let invoke_us = now_us();
        let passing = match call(server, "GET", &path, Vec::new()).await {
            Ok(response) if response.status == 200 => response.json().ok().and_then(|rows| {
                let rows = rows.as_array()?.clone();
                rows.iter().map(|row| row["Service"]["ID"].as_str().map(str::to_string)).collect::<Option<Vec<_>>>()
            }),
            _ => None,
        };
        if let Some(passing) = passing {
            let complete_us = now_us();
            history.borrow_mut().health.push(HealthObservation { server: server_id, invoke_us, complete_us, passing });
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
}

//! The `kv-cas-contention` workload: clients increment a few shared counters with read-then-CAS through
//! the real KV API. Each value is `<count>:<writer>` (unique per write), so a CAS on the read's modify
//! index is a CAS on the value read, which the checker's register model understands. After the heal the
//! final reader's counts are compared with the increments that were acknowledged.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use base64::Engine;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::{History, Op, OpKind, Outcome, ReadMode, Violation};
use crate::client::{call, now_us, Workload};

/// The counters clients contend on.
pub const COUNTERS: &[&str] = &["counter/a", "counter/b", "counter/c"];

/// The count in a counter value (`<count>:<writer>`).
pub fn count_of(value: &str) -> u64 {
    value.split(':').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Reads `key` and records the read; returns (value, modify index) when answered.
pub async fn read_key(
    history: &Rc<RefCell<History>>,
    client: u32,
    server: (u32, SocketAddr),
    key: &str,
    mode: ReadMode,
) -> Option<(Option<String>, u64)> {
    let query = match mode {
        ReadMode::Default => "",
        ReadMode::Consistent => "?consistent",
        ReadMode::Stale => "?stale",
    };
    let invoke_us = now_us();
    let response = call(server.1, "GET", &format!("/v1/kv/{key}{query}"), Vec::new()).await.ok()?;
    let complete_us = now_us();
    let index = response.header("x-consul-index").and_then(|v| v.parse().ok()).unwrap_or(0);
    let (value, modify_index) = match response.status {
        404 => (None, 0),
        200 => {
            let entry = response.json().ok()?.as_array()?.first()?.clone();
            let bytes = base64::engine::general_purpose::STANDARD.decode(entry["Value"].as_str().unwrap_or("")).ok()?;
            (Some(String::from_utf8_lossy(&bytes).into_owned()), entry["ModifyIndex"].as_u64()?)
        }
        _ => return None,
    };
    history.borrow_mut().push(Op {
        client,
        server: server.0,
        key: key.to_string(),
        kind: OpKind::Read { mode },
        invoke_us,
        complete_us,
        outcome: Outcome::ReadOk { value: value.clone(), index },
    });
    Some((value, modify_index))
}

pub async fn run(workload: Workload, mut rng: ChaCha8Rng, history: Rc<RefCell<History>>) {
    for op_number in 0..workload.ops_max {
        let pause = rng.gen_range(0..=workload.pause_max.as_millis() as u64);
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        if turmoil::sim_elapsed().unwrap_or_default() >= workload.stop_at {
            break;
        }
        let server = workload.servers[rng.gen_range(0..workload.servers.len())];
        let key = COUNTERS[rng.gen_range(0..COUNTERS.len())];
        let mode = match rng.gen_range(0..10) {
            0 => ReadMode::Stale,
            1..=4 => ReadMode::Consistent,
            _ => ReadMode::Default,
        };
        let Some((current, modify_index)) = read_key(&history, workload.client, server, key, mode.clone()).await else {
            continue;
        };
        if mode == ReadMode::Stale {
            continue; // a CAS needs a read it can trust
        }
        let next = current.as_deref().map(count_of).unwrap_or(0) + 1;
        let value = format!("{next}:c{}-{op_number}", workload.client);
        let server = workload.servers[rng.gen_range(0..workload.servers.len())];
        let invoke_us = now_us();
        let result =
            call(server.1, "PUT", &format!("/v1/kv/{key}?cas={modify_index}"), value.clone().into_bytes()).await;
        let complete_us = now_us();
        let outcome = match result {
            Ok(response) if response.status == 200 && response.body == b"true" => Outcome::WriteOk,
            Ok(response) if response.status == 200 => Outcome::CasRefused,
            Ok(response) if (400..500).contains(&response.status) => Outcome::Failed,
            Ok(_) | Err(true) => Outcome::Unknown,
            Err(false) => Outcome::Failed,
        };
        tracing::debug!(target: "sim::client", client = workload.client, key, outcome = ?outcome, "cas");
        history.borrow_mut().push(Op {
            client: workload.client,
            server: server.0,
            key: key.to_string(),
            kind: OpKind::Cas { expected: current, value },
            invoke_us,
            complete_us,
            outcome,
        });
    }
}

/// The counter check: the last linearizable read of each counter shows a count between the increments
/// certainly applied before it (acknowledged and completed before it began) and those plus every
/// increment that may have applied (unknown, or acknowledged later).
pub fn check_counters(history: &History) -> Result<(), Violation> {
    for key in COUNTERS {
        let ops: Vec<&Op> = history.ops.iter().filter(|op| op.key == *key).collect();
        let Some(last_read) =
            ops.iter().filter(|op| op.is_linearizable_read()).max_by_key(|op| (op.invoke_us, op.complete_us))
        else {
            continue;
        };
        let count = last_read.read_value().and_then(|v| v.as_deref()).map(count_of).unwrap_or(0);
        let increments = ops.iter().filter(|op| matches!(op.kind, OpKind::Cas { .. }));
        let certain = increments
            .clone()
            .filter(|op| op.outcome == Outcome::WriteOk && op.complete_us < last_read.invoke_us)
            .count() as u64;
        let possible = increments.filter(|op| matches!(op.outcome, Outcome::WriteOk | Outcome::Unknown)).count() as u64;
        if count < certain || count > possible {
            return Err(Violation {
                check: "counter",
                key: key.to_string(),
                what: format!(
                    "final count {count}, but {certain} increments were acknowledged before the read and at most \
                     {possible} may have applied"
                ),
            });
        }
    }
    Ok(())
}

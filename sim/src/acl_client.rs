//! The `acl-revocation` workload: writers put unique values under `acl/` with tokens that the revoker
//! deletes one by one at random times, through partitions and leader crashes. Conclave promises more
//! than Consul here: once a token's delete is acknowledged, no write that starts afterwards with it may
//! apply, on any server. [`check_revocations`] fails a run where one was acknowledged, or where the
//! final value of a key came from one.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use base64::Engine;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::{History, Op, OpKind, Outcome, ReadMode, Violation};
use crate::client::{call, now_us, Workload};

/// The cluster's `acl.tokens.initial_management`: the setup and the final reads use it.
pub const ROOT_SECRET: &str = "sim-root-secret";
/// Tokens the writers use and the revoker deletes.
pub const TOKENS: usize = 4;
/// When the revocations happen (between the start of faults and the heal).
const REVOKE_FROM: Duration = Duration::from_secs(6);
const REVOKE_UNTIL: Duration = Duration::from_secs(27);

fn accessor(token: usize) -> String {
    format!("00000000-0000-4000-8000-{token:012}")
}

fn secret(token: usize) -> String {
    format!("sim-writer-secret-{token}")
}

/// The key a writer writes.
pub fn key_of(client: u32) -> String {
    format!("acl/c{client}")
}

/// A write made with a token: what the revocation check needs beside the op.
#[derive(Clone, Debug)]
pub struct TokenWrite {
    pub token: usize,
    pub value: String,
    pub invoke_us: u64,
    pub acknowledged: bool,
}

/// Retries `path` on the servers in turn until one answers 200.
async fn until_ok(servers: &[(u32, SocketAddr)], method: &str, path: &str, body: &str) -> u64 {
    let mut attempt = 0usize;
    loop {
        let server = servers[attempt % servers.len()];
        attempt += 1;
        if let Ok(response) = call(server.1, method, path, body.as_bytes().to_vec()).await {
            if response.status == 200 {
                return now_us();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The policy and the tokens, created with the management token before faults begin.
pub async fn setup(servers: &[(u32, SocketAddr)]) {
    let policy = r#"{"Name":"writers","Rules":"key_prefix \"acl/\" { policy = \"write\" }"}"#;
    until_ok(servers, "PUT", &format!("/v1/acl/policy?token={ROOT_SECRET}"), policy).await;
    for token in 0..TOKENS {
        let body = serde_json::json!({
            "AccessorID": accessor(token),
            "SecretID": secret(token),
            "Policies": [{ "Name": "writers" }],
        })
        .to_string();
        until_ok(servers, "PUT", &format!("/v1/acl/token?token={ROOT_SECRET}"), &body).await;
    }
}

/// Deletes the tokens one by one at random times; records when each delete was acknowledged.
pub async fn revoke(servers: Vec<(u32, SocketAddr)>, mut rng: ChaCha8Rng, history: Rc<RefCell<History>>) {
    let mut times: Vec<u64> =
        (0..TOKENS).map(|_| rng.gen_range(REVOKE_FROM.as_micros() as u64..REVOKE_UNTIL.as_micros() as u64)).collect();
    times.sort_unstable();
    for (token, at_us) in times.into_iter().enumerate() {
        let now = now_us();
        if at_us > now {
            tokio::time::sleep(Duration::from_micros(at_us - now)).await;
        }
        let path = format!("/v1/acl/token/{}?token={ROOT_SECRET}", accessor(token));
        let acked_us = until_ok(&servers, "DELETE", &path, "").await;
        tracing::debug!(target: "sim::client", token, acked_us, "token revoked");
        history.borrow_mut().revocations.push((token, acked_us));
    }
}

/// A writer: each write goes to a random server with a random token.
pub async fn write(workload: Workload, mut rng: ChaCha8Rng, history: Rc<RefCell<History>>) {
    let key = key_of(workload.client);
    for op_number in 0..workload.ops_max {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..=150))).await;
        if turmoil::sim_elapsed().unwrap_or_default() >= workload.stop_at {
            break;
        }
        let token = rng.gen_range(0..TOKENS);
        let server = workload.servers[rng.gen_range(0..workload.servers.len())];
        let value = format!("t{token}:c{}:{op_number}", workload.client);
        let invoke_us = now_us();
        let path = format!("/v1/kv/{key}?token={}", secret(token));
        let result = call(server.1, "PUT", &path, value.clone().into_bytes()).await;
        let complete_us = now_us();
        let outcome = match result {
            Ok(response) if response.status == 200 && response.body == b"true" => Outcome::WriteOk,
            Ok(response) if response.status == 403 => Outcome::Failed,
            Ok(_) | Err(true) => Outcome::Unknown,
            Err(false) => Outcome::Failed,
        };
        let acknowledged = outcome == Outcome::WriteOk;
        let mut history = history.borrow_mut();
        history.token_writes.push(TokenWrite { token, value: value.clone(), invoke_us, acknowledged });
        history.push(Op {
            client: workload.client,
            server: server.0,
            key: key.clone(),
            kind: OpKind::Register { value },
            invoke_us,
            complete_us,
            outcome,
        });
    }
}

/// After the heal: each writer's key, read consistently with the management token. True once all were.
pub async fn final_reads(
    history: &Rc<RefCell<History>>,
    servers: &[(u32, SocketAddr)],
    writers: u32,
    deadline: tokio::time::Instant,
) -> bool {
    let mut attempt = 0usize;
    for client in 0..writers {
        let key = key_of(client);
        loop {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            let server = servers[attempt % servers.len()];
            attempt += 1;
            let invoke_us = now_us();
            let path = format!("/v1/kv/{key}?consistent&token={ROOT_SECRET}");
            let Ok(response) = call(server.1, "GET", &path, Vec::new()).await else { continue };
            let value = match response.status {
                404 => None,
                200 => {
                    let Some(entry) = response.json().ok().and_then(|v| v.as_array()?.first().cloned()) else {
                        continue;
                    };
                    let raw = entry["Value"].as_str().unwrap_or("");
                    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_default();
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
            };
            let index = response.header("x-consul-index").and_then(|v| v.parse().ok()).unwrap_or(0);
            history.borrow_mut().push(Op {
                client: u32::MAX,
                server: server.0,
                key: key.clone(),
                kind: OpKind::Read { mode: ReadMode::Consistent },
                invoke_us,
                complete_us: now_us(),
                outcome: Outcome::ReadOk { value, index },
            });
            break;
        }
    }
    true
}

/// Revocation holds: no write invoked after its token's delete was acknowledged was acknowledged, or
/// is the value a key ended with.
pub fn check_revocations(history: &History) -> Result<RevocationReport, Violation> {
    let revoked_at = |token: usize| history.revocations.iter().find(|(t, _)| *t == token).map(|(_, at)| *at);
    let after = |write: &TokenWrite| revoked_at(write.token).is_some_and(|at| write.invoke_us > at);
    let mut report = RevocationReport { revocations: history.revocations.len(), ..RevocationReport::default() };
    for write in history.token_writes.iter().filter(|w| after(w)) {
        report.writes_after_revocation += 1;
        if write.acknowledged {
            return Err(violation(write, revoked_at(write.token).unwrap_or(0), "was acknowledged"));
        }
    }
    let final_values = history.ops.iter().filter(|op| op.client == u32::MAX).filter_map(|op| op.read_value().cloned());
    for value in final_values.flatten() {
        if let Some(write) = history.token_writes.iter().find(|w| w.value == value).filter(|w| after(w)) {
            return Err(violation(write, revoked_at(write.token).unwrap_or(0), "is the key's final value"));
        }
    }
    if report.revocations < TOKENS {
        return Err(Violation {
            check: "revocation",
            key: "acl/".to_string(),
            what: format!("only {} of {TOKENS} revocations were acknowledged before the run ended", report.revocations),
        });
    }
    Ok(report)
}

fn violation(write: &TokenWrite, revoked_us: u64, what: &str) -> Violation {
    Violation {
        check: "revocation",
        key: write.value.clone(),
        what: format!(
            "a write with token {} invoked at {}us, after the token's delete was acknowledged at {revoked_us}us, {what}",
            write.token, write.invoke_us
        ),
    }
}

/// What the revocation check saw.
#[derive(Clone, Debug, Default)]
pub struct RevocationReport {
    pub revocations: usize,
    /// Writes that started after their token was revoked (all refused, or the run would have failed).
    pub writes_after_revocation: usize,
}

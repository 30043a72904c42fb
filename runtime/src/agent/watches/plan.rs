//! One watch's blocking-query loop, as Consul's `api/watch` plan runs it: ask the endpoint of the watch's
//! type with the last index, and hand the data to the handler when the index moved *and* the data
//! changed; an index that went backwards starts over from 0 (except for events, whose index is not
//! monotonic); errors back off (5 s × failures², at most
//! 3 min). The decisions are in [`Plan`], pure; [`run`] does the waiting.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use conclave_core::agent::events::index_of_id;
use serde_json::Value;

use crate::config::watches::{WatchKind, WatchSpec};
use crate::env::http_client::HttpResponse;

/// Consul's watch retry interval and the ceiling of its back-off.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(180);

/// One GET against the agent: path and query in, response out (the CLI's client, or the agent's own).
pub type Fetch =
    Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<HttpResponse, String>> + Send>> + Send + Sync>;

/// What a plan remembers between rounds.
#[derive(Debug, Default)]
pub struct Plan {
    last_index: u64,
    last_result: Value,
}

fn escape(text: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, ESCAPED).to_string()
}

impl Plan {
    /// The request of the next round.
    pub fn path(&self, spec: &WatchSpec) -> String {
        let mut query: Vec<(&str, String)> = Vec::new();
        let path = match &spec.kind {
            WatchKind::Key { key } => format!("/v1/kv/{}", escape(key)),
            WatchKind::KeyPrefix { prefix } => {
                query.push(("recurse", String::new()));
                format!("/v1/kv/{}", escape(prefix))
            }
            WatchKind::Services => "/v1/catalog/services".to_string(),
            WatchKind::Nodes => "/v1/catalog/nodes".to_string(),
            WatchKind::Service { service, tags, passing_only } => {
                query.extend(tags.iter().map(|t| ("tag", t.clone())));
                if *passing_only {
                    query.push(("passing", "true".to_string()));
                }
                format!("/v1/health/service/{}", escape(service))
            }
            WatchKind::Checks { service, state, tags } => {
                query.extend(tags.iter().map(|t| ("tag", t.clone())));
                match service.is_empty() {
                    true => format!("/v1/health/state/{}", escape(state)),
                    false => format!("/v1/health/checks/{}", escape(service)),
                }
            }
            WatchKind::Event { name } => {
                if !name.is_empty() {
                    query.push(("name", name.clone()));
                }
                "/v1/event/list".to_string()
            }
        };
        if let Some(dc) = &spec.datacenter {
            query.push(("dc", dc.clone()));
        }
        if spec.stale && !matches!(spec.kind, WatchKind::Event { .. }) {
            query.push(("stale", String::new()));
        }
        if self.last_index > 0 {
            query.push(("index", self.last_index.to_string()));
        }
        let encoded = serde_urlencoded::to_string(&query).expect("pairs of strings encode");
        if encoded.is_empty() {
            path
        } else {
            format!("{path}?{encoded}")
        }
    }

    /// Takes one round's answer; `Some((index, data))` when the handler must run.
    pub fn step(&mut self, spec: &WatchSpec, response: &HttpResponse) -> Result<Option<(u64, Value)>, String> {
        let missing_key =
            matches!(spec.kind, WatchKind::Key { .. } | WatchKind::KeyPrefix { .. }) && response.status == 404;
        if response.status != 200 && !missing_key {
            let body = String::from_utf8_lossy(&response.body);
            return Err(format!("Unexpected response code: {} ({})", response.status, body.trim()));
        }
        let index = response.header("x-consul-index").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let mut data = if missing_key { Value::Null } else { response.json().map_err(|e| e.to_string())? };
        if let WatchKind::Key { .. } = spec.kind {
            // The KV API answers a list of one; Consul's watch hands over the pair itself.
            data = data.as_array().and_then(|a| a.first().cloned()).unwrap_or(Value::Null);
        }
        if let (WatchKind::Event { .. }, Value::Array(events)) = (&spec.kind, &mut data) {
            // Only the events after the one last seen.
            let seen = events.iter().position(|e| e["ID"].as_str().and_then(index_of_id) == Some(self.last_index));
            if let Some(seen) = seen {
                events.drain(..=seen);
            }
        }
        let previous = self.last_index;
        // Event indexes come from random UUIDs and go backwards half the time: starting over there (as
        // Consul's plan does for every type) would hand the handler old events again.
        let restart = index < previous && !matches!(spec.kind, WatchKind::Event { .. });
        self.last_index = if restart { 0 } else { index };
        if index == previous || data == self.last_result {
            return Ok(None);
        }
        self.last_result = data.clone();
        Ok(Some((index, data)))
    }
}

/// Runs `spec` forever: each time its data changes, `handle(index, data)` is awaited.
pub async fn run<H, F>(spec: WatchSpec, fetch: Fetch, mut handle: H)
where
    H: FnMut(u64, Value) -> F,
    F: Future<Output = ()>,
{
    let mut plan = Plan::default();
    let mut failures: u32 = 0;
    loop {
        let answer = fetch(plan.path(&spec)).await;
        match answer.and_then(|response| plan.step(&spec, &response)) {
            Ok(change) => {
                failures = 0;
                if let Some((index, data)) = change {
                    handle(index, data).await;
                }
            }
            Err(why) => {
                failures = failures.saturating_add(1);
                let backoff = (RETRY_INTERVAL * failures.saturating_mul(failures).min(36)).min(BACKOFF_MAX);
                tracing::warn!(error = %why, retry_in = ?backoff, "watch: query failed");
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

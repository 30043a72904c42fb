//! The check runner: one task per check the agent holds (HTTP, TCP, TTL, and script checks when
//! `enable_script_checks` is on), kept in line with the local state. Each task probes on its interval —
//! the first probe at a random point of the first interval, from the node's rng, so thousands of checks
//! do not fire together — and hands results to a `CheckMonitor` (core) that decides the status the check
//! reports. Results change the agent's in-memory state at once; the catalog learns of them through the
//! anti-entropy task, which `mark_dirty` wakes.

mod http_probe;
pub mod probes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::agent::check_monitor::{effective_interval_ms, first_probe_delay_ms, ttl_expired_output};
use conclave_core::agent::{CheckMonitor, CheckRun, LocalState, ProbeResult};
use conclave_core::catalog::{CheckDefinition, CheckStatus};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::Node;
use crate::env::Env;

/// How long the runner waits after a change of the local state for more changes before reconciling.
const RECONCILE_COALESCE: Duration = Duration::from_millis(50);
/// How often a TTL check that has expired looks at whether its service is due for reaping.
const TTL_REAP_POLL: Duration = Duration::from_secs(1);

/// How a check is run, as far as the runner is concerned; a change restarts the check's task.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunWhat {
    check_type: String,
    definition: CheckDefinition,
    run: CheckRun,
}

struct Running {
    what: RunWhat,
    task: AbortHandle,
    /// Woken when a TTL check is updated through the API.
    touched: Arc<Notify>,
}

/// The checks running on this agent and the services whose checks changed since the last sync.
pub struct CheckRunners {
    running: Mutex<BTreeMap<String, Running>>,
    /// Woken after every change of the local state: the running checks are reconciled with it.
    pub local_changed: Notify,
    /// Services (`""`: node checks) with check results the catalog has not been sent.
    dirty: Mutex<BTreeSet<String>>,
    /// Woken when `dirty` gains an entry.
    pub sync_wanted: Notify,
    /// The origin of the runner's millisecond clock (`tokio::time`, so simulated time in the simulator).
    started: tokio::time::Instant,
}

impl Default for CheckRunners {
    fn default() -> Self {
        CheckRunners {
            running: Mutex::new(BTreeMap::new()),
            local_changed: Notify::new(),
            dirty: Mutex::new(BTreeSet::new()),
            sync_wanted: Notify::new(),
            started: tokio::time::Instant::now(),
        }
    }
}

impl CheckRunners {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Asks for the checks of `service_id` (`""`: node checks) to be pushed to the catalog.
    pub fn mark_dirty(&self, service_id: &str) {
        self.dirty.lock().expect("dirty lock").insert(service_id.to_string());
        self.sync_wanted.notify_one();
    }

    /// Takes the services marked dirty since the last call.
    pub fn take_dirty(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.dirty.lock().expect("dirty lock"))
    }

    /// A TTL check was updated through the API: its TTL starts again.
    pub fn touch(&self, check_id: &str) {
        if let Some(running) = self.running.lock().expect("runners lock").get(check_id) {
            running.touched.notify_one();
        }
    }

    /// How many checks have a running task (for `/v1/agent/self` and tests).
    pub fn running_count(&self) -> usize {
        self.running.lock().expect("runners lock").len()
    }
}

/// The checks of `local` the runner runs, by ID.
fn runnable(local: &LocalState, scripts_enabled: bool) -> BTreeMap<String, RunWhat> {
    local
        .checks()
        .filter(|check| match check.check_type.as_str() {
            "http" | "tcp" | "ttl" => true,
            "script" => scripts_enabled,
            _ => false,
        })
        .map(|check| {
            let what = RunWhat {
                check_type: check.check_type.clone(),
                definition: check.definition.clone(),
                run: local.check_run(&check.check_id),
            };
            (check.check_id.clone(), what)
        })
        .collect()
}

/// Keeps one task per runnable check until the node stops. Changes arriving together (a burst of
/// registrations) are reconciled once: a pass looks at every check the agent holds.
pub async fn run<E: Env>(node: Arc<Node<E>>) {
    loop {
        reconcile(&node);
        node.checks.local_changed.notified().await;
        tokio::time::sleep(RECONCILE_COALESCE).await;
    }
}

/// Starts tasks for new or changed checks and stops those of checks that are gone or changed.
fn reconcile<E: Env>(node: &Arc<Node<E>>) {
    let wanted = {
        let local = node.local.lock().expect("local state lock");
        runnable(&local, node.config.enable_script_checks)
    };
    let mut running = node.checks.running.lock().expect("runners lock");
    running.retain(|id, current| {
        let keep = wanted.get(id) == Some(&current.what);
        if !keep {
            current.task.abort();
        }
        keep
    });
    for (id, what) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        let touched = Arc::new(Notify::new());
        let task = tokio::spawn(run_check(node.clone(), id.clone(), what.clone(), touched.clone()));
        running.insert(id, Running { what, task: task.abort_handle(), touched });
    }
}

async fn run_check<E: Env>(node: Arc<Node<E>>, id: String, what: RunWhat, touched: Arc<Notify>) {
    let Some((status, _, _)) = reported(&node, &id) else { return };
    let mut monitor = CheckMonitor::new(what.run.clone(), status, node.checks.now_ms());
    if what.check_type == "ttl" {
        run_ttl(&node, &id, &what, &mut monitor, &touched).await;
        return;
    }
    let interval = Duration::from_millis(effective_interval_ms(what.definition.interval_ms));
    let random: f64 = {
        use rand::Rng;
        node.rng.lock().expect("rng lock").gen_range(0.0..1.0)
    };
    tokio::time::sleep(Duration::from_millis(first_probe_delay_ms(interval.as_millis() as u64, random))).await;
    loop {
        let probe = match what.check_type.as_str() {
            "http" => probes::http(&node.env, &node.security.checks, &what.definition, &what.run).await,
            "tcp" => probes::tcp(&node.env, &what.definition).await,
            "script" => probes::script(&node.env, &what.definition, &what.run).await,
            other => unreachable!("runnable() does not start {other:?} checks"),
        };
        let Some(service_id) = record(&node, &id, &mut monitor, Recorded::Probe(probe)) else { return };
        if reap_if_due(&node, &monitor, &what, &service_id).await {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// A TTL check goes critical when nothing updates it for `ttl`; every update starts the TTL again.
async fn run_ttl<E: Env>(node: &Arc<Node<E>>, id: &str, what: &RunWhat, monitor: &mut CheckMonitor, touched: &Notify) {
    let ttl = Duration::from_millis(what.definition.ttl_ms);
    loop {
        tokio::select! {
            _ = touched.notified() => {
                if record(node, id, monitor, Recorded::Updated).is_none() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep(ttl) => {}
        }
        let Some((_, last_output, _)) = reported(node, id) else { return };
        let expired = Recorded::Set(CheckStatus::Critical, ttl_expired_output(&last_output));
        let Some(service_id) = record(node, id, monitor, expired) else { return };
        tracing::info!(target: "conclave::event", node = %node.config.node_name, check = id, "check TTL expired");
        // Expired: wait for the next update, reaping the service if it stays critical too long.
        loop {
            tokio::select! {
                _ = touched.notified() => {
                    if record(node, id, monitor, Recorded::Updated).is_none() {
                        return;
                    }
                    break;
                }
                _ = tokio::time::sleep(TTL_REAP_POLL) => {
                    if reap_if_due(node, monitor, what, &service_id).await {
                        return;
                    }
                }
            }
        }
    }
}

/// The status, output and service of check `id` as the agent reports it now; `None` once it is gone.
fn reported<E: Env>(node: &Node<E>, id: &str) -> Option<(CheckStatus, String, String)> {
    let local = node.local.lock().expect("local state lock");
    local.check(id).map(|c| (c.status, c.output.clone(), c.service_id.clone()))
}

enum Recorded {
    /// A probe's result, subject to the check's thresholds.
    Probe(ProbeResult),
    /// A status decided by the runner (TTL expiry).
    Set(CheckStatus, String),
    /// The API changed the status (already in the local state and pushed): only the monitor learns.
    Updated,
}

/// Puts a result into the agent's state (in memory: check results are not written to the data dir) and
/// marks the service for a sync when the monitor says so. Returns the check's service, or `None` when the
/// check is gone.
fn record<E: Env>(node: &Node<E>, id: &str, monitor: &mut CheckMonitor, recorded: Recorded) -> Option<String> {
    let update_interval_ms = node.config.check_update_interval.as_millis() as u64;
    let now_ms = node.checks.now_ms();
    let mut local = node.local.lock().expect("local state lock");
    let check = local.check(id)?;
    let (status, output, service_id) = (check.status, check.output.clone(), check.service_id.clone());
    let decision = match recorded {
        Recorded::Probe(probe) => monitor.handle_result(probe, status, &output, now_ms, update_interval_ms),
        Recorded::Set(new_status, new_output) => {
            monitor.handle_set(new_status, new_output, status, &output, now_ms, update_interval_ms)
        }
        Recorded::Updated => {
            monitor.handle_set(status, output.clone(), status, &output, now_ms, update_interval_ms);
            return Some(service_id);
        }
    };
    if decision.status != status || decision.output != output {
        local.update_check(id, decision.status, &decision.output).expect("the check exists: looked up above");
    }
    drop(local);
    if decision.status != status {
        tracing::info!(
            target: "conclave::event",
            node = %node.config.node_name,
            check = id,
            from = status.as_str(),
            to = decision.status.as_str(),
            "check status changed"
        );
    }
    if decision.sync_now && !node.config.faults.lazy_check_sync {
        node.checks.mark_dirty(&service_id);
    }
    Some(service_id)
}

/// Deregisters the check's service when it has been critical longer than
/// `deregister_critical_service_after`. True when it did.
async fn reap_if_due<E: Env>(node: &Node<E>, monitor: &CheckMonitor, what: &RunWhat, service_id: &str) -> bool {
    let after_ms = what.definition.deregister_critical_service_after_ms;
    if service_id.is_empty() || !monitor.should_reap(after_ms, node.checks.now_ms()) {
        return false;
    }
    tracing::info!(
        target: "conclave::event",
        node = %node.config.node_name,
        service = service_id,
        "deregistering service: critical for longer than deregister_critical_service_after"
    );
    if node.change_local(|local| Ok(local.deregister_service(service_id))).is_err() {
        return false;
    }
    let command = LocalState::deregister_command(&node.config.node_name, Some(service_id), None);
    node.push_to_catalog(vec![command]).await;
    true
}

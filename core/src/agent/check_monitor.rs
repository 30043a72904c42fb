//! The decisions of the check runner, free of I/O: what a probe's result means (HTTP codes, script exit
//! codes), how consecutive results become the status a check reports (`success_before_passing`,
//! `failures_before_warning`, `failures_before_critical`, as Consul's status handler), when an output-only
//! change may be pushed to the catalog (`check_update_interval`), when a TTL check expires and when a
//! service critical for too long is reaped (`deregister_critical_service_after`). The driver probes and
//! keeps time; it hands results and the current time in milliseconds to a `CheckMonitor`.

use super::check_run::{truncate_output, CheckRun};
use crate::catalog::CheckStatus;

/// Consul's default timeout of HTTP, TCP and gRPC probes.
pub const PROBE_TIMEOUT_DEFAULT_MS: u64 = 10_000;
/// Consul's default timeout of script checks.
pub const SCRIPT_TIMEOUT_DEFAULT_MS: u64 = 30_000;
/// Consul's default `check_update_interval`: an unchanged status with a new output is pushed at most this
/// often.
pub const CHECK_UPDATE_INTERVAL_DEFAULT_MS: u64 = 5 * 60 * 1000;
/// Consul's smallest check interval; shorter intervals are raised to it.
pub const CHECK_INTERVAL_MIN_MS: u64 = 1000;

/// What one probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub status: CheckStatus,
    pub output: String,
}

impl ProbeResult {
    pub fn new(status: CheckStatus, output: impl Into<String>) -> ProbeResult {
        ProbeResult { status, output: truncate_output(&output.into()) }
    }
}

/// Consul's reading of an HTTP check's answer: 2xx passing, 429 (Too Many Requests) warning, anything
/// else critical.
pub fn http_status(code: u16) -> CheckStatus {
    match code {
        200..=299 => CheckStatus::Passing,
        429 => CheckStatus::Warning,
        _ => CheckStatus::Critical,
    }
}

/// Consul's reading of a script check's exit code: 0 passing, 1 warning, anything else critical.
pub fn script_status(exit_code: Option<i32>) -> CheckStatus {
    match exit_code {
        Some(0) => CheckStatus::Passing,
        Some(1) => CheckStatus::Warning,
        _ => CheckStatus::Critical,
    }
}

/// Consul's output of an HTTP check.
pub fn http_output(method: &str, url: &str, code: u16, reason: &str, body: &[u8]) -> String {
    format!("HTTP {method} {url}: {code} {reason} Output: {}", String::from_utf8_lossy(body))
}

/// What the driver should do after a result was recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The status and output the check now reports.
    pub status: CheckStatus,
    pub output: String,
    /// Push to the catalog now (the status changed, or the output changed and the rate limit allows).
    pub sync_now: bool,
}

/// The state the runner keeps for one check between probes.
#[derive(Clone, Debug, Default)]
pub struct CheckMonitor {
    run: CheckRun,
    successes: u32,
    failures: u32,
    /// Since when the reported status has been critical.
    critical_since_ms: Option<u64>,
    /// When an output-only change was last pushed.
    output_synced_at_ms: Option<u64>,
}

impl CheckMonitor {
    pub fn new(run: CheckRun, reported: CheckStatus, now_ms: u64) -> CheckMonitor {
        let critical_since_ms = (reported == CheckStatus::Critical).then_some(now_ms);
        CheckMonitor { run, critical_since_ms, ..CheckMonitor::default() }
    }

    /// Records a probe's result against the status the check reports now (`reported`, `reported_output`).
    /// Passing and warning count as successes, critical as a failure; the reported status only moves once
    /// the thresholds are met, but the output always follows the latest probe.
    pub fn handle_result(
        &mut self,
        probe: ProbeResult,
        reported: CheckStatus,
        reported_output: &str,
        now_ms: u64,
        update_interval_ms: u64,
    ) -> Decision {
        let status = if probe.status == CheckStatus::Critical {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= self.run.failures_before_critical {
                CheckStatus::Critical
            } else if self.run.failures_before_warning > 0 && self.failures >= self.run.failures_before_warning {
                CheckStatus::Warning
            } else {
                reported
            }
        } else {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if self.successes >= self.run.success_before_passing {
                probe.status
            } else {
                reported
            }
        };
        self.record(status, probe.output, reported, reported_output, now_ms, update_interval_ms)
    }

    /// A status set from outside (TTL updates through the API, TTL expiry): taken as it is.
    pub fn handle_set(
        &mut self,
        status: CheckStatus,
        output: String,
        reported: CheckStatus,
        reported_output: &str,
        now_ms: u64,
        update_interval_ms: u64,
    ) -> Decision {
        self.record(status, truncate_output(&output), reported, reported_output, now_ms, update_interval_ms)
    }

    fn record(
        &mut self,
        status: CheckStatus,
        output: String,
        reported: CheckStatus,
        reported_output: &str,
        now_ms: u64,
        update_interval_ms: u64,
    ) -> Decision {
        match (status, self.critical_since_ms) {
            (CheckStatus::Critical, None) => self.critical_since_ms = Some(now_ms),
            (CheckStatus::Critical, Some(_)) => {}
            _ => self.critical_since_ms = None,
        }
        let status_changed = status != reported;
        let output_changed = output != reported_output;
        let output_due = self.output_synced_at_ms.is_none_or(|at| now_ms.saturating_sub(at) >= update_interval_ms);
        let sync_now = status_changed || (output_changed && output_due);
        if sync_now {
            self.output_synced_at_ms = Some(now_ms);
        }
        Decision { status, output, sync_now }
    }

    /// Whether the check has been critical for longer than `after_ms` (0: never reap).
    pub fn should_reap(&self, after_ms: u64, now_ms: u64) -> bool {
        after_ms > 0 && self.critical_since_ms.is_some_and(|since| now_ms.saturating_sub(since) > after_ms)
    }
}

/// The output of a TTL check that was not updated in time (Consul's wording).
pub fn ttl_expired_output(last_output: &str) -> String {
    if last_output.is_empty() {
        "TTL expired".to_string()
    } else {
        format!("TTL expired (last output before timeout follows): {last_output}")
    }
}

/// The first probe of a check fires at a random point of its first interval, so that thousands of checks
/// registered together do not fire together. `random` is uniform in `[0, 1)`.
pub fn first_probe_delay_ms(interval_ms: u64, random: f64) -> u64 {
    assert!((0.0..1.0).contains(&random), "random must be in [0, 1)");
    (interval_ms as f64 * random) as u64
}

/// The interval a check runs at: Consul raises anything under one second to one second.
pub fn effective_interval_ms(interval_ms: u64) -> u64 {
    interval_ms.max(CHECK_INTERVAL_MIN_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    fn probe(status: CheckStatus) -> ProbeResult {
        ProbeResult::new(status, format!("{status:?}"))
    }

    fn run_thresholds(success_before_passing: u32, failures_before_critical: u32) -> CheckRun {
        CheckRun { success_before_passing, failures_before_critical, ..CheckRun::default() }
    }

    #[test]
    fn without_thresholds_every_result_is_reported_at_once() {
        let mut monitor = CheckMonitor::new(CheckRun::default(), CheckStatus::Critical, 0);
        let d = monitor.handle_result(probe(CheckStatus::Passing), CheckStatus::Critical, "", 10, HOUR_MS);
        assert_eq!((d.status, d.sync_now), (CheckStatus::Passing, true));
        let d = monitor.handle_result(probe(CheckStatus::Critical), CheckStatus::Passing, "Passing", 20, HOUR_MS);
        assert_eq!((d.status, d.sync_now), (CheckStatus::Critical, true));
    }

    #[test]
    fn success_before_passing_holds_the_status_until_enough_successes() {
        let mut monitor = CheckMonitor::new(run_thresholds(3, 0), CheckStatus::Critical, 0);
        for round in 1..=2 {
            let d = monitor.handle_result(probe(CheckStatus::Passing), CheckStatus::Critical, "", round, HOUR_MS);
            assert_eq!(d.status, CheckStatus::Critical, "round {round}");
        }
        let d = monitor.handle_result(probe(CheckStatus::Passing), CheckStatus::Critical, "", 3, HOUR_MS);
        assert_eq!(d.status, CheckStatus::Passing);
    }

    #[test]
    fn a_failure_resets_the_success_count() {
        let mut monitor = CheckMonitor::new(run_thresholds(2, 0), CheckStatus::Critical, 0);
        monitor.handle_result(probe(CheckStatus::Passing), CheckStatus::Critical, "", 1, HOUR_MS);
        monitor.handle_result(probe(CheckStatus::Critical), CheckStatus::Critical, "", 2, HOUR_MS);
        let d = monitor.handle_result(probe(CheckStatus::Passing), CheckStatus::Critical, "", 3, HOUR_MS);
        assert_eq!(d.status, CheckStatus::Critical);
    }

    #[test]
    fn failures_before_warning_then_critical() {
        let run = CheckRun { failures_before_warning: 1, failures_before_critical: 3, ..CheckRun::default() };
        let mut monitor = CheckMonitor::new(run, CheckStatus::Passing, 0);
        let statuses: Vec<_> = (1..=3)
            .map(|t| monitor.handle_result(probe(CheckStatus::Critical), CheckStatus::Passing, "", t, HOUR_MS).status)
            .collect();
        assert_eq!(statuses, [CheckStatus::Warning, CheckStatus::Warning, CheckStatus::Critical]);
    }

    #[test]
    fn output_only_changes_are_rate_limited() {
        let mut monitor = CheckMonitor::new(CheckRun::default(), CheckStatus::Passing, 0);
        let first =
            monitor.handle_result(ProbeResult::new(CheckStatus::Passing, "a"), CheckStatus::Passing, "", 1000, 60_000);
        assert!(first.sync_now, "the first output change is pushed");
        let soon =
            monitor.handle_result(ProbeResult::new(CheckStatus::Passing, "b"), CheckStatus::Passing, "a", 2000, 60_000);
        assert!(!soon.sync_now, "a second change within the interval waits");
        assert_eq!(soon.output, "b", "the local output still follows the probe");
        let later = monitor.handle_result(
            ProbeResult::new(CheckStatus::Passing, "c"),
            CheckStatus::Passing,
            "b",
            61_000,
            60_000,
        );
        assert!(later.sync_now);
        let flip = monitor.handle_result(
            ProbeResult::new(CheckStatus::Critical, "d"),
            CheckStatus::Passing,
            "c",
            61_500,
            60_000,
        );
        assert!(flip.sync_now, "a status change is never held back");
    }

    #[test]
    fn reaping_waits_for_the_critical_period() {
        let mut monitor = CheckMonitor::new(CheckRun::default(), CheckStatus::Passing, 0);
        monitor.handle_result(probe(CheckStatus::Critical), CheckStatus::Passing, "", 1000, HOUR_MS);
        assert!(!monitor.should_reap(60_000, 61_000));
        assert!(monitor.should_reap(60_000, 61_001));
        assert!(!monitor.should_reap(0, 10 * HOUR_MS), "0 never reaps");
        monitor.handle_result(probe(CheckStatus::Passing), CheckStatus::Critical, "", 61_002, HOUR_MS);
        assert!(!monitor.should_reap(60_000, 10 * HOUR_MS), "passing again resets the clock");
    }

    #[test]
    fn probe_readings_follow_consul() {
        assert_eq!(http_status(204), CheckStatus::Passing);
        assert_eq!(http_status(429), CheckStatus::Warning);
        assert_eq!(http_status(503), CheckStatus::Critical);
        assert_eq!(http_status(301), CheckStatus::Critical);
        assert_eq!(script_status(Some(0)), CheckStatus::Passing);
        assert_eq!(script_status(Some(1)), CheckStatus::Warning);
        assert_eq!(script_status(Some(2)), CheckStatus::Critical);
        assert_eq!(script_status(None), CheckStatus::Critical);
        assert_eq!(ttl_expired_output(""), "TTL expired");
        assert_eq!(effective_interval_ms(10), 1000);
    }

    #[test]
    fn long_outputs_are_truncated() {
        let result = ProbeResult::new(CheckStatus::Passing, "x".repeat(10_000));
        assert!(result.output.len() < 4200 && result.output.contains("captured 4096 of 10000 bytes"));
    }

    #[test]
    fn first_probes_spread_over_the_interval() {
        assert_eq!(first_probe_delay_ms(10_000, 0.0), 0);
        assert_eq!(first_probe_delay_ms(10_000, 0.5), 5000);
        assert!(first_probe_delay_ms(10_000, 0.9999) < 10_000);
    }
}

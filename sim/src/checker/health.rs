//! Health answers against the truth: each check target's up and down periods are known, and once the
//! cluster has been calm (no partition, no crashed server) and a target has held its state for longer
//! than one check interval plus the anti-entropy bound, every `?passing` answer must agree with it — an
//! instance whose target is down must not be reported passing, and one whose target is up must be.

use super::history::{HealthObservation, History, TargetSpan};
use super::Violation;

/// What the health check looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthReport {
    pub observations: usize,
    /// (observation, instance) pairs whose target state was settled, so the answer had to match.
    pub settled_pairs: usize,
}

/// When the cluster became calm before `at_us` (the end of the last disturbance), or `None` while a
/// disturbance lasts at `at_us`.
fn calm_since(disturbed: &[(u64, u64)], at_us: u64) -> Option<u64> {
    let mut since = 0;
    for &(from, until) in disturbed {
        if from <= at_us && at_us < until {
            return None;
        }
        if until <= at_us {
            since = since.max(until);
        }
    }
    Some(since)
}

fn span_at(spans: &[TargetSpan], target: usize, at_us: u64) -> Option<&TargetSpan> {
    spans.iter().find(|s| s.target == target && s.from_us <= at_us && at_us < s.until_us)
}

/// Checks every observation against the targets. `bound_us` is how long a settled state may take to show.
pub fn check(
    history: &History,
    instance_id: impl Fn(usize) -> String,
    bound_us: u64,
) -> Result<HealthReport, Violation> {
    let mut report = HealthReport { observations: history.health.len(), settled_pairs: 0 };
    let targets: std::collections::BTreeSet<usize> = history.targets.iter().map(|s| s.target).collect();
    for observation in &history.health {
        let HealthObservation { invoke_us, complete_us, .. } = *observation;
        let (Some(calm_from), Some(calm_to)) =
            (calm_since(&history.disturbed, invoke_us), calm_since(&history.disturbed, complete_us))
        else {
            continue;
        };
        if calm_from != calm_to {
            continue; // a disturbance began and ended during the request
        }
        for &target in &targets {
            let Some(span) = span_at(&history.targets, target, invoke_us) else { continue };
            if span.until_us <= complete_us {
                continue; // the target changed while the request was in flight
            }
            let settled_since = span.from_us.max(calm_from);
            if invoke_us.saturating_sub(settled_since) <= bound_us {
                continue;
            }
            report.settled_pairs += 1;
            let id = instance_id(target);
            let reported_passing = observation.passing.contains(&id);
            if reported_passing != span.up {
                let (said, truth) = if span.up { ("not passing", "up") } else { ("passing", "down") };
                return Err(Violation {
                    check: "health",
                    key: id,
                    what: format!(
                        "server {} said {said} at {invoke_us}us..{complete_us}us, but its check target has been \
                         {truth} since {}us and the cluster calm since {calm_from}us (bound {bound_us}us)",
                        observation.server, span.from_us
                    ),
                });
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(passing: &[&str], at_us: u64) -> History {
        History {
            targets: vec![
                TargetSpan { target: 0, up: true, from_us: 0, until_us: 10_000_000 },
                TargetSpan { target: 0, up: false, from_us: 10_000_000, until_us: 60_000_000 },
            ],
            health: vec![HealthObservation {
                server: 0,
                invoke_us: at_us,
                complete_us: at_us + 1000,
                passing: passing.iter().map(|s| s.to_string()).collect(),
            }],
            ..History::default()
        }
    }

    fn id(i: usize) -> String {
        format!("web-{i}")
    }

    #[test]
    fn a_down_target_reported_passing_after_the_bound_is_a_violation() {
        let error = check(&history(&["web-0"], 20_000_000), id, 5_000_000).unwrap_err();
        assert_eq!(error.check, "health");
        assert!(check(&history(&[], 20_000_000), id, 5_000_000).is_ok());
    }

    #[test]
    fn within_the_bound_either_answer_is_allowed() {
        assert!(check(&history(&["web-0"], 12_000_000), id, 5_000_000).is_ok());
        assert_eq!(check(&history(&["web-0"], 12_000_000), id, 5_000_000).unwrap().settled_pairs, 0);
    }

    #[test]
    fn an_up_target_missing_from_passing_is_a_violation() {
        assert!(check(&history(&[], 8_000_000), id, 5_000_000).is_err());
    }

    #[test]
    fn disturbances_restart_the_clock() {
        let mut h = history(&["web-0"], 20_000_000);
        h.disturbed.push((12_000_000, 18_000_000));
        assert!(check(&h, id, 5_000_000).is_ok(), "calm only since 18 s");
        h.disturbed[0] = (12_000_000, 25_000_000);
        assert_eq!(check(&h, id, 5_000_000).unwrap().settled_pairs, 0, "observations during faults are skipped");
    }
}

//! Client agents' catalog entries against their own state (`client-agent-churn`): from a bound after the
//! heal on, every observation must find the catalog holding exactly the services and checks the agent
//! holds under its node (the node's `serfHealth` aside), and each agent must have been observed then.

use std::collections::BTreeSet;

use super::history::{AgentView, History};
use super::Violation;

/// What the agent check measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentsReport {
    pub observations: usize,
    /// Observations after the bound (each had to match).
    pub settled: usize,
    /// The latest time after the heal at which an agent's catalog entries still differed from its
    /// state, in microseconds after the heal (0 when they matched from the first look).
    pub converged_after_us: u64,
}

fn differs(view: &AgentView) -> bool {
    view.local_services != view.catalog_services || view.local_checks != view.catalog_checks
}

/// Checks every observation made `bound_us` or more after `heal_us`.
pub fn check(history: &History, agents: &[String], heal_us: u64, bound_us: u64) -> Result<AgentsReport, Violation> {
    let mut report = AgentsReport { observations: history.agent_views.len(), ..AgentsReport::default() };
    for view in history.agent_views.iter().filter(|v| v.at_us >= heal_us) {
        if differs(view) {
            report.converged_after_us = report.converged_after_us.max(view.at_us - heal_us);
        }
        if view.at_us < heal_us + bound_us {
            continue;
        }
        report.settled += 1;
        if differs(view) {
            let extra = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.difference(b).cloned().collect::<Vec<_>>();
            return Err(Violation {
                check: "agents",
                key: view.agent.clone(),
                what: format!(
                    "{:.1}s after the heal the catalog differs from the agent: services only in the catalog \
                     {:?}, only on the agent {:?}; checks only in the catalog {:?}, only on the agent {:?}",
                    (view.at_us - heal_us) as f64 / 1e6,
                    extra(&view.catalog_services, &view.local_services),
                    extra(&view.local_services, &view.catalog_services),
                    extra(&view.catalog_checks, &view.local_checks),
                    extra(&view.local_checks, &view.catalog_checks),
                ),
            });
        }
    }
    for agent in agents {
        if !history.agent_views.iter().any(|v| &v.agent == agent && v.at_us >= heal_us + bound_us) {
            let what = "never observed after the bound; the run proves nothing".to_string();
            return Err(Violation { check: "agents", key: agent.clone(), what });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(at_us: u64, local: &[&str], catalog: &[&str]) -> AgentView {
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect();
        AgentView {
            agent: "a1".into(),
            at_us,
            local_services: set(local),
            catalog_services: set(catalog),
            local_checks: BTreeSet::new(),
            catalog_checks: BTreeSet::new(),
        }
    }

    #[test]
    fn a_removal_the_catalog_never_saw_fails_after_the_bound() {
        let history = History { agent_views: vec![view(50, &[], &["svc-1"])], ..History::default() };
        let violation = check(&history, &["a1".into()], 10, 30).unwrap_err();
        assert!(violation.what.contains("only in the catalog [\"svc-1\"]"), "{}", violation.what);
    }

    #[test]
    fn a_difference_before_the_bound_is_only_measured() {
        let history = History {
            agent_views: vec![view(20, &["svc-1"], &[]), view(45, &["svc-1"], &["svc-1"])],
            ..History::default()
        };
        let report = check(&history, &["a1".into()], 10, 30).unwrap();
        assert_eq!((report.settled, report.converged_after_us), (1, 10));
    }

    #[test]
    fn an_agent_never_observed_after_the_bound_fails() {
        let history = History { agent_views: vec![view(20, &[], &[])], ..History::default() };
        assert!(check(&history, &["a1".into()], 10, 30).is_err());
    }
}

//! Unit tests of the catalog table on its own: what it reports to the other tables. The rules seen
//! through `State::apply` are tested in `state/tests.rs`.

use super::*;

fn node(name: &str) -> NodeSpec {
    NodeSpec { node: name.to_string(), address: "10.0.0.1".to_string(), ..NodeSpec::default() }
}

fn check(id: &str, service_id: &str, status: CheckStatus) -> CheckSpec {
    CheckSpec { check_id: id.to_string(), service_id: service_id.to_string(), status, ..CheckSpec::default() }
}

fn register(table: &mut CatalogTable, index: u64, service: Option<&str>, checks: Vec<CheckSpec>) -> Vec<HealthLoss> {
    let service =
        service.map(|id| ServiceSpec { id: id.to_string(), service: id.to_string(), ..ServiceSpec::default() });
    let request = RegisterRequest { node: node("n1"), skip_node_update: false, service, checks };
    table.register(index, &request).expect("registers")
}

fn lost_check(check_id: &str) -> HealthLoss {
    HealthLoss::Check { node: "n1".to_string(), check_id: check_id.to_string() }
}

#[test]
fn a_check_going_critical_is_a_health_loss_once() {
    let mut table = CatalogTable::new();
    assert_eq!(register(&mut table, 1, None, vec![check("serfHealth", "", CheckStatus::Passing)]), []);
    assert_eq!(
        register(&mut table, 2, None, vec![check("serfHealth", "", CheckStatus::Critical)]),
        [lost_check("serfHealth")]
    );
    assert_eq!(register(&mut table, 3, None, vec![check("serfHealth", "", CheckStatus::Critical)]), [], "unchanged");
}

#[test]
fn deregistering_a_node_reports_its_checks_then_the_node() {
    let mut table = CatalogTable::new();
    let checks = vec![check("serfHealth", "", CheckStatus::Passing), check("c1", "web", CheckStatus::Passing)];
    register(&mut table, 1, Some("web"), checks);
    let losses = table.deregister(2, &DeregisterRequest { node: "n1".to_string(), ..DeregisterRequest::default() });
    assert_eq!(losses, [lost_check("c1"), lost_check("serfHealth"), HealthLoss::Node("n1".to_string())]);
    table.assert_invariants(2);
}

#[test]
fn deregistering_what_is_absent_reports_nothing() {
    let mut table = CatalogTable::new();
    let request = DeregisterRequest { node: "n1".to_string(), service_id: None, check_id: Some("c".to_string()) };
    assert_eq!(table.deregister(1, &request), []);
    assert_eq!(table, CatalogTable::new());
}

#[test]
fn a_refused_registration_changes_nothing() {
    let mut table = CatalogTable::new();
    let request = RegisterRequest {
        node: node("n1"),
        checks: vec![check("c", "nope", CheckStatus::Critical)],
        ..RegisterRequest::default()
    };
    assert_eq!(table.register(1, &request), Err("Unknown service ID 'nope' for check ID 'c'".to_string()));
    assert_eq!(table, CatalogTable::new());
}

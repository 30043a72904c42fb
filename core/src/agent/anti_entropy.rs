//! Anti-entropy: the agent is the source of truth for its own services and checks. `sync_plan` compares
//! the agent's `LocalState` with the catalog's entries under its node (read in place on a server, fetched
//! from a server by a client agent) and returns the commands that make the catalog hold exactly
//! that — registrations that are missing or differ, and deregistrations of services and checks under the
//! agent's node that the agent no longer has. `full_sync_interval_ms` scales the periodic full pass with
//! the cluster's size, as Consul does.

use super::local_state::LocalState;
use crate::catalog::{CatalogCommand, NodeCatalog, NodeSpec, RegisterRequest};
use crate::state::Command;

/// Nodes up to which the full sync runs at the base interval (Consul's `aeScaleThreshold`).
const SCALE_THRESHOLD_NODES: usize = 128;

/// Consul's `aeScale`: the base interval up to 128 nodes, then one more multiple for every doubling.
pub fn full_sync_interval_ms(base_ms: u64, node_count: usize) -> u64 {
    if node_count <= SCALE_THRESHOLD_NODES {
        return base_ms;
    }
    let doublings = ((node_count as f64).log2() - (SCALE_THRESHOLD_NODES as f64).log2()).ceil() as u64;
    base_ms * (doublings + 1)
}

/// Entries under the agent's node that anti-entropy leaves alone: those the agent maintains by other
/// means (its own registration: the `consul` service of a server, the `serfHealth` check).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reserved<'a> {
    pub service_ids: &'a [&'a str],
    pub check_ids: &'a [&'a str],
}

/// The registrations of the services in `service_ids` (`""` stands for the node's own checks) that
/// `catalog` does not hold as `local` has them: the cheap pass after a few checks changed.
pub fn sync_plan_for(
    local: &LocalState,
    catalog: &impl NodeCatalog,
    node: &NodeSpec,
    service_ids: &std::collections::BTreeSet<String>,
) -> Vec<Command> {
    local
        .sync_commands_for(node, Some(service_ids))
        .into_iter()
        .filter(|command| !in_catalog(catalog, command))
        .collect()
}

/// The commands that bring `catalog` in line with `local` for `node`. Empty when they agree, so a pass
/// over a synced agent writes nothing.
pub fn sync_plan(
    local: &LocalState,
    catalog: &impl NodeCatalog,
    node: &NodeSpec,
    reserved: Reserved<'_>,
) -> Vec<Command> {
    let mut plan: Vec<Command> =
        local.sync_commands(node).into_iter().filter(|command| !in_catalog(catalog, command)).collect();
    if catalog.node().is_none() {
        return plan;
    }
    for instance in catalog.instances() {
        if local.service(&instance.id).is_none() && !reserved.service_ids.contains(&instance.id.as_str()) {
            plan.push(LocalState::deregister_command(&node.node, Some(&instance.id), None));
        }
    }
    for check in catalog.checks() {
        let owned_by_dropped_service = !check.service_id.is_empty() && local.service(&check.service_id).is_none();
        if local.check(&check.check_id).is_none()
            && !owned_by_dropped_service
            && !reserved.check_ids.contains(&check.check_id.as_str())
        {
            plan.push(LocalState::deregister_command(&node.node, None, Some(&check.check_id)));
        }
    }
    plan
}

/// Whether applying `command` would change nothing in `catalog` (the entries of the command's node).
pub fn in_catalog(catalog: &impl NodeCatalog, command: &Command) -> bool {
    let Command::Catalog(CatalogCommand::Register(request)) = command else { return false };
    let node = &request.node;
    let Some(existing) = catalog.node() else { return false };
    if existing.node != node.node
        || existing.address != node.address
        || existing.id != node.id
        || existing.meta != node.meta
    {
        return false;
    }
    service_in_catalog(catalog, request) && checks_in_catalog(catalog, request)
}

fn service_in_catalog(catalog: &impl NodeCatalog, request: &RegisterRequest) -> bool {
    let Some(spec) = &request.service else { return true };
    let Some(instance) = catalog.instance(&spec.id) else { return false };
    instance.service == spec.service
        && instance.tags == spec.tags
        && instance.address == spec.address
        && instance.port == spec.port
        && instance.meta == spec.meta
        && instance.weights == spec.weights
        && instance.tagged_addresses == spec.tagged_addresses
        && instance.enable_tag_override == spec.enable_tag_override
        && instance.kind == spec.kind
}

fn checks_in_catalog(catalog: &impl NodeCatalog, request: &RegisterRequest) -> bool {
    request.checks.iter().all(|wanted| {
        catalog.check(&wanted.check_id).is_some_and(|c| {
            c.status == wanted.status
                && c.output == wanted.output
                && c.name == wanted.name
                && c.notes == wanted.notes
                && c.service_id == wanted.service_id
                && c.definition == wanted.definition
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::LocalCheck;
    use crate::catalog::{CheckSpec, CheckStatus, ServiceSpec};
    use crate::state::State;

    fn node() -> NodeSpec {
        NodeSpec { node: "n1".into(), address: "10.0.0.1".into(), ..NodeSpec::default() }
    }

    fn apply_all(catalog: &mut State, commands: &[Command]) {
        for command in commands {
            let index = catalog.last_index() + 1;
            catalog.apply(index, command);
        }
    }

    fn local_with_web() -> LocalState {
        let mut local = LocalState::new();
        let check = CheckSpec {
            check_id: "web-alive".into(),
            service_id: "web".into(),
            status: CheckStatus::Passing,
            ..CheckSpec::default()
        };
        let spec = ServiceSpec { id: "web".into(), service: "web".into(), port: 80, ..ServiceSpec::default() };
        local.register_service(spec, vec![LocalCheck::from(check)], "", false).unwrap();
        local
    }

    #[test]
    fn a_synced_agent_plans_nothing() {
        let local = local_with_web();
        let mut catalog = State::new();
        let plan = sync_plan(&local, &catalog.catalog().of_node("n1"), &node(), Reserved::default());
        assert_eq!(plan.len(), 1);
        apply_all(&mut catalog, &plan);
        assert!(sync_plan(&local, &catalog.catalog().of_node("n1"), &node(), Reserved::default()).is_empty());
    }

    #[test]
    fn a_changed_check_status_is_pushed_again() {
        let mut local = local_with_web();
        let mut catalog = State::new();
        let plan = sync_plan(&local, &catalog.catalog().of_node("n1"), &node(), Reserved::default());
        apply_all(&mut catalog, &plan);
        local.update_check("web-alive", CheckStatus::Critical, "down").unwrap();
        let plan = sync_plan(&local, &catalog.catalog().of_node("n1"), &node(), Reserved::default());
        assert_eq!(plan.len(), 1);
        apply_all(&mut catalog, &plan);
        assert_eq!(catalog.node_checks("n1")[0].status, CheckStatus::Critical);
    }

    #[test]
    fn entries_the_agent_does_not_hold_are_removed_except_reserved_ones() {
        let local = local_with_web();
        let mut catalog = State::new();
        let stray = Command::Catalog(CatalogCommand::Register(RegisterRequest {
            node: node(),
            skip_node_update: false,
            service: Some(ServiceSpec { id: "stray".into(), service: "stray".into(), ..ServiceSpec::default() }),
            checks: vec![
                CheckSpec { check_id: "serfHealth".into(), ..CheckSpec::default() },
                CheckSpec { check_id: "old-node-check".into(), ..CheckSpec::default() },
            ],
        }));
        apply_all(&mut catalog, &[stray]);
        let reserved = Reserved { service_ids: &["consul"], check_ids: &["serfHealth"] };
        let plan = sync_plan(&local, &catalog.catalog().of_node("n1"), &node(), reserved);
        apply_all(&mut catalog, &plan);
        let services: Vec<_> = catalog.node_services("n1").iter().map(|s| s.id.clone()).collect();
        assert_eq!(services, ["web"]);
        let mut checks: Vec<_> = catalog.node_checks("n1").iter().map(|c| c.check_id.clone()).collect();
        checks.sort();
        assert_eq!(checks, ["serfHealth", "web-alive"]);
        assert!(sync_plan(&local, &catalog.catalog().of_node("n1"), &node(), reserved).is_empty());
    }

    #[test]
    fn a_copy_of_the_node_entries_plans_the_removals_too() {
        let mut local = local_with_web();
        let mut catalog = State::new();
        let plan = sync_plan(&local, &catalog.catalog().node_entries("n1"), &node(), Reserved::default());
        apply_all(&mut catalog, &plan);
        assert!(local.deregister_service("web"));
        let copy = catalog.catalog().node_entries("n1");
        assert_eq!(copy.services.len(), 1);
        let plan = sync_plan(&local, &copy, &node(), Reserved::default());
        assert_eq!(plan, vec![LocalState::deregister_command("n1", Some("web"), None)]);
        apply_all(&mut catalog, &plan);
        assert!(catalog.node_services("n1").is_empty());
        assert!(catalog.node_checks("n1").is_empty());
        assert!(sync_plan(&local, &catalog.catalog().node_entries("n1"), &node(), Reserved::default()).is_empty());
    }

    #[test]
    fn full_sync_interval_grows_with_cluster_size() {
        assert_eq!(full_sync_interval_ms(60_000, 3), 60_000);
        assert_eq!(full_sync_interval_ms(60_000, 128), 60_000);
        assert_eq!(full_sync_interval_ms(60_000, 129), 120_000);
        assert_eq!(full_sync_interval_ms(60_000, 256), 120_000);
        assert_eq!(full_sync_interval_ms(60_000, 10_000), 60_000 * 8);
    }
}

//! Properties of the catalog over random command sequences: snapshot → restore gives the same state and
//! the same answers; the same commands give byte-identical snapshots; invariants hold after every step.

use conclave_core::catalog::*;
use conclave_core::codec;
use proptest::prelude::*;

const NODES: &[&str] = &["n1", "n2", "n3"];
const SERVICES: &[&str] = &["web", "db", "cache"];
const IDS: &[&str] = &["", "i1", "i2"];
const TAGS: &[&str] = &["a", "b", "c"];
const CHECKS: &[&str] = &["serfHealth", "c1", "c2"];

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(options).prop_map(str::to_string)
}

fn status() -> impl Strategy<Value = CheckStatus> {
    prop_oneof![Just(CheckStatus::Passing), Just(CheckStatus::Warning), Just(CheckStatus::Critical)]
}

fn command() -> impl Strategy<Value = Command> {
    let service = (pick(SERVICES), pick(IDS), prop::collection::vec(pick(TAGS), 0..3), 0u16..3)
        .prop_map(|(service, id, tags, port)| ServiceSpec { id, service, tags, port, ..ServiceSpec::default() });
    let check = (pick(CHECKS), prop_oneof![Just(String::new()), pick(&["i1", "web", "db"])], status())
        .prop_map(|(check_id, service_id, status)| CheckSpec { check_id, service_id, status, ..CheckSpec::default() });
    let register = (pick(NODES), prop::option::of(service), prop::collection::vec(check, 0..3), any::<bool>(), 0u8..2)
        .prop_map(|(node, service, checks, skip_node_update, address)| {
            Command::Register(RegisterRequest {
                node: NodeSpec { node, address: format!("10.0.0.{address}"), ..NodeSpec::default() },
                skip_node_update,
                service,
                checks,
            })
        });
    let deregister = (pick(NODES), prop::option::of(pick(&["i1", "i2", "web", "db"])), prop::option::of(pick(CHECKS)))
        .prop_map(|(node, service_id, check_id)| Command::Deregister(DeregisterRequest { node, service_id, check_id }));
    prop_oneof![4 => register, 2 => deregister, 1 => Just(Command::Noop)]
}

fn watch_keys() -> Vec<WatchKey> {
    let mut keys = vec![WatchKey::Nodes, WatchKey::Services, WatchKey::Checks];
    keys.extend(SERVICES.iter().map(|s| WatchKey::Service(s.to_string())));
    keys.extend(NODES.iter().map(|n| WatchKey::Node(n.to_string())));
    keys
}

/// Every answer the catalog gives, as text, for comparing two catalogs.
fn answers(catalog: &Catalog) -> Vec<String> {
    let mut out = vec![format!("{:?}", catalog.nodes()), format!("{:?}", catalog.services())];
    for service in SERVICES {
        out.push(format!("{:?}", catalog.service_instances(service)));
        out.push(format!("{:?}", catalog.service_health(service)));
        out.push(format!("{:?}", catalog.service_checks(service)));
    }
    for node in NODES {
        out.push(format!("{:?} {:?} {:?}", catalog.node(node), catalog.node_services(node), catalog.node_checks(node)));
    }
    for state in [None, Some(CheckStatus::Passing), Some(CheckStatus::Critical)] {
        out.push(format!("{:?}", catalog.checks_in_state(state)));
    }
    out.extend(watch_keys().iter().map(|k| format!("{k:?}={}", catalog.index_of(k))));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snapshot_restore_gives_same_state_and_answers(commands in prop::collection::vec(command(), 0..40)) {
        let mut catalog = Catalog::new();
        for (i, command) in commands.iter().enumerate() {
            catalog.apply(i as u64 + 1, command);
        }
        let restored = codec::decode_snapshot(&codec::encode_snapshot(&catalog)).expect("restore");
        prop_assert_eq!(&restored, &catalog);
        prop_assert_eq!(answers(&restored), answers(&catalog));
    }

    #[test]
    fn same_commands_give_byte_identical_snapshots(commands in prop::collection::vec(command(), 0..40)) {
        let mut first = Catalog::new();
        let mut second = Catalog::new();
        for (i, command) in commands.iter().enumerate() {
            first.apply(i as u64 + 1, command);
            second.apply(i as u64 + 1, command);
        }
        prop_assert_eq!(codec::encode_snapshot(&first), codec::encode_snapshot(&second));
    }

    #[test]
    fn invariants_hold_and_indexes_only_grow(commands in prop::collection::vec(command(), 0..60)) {
        let mut catalog = Catalog::new();
        let keys = watch_keys();
        let mut previous: Vec<u64> = keys.iter().map(|k| catalog.index_of(k)).collect();
        for (i, command) in commands.iter().enumerate() {
            let index = i as u64 + 1;
            catalog.apply(index, command);
            catalog.assert_invariants();
            prop_assert_eq!(catalog.last_index(), index);
            let now: Vec<u64> = keys.iter().map(|k| catalog.index_of(k)).collect();
            for (before, after) in previous.iter().zip(&now) {
                prop_assert!(after >= before && *after <= index);
            }
            previous = now;
        }
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode_snapshot(&bytes);
        let _ = codec::decode::<Command>(&bytes);
    }

    #[test]
    fn commands_round_trip_through_the_codec(command in command()) {
        prop_assert_eq!(codec::decode::<Command>(&codec::encode(&command)).unwrap(), command);
    }
}

//! Properties of the catalog over random command sequences: snapshot → restore gives the same state and
//! the same answers; the same commands give byte-identical snapshots; invariants hold after every step.

use conclave_core::catalog::CatalogCommand;
use conclave_core::catalog::*;
use conclave_core::codec;
use conclave_core::kv::txn::KvVerb;
use conclave_core::kv::SessionCommand;
use conclave_core::kv::{KvCommand, Session, SessionBehavior, TxnOp, TxnOutcome};
use conclave_core::state::*;
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
            Command::Catalog(CatalogCommand::Register(RegisterRequest {
                node: NodeSpec { node, address: format!("10.0.0.{address}"), ..NodeSpec::default() },
                skip_node_update,
                service,
                checks,
            }))
        });
    let deregister = (pick(NODES), prop::option::of(pick(&["i1", "i2", "web", "db"])), prop::option::of(pick(CHECKS)))
        .prop_map(|(node, service_id, check_id)| {
            Command::Catalog(CatalogCommand::Deregister(DeregisterRequest { node, service_id, check_id }))
        });
    prop_oneof![4 => register, 2 => deregister, 1 => Just(Command::Noop), 6 => kv_command(), 2 => session_command(), 2 => txn()]
}

const KEYS: &[&str] = &["a", "a/b", "b"];
const SESSIONS: &[&str] = &["s1", "s2"];

fn kv_command() -> impl Strategy<Value = Command> {
    let value = prop::collection::vec(any::<u8>(), 0..4);
    let set = (pick(KEYS), value.clone()).prop_map(|(key, value)| KvCommand::Set { key, value, flags: 0 });
    let cas = (pick(KEYS), value.clone(), 0u64..6).prop_map(|(key, value, index)| KvCommand::Cas {
        key,
        value,
        flags: 0,
        index,
    });
    let lock = (pick(KEYS), value.clone(), pick(SESSIONS)).prop_map(|(key, value, session)| KvCommand::Lock {
        key,
        value,
        flags: 0,
        session,
    });
    let unlock = (pick(KEYS), value, pick(SESSIONS)).prop_map(|(key, value, session)| KvCommand::Unlock {
        key,
        value,
        flags: 0,
        session,
    });
    let delete = prop_oneof![
        pick(KEYS).prop_map(|key| KvCommand::Delete { key }),
        pick(&["", "a", "a/"]).prop_map(|prefix| KvCommand::DeleteTree { prefix }),
        (pick(KEYS), 0u64..6).prop_map(|(key, index)| KvCommand::DeleteCas { key, index }),
    ];
    prop_oneof![3 => set, 2 => cas, 2 => lock, 1 => unlock, 1 => delete].prop_map(Command::Kv)
}

fn session_command() -> impl Strategy<Value = Command> {
    let create = (pick(SESSIONS), pick(NODES), prop::collection::vec(pick(CHECKS), 0..2), any::<bool>(), 0u64..3)
        .prop_map(|(id, node, node_checks, delete, lock_delay_s)| {
            let behavior = if delete { SessionBehavior::Delete } else { SessionBehavior::Release };
            let lock_delay_ns = lock_delay_s * 1_000_000_000;
            Command::Session(SessionCommand::Create(Session {
                id,
                node,
                node_checks,
                behavior,
                lock_delay_ns,
                ..Session::default()
            }))
        });
    prop_oneof![2 => create, 1 => pick(SESSIONS).prop_map(|id| Command::Session(SessionCommand::Destroy { id }))]
}

fn txn() -> impl Strategy<Value = Command> {
    let verb = prop::sample::select(vec![
        KvVerb::Set,
        KvVerb::Cas,
        KvVerb::Lock,
        KvVerb::Get,
        KvVerb::GetTree,
        KvVerb::CheckIndex,
        KvVerb::CheckNotExists,
        KvVerb::Delete,
        KvVerb::DeleteCas,
    ]);
    let op = (verb, pick(KEYS), 0u64..6, pick(SESSIONS)).prop_map(|(verb, key, index, session)| TxnOp::Kv {
        verb,
        key,
        value: b"t".to_vec(),
        flags: 0,
        index,
        session,
    });
    prop::collection::vec(op, 1..4).prop_map(Command::Txn)
}

fn apply_all(catalog: &mut State, commands: &[Command]) {
    for (i, command) in commands.iter().enumerate() {
        catalog.apply_at(i as u64 + 1, i as u64 * 700, command);
    }
}

fn watch_keys() -> Vec<WatchKey> {
    let mut keys = vec![WatchKey::Nodes, WatchKey::Services, WatchKey::Checks];
    keys.extend(SERVICES.iter().map(|s| WatchKey::Service(s.to_string())));
    keys.extend(NODES.iter().map(|n| WatchKey::Node(n.to_string())));
    keys
}

/// Every answer the catalog gives, as text, for comparing two catalogs.
fn answers(catalog: &State) -> Vec<String> {
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
    for prefix in ["", "a", "a/", "b"] {
        let index = catalog.index_of(&WatchKey::KvPrefix(prefix.into()));
        out.push(format!("{:?} {:?} {index}", catalog.kv().list(prefix), catalog.kv().keys(prefix, "/")));
    }
    out.push(format!("{:?} {}", catalog.sessions().all().collect::<Vec<_>>(), catalog.index_of(&WatchKey::Sessions)));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn snapshot_restore_gives_same_state_and_answers(commands in prop::collection::vec(command(), 0..40)) {
        let mut catalog = State::new();
        apply_all(&mut catalog, &commands);
        let restored = codec::decode_snapshot(&codec::encode_snapshot(&catalog)).expect("restore");
        prop_assert_eq!(&restored, &catalog);
        prop_assert_eq!(answers(&restored), answers(&catalog));
    }

    #[test]
    fn same_commands_give_byte_identical_snapshots(commands in prop::collection::vec(command(), 0..40)) {
        let mut first = State::new();
        let mut second = State::new();
        apply_all(&mut first, &commands);
        apply_all(&mut second, &commands);
        prop_assert_eq!(codec::encode_snapshot(&first), codec::encode_snapshot(&second));
    }

    #[test]
    fn invariants_hold_and_indexes_only_grow(commands in prop::collection::vec(command(), 0..60)) {
        let mut catalog = State::new();
        let keys = watch_keys();
        let mut previous: Vec<u64> = keys.iter().map(|k| catalog.index_of(k)).collect();
        for (i, command) in commands.iter().enumerate() {
            let index = i as u64 + 1;
            catalog.apply_at(index, index * 700, command);
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
    fn a_rolled_back_transaction_changes_nothing_but_the_index(
        commands in prop::collection::vec(command(), 0..30),
        ops in txn(),
    ) {
        let mut catalog = State::new();
        apply_all(&mut catalog, &commands);
        let before = catalog.clone();
        let index = commands.len() as u64 + 1;
        if let Response::Txn(TxnOutcome::RolledBack(errors)) = catalog.apply_at(index, index * 700, &ops) {
            prop_assert!(!errors.is_empty());
            prop_assert_eq!(answers(&catalog), answers(&before));
            prop_assert_eq!(catalog.sessions(), before.sessions());
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

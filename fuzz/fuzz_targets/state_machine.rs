//! A stateful target: the fuzzer's bytes choose a sequence of commands (registrations, deregistrations,
//! KV writes, sessions, transactions) from a small vocabulary of names, so they collide; each is applied
//! in order and the catalog's invariants must hold after every step: indexes only grow, every service's
//! node exists, no key is held by a dead session, and a snapshot restores to the same state.
#![no_main]

use conclave_core::catalog::*;
use conclave_core::codec;
use conclave_core::kv::txn::KvVerb;
use conclave_core::kv::SessionCommand;
use conclave_core::kv::{KvCommand, Session, SessionBehavior, TxnOp};
use conclave_core::state::*;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

const NODES: &[&str] = &["n1", "n2"];
const NAMES: &[&str] = &["web", "db"];
const CHECKS: &[&str] = &["serfHealth", "c1"];
const KEYS: &[&str] = &["a", "a/b", "b"];
const SESSIONS: &[&str] = &["s1", "s2"];

fn pick(u: &mut Unstructured, from: &[&str]) -> Result<String> {
    Ok(u.choose(from)?.to_string())
}

fn status(u: &mut Unstructured) -> Result<CheckStatus> {
    Ok(*u.choose(&[CheckStatus::Passing, CheckStatus::Warning, CheckStatus::Critical])?)
}

fn command(u: &mut Unstructured) -> Result<Command> {
    Ok(match u.int_in_range(0..=8)? {
        0 | 1 => {
            let service = if u.arbitrary()? {
                Some(ServiceSpec {
                    id: pick(u, NAMES)?,
                    service: pick(u, NAMES)?,
                    port: u.arbitrary()?,
                    ..Default::default()
                })
            } else {
                None
            };
            let check = CheckSpec { check_id: pick(u, CHECKS)?, status: status(u)?, ..Default::default() };
            Command::Catalog(CatalogCommand::Register(RegisterRequest {
                node: NodeSpec { node: pick(u, NODES)?, address: "10.0.0.1".into(), ..Default::default() },
                skip_node_update: u.arbitrary()?,
                service,
                checks: if u.arbitrary()? { vec![check] } else { vec![] },
            }))
        }
        2 => Command::Catalog(CatalogCommand::Deregister(DeregisterRequest {
            node: pick(u, NODES)?,
            service_id: if u.arbitrary()? { Some(pick(u, NAMES)?) } else { None },
            check_id: if u.arbitrary()? { Some(pick(u, CHECKS)?) } else { None },
        })),
        3 | 4 => {
            let (key, value, flags) = (pick(u, KEYS)?, u.arbitrary::<Vec<u8>>()?, u.arbitrary()?);
            Command::Kv(match u.int_in_range(0..=5)? {
                0 => KvCommand::Set { key, value, flags },
                1 => KvCommand::Cas { key, value, flags, index: u.int_in_range(0..=20)? },
                2 => KvCommand::Lock { key, value, flags, session: pick(u, SESSIONS)? },
                3 => KvCommand::Unlock { key, value, flags, session: pick(u, SESSIONS)? },
                4 => KvCommand::DeleteTree { prefix: key },
                _ => KvCommand::DeleteCas { key, index: u.int_in_range(0..=20)? },
            })
        }
        5 => Command::Session(SessionCommand::Create(Session {
            id: pick(u, SESSIONS)?,
            node: pick(u, NODES)?,
            node_checks: if u.arbitrary()? { vec![pick(u, CHECKS)?] } else { vec![] },
            behavior: if u.arbitrary()? { SessionBehavior::Delete } else { SessionBehavior::Release },
            lock_delay_ns: u.int_in_range(0..=3)? * 1_000_000_000,
            ..Default::default()
        })),
        6 => Command::Session(SessionCommand::Destroy { id: pick(u, SESSIONS)? }),
        8 => Command::ReapTombstones { deleted_before_ms: u.int_in_range(0..=40_000u64)? },
        _ => {
            let verbs = [KvVerb::Set, KvVerb::Cas, KvVerb::Lock, KvVerb::Get, KvVerb::CheckIndex, KvVerb::Delete];
            let mut ops = Vec::new();
            for _ in 0..u.int_in_range(1..=4)? {
                ops.push(TxnOp::Kv {
                    verb: *u.choose(&verbs)?,
                    key: pick(u, KEYS)?,
                    value: b"t".to_vec(),
                    flags: 0,
                    index: u.int_in_range(0..=20)?,
                    session: pick(u, SESSIONS)?,
                });
            }
            Command::Txn(ops)
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut catalog = State::new();
    let watched = [WatchKey::Nodes, WatchKey::Services, WatchKey::Checks, WatchKey::Kv, WatchKey::Sessions];
    let mut previous: Vec<u64> = watched.iter().map(|k| catalog.index_of(k)).collect();
    let mut index = 0u64;
    while let Ok(command) = command(&mut u) {
        index += 1;
        let at_ms = index * u.int_in_range(0..=2000u64).unwrap_or(0);
        catalog.apply_at(index, at_ms, &command);
        catalog.assert_invariants();
        let now: Vec<u64> = watched.iter().map(|k| catalog.index_of(k)).collect();
        for (before, after) in previous.iter().zip(&now) {
            assert!(after >= before && *after <= index, "index went back or ahead: {before} → {after} at {index}");
        }
        previous = now;
        if u.is_empty() {
            break;
        }
    }
    let restored = codec::decode_snapshot(&codec::encode_snapshot(&catalog)).expect("snapshot restores");
    assert_eq!(restored, catalog);
});

//! The contract of `?stale` reads, weaker than linearizability: a stale read may be old, but never
//! from the future (a value nobody had tried to write yet), and one server never goes back in time on
//! one key for one client within one incarnation (its `X-Consul-Index` does not decrease). A server restarted from
//! its disk may legitimately answer from an older state until it catches up, as Consul's servers do.

use std::collections::BTreeMap;

use super::{describe, ClientId, History, Op, OpKind, Outcome, ReadMode, ServerId, Violation};

fn incarnation(history: &History, server: ServerId, at_us: u64) -> usize {
    history.restarts.iter().filter(|(s, t)| *s == server && *t <= at_us).count()
}

pub fn check(history: &History) -> Result<(), Violation> {
    let stale_reads: Vec<&Op> =
        history.ops.iter().filter(|op| matches!(op.kind, OpKind::Read { mode: ReadMode::Stale })).collect();
    for read in &stale_reads {
        let Outcome::ReadOk { value: Some(value), .. } = &read.outcome else {
            continue;
        };
        let written = history.ops.iter().any(|op| {
            op.key == read.key
                && op.outcome != Outcome::Failed
                && op.invoke_us <= read.complete_us
                && op.written_value() == Some(value.as_str())
        });
        if !written {
            return Err(Violation {
                check: "stale read",
                key: read.key.clone(),
                what: format!("value from the future: {}", describe(read)),
            });
        }
    }
    // Per key: a KV key's index is its own modify index, so indexes of different keys do not compare.
    let mut last_seen: BTreeMap<(&str, ClientId, ServerId, usize), (u64, &Op)> = BTreeMap::new();
    let mut ordered = stale_reads;
    ordered.sort_by_key(|op| (op.invoke_us, op.complete_us));
    for read in ordered {
        let Outcome::ReadOk { index, .. } = read.outcome else {
            continue;
        };
        let slot = (read.key.as_str(), read.client, read.server, incarnation(history, read.server, read.invoke_us));
        if let Some((previous, earlier)) = last_seen.get(&slot) {
            if index < *previous && earlier.complete_us < read.invoke_us {
                return Err(Violation {
                    check: "stale read",
                    key: read.key.clone(),
                    what: format!("server went back in time: {} after {}", describe(read), describe(earlier)),
                });
            }
        }
        if last_seen.get(&slot).is_none_or(|(previous, _)| index >= *previous) {
            last_seen.insert(slot, (index, read));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{check, History, Op, OpKind, Outcome, ReadMode};

    fn stale(client: u32, value: Option<&str>, index: u64, at: u64) -> Op {
        Op {
            client,
            server: 1,
            key: "k".into(),
            kind: OpKind::Read { mode: ReadMode::Stale },
            invoke_us: at,
            complete_us: at + 1,
            outcome: Outcome::ReadOk { value: value.map(String::from), index },
        }
    }

    fn register(value: &str, at: u64) -> Op {
        Op {
            client: 9,
            server: 0,
            key: "k".into(),
            kind: OpKind::Register { value: value.into() },
            invoke_us: at,
            complete_us: at + 1,
            outcome: Outcome::WriteOk,
        }
    }

    #[test]
    fn stale_read_of_an_old_value_passes() {
        let h = History {
            ops: vec![register("a", 0), register("b", 10), stale(0, Some("a"), 3, 20)],
            ..History::default()
        };
        assert!(check(&h).is_ok());
    }

    #[test]
    fn stale_read_from_the_future_fails() {
        let h = History { ops: vec![stale(0, Some("a"), 3, 0), register("a", 10)], ..History::default() };
        assert_eq!(check(&h).unwrap_err().check, "stale read");
    }

    #[test]
    fn stale_read_going_back_on_one_server_fails_unless_it_restarted() {
        let ops = vec![register("a", 0), stale(0, Some("a"), 5, 10), stale(0, None, 3, 20)];
        let h = History { ops: ops.clone(), ..History::default() };
        assert_eq!(check(&h).unwrap_err().check, "stale read");
        let restarted = History { ops, restarts: vec![(1, 15)], ..History::default() };
        assert!(check(&restarted).is_ok());
    }
}

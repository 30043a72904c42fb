//! Linearizability of one key's history against a register model (the instance is absent or holds one
//! value), by depth-first search over linearization orders with memoisation of (operations linearized,
//! model state) — Wing & Gong's algorithm with Lowe's cache, as Porcupine implements it.
//!
//! Operations with an unknown outcome may take effect at any time after their invoke, or never: they are
//! optional and never constrain real-time order. An unknown registration whose value no linearizable read
//! saw is dropped before the search: values are unique per write, so its effect (holding that value) can
//! explain no read, and leaving it out is always one of its allowed outcomes.

use std::collections::{BTreeMap, HashSet};

use super::{describe, Op, OpKind, Outcome, Violation};

/// Bound on search states per key; past it the search gives up, and a search that gives up fails the
/// run (an unchecked key proves nothing), naming the key and the size of its history.
pub const STATES_EXPLORED_MAX: u64 = 2_000_000;

pub struct KeyOutcome {
    pub linearized_ops: usize,
    pub states_explored: u64,
}

/// Model state: `None` = absent, `Some(id)` = holds the value with that id.
type State = Option<u32>;

#[derive(Clone, Copy)]
enum Effect {
    Set(State),
    Expect(State),
    /// Requires the state `from`, then sets `to` (a CAS that succeeded, or an unknown one that did).
    Cas {
        from: State,
        to: State,
    },
    /// Requires a state other than `from` (a CAS that was refused); changes nothing.
    CasRefused {
        from: State,
    },
}

struct Entry<'a> {
    invoke_us: u64,
    /// `u64::MAX` for optional (unknown-outcome) operations.
    complete_us: u64,
    optional: bool,
    effect: Effect,
    op: &'a Op,
}

struct Search<'a> {
    entries: Vec<Entry<'a>>,
    failed: HashSet<(Vec<u64>, State)>,
    states_explored: u64,
    states_max: u64,
    gave_up: bool,
    /// Deepest prefix reached, to explain a failure.
    best_prefix: usize,
}

impl Search<'_> {
    fn run(&mut self, done: &mut Vec<u64>, done_count: usize, required_left: usize, state: State) -> bool {
        if required_left == 0 {
            return true;
        }
        if self.gave_up {
            return false;
        }
        self.states_explored += 1;
        if self.states_explored > self.states_max {
            self.gave_up = true;
            return false;
        }
        if !self.failed.insert((done.clone(), state)) {
            return false;
        }
        self.best_prefix = self.best_prefix.max(done_count);
        let is_done = |done: &Vec<u64>, i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        let horizon = self
            .entries
            .iter()
            .enumerate()
            .filter(|(i, e)| !e.optional && !is_done(done, *i))
            .map(|(_, e)| e.complete_us)
            .min()
            .unwrap_or(u64::MAX);
        for i in 0..self.entries.len() {
            let entry = &self.entries[i];
            if entry.invoke_us > horizon {
                break; // entries are sorted by invoke time
            }
            if is_done(done, i) {
                continue;
            }
            let next = match entry.effect {
                Effect::Set(value) => value,
                Effect::Expect(value) if value == state => state,
                Effect::Cas { from, to } if from == state => to,
                Effect::CasRefused { from } if from != state => state,
                Effect::Expect(_) | Effect::Cas { .. } | Effect::CasRefused { .. } => continue,
            };
            let required = usize::from(!entry.optional);
            done[i / 64] |= 1 << (i % 64);
            let found = self.run(done, done_count + 1, required_left - required, next);
            done[i / 64] &= !(1 << (i % 64));
            if found {
                return true;
            }
        }
        false
    }
}

pub fn check_key(key: &str, ops: &[&Op]) -> Result<KeyOutcome, Violation> {
    check_key_within(key, ops, STATES_EXPLORED_MAX)
}

/// `check_key` with a bound of `states_max` search states.
fn check_key_within(key: &str, ops: &[&Op], states_max: u64) -> Result<KeyOutcome, Violation> {
    let observed: std::collections::BTreeSet<&str> =
        ops.iter().filter(|op| op.is_linearizable_read()).filter_map(|op| op.read_value()?.as_deref()).collect();
    let mut value_ids: BTreeMap<String, u32> = BTreeMap::new();
    fn id_of(value: &str, ids: &mut BTreeMap<String, u32>) -> u32 {
        let next = ids.len() as u32;
        *ids.entry(value.to_string()).or_insert(next)
    }
    let mut entries = Vec::new();
    for op in ops {
        let (optional, effect) = match (&op.kind, &op.outcome) {
            (_, Outcome::Failed) => continue,
            (OpKind::Register { value }, Outcome::Unknown) if !observed.contains(value.as_str()) => continue,
            (OpKind::Register { value }, outcome) => {
                (*outcome == Outcome::Unknown, Effect::Set(Some(id_of(value, &mut value_ids))))
            }
            (OpKind::Deregister, outcome) => (*outcome == Outcome::Unknown, Effect::Set(None)),
            (OpKind::Cas { value, .. }, Outcome::Unknown) if !observed.contains(value.as_str()) => continue,
            (OpKind::Cas { expected, .. }, Outcome::CasRefused) => {
                (false, Effect::CasRefused { from: expected.as_deref().map(|v| id_of(v, &mut value_ids)) })
            }
            (OpKind::Cas { expected, value }, outcome) => {
                let from = expected.as_deref().map(|v| id_of(v, &mut value_ids));
                (*outcome == Outcome::Unknown, Effect::Cas { from, to: Some(id_of(value, &mut value_ids)) })
            }
            (OpKind::Read { .. }, Outcome::ReadOk { value, .. }) if op.is_linearizable_read() => {
                (false, Effect::Expect(value.as_deref().map(|v| id_of(v, &mut value_ids))))
            }
            (OpKind::Read { .. }, _) => continue,
        };
        if matches!(effect, Effect::Set(_) | Effect::Cas { .. }) && !optional && op.outcome != Outcome::WriteOk {
            continue;
        }
        let complete_us = if optional { u64::MAX } else { op.complete_us };
        entries.push(Entry { invoke_us: op.invoke_us, complete_us, optional, effect, op });
    }
    entries.sort_by_key(|e| (e.invoke_us, e.complete_us));
    let required = entries.iter().filter(|e| !e.optional).count();
    let mut search =
        Search { entries, failed: HashSet::new(), states_explored: 0, states_max, gave_up: false, best_prefix: 0 };
    let mut done = vec![0u64; search.entries.len().div_ceil(64).max(1)];
    let ok = search.run(&mut done, 0, required, None);
    if search.gave_up {
        let optional = search.entries.len() - required;
        return Err(Violation {
            check: "linearizability",
            key: key.to_string(),
            what: format!(
                "inconclusive: the search gave up after {} states on a history of {} operations ({required} \
                 acknowledged, {optional} of unknown outcome); the key is unchecked",
                search.states_explored,
                ops.len()
            ),
        });
    }
    if ok {
        return Ok(KeyOutcome { linearized_ops: required, states_explored: search.states_explored });
    }
    // Name the first operation that no order could place, for the report.
    let stuck = search.entries.iter().filter(|e| !e.optional).nth(search.best_prefix.min(required.saturating_sub(1)));
    let near = stuck.map(|e| describe(e.op)).unwrap_or_default();
    Err(Violation {
        check: "linearizability",
        key: key.to_string(),
        what: format!(
            "no linearization of {required} operations exists (search got {} deep; near: {near})",
            search.best_prefix
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{check, History, Op, OpKind, Outcome, ReadMode};

    fn op(client: u32, kind: OpKind, invoke_us: u64, complete_us: u64, outcome: Outcome) -> Op {
        Op { client, server: 0, key: "k".into(), kind, invoke_us, complete_us, outcome }
    }

    fn reg(client: u32, value: &str, from: u64, to: u64, outcome: Outcome) -> Op {
        op(client, OpKind::Register { value: value.into() }, from, to, outcome)
    }

    fn read(client: u32, value: Option<&str>, from: u64, to: u64) -> Op {
        op(
            client,
            OpKind::Read { mode: ReadMode::Consistent },
            from,
            to,
            Outcome::ReadOk { value: value.map(String::from), index: 1 },
        )
    }

    fn history(ops: Vec<Op>) -> History {
        History { ops, ..History::default() }
    }

    #[test]
    fn sequential_history_passes() {
        let h = history(vec![
            read(0, None, 0, 1),
            reg(0, "a", 2, 3, Outcome::WriteOk),
            read(1, Some("a"), 4, 5),
            op(0, OpKind::Deregister, 6, 7, Outcome::WriteOk),
            read(1, None, 8, 9),
        ]);
        assert!(check(&h).is_ok());
    }

    #[test]
    fn concurrent_writes_may_be_seen_in_either_order() {
        for seen in ["a", "b"] {
            let h = history(vec![
                reg(0, "a", 0, 10, Outcome::WriteOk),
                reg(1, "b", 0, 10, Outcome::WriteOk),
                read(2, Some(seen), 11, 12),
            ]);
            assert!(check(&h).is_ok(), "{seen}");
        }
    }

    #[test]
    fn read_of_a_value_before_its_write_fails() {
        let h = history(vec![read(1, Some("a"), 0, 1), reg(0, "a", 2, 3, Outcome::WriteOk)]);
        assert_eq!(check(&h).unwrap_err().check, "linearizability");
    }

    #[test]
    fn stale_linearizable_read_fails() {
        let h = history(vec![
            reg(0, "a", 0, 1, Outcome::WriteOk),
            reg(0, "b", 2, 3, Outcome::WriteOk),
            read(1, Some("b"), 4, 5),
            read(1, Some("a"), 6, 7),
        ]);
        // "b" was acknowledged and then not seen: the durability check names it first.
        assert!(check(&h).is_err());
        let without_durability_case = history(vec![
            reg(0, "a", 0, 1, Outcome::WriteOk),
            read(1, Some("a"), 2, 3),
            reg(0, "b", 4, 10, Outcome::WriteOk),
            read(1, Some("b"), 5, 6),
            read(2, Some("a"), 7, 8),
        ]);
        assert_eq!(check(&without_durability_case).unwrap_err().check, "linearizability");
    }

    #[test]
    fn lost_acknowledged_registration_is_reported_as_such() {
        let h = history(vec![reg(0, "a", 0, 1, Outcome::WriteOk), read(1, None, 5, 6)]);
        let violation = check(&h).unwrap_err();
        assert_eq!(violation.check, "durability");
        assert!(violation.what.contains("acknowledged write lost"));
    }

    #[test]
    fn unknown_write_observed_later_passes_and_unobserved_is_ignored() {
        let observed = history(vec![reg(0, "a", 0, 1, Outcome::Unknown), read(1, Some("a"), 50, 51)]);
        assert!(check(&observed).is_ok());
        let unobserved = history(vec![reg(0, "a", 0, 1, Outcome::Unknown), read(1, None, 50, 51)]);
        assert!(check(&unobserved).is_ok());
    }

    #[test]
    fn unknown_deregister_may_explain_an_absent_read() {
        let h = history(vec![
            reg(0, "a", 0, 1, Outcome::WriteOk),
            op(1, OpKind::Deregister, 2, 3, Outcome::Unknown),
            read(2, Some("a"), 4, 5),
            read(2, None, 6, 7),
        ]);
        assert!(check(&h).is_ok());
    }

    fn cas(client: u32, expected: Option<&str>, value: &str, from: u64, to: u64, outcome: Outcome) -> Op {
        op(client, OpKind::Cas { expected: expected.map(String::from), value: value.into() }, from, to, outcome)
    }

    #[test]
    fn cas_chain_passes_and_a_lost_update_fails() {
        let chain = history(vec![
            cas(0, None, "1", 0, 5, Outcome::WriteOk),
            cas(1, None, "1b", 1, 6, Outcome::CasRefused),
            cas(1, Some("1"), "2", 7, 9, Outcome::WriteOk),
            read(2, Some("2"), 10, 11),
        ]);
        assert!(check(&chain).is_ok());
        // Two CAS from the same value both acknowledged: one update was lost.
        let lost = history(vec![
            cas(0, Some("1"), "2a", 0, 5, Outcome::WriteOk),
            cas(1, Some("1"), "2b", 0, 5, Outcome::WriteOk),
            read(2, Some("2b"), 10, 11),
        ]);
        assert!(check(&history(vec![cas(9, None, "1", 0, 0, Outcome::WriteOk)])).is_ok());
        let mut with_base = lost.ops.clone();
        with_base.insert(0, cas(9, None, "1", 0, 0, Outcome::WriteOk));
        assert!(check(&history(with_base)).is_err(), "a lost update is not linearizable");
        // A refused CAS whose condition held at every possible point is a violation too.
        let wrongly_refused = history(vec![cas(0, None, "1", 0, 1, Outcome::CasRefused), read(1, None, 2, 3)]);
        assert!(check(&wrongly_refused).is_err());
    }

    #[test]
    fn failed_writes_never_take_effect() {
        let h = history(vec![reg(0, "a", 0, 1, Outcome::Failed), read(1, Some("a"), 2, 3)]);
        assert!(check(&h).is_err());
    }

    /// A tiny deterministic generator (xorshift) so the test needs no rand crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    /// Simulates a real register: each op takes effect at a random point inside its interval.
    fn random_linearizable_history(ops: usize, clients: u32, span_us: u64, seed: u64) -> History {
        let mut rng = XorShift(seed);
        let mut events = Vec::new();
        for i in 0..ops {
            let client = (i as u32) % clients;
            let invoke = rng.next(span_us);
            let effect = invoke + 1 + rng.next(300);
            let complete = effect + 1 + rng.next(300);
            events.push((effect, invoke, complete, client, rng.next(10), i));
        }
        events.sort();
        let mut state: Option<String> = None;
        let mut h = History::default();
        for (_, invoke, complete, client, dice, i) in events {
            let o = if dice < 4 {
                let value = format!("v{i}");
                state = Some(value.clone());
                reg(client, &value, invoke, complete, Outcome::WriteOk)
            } else if dice < 5 {
                state = None;
                op(client, OpKind::Deregister, invoke, complete, Outcome::WriteOk)
            } else {
                read(client, state.as_deref(), invoke, complete)
            };
            h.push(o);
        }
        h
    }

    #[test]
    fn random_linearizable_history_passes_and_corrupted_one_fails() {
        for seed in 1..20 {
            let h = random_linearizable_history(200, 8, 10_000, seed * 7919);
            check(&h).unwrap_or_else(|v| panic!("seed {seed}: {v}"));
            let mut corrupted = h.clone();
            let victim = corrupted
                .ops
                .iter()
                .rposition(|o| o.is_linearizable_read() && o.read_value().unwrap().is_some())
                .unwrap();
            corrupted.ops[victim].outcome = Outcome::ReadOk { value: Some("never-written".into()), index: 1 };
            assert!(check(&corrupted).is_err(), "seed {seed}: corruption not caught");
        }
    }

    #[test]
    fn a_search_that_gives_up_fails_and_names_the_key_and_history_size() {
        let h = random_linearizable_history(200, 8, 10_000, 7919);
        let ops: Vec<&Op> = h.ops.iter().collect();
        let key = ops[0].key.clone();
        assert!(super::check_key_within(&key, &ops, u64::MAX).is_ok());
        let violation = super::check_key_within(&key, &ops, 3).err().expect("a search cut short is not a pass");
        assert_eq!(violation.key, key);
        assert!(
            violation.what.contains("inconclusive") && violation.what.contains("200 operations"),
            "{}",
            violation.what
        );
    }

    #[test]
    fn heavy_overlap_checks_quickly() {
        let started = std::time::Instant::now();
        // 8 clients × 60 operations, about as concurrent as the simulator's clients are.
        let h = random_linearizable_history(480, 8, 150_000, 42);
        let report = check(&h).unwrap();
        eprintln!("480 ops: {} states in {:?}", report.states_explored, started.elapsed());
    }
}

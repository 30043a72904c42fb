//! Membership against what the faults did, for the gossip scenarios. Each check is a safety part (what
//! must never be seen) and a liveness part (what must be seen within a bound after the fault or the heal),
//! and each refuses a run that observed too little to prove anything:
//! - `partition_heal`: during a LAN split every node eventually reports every node of the other side
//!   `failed`; after the heal every node reports every member `alive` within the bound, and stays so;
//! - `node_crash`: a crashed client agent's `serfHealth` is critical on the servers and its service is not
//!   `?passing` from a bound after the crash until its restart; from a bound after the restart both pass;
//! - `leave`: a server that left gracefully is `left` (never `failed`) on every other node, the others
//!   report two Raft peers, writes are acknowledged while it is gone, and after its restart a consistent
//!   read succeeds;
//! - `bootstrap`: never two leaders in one term, never two different non-empty voter sets (one cluster),
//!   and every server ends up reporting the same leader and all the peers.

use std::collections::{BTreeMap, BTreeSet};

use super::history::{History, MembersObservation, Outcome, StatusObservation};
use super::Violation;

/// serf's status codes as `/v1/agent/members` shows them.
pub const ALIVE: u8 = 1;
pub const LEFT: u8 = 3;
pub const FAILED: u8 = 4;

/// What a membership check measured: named figures in simulated microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MembershipReport {
    pub observations: usize,
    pub figures: Vec<(String, u64)>,
}

impl MembershipReport {
    fn figure(&mut self, name: &str, us: u64) {
        self.figures.push((name.to_string(), us));
    }
}

fn violation(key: &str, what: String) -> Violation {
    Violation { check: "membership", key: key.to_string(), what }
}

fn status_of(observation: &MembersObservation, name: &str) -> Option<u8> {
    observation.members.iter().find(|(n, _)| n == name).map(|&(_, s)| s)
}

fn all_alive(observation: &MembersObservation, names: &[String]) -> bool {
    names.iter().all(|n| status_of(observation, n) == Some(ALIVE))
}

fn describe(observation: &MembersObservation) -> String {
    let members: Vec<String> = observation.members.iter().map(|(n, s)| format!("{n}={s}")).collect();
    format!(
        "{} at {}us..{}us: [{}]",
        observation.node,
        observation.invoke_us,
        observation.complete_us,
        members.join(" ")
    )
}

/// A LAN split: the two sides, when it began and when it healed.
#[derive(Clone, Debug)]
pub struct Split {
    pub sides: [Vec<String>; 2],
    pub from_us: u64,
    pub heal_us: u64,
}

/// The partition-heal check. `bound_us`: how long after the heal every member must be alive everywhere.
pub fn partition_heal(history: &History, split: &Split, bound_us: u64) -> Result<MembershipReport, Violation> {
    let mut report = MembershipReport { observations: history.members.len(), ..MembershipReport::default() };
    let everyone: Vec<String> = split.sides.iter().flatten().cloned().collect();
    let mut detect_max = 0;
    let mut converge_max = 0;
    for (side, others) in [(&split.sides[0], &split.sides[1]), (&split.sides[1], &split.sides[0])] {
        for node in side {
            let mine: Vec<&MembersObservation> = history.members.iter().filter(|o| &o.node == node).collect();
            // Before the split it must have known everyone, or the split proves nothing.
            if !mine.iter().any(|o| o.complete_us <= split.from_us && all_alive(o, &everyone)) {
                return Err(violation(node, "never reported every member alive before the split".to_string()));
            }
            let detected = mine.iter().find(|o| {
                o.invoke_us >= split.from_us
                    && o.complete_us <= split.heal_us
                    && others.iter().all(|n| status_of(o, n) == Some(FAILED))
            });
            let Some(detected) = detected else {
                let last = mine.iter().rfind(|o| o.complete_us <= split.heal_us).map(|o| describe(o));
                return Err(violation(
                    node,
                    format!(
                        "never reported all of {others:?} failed during the split ({}us..{}us); last answer: {}",
                        split.from_us,
                        split.heal_us,
                        last.unwrap_or_else(|| "none".to_string())
                    ),
                ));
            };
            detect_max = detect_max.max(detected.complete_us - split.from_us);
            // Converged: the first answer after the heal from which on every answer has everyone alive.
            let after: Vec<&&MembersObservation> = mine.iter().filter(|o| o.invoke_us >= split.heal_us).collect();
            let last_bad = after.iter().rposition(|o| !all_alive(o, &everyone));
            let converged = match last_bad {
                None => after.first(),
                Some(i) => after.get(i + 1),
            };
            let Some(converged) = converged else {
                let last = after.last().map(|o| describe(o)).unwrap_or_else(|| "no answer after the heal".to_string());
                return Err(violation(node, format!("not every member alive after the heal; last: {last}")));
            };
            let took = converged.complete_us - split.heal_us;
            if took > bound_us {
                let bad = describe(after[last_bad.expect("converged late, so something was bad")]);
                return Err(violation(
                    node,
                    format!("every member alive only {took}us after the heal (bound {bound_us}us); still saw {bad}"),
                ));
            }
            converge_max = converge_max.max(took);
        }
    }
    report.figure("split detected everywhere", detect_max);
    report.figure("heal converged everywhere", converge_max);
    Ok(report)
}

/// A crash of one node and its restart.
#[derive(Clone, Debug)]
pub struct Crash {
    pub node: String,
    pub crash_us: u64,
    pub restart_us: u64,
}

/// The client-crash check. `detect_bound_us`: how long after the crash the servers must report the node
/// critical; `return_bound_us`: how long after the restart it must pass again.
pub fn node_crash(
    history: &History,
    crash: &Crash,
    detect_bound_us: u64,
    return_bound_us: u64,
) -> Result<MembershipReport, Violation> {
    let mut report = MembershipReport { observations: history.node_health.len(), ..MembershipReport::default() };
    let healthy = |o: &&super::NodeHealthObservation| o.serf_health.as_deref() == Some("passing") && o.service_passing;
    let answers = &history.node_health;
    if !answers.iter().filter(|o| o.complete_us <= crash.crash_us).any(|o| healthy(&o)) {
        return Err(violation(&crash.node, "its service never passed before the crash; the run proves nothing".into()));
    }
    let down_from = crash.crash_us + detect_bound_us;
    let mut judged_down = 0;
    for o in answers.iter().filter(|o| o.invoke_us >= down_from && o.complete_us <= crash.restart_us) {
        judged_down += 1;
        if o.serf_health.as_deref() != Some("critical") || o.service_passing {
            return Err(violation(
                &crash.node,
                format!(
                    "server {} said serfHealth {:?}, service passing {} at {}us, {}us after the crash (bound {detect_bound_us}us)",
                    o.server,
                    o.serf_health,
                    o.service_passing,
                    o.invoke_us,
                    o.invoke_us - crash.crash_us
                ),
            ));
        }
    }
    if judged_down == 0 {
        return Err(violation(&crash.node, "no answer between the detection bound and the restart".into()));
    }
    let up_from = crash.restart_us + return_bound_us;
    let mut judged_up = 0;
    for o in answers.iter().filter(|o| o.invoke_us >= up_from) {
        judged_up += 1;
        if !healthy(&o) {
            return Err(violation(
                &crash.node,
                format!(
                    "server {} said serfHealth {:?}, service passing {} at {}us, {}us after the restart (bound {return_bound_us}us)",
                    o.server,
                    o.serf_health,
                    o.service_passing,
                    o.invoke_us,
                    o.invoke_us - crash.restart_us
                ),
            ));
        }
    }
    if judged_up == 0 {
        return Err(violation(&crash.node, "no answer after the return bound".into()));
    }
    let critical =
        |o: &&super::NodeHealthObservation| o.serf_health.as_deref() == Some("critical") && !o.service_passing;
    let in_crash = answers.iter().filter(|o| o.invoke_us >= crash.crash_us && o.complete_us <= crash.restart_us);
    if let Some(first) = in_crash.clone().find(|o| critical(o)) {
        report.figure("crash detected", first.complete_us - crash.crash_us);
    }
    let after: Vec<_> = answers.iter().filter(|o| o.invoke_us >= crash.restart_us).collect();
    let last_bad = after.iter().rposition(|o| !healthy(o));
    if let Some(back) = match last_bad {
        None => after.first(),
        Some(i) => after.get(i + 1),
    } {
        report.figure("passing again", back.complete_us - crash.restart_us);
    }
    Ok(report)
}

/// A graceful leave of one server and its restart on its data dir.
#[derive(Clone, Debug)]
pub struct Leave {
    pub node: String,
    /// The other servers.
    pub others: Vec<String>,
    /// When the leave was requested (the agent answers once its leave has propagated).
    pub leave_us: u64,
    pub restart_us: u64,
}

/// The server-leave check. `bound_us`: how long after the leave request the others must show it `left`
/// and two peers.
pub fn leave(history: &History, leave: &Leave, bound_us: u64) -> Result<MembershipReport, Violation> {
    let mut report =
        MembershipReport { observations: history.members.len() + history.status.len(), ..MembershipReport::default() };
    let gone = |at_us: u64| at_us >= leave.leave_us && at_us < leave.restart_us;
    let settled = |at_us: u64| at_us >= leave.leave_us + bound_us && at_us < leave.restart_us;
    let mut shown_left = BTreeSet::new();
    let mut left_after = 0;
    for o in history.members.iter().filter(|o| leave.others.contains(&o.node) && gone(o.invoke_us)) {
        let status = status_of(o, &leave.node);
        if status == Some(FAILED) {
            return Err(violation(&leave.node, format!("a graceful leave shown as failed: {}", describe(o))));
        }
        if settled(o.invoke_us) && status != Some(LEFT) {
            return Err(violation(
                &leave.node,
                format!("not shown left {bound_us}us after its leave: {}", describe(o)),
            ));
        }
        if status == Some(LEFT) && shown_left.insert(o.node.clone()) {
            left_after = u64::max(left_after, o.complete_us - leave.leave_us);
        }
    }
    if shown_left.len() != leave.others.len() {
        return Err(violation(&leave.node, format!("shown left only by {shown_left:?} of {:?}", leave.others)));
    }
    report.figure("shown left everywhere", left_after);
    let mut two_peers = BTreeSet::new();
    let mut removed_after = 0;
    for o in history.status.iter().filter(|o| leave.others.contains(&o.node) && gone(o.invoke_us)) {
        if settled(o.invoke_us) && o.peers.len() != 2 {
            return Err(violation(
                &leave.node,
                format!("{} reports peers {:?} {}us after the leave", o.node, o.peers, o.invoke_us - leave.leave_us),
            ));
        }
        if o.peers.len() == 2 && two_peers.insert(o.node.clone()) {
            removed_after = u64::max(removed_after, o.complete_us - leave.leave_us);
        }
    }
    if two_peers.len() != leave.others.len() {
        return Err(violation(&leave.node, format!("two peers reported only by {two_peers:?}")));
    }
    report.figure("out of the raft configuration", removed_after);
    let acked_while_gone =
        history.ops.iter().any(|op| op.is_write() && op.outcome == Outcome::WriteOk && gone(op.invoke_us));
    if !acked_while_gone {
        return Err(violation(&leave.node, "no write was acknowledged while it was gone".into()));
    }
    let read_after = history
        .ops
        .iter()
        .filter(|op| op.is_linearizable_read() && op.invoke_us >= leave.restart_us)
        .map(|op| op.complete_us - leave.restart_us)
        .min();
    let Some(read_after) = read_after else {
        return Err(violation(&leave.node, "no consistent read succeeded after its restart".into()));
    };
    report.figure("consistent read after restart", read_after);
    // Restarted with `-join`, it rejoins gossip and the leader adds it back as a voter: by the end every
    // server, the restarted one included, reports all three peers.
    let mut last: BTreeMap<&str, &StatusObservation> = BTreeMap::new();
    let mut all_back = None;
    for o in history.status.iter().filter(|o| o.invoke_us >= leave.restart_us) {
        last.insert(&o.node, o);
        if all_back.is_none()
            && last.len() == leave.others.len() + 1
            && last.values().all(|o| o.peers.len() == last.len())
        {
            all_back = Some(o.complete_us - leave.restart_us);
        }
    }
    if last.len() != leave.others.len() + 1 || last.values().any(|o| o.peers.len() != last.len()) {
        let peers: Vec<String> = last.values().map(|o| format!("{}: {} peers", o.node, o.peers.len())).collect();
        return Err(violation(&leave.node, format!("not every server reports it back in Raft at the end: {peers:?}")));
    }
    report.figure("back in the raft configuration", all_back.expect("the last answers agree"));
    Ok(report)
}

/// The bootstrap-expect check over every Raft sample and status answer. `servers`: every server's name;
/// `bound_us`: how long after the last server started all of them must agree on a leader and the peers.
pub fn bootstrap(
    history: &History,
    servers: &[String],
    last_start_us: u64,
    bound_us: u64,
) -> Result<MembershipReport, Violation> {
    let mut report =
        MembershipReport { observations: history.raft.len() + history.status.len(), ..MembershipReport::default() };
    let mut leaders: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    let mut voter_sets: BTreeMap<&[u64], &str> = BTreeMap::new();
    for sample in &history.raft {
        if sample.is_leader {
            let in_term = leaders.entry(sample.term).or_default();
            in_term.insert(&sample.node);
            if in_term.len() > 1 {
                return Err(violation(&format!("term {}", sample.term), format!("two leaders: {in_term:?}")));
            }
        }
        if !sample.voters.is_empty() {
            voter_sets.entry(&sample.voters).or_insert(&sample.node);
            if voter_sets.len() > 1 {
                return Err(violation("raft", format!("two clusters formed: voter sets {voter_sets:?}")));
            }
        }
    }
    let mut peer_sets: BTreeSet<Vec<String>> = BTreeSet::new();
    for o in history.status.iter().filter(|o| !o.peers.is_empty()) {
        let mut peers = o.peers.clone();
        peers.sort();
        peer_sets.insert(peers);
        if peer_sets.len() > 1 {
            return Err(violation(&o.node, format!("servers report different peers: {peer_sets:?}")));
        }
    }
    // Agreement: the first moment every server's latest answer names the same leader and every peer.
    let mut latest: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    let mut agreed_at = None;
    for o in &history.status {
        latest.insert(&o.node, (&o.leader, o.peers.len()));
        let first_leader = latest.values().next().map(|&(l, _)| l).unwrap_or("");
        let agree = latest.len() == servers.len()
            && !first_leader.is_empty()
            && latest.values().all(|&(l, n)| l == first_leader && n == servers.len());
        if agree && agreed_at.is_none() {
            agreed_at = Some(o.complete_us);
        }
    }
    let Some(agreed_at) = agreed_at else {
        return Err(violation(
            "cluster",
            format!("servers never agreed on a leader and {} peers: {latest:?}", servers.len()),
        ));
    };
    let took = agreed_at.saturating_sub(last_start_us);
    if took > bound_us {
        return Err(violation(
            "cluster",
            format!(
                "servers agreed only {took}us after the last one started at {last_start_us}us (bound {bound_us}us)"
            ),
        ));
    }
    report.figure("last server started", last_start_us);
    report.figure("one cluster agreed after the last start", took);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::history::{NodeHealthObservation, Op, OpKind, RaftSample, ReadMode};
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn seen(node: &str, at_s: u64, members: &[(&str, u8)]) -> MembersObservation {
        MembersObservation {
            node: node.to_string(),
            invoke_us: at_s * 1_000_000,
            complete_us: at_s * 1_000_000 + 1000,
            members: members.iter().map(|&(n, s)| (n.to_string(), s)).collect(),
        }
    }

    fn split() -> Split {
        Split { sides: [names(&["a"]), names(&["b"])], from_us: 10_000_000, heal_us: 30_000_000 }
    }

    fn healthy_split_history() -> History {
        let mut h = History::default();
        for (me, other) in [("a", "b"), ("b", "a")] {
            h.members.push(seen(me, 5, &[(me, ALIVE), (other, ALIVE)]));
            h.members.push(seen(me, 20, &[(me, ALIVE), (other, FAILED)]));
            h.members.push(seen(me, 35, &[(me, ALIVE), (other, ALIVE)]));
        }
        h
    }

    #[test]
    fn a_split_detected_and_healed_in_time_passes() {
        let report = partition_heal(&healthy_split_history(), &split(), 10_000_000).unwrap();
        assert_eq!(report.figures[0], ("split detected everywhere".to_string(), 10_001_000));
        assert_eq!(report.figures[1], ("heal converged everywhere".to_string(), 5_001_000));
    }

    #[test]
    fn a_side_that_never_sees_the_other_failed_is_a_violation() {
        let mut h = healthy_split_history();
        h.members[4] = seen("b", 20, &[("b", ALIVE), ("a", ALIVE)]);
        assert!(partition_heal(&h, &split(), 10_000_000).unwrap_err().what.contains("failed during the split"));
    }

    #[test]
    fn a_member_still_failed_after_the_bound_is_a_violation() {
        let mut h = healthy_split_history();
        h.members.push(seen("a", 45, &[("a", ALIVE), ("b", FAILED)]));
        assert!(partition_heal(&h, &split(), 10_000_000).is_err(), "failed again, never converged");
        let mut h = healthy_split_history();
        h.members[2] = seen("a", 38, &[("a", ALIVE), ("b", FAILED)]);
        h.members.push(seen("a", 45, &[("a", ALIVE), ("b", ALIVE)]));
        assert!(partition_heal(&h, &split(), 10_000_000).unwrap_err().what.contains("bound"));
    }

    fn answer(at_s: u64, serf: &str, passing: bool) -> NodeHealthObservation {
        NodeHealthObservation {
            server: 0,
            invoke_us: at_s * 1_000_000,
            complete_us: at_s * 1_000_000 + 1000,
            serf_health: Some(serf.to_string()),
            service_passing: passing,
        }
    }

    fn crash() -> Crash {
        Crash { node: "a1".to_string(), crash_us: 10_000_000, restart_us: 30_000_000 }
    }

    #[test]
    fn a_crashed_node_critical_in_time_and_back_passes() {
        let h = History {
            node_health: vec![answer(5, "passing", true), answer(18, "critical", false), answer(45, "passing", true)],
            ..History::default()
        };
        let report = node_crash(&h, &crash(), 5_000_000, 10_000_000).unwrap();
        assert_eq!(report.figures[0].1, 8_001_000);
    }

    #[test]
    fn a_crashed_node_still_passing_after_the_bound_is_a_violation() {
        let mut h = History {
            node_health: vec![answer(5, "passing", true), answer(25, "passing", true), answer(45, "passing", true)],
            ..History::default()
        };
        assert!(node_crash(&h, &crash(), 5_000_000, 10_000_000).is_err());
        // serfHealth critical but the service still listed as passing is wrong too.
        h.node_health[1] = answer(25, "critical", true);
        assert!(node_crash(&h, &crash(), 5_000_000, 10_000_000).is_err());
    }

    #[test]
    fn a_restarted_node_still_critical_after_the_bound_is_a_violation() {
        let h = History {
            node_health: vec![answer(5, "passing", true), answer(18, "critical", false), answer(45, "critical", false)],
            ..History::default()
        };
        assert!(node_crash(&h, &crash(), 5_000_000, 10_000_000).unwrap_err().what.contains("after the restart"));
    }

    fn leave_fixture() -> (History, Leave) {
        let mut h = History::default();
        let at = |s: u64| s * 1_000_000;
        h.members.push(seen("s1", 12, &[("s1", ALIVE), ("s2", ALIVE), ("s3", LEFT)]));
        h.members.push(seen("s2", 12, &[("s1", ALIVE), ("s2", ALIVE), ("s3", LEFT)]));
        for node in ["s1", "s2"] {
            h.status.push(StatusObservation {
                node: node.to_string(),
                invoke_us: at(13),
                complete_us: at(13) + 1,
                leader: "x".into(),
                peers: names(&["x", "y"]),
            });
        }
        let op = |kind, outcome, t| Op {
            client: 0,
            server: 0,
            key: "k".into(),
            kind,
            invoke_us: t,
            complete_us: t + 1,
            outcome,
        };
        h.ops.push(op(OpKind::Register { value: "w1".into() }, Outcome::WriteOk, at(14)));
        let read = Outcome::ReadOk { value: Some("w1".into()), index: 3 };
        h.ops.push(op(OpKind::Read { mode: ReadMode::Consistent }, read, at(25)));
        for node in ["s1", "s2", "s3"] {
            h.status.push(StatusObservation {
                node: node.to_string(),
                invoke_us: at(26),
                complete_us: at(26) + 1,
                leader: "x".into(),
                peers: names(&["x", "y", "z"]),
            });
        }
        let leave = Leave { node: "s3".into(), others: names(&["s1", "s2"]), leave_us: at(10), restart_us: at(20) };
        (h, leave)
    }

    #[test]
    fn a_clean_leave_passes() {
        let (h, l) = leave_fixture();
        assert!(leave(&h, &l, 2_000_000).is_ok());
    }

    #[test]
    fn a_graceful_leave_shown_failed_is_a_violation() {
        let (mut h, l) = leave_fixture();
        h.members.push(seen("s1", 11, &[("s1", ALIVE), ("s2", ALIVE), ("s3", FAILED)]));
        assert!(leave(&h, &l, 2_000_000).unwrap_err().what.contains("failed"));
    }

    #[test]
    fn three_peers_after_a_leave_is_a_violation() {
        let (mut h, l) = leave_fixture();
        h.status[0].peers.push("z".into());
        assert!(leave(&h, &l, 2_000_000).is_err());
    }

    #[test]
    fn a_restarted_server_left_out_of_raft_is_a_violation() {
        let (mut h, l) = leave_fixture();
        h.status.last_mut().unwrap().peers.pop();
        assert!(leave(&h, &l, 2_000_000).unwrap_err().what.contains("back in Raft"));
    }

    fn sample(node: &str, term: u64, is_leader: bool, voters: &[u64]) -> RaftSample {
        RaftSample { node: node.into(), at_us: 0, term, is_leader, voters: voters.to_vec() }
    }

    fn agreed_status() -> Vec<StatusObservation> {
        ["s1", "s2", "s3"]
            .iter()
            .map(|n| StatusObservation {
                node: n.to_string(),
                invoke_us: 5_000_000,
                complete_us: 5_000_001,
                leader: "10.0.0.1:8300".into(),
                peers: names(&["p1", "p2", "p3"]),
            })
            .collect()
    }

    #[test]
    fn one_cluster_with_one_leader_per_term_passes() {
        let h = History {
            raft: vec![
                sample("s1", 1, true, &[1, 2, 3]),
                sample("s2", 1, false, &[1, 2, 3]),
                sample("s2", 2, true, &[1, 2, 3]),
            ],
            status: agreed_status(),
            ..History::default()
        };
        let servers = names(&["s1", "s2", "s3"]);
        assert_eq!(bootstrap(&h, &servers, 1_000_000, 10_000_000).unwrap().figures[1].1, 4_000_001);
    }

    #[test]
    fn two_leaders_in_one_term_is_a_violation() {
        let h = History {
            raft: vec![sample("s1", 1, true, &[1, 2, 3]), sample("s2", 1, true, &[1, 2, 3])],
            status: agreed_status(),
            ..History::default()
        };
        assert!(bootstrap(&h, &names(&["s1", "s2", "s3"]), 0, 10_000_000).unwrap_err().what.contains("two leaders"));
    }

    #[test]
    fn two_voter_sets_is_a_violation() {
        let h = History {
            raft: vec![sample("s1", 1, true, &[1, 2]), sample("s3", 1, false, &[3, 4])],
            status: agreed_status(),
            ..History::default()
        };
        assert!(bootstrap(&h, &names(&["s1", "s2", "s3"]), 0, 10_000_000).unwrap_err().what.contains("two clusters"));
    }

    #[test]
    fn servers_that_never_agree_are_a_violation() {
        let mut h = History { status: agreed_status(), ..History::default() };
        h.status[2].leader = String::new();
        assert!(bootstrap(&h, &names(&["s1", "s2", "s3"]), 0, 10_000_000).is_err());
    }
}

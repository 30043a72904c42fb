//! Locks and sessions. Mutual exclusion: no two clients believe they hold the same lock at the same
//! simulated instant (a client believes from its acquire's answer until it starts releasing, or until one
//! TTL after the last renewal it began, whichever is first). Session lifetime: the cluster may only drop a
//! session two TTLs after its last renewal began (Consul's grace), never earlier, even across a leader
//! failover.

use super::{History, LockHold, SessionLife, Violation};

/// Consul's session TTL multiplier: a session lives at least this many TTLs after a renewal.
const TTL_GRACE_FACTOR: u64 = 2;

fn describe_hold(hold: &LockHold) -> String {
    format!("client {} session {} held [{}us..{}us]", hold.client, hold.session, hold.from_us, hold.until_us)
}

pub fn check_mutual_exclusion(history: &History) -> Result<(), Violation> {
    let mut holds: Vec<&LockHold> = history.holds.iter().filter(|h| h.from_us < h.until_us).collect();
    holds.sort_by_key(|h| (h.key.clone(), h.from_us));
    for pair in holds.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        if earlier.key == later.key && earlier.session != later.session && later.from_us < earlier.until_us {
            return Err(Violation {
                check: "mutual exclusion",
                key: later.key.clone(),
                what: format!("two holders at once: {} and {}", describe_hold(earlier), describe_hold(later)),
            });
        }
    }
    Ok(())
}

fn describe_session(life: &SessionLife) -> String {
    format!(
        "client {} session {} (TTL {}us, alive at {:?}us)",
        life.client, life.session, life.ttl_us, life.alive_at_us
    )
}

pub fn check_session_lifetimes(history: &History) -> Result<(), Violation> {
    for life in &history.sessions {
        let (Some(gone_at), Some(last_alive)) = (life.gone_at_us, life.alive_at_us.iter().max()) else {
            continue;
        };
        let earliest_expiry = last_alive + TTL_GRACE_FACTOR * life.ttl_us;
        if gone_at < earliest_expiry {
            return Err(Violation {
                check: "session lifetime",
                key: life.session.clone(),
                what: format!(
                    "expired early: gone by {gone_at}us, before {earliest_expiry}us (2×TTL after the last renewal) — {}",
                    describe_session(life)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(client: u32, session: &str, from_us: u64, until_us: u64) -> LockHold {
        LockHold { client, key: "lock".into(), session: session.into(), from_us, until_us }
    }

    #[test]
    fn handoffs_pass_and_overlaps_fail() {
        let ok = History {
            holds: vec![hold(0, "a", 0, 10), hold(1, "b", 10, 20), hold(0, "a2", 25, 30)],
            ..History::default()
        };
        assert!(check_mutual_exclusion(&ok).is_ok());
        let overlap = History { holds: vec![hold(0, "a", 0, 10), hold(1, "b", 9, 20)], ..History::default() };
        assert_eq!(check_mutual_exclusion(&overlap).unwrap_err().check, "mutual exclusion");
    }

    #[test]
    fn a_session_gone_before_twice_its_ttl_fails() {
        let life = |gone| SessionLife {
            client: 0,
            session: "s".into(),
            ttl_us: 10,
            alive_at_us: vec![0, 50],
            gone_at_us: Some(gone),
        };
        assert!(check_session_lifetimes(&History { sessions: vec![life(70)], ..History::default() }).is_ok());
        let early = History { sessions: vec![life(69)], ..History::default() };
        assert_eq!(check_session_lifetimes(&early).unwrap_err().check, "session lifetime");
    }
}

//! The lock workloads (`lock-handoff`, `session-ttl-failover`): clients compete for one KV lock with
//! sessions through the real API, as `consul lock` does — create a session with a TTL, `?acquire=`, hold
//! while renewing, `?release=`. A client believes it holds the lock from its acquire's answer until it
//! starts releasing, or until one TTL after the last renewal it began (then it must assume the lock lost).
//! Some holders hang (stop renewing without releasing), as a paused process would; the cluster must let
//! their session expire, and never before twice its TTL.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::{History, LockHold, SessionLife};
use crate::client::{call, now_us, Workload};

pub const LOCK_KEY: &str = "locks/leader";
pub const SESSION_TTL: Duration = Duration::from_secs(10);
const SESSION_BODY: &str = r#"{"Name":"sim-lock","TTL":"10s","LockDelay":"3s"}"#;
const RENEW_EVERY: Duration = Duration::from_millis(3_000);
const STEP: Duration = Duration::from_millis(100);

/// How a client behaves.
#[derive(Clone, Copy, Debug)]
pub struct LockBehavior {
    /// Chance (percent) that a holder hangs instead of renewing and releasing.
    pub hang_percent: u32,
    /// If set, the client stops renewing (and hangs holding whatever it holds) at this simulated time.
    pub stop_renewing_at: Option<Duration>,
}

struct ClientSession {
    id: String,
    /// Its entry in `History::sessions`.
    life: usize,
    last_alive_us: u64,
    next_renew_us: u64,
}

struct LockClient {
    workload: Workload,
    behavior: LockBehavior,
    rng: ChaCha8Rng,
    history: Rc<RefCell<History>>,
    session: Option<ClientSession>,
}

fn us(duration: Duration) -> u64 {
    duration.as_micros() as u64
}

impl LockClient {
    fn server(&mut self) -> SocketAddr {
        self.workload.servers[self.rng.gen_range(0..self.workload.servers.len())].1
    }

    fn stopped_renewing(&self) -> bool {
        self.behavior.stop_renewing_at.is_some_and(|at| now_us() >= us(at))
    }

    /// Until when this client may believe its session (and a lock it holds) is alive.
    fn belief_deadline_us(&self) -> u64 {
        self.session.as_ref().map(|s| s.last_alive_us + us(SESSION_TTL)).unwrap_or(0)
    }

    fn mark_gone(&mut self, at_us: u64) {
        if let Some(session) = self.session.take() {
            let mut history = self.history.borrow_mut();
            let life = &mut history.sessions[session.life];
            life.gone_at_us = Some(life.gone_at_us.map_or(at_us, |g| g.min(at_us)));
        }
    }

    async fn create_session(&mut self) {
        let server = self.server();
        let invoke_us = now_us();
        let Ok(response) = call(server, "PUT", "/v1/session/create", SESSION_BODY.as_bytes().to_vec()).await else {
            return;
        };
        let id = response.json().ok().and_then(|v| v["ID"].as_str().map(String::from));
        let (200, Some(id)) = (response.status, id) else { return };
        let mut history = self.history.borrow_mut();
        history.sessions.push(SessionLife {
            client: self.workload.client,
            session: id.clone(),
            ttl_us: us(SESSION_TTL),
            alive_at_us: vec![invoke_us],
            gone_at_us: None,
        });
        let life = history.sessions.len() - 1;
        self.session =
            Some(ClientSession { id, life, last_alive_us: invoke_us, next_renew_us: invoke_us + us(RENEW_EVERY) });
    }

    /// Renews when due; returns false when the session is gone.
    async fn renew_if_due(&mut self) -> bool {
        let Some(session) = &self.session else { return false };
        if now_us() < session.next_renew_us || self.stopped_renewing() {
            return true;
        }
        let path = format!("/v1/session/renew/{}", session.id);
        let server = self.server();
        let invoke_us = now_us();
        let result = call(server, "PUT", &path, Vec::new()).await;
        let complete_us = now_us();
        let session = self.session.as_mut().expect("checked above");
        session.next_renew_us = complete_us + us(Duration::from_millis(500));
        match result {
            Ok(response) if response.status == 200 => {
                session.last_alive_us = session.last_alive_us.max(invoke_us);
                session.next_renew_us = invoke_us + us(RENEW_EVERY);
                self.history.borrow_mut().sessions[session.life].alive_at_us.push(invoke_us);
                true
            }
            Ok(response) if response.status == 404 => {
                self.mark_gone(complete_us);
                false
            }
            _ => true,
        }
    }

    fn record_hold(&mut self, from_us: u64, until_us: u64) {
        let session = self.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
        let hold = LockHold { client: self.workload.client, key: LOCK_KEY.to_string(), session, from_us, until_us };
        tracing::debug!(target: "sim::client", client = hold.client, from = hold.from_us, until = hold.until_us, "held lock");
        self.history.borrow_mut().holds.push(hold);
    }

    /// Holds the lock acquired at `from_us` until it is time to release, the session is lost, or the
    /// client hangs.
    async fn hold(&mut self, from_us: u64) {
        let hang = self.rng.gen_range(0..100) < self.behavior.hang_percent;
        let release_at_us = from_us + self.rng.gen_range(200_000..3_000_000);
        loop {
            tokio::time::sleep(STEP).await;
            let now = now_us();
            let deadline = self.belief_deadline_us();
            if now >= deadline {
                // Not renewed in time: the lock must be assumed lost.
                self.record_hold(from_us, deadline);
                self.session = None;
                if hang {
                    tokio::time::sleep(SESSION_TTL * 2).await;
                }
                return;
            }
            if hang || self.stopped_renewing() {
                continue;
            }
            if now >= release_at_us || now >= us(self.workload.stop_at) {
                self.record_hold(from_us, now);
                let session = self.session.as_ref().expect("held with a session").id.clone();
                let server = self.server();
                let _ = call(server, "PUT", &format!("/v1/kv/{LOCK_KEY}?release={session}"), Vec::new()).await;
                return;
            }
            if !self.renew_if_due().await {
                self.record_hold(from_us, now_us().min(deadline));
                return;
            }
        }
    }

    async fn run(mut self) {
        while now_us() < us(self.workload.stop_at) {
            let pause = self.rng.gen_range(100..=self.workload.pause_max.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            if self.session.is_some() && now_us() >= self.belief_deadline_us() {
                self.session = None; // not renewed in time: assume it gone, start afresh
            }
            if self.session.is_none() {
                if self.stopped_renewing() {
                    continue;
                }
                self.create_session().await;
                continue;
            }
            if !self.renew_if_due().await {
                continue;
            }
            let session = self.session.as_ref().expect("checked above").id.clone();
            let server = self.server();
            let path = format!("/v1/kv/{LOCK_KEY}?acquire={session}");
            let body = format!("c{}", self.workload.client).into_bytes();
            match call(server, "PUT", &path, body).await {
                Ok(response) if response.status == 200 && response.body == b"true" => {
                    let from_us = now_us();
                    if from_us < self.belief_deadline_us() {
                        self.hold(from_us).await;
                    }
                }
                Ok(response) if response.status == 500 && response.body.starts_with(b"invalid session") => {
                    self.mark_gone(now_us());
                }
                _ => {}
            }
        }
    }
}

pub async fn run(workload: Workload, behavior: LockBehavior, rng: ChaCha8Rng, history: Rc<RefCell<History>>) {
    LockClient { workload, behavior, rng, history, session: None }.run().await;
}

/// After the heal: every session must eventually expire (nobody renews any more). Polls the session list
/// and records when each known session was first seen gone; true once none is left.
pub async fn await_sessions_expired(
    history: &Rc<RefCell<History>>,
    servers: &[(u32, SocketAddr)],
    deadline: tokio::time::Instant,
) -> bool {
    let mut attempt = 0usize;
    while tokio::time::Instant::now() < deadline {
        let server = servers[attempt % servers.len()].1;
        attempt += 1;
        if let Ok(response) = call(server, "GET", "/v1/session/list?consistent", Vec::new()).await {
            let complete_us = now_us();
            if let (200, Ok(list)) = (response.status, response.json()) {
                let alive: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|s| s["Name"] == "sim-lock")
                    .filter_map(|s| s["ID"].as_str().map(String::from))
                    .collect();
                for life in history.borrow_mut().sessions.iter_mut().filter(|l| l.gone_at_us.is_none()) {
                    if !alive.contains(&life.session) {
                        life.gone_at_us = Some(complete_us);
                    }
                }
                if alive.is_empty() {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    false
}

//! Outgoing RPC: a pool of idle connections per address. A call takes an idle connection (or dials one),
//! sends one request, reads one reply and returns the connection; any error or timeout drops it. A
//! request that must not be resent goes on a pooled connection only after a liveness probe on it was
//! answered, so a connection the peer dropped is replaced before the request could have been delivered
//! (a fresh TLS connection costs a handshake, which under load costs more than the probe's round trip).
//! Reusing connections matters in simulation too: turmoil leaks an ephemeral port per failed connect.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::link::Link;
use super::RpcRequest;
use crate::env::Env;
use crate::security::conn::Conn;

/// Idle connections kept per peer; more concurrent calls dial extra connections that are closed after use.
const IDLE_CONNECTIONS_PER_PEER_MAX: usize = 64;

pub struct RpcPool<E: Env> {
    env: E,
    link: Link,
    idle: Mutex<BTreeMap<SocketAddr, Vec<Conn<E::Stream>>>>,
    /// Moves on at `forget_all`: a connection taken or dialled before is not pooled again when its call
    /// ends (it was made with the old TLS identity).
    generation: AtomicU64,
}

impl<E: Env> RpcPool<E> {
    pub fn new(env: E, link: Link) -> RpcPool<E> {
        RpcPool { env, link, idle: Mutex::new(BTreeMap::new()), generation: AtomicU64::new(0) }
    }

    /// Sends `request` to `addr` and waits at most `timeout` for the reply. For an idempotent request, a
    /// pooled connection that turns out to be dead (the peer restarted) is replaced by a fresh one once.
    /// A request that is not idempotent goes on a connection just found alive (a probed pooled one or a
    /// fresh one) and is never resent, so `ConnectionRefused` from it means it was certainly not
    /// delivered, and any later error that it may have been (a CAS resent after the leader applied it
    /// and crashed would answer `false` for a write that happened).
    pub async fn call<Q: RpcRequest>(&self, addr: SocketAddr, request: &Q, timeout: Duration) -> io::Result<Q::Reply> {
        let deadline = tokio::time::Instant::now() + timeout;
        let generation = self.generation.load(Ordering::SeqCst);
        let pooled = self.idle.lock().expect("rpc pool lock").get_mut(&addr).and_then(|v| v.pop());
        let (stream, reply) = match (pooled, request.is_idempotent()) {
            (Some(stream), true) => match self.exchange(addr, Some(stream), request, deadline).await {
                Ok(done) => done,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(e),
                Err(_) => self.exchange(addr, None, request, deadline).await?,
            },
            (Some(stream), false) => {
                let alive = self.probed::<Q>(addr, stream, deadline).await;
                self.exchange(addr, alive, request, deadline).await?
            }
            (None, _) => self.exchange(addr, None, request, deadline).await?,
        };
        let mut idle = self.idle.lock().expect("rpc pool lock");
        if generation != self.generation.load(Ordering::SeqCst) {
            return Ok(reply);
        }
        let conns = idle.entry(addr).or_default();
        if conns.len() < IDLE_CONNECTIONS_PER_PEER_MAX {
            conns.push(stream);
        }
        Ok(reply)
    }

    /// The pooled connection back if it answered a liveness probe, None if it did not (or the request
    /// type has no probe): the caller then dials a fresh one.
    async fn probed<Q: RpcRequest>(
        &self,
        addr: SocketAddr,
        pooled: Conn<E::Stream>,
        deadline: tokio::time::Instant,
    ) -> Option<Conn<E::Stream>> {
        let probe = Q::liveness_probe()?;
        match self.exchange(addr, Some(pooled), &probe, deadline).await {
            Ok((stream, _)) => Some(stream),
            Err(e) => {
                tracing::trace!(target: "conclave::rpc", %addr, error = %e, "pooled connection failed its probe");
                None
            }
        }
    }

    async fn exchange<Q: RpcRequest>(
        &self,
        addr: SocketAddr,
        pooled: Option<Conn<E::Stream>>,
        request: &Q,
        deadline: tokio::time::Instant,
    ) -> io::Result<(Conn<E::Stream>, Q::Reply)> {
        let exchange = async {
            let mut stream = match pooled {
                Some(stream) => stream,
                None => self.link.dial(&self.env, addr).await?,
            };
            self.link.send(&mut stream, request).await?;
            match self.link.receive::<_, Q::Reply>(&mut stream, addr).await? {
                Some(reply) => Ok((stream, reply.message)),
                None => Err(io::Error::new(io::ErrorKind::ConnectionReset, "peer closed the connection")),
            }
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("rpc to {addr} timed out"))),
        }
    }

    /// Drops every idle connection (after the agent's TLS identity changed).
    pub fn forget_all(&self) {
        let mut idle = self.idle.lock().expect("rpc pool lock");
        self.generation.fetch_add(1, Ordering::SeqCst);
        idle.clear();
    }

    /// Drops the idle connections to `addr` (after a peer restarted, say).
    pub fn forget(&self, addr: SocketAddr) {
        self.idle.lock().expect("rpc pool lock").remove(&addr);
    }
}

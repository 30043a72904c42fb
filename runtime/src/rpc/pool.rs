//! Outgoing RPC: a pool of idle connections per address. A call takes an idle connection (or dials one),
//! sends one request, reads one reply and returns the connection; any error or timeout drops it.
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
const IDLE_CONNECTIONS_PER_PEER_MAX: usize = 8;

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
    /// A request that is not idempotent always goes on a fresh connection and is never resent, so
    /// `ConnectionRefused` from it means it was certainly not delivered, and any later error that it may
    /// have been (a CAS resent after the leader applied it and crashed would answer `false` for a write
    /// that happened).
    pub async fn call<Q: RpcRequest>(&self, addr: SocketAddr, request: &Q, timeout: Duration) -> io::Result<Q::Reply> {
        let deadline = tokio::time::Instant::now() + timeout;
        let generation = self.generation.load(Ordering::SeqCst);
        let pooled = match request.is_idempotent() {
            true => self.idle.lock().expect("rpc pool lock").get_mut(&addr).and_then(|v| v.pop()),
            false => None,
        };
        let (stream, reply) = match pooled {
            Some(stream) => match self.exchange(addr, Some(stream), request, deadline).await {
                Ok(done) => done,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(e),
                Err(_) => self.exchange(addr, None, request, deadline).await?,
            },
            None => self.exchange(addr, None, request, deadline).await?,
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

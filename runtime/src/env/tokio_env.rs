//! The production Env: tokio sockets, a fjall (or, for `-dev`, in-memory) store, OS-seeded randomness.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, TcpStream};

use super::{Env, Store};

#[derive(Clone)]
pub struct TokioEnv {
    store: Arc<dyn Store>,
    rng_seed: u64,
}

impl TokioEnv {
    pub fn new(store: Arc<dyn Store>) -> TokioEnv {
        TokioEnv {
            store,
            rng_seed: rand::random(),
        }
    }
}

impl Env for TokioEnv {
    type Stream = TcpStream;
    type Listener = TcpListener;

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn rng_seed(&self) -> u64 {
        self.rng_seed
    }

    fn unix_time_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

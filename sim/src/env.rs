//! The turmoil Env: simulated TCP, the simulated disk, a seed derived from the run seed, and simulated
//! wall-clock time. The node driver runs on it unchanged.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use conclave::env::{Env, Store};
use turmoil::net::{TcpListener, TcpStream};

use crate::disk::SimDisk;

#[derive(Clone)]
pub struct SimEnv {
    disk: Arc<SimDisk>,
    rng_seed: u64,
}

impl SimEnv {
    pub fn new(disk: Arc<SimDisk>, rng_seed: u64) -> SimEnv {
        SimEnv { disk, rng_seed }
    }
}

/// turmoil's listener, served to axum through its `Listener` trait.
pub struct SimListener(TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok(accepted) => return accepted,
                Err(e) => {
                    tracing::debug!(target: "sim::net", error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Env for SimEnv {
    type Stream = TcpStream;
    type Listener = SimListener;

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<SimListener> {
        Ok(SimListener(TcpListener::bind(addr).await?))
    }

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr).await
    }

    fn store(&self) -> Arc<dyn Store> {
        self.disk.clone()
    }

    fn rng_seed(&self) -> u64 {
        self.rng_seed
    }

    fn unix_time_ms(&self) -> u64 {
        turmoil::since_epoch().map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

//! The turmoil Env: simulated TCP and UDP, the simulated disk, a seed derived from the run seed, and simulated
//! wall-clock time. The node driver runs on it unchanged.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use conclave::env::{Datagram, Env, Store};
use turmoil::net::{TcpListener, TcpStream, UdpSocket};

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

/// turmoil's UDP socket.
pub struct SimDatagram(UdpSocket);

impl Datagram for SimDatagram {
    async fn send_to(&self, payload: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.send_to(payload, to).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Env for SimEnv {
    type Stream = TcpStream;
    type Listener = SimListener;
    type Datagram = SimDatagram;

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<SimListener> {
        Ok(SimListener(TcpListener::bind(addr).await?))
    }

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<SimDatagram> {
        Ok(SimDatagram(UdpSocket::bind(addr).await?))
    }

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr).await
    }

    /// Simulated hosts are addressed by IP; there is no name service in the simulation.
    async fn resolve_host(&self, host: &str) -> io::Result<std::net::IpAddr> {
        host.parse().map_err(|_| io::Error::new(io::ErrorKind::NotFound, format!("no name service for {host:?}")))
    }

    /// There are no processes in the simulation: a script check fails as one whose command is missing.
    async fn run_script(&self, _args: Vec<String>) -> io::Result<(Option<i32>, Vec<u8>)> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no processes in the simulation"))
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

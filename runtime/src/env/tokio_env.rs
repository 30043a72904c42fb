//! The production Env: tokio sockets, a fjall (or, for `-dev`, in-memory) store, OS-seeded randomness.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::serve::{ListenerExt, TapIo};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::{Datagram, Env, Store};

#[derive(Clone)]
pub struct TokioEnv {
    store: Arc<dyn Store>,
    rng_seed: u64,
}

impl TokioEnv {
    pub fn new(store: Arc<dyn Store>) -> TokioEnv {
        TokioEnv { store, rng_seed: rand::random() }
    }
}

/// Accepted connections get `TCP_NODELAY`: replies are small and latency-bound.
fn no_delay(stream: &mut TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}

impl Env for TokioEnv {
    type Stream = TcpStream;
    type Listener = TapIo<TcpListener, fn(&mut TcpStream)>;
    type Datagram = UdpSocket;

    async fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Self::Listener> {
        Ok(TcpListener::bind(addr).await?.tap_io(no_delay as fn(&mut TcpStream)))
    }

    async fn bind_udp(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind(addr).await
    }

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    async fn resolve_host(&self, host: &str) -> io::Result<std::net::IpAddr> {
        let mut found = tokio::net::lookup_host((host, 0)).await?;
        found.next().map(|addr| addr.ip()).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
    }

    async fn run_script(&self, args: Vec<String>) -> io::Result<(Option<i32>, Vec<u8>)> {
        let (program, rest) =
            args.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty script args"))?;
        let output = tokio::process::Command::new(program)
            .args(rest)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await?;
        let mut combined = output.stdout;
        combined.extend_from_slice(&output.stderr);
        Ok((output.status.code(), combined))
    }

    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    fn rng_seed(&self) -> u64 {
        self.rng_seed
    }

    fn unix_time_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

impl Datagram for UdpSocket {
    async fn send_to(&self, payload: &[u8], to: SocketAddr) -> io::Result<usize> {
        UdpSocket::send_to(self, payload, to).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }
}

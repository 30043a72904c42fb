//! The turmoil Env: simulated TCP and UDP, the simulated disk, a seed derived from the run seed, and simulated
//! wall-clock time, which each host may read skewed and drifting (`HostClock`). The node driver runs on it
//! unchanged.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use conclave::env::{Datagram, Env, Store};
use turmoil::net::{TcpListener, TcpStream, UdpSocket};

use crate::disk::SimDisk;

/// How a host's wall clock differs from simulated time: a fixed offset and a rate error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostClock {
    pub offset_ms: i64,
    /// Rate error in parts per million (10,000 = the clock runs 1% fast).
    pub drift_ppm: i64,
}

impl HostClock {
    /// Largest offset and rate error drawn (the issue's ±500 ms and ±1%).
    pub const OFFSET_MS_MAX: i64 = 500;
    pub const DRIFT_PPM_MAX: i64 = 10_000;

    /// The host's reading of simulated time `true_ms` (never below 0).
    pub fn read_ms(self, true_ms: u64) -> u64 {
        let drifted = true_ms as i128 + true_ms as i128 * self.drift_ppm as i128 / 1_000_000;
        (drifted + self.offset_ms as i128).max(0) as u64
    }
}

#[derive(Clone)]
pub struct SimEnv {
    disk: Arc<SimDisk>,
    rng_seed: u64,
    clock: HostClock,
}

impl SimEnv {
    pub fn new(disk: Arc<SimDisk>, rng_seed: u64) -> SimEnv {
        SimEnv { disk, rng_seed, clock: HostClock::default() }
    }

    /// This host reads the wall clock through `clock`.
    pub fn with_clock(self, clock: HostClock) -> SimEnv {
        SimEnv { clock, ..self }
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
        self.clock.read_ms(turmoil::since_epoch().map(|d| d.as_millis() as u64).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::HostClock;

    #[test]
    fn a_skewed_clock_reads_offset_and_drift_and_never_goes_below_zero() {
        assert_eq!(HostClock::default().read_ms(1_000), 1_000);
        assert_eq!(HostClock { offset_ms: 500, drift_ppm: 10_000 }.read_ms(100_000), 101_500);
        assert_eq!(HostClock { offset_ms: -500, drift_ppm: -10_000 }.read_ms(100_000), 98_500);
        assert_eq!(HostClock { offset_ms: -500, drift_ppm: 0 }.read_ms(200), 0);
    }
}

//! The UDP side of the DNS server: one loop receives; answers from the catalog are sent at once, and
//! queries that wait on the network (recursors, a server) run in their own tasks, a bounded number at once.

use std::sync::Arc;

use conclave_core::dns::{Transport, UDP_BYTES_MAX};
use tokio::sync::Semaphore;

use super::{DnsServer, Step};
use crate::env::{Datagram, Env};

/// Queries waiting on recursors or servers at once; past it new ones are dropped (clients retry), so a
/// slow recursor cannot grow memory without bound.
const UDP_WAITING_MAX: usize = 512;

pub async fn serve<E: Env>(server: Arc<DnsServer<E>>, socket: Arc<E::Datagram>) {
    let waiting = Arc::new(Semaphore::new(UDP_WAITING_MAX));
    let mut buf = vec![0u8; UDP_BYTES_MAX];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(e) => {
                // ICMP errors of earlier sends surface here on some systems; the socket stays usable.
                tracing::debug!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let query = &buf[..len];
        let start = tokio::time::Instant::now();
        match server.step(query, Transport::Udp) {
            Step::Done(None) => server.record_query(start),
            Step::Done(Some(reply)) => {
                server.record_query(start);
                if let Err(e) = socket.send_to(&reply, from).await {
                    tracing::debug!(error = %e, %from, "DNS UDP send failed");
                }
            }
            step => {
                let Ok(permit) = waiting.clone().try_acquire_owned() else {
                    tracing::debug!(%from, "DNS query dropped: too many waiting");
                    continue;
                };
                let (server, socket, query) = (server.clone(), socket.clone(), query.to_vec());
                tokio::spawn(async move {
                    let reply = server.finish(step, &query, Transport::Udp).await;
                    server.record_query(start);
                    if let Some(reply) = reply {
                        if let Err(e) = socket.send_to(&reply, from).await {
                            tracing::debug!(error = %e, %from, "DNS UDP send failed");
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
}

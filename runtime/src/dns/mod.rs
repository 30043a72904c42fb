//! The DNS server on `-dns-port` (UDP and TCP). Answers come from core's `dns` module: a server agent
//! answers from its local catalog copy (Consul's DNS default is `stale`); a client agent, which keeps no
//! catalog, sends the query to a server over the HTTP forwarding path (`POST /v1/internal/dns`, see
//! [`upstream`]) and cuts the server's full answer to its own transport. Names outside the domain go to
//! the recursors over UDP ([`recurse`]), or are REFUSED when there are none.

mod recurse;
mod tcp;
mod udp;
pub mod upstream;

use std::sync::{Arc, Mutex};

use conclave_core::dns::{self, DnsConfig, Outcome, Transport};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::env::Env;
use crate::node::Node;

/// What the UDP and TCP loops share.
pub struct DnsServer<E: Env> {
    node: Arc<Node<E>>,
    config: DnsConfig,
    /// Shuffles answers; seeded from the node's seed so a simulated run replays.
    rng: Mutex<ChaCha8Rng>,
}

/// What to do with a query after the synchronous part.
enum Step {
    /// Send these bytes, or nothing.
    Done(Option<Vec<u8>>),
    /// Ask the recursors (a name outside the domain).
    Recurse,
    /// Ask a server (a client agent's query about the domain).
    AskServer,
}

impl<E: Env> DnsServer<E> {
    pub fn new(node: Arc<Node<E>>) -> Arc<DnsServer<E>> {
        let settings = &node.config.dns;
        let config = DnsConfig {
            domain: node.config.domain.clone(),
            datacenter: node.config.datacenter.clone(),
            recursion_available: !settings.recursors.is_empty(),
            ..settings.config.clone()
        };
        let rng = Mutex::new(ChaCha8Rng::seed_from_u64(node.env.rng_seed() ^ 0x646e_735f_7368_7566)); // "dns_shuf"
        Arc::new(DnsServer { node, config, rng })
    }

    /// The part that needs no waiting: a server answers from its catalog here.
    fn step(&self, query: &[u8], transport: Transport) -> Step {
        let outcome = if self.node.config.server {
            // DNS answers what the agent's default token (else anonymous) may read.
            let identity = self.node.dns_identity(&self.node.request_secret(None));
            let catalog = self.node.state.read();
            let mut rng = self.rng.lock().expect("dns rng lock");
            let visible = |resource, segment: &str| self.node.dns_visible(identity.as_ref(), resource, segment);
            dns::handle_query_as(&catalog, &self.config, query, transport, &mut *rng, &visible)
        } else {
            match dns::triage(&self.config, query) {
                Ok(()) => return Step::AskServer,
                Err(outcome) => outcome,
            }
        };
        match outcome {
            Outcome::Reply(bytes) => Step::Done(Some(bytes)),
            Outcome::Recurse => Step::Recurse,
            Outcome::Drop(reason) => {
                tracing::debug!(bytes = query.len(), reason, "DNS message dropped");
                Step::Done(None)
            }
        }
    }

    /// The part that waits on the network: recursors or a server.
    async fn finish(&self, step: Step, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        match step {
            Step::Done(reply) => reply,
            Step::Recurse => {
                let settings = &self.node.config.dns;
                match recurse::ask(&self.node.env, &settings.recursors, settings.recursor_timeout, query).await {
                    Some(reply) => Some(reply),
                    None => dns::servfail(query),
                }
            }
            Step::AskServer => upstream::ask_server(&self.node, &self.config, query, transport).await,
        }
    }

    /// Answers one message: `None` means send nothing.
    pub async fn answer(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let start = tokio::time::Instant::now();
        let step = self.step(query, transport);
        let answer = self.finish(step, query, transport).await;
        self.record_query(start);
        answer
    }

    /// `dns.domain_query`: one query answered (or dropped), timed from its arrival.
    pub fn record_query(&self, start: tokio::time::Instant) {
        self.node.telemetry.since("dns.domain_query", start, &[("node", &self.node.config.node_name)]);
    }
}

/// Serves DNS on the bound sockets until the process ends.
pub async fn serve<E: Env>(node: Arc<Node<E>>, udp_socket: E::Datagram, tcp_listener: E::Listener) {
    let server = DnsServer::new(node);
    tokio::spawn(tcp::serve(server.clone(), tcp_listener));
    udp::serve(server, Arc::new(udp_socket)).await;
}

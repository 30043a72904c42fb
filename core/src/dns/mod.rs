//! Consul's DNS interface as a pure function: query bytes in, answer bytes out, read from the local catalog
//! copy (DNS is `stale` by default in Consul). No sockets here: the runtime's `dns` module owns the UDP and
//! TCP listeners and the recursors, and calls [`handle_query`] for every message it receives.
//!
//! How a driver uses it:
//! 1. Build a [`DnsConfig`] from the agent's settings (`-domain`, `dns_config`, `recursors`).
//! 2. For each received message call [`handle_query`] with the catalog, the transport it came on and the
//!    node's DNS rng (answers are shuffled per query, as Consul's are).
//! 3. Send a [`Outcome::Reply`] back; forward the query as it came to a recursor on [`Outcome::Recurse`]
//!    (answering [`servfail`] when every recursor fails); send nothing on [`Outcome::Drop`].
//!
//! Names are parsed in [`name`], answers built in [`answer`], and cut to the transport's size in [`fit`].
//! Wire encoding is hickory-proto's.

pub mod answer;
pub mod config;
pub mod fit;
pub mod name;
#[cfg(test)]
mod tests;

use hickory_proto::op::{Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

pub use config::{DnsConfig, SoaConfig};
pub use name::{parse_name, Lookup, Parsed};

use crate::state::State;

/// Consul's `defaultMaxUDPSize`: a UDP answer without EDNS fits in 512 bytes (RFC 1035 §4.2.1).
pub const UDP_BYTES_DEFAULT: usize = 512;
/// Consul's `maxUDPDatagramSize`: the largest EDNS payload size honoured.
pub const UDP_BYTES_MAX: usize = 65535 - 68;
/// A TCP message carries a 2-byte length (RFC 1035 §4.2.2).
pub const TCP_BYTES_MAX: usize = 65535;
/// Consul's `maxUDPAnswerLimit`: answers of a non-EDNS UDP reply are first cut to `min(8, udp_answer_limit)`.
pub const UDP_ANSWERS_MAX: usize = 8;
/// Longest query accepted; anything longer is not a DNS query we could answer (TCP bound; UDP is smaller).
pub const QUERY_BYTES_MAX: usize = TCP_BYTES_MAX;

/// The transport a query came on: it decides how large the answer may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What the driver does with a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send these bytes back to the asker.
    Reply(Vec<u8>),
    /// The name is outside our domain and recursors are configured: forward the query bytes unchanged.
    Recurse,
    /// Send nothing: the bytes are not a query whose ID could be read, or they are a response.
    Drop(&'static str),
}

/// Whether the asker may see `segment` of `resource` (a service or a node): the ACL decision DNS
/// answers are filtered by.
pub type Visible<'a> = dyn Fn(crate::acl::Resource, &str) -> bool + 'a;

/// Answers one received message. Never panics on any input.
pub fn handle_query(
    catalog: &State,
    config: &DnsConfig,
    query: &[u8],
    transport: Transport,
    rng: &mut impl rand::Rng,
) -> Outcome {
    handle_query_as(catalog, config, query, transport, rng, &|_, _| true)
}

/// Like [`handle_query`], answering only with the services and nodes `visible` lets the asker read (a
/// service it may not read is NXDOMAIN, as an unknown one).
pub fn handle_query_as(
    catalog: &State,
    config: &DnsConfig,
    query: &[u8],
    transport: Transport,
    rng: &mut impl rand::Rng,
    visible: &Visible<'_>,
) -> Outcome {
    let request = match parse_query(query) {
        Ok(request) => request,
        Err(outcome) => return outcome,
    };
    match local_lookup(config, &request) {
        Err(outcome) => outcome,
        Ok(lookup) => {
            let response = answer::answer(catalog, config, &request, &lookup, rng, visible);
            Outcome::Reply(fit::fit(&request, response, transport, config))
        }
    }
}

/// On a client agent, which has no catalog copy: `Ok` when the query asks about our domain and must be
/// answered from a server's catalog; otherwise what to do without one (REFUSED, recurse, FORMERR, drop).
pub fn triage(config: &DnsConfig, query: &[u8]) -> Result<(), Outcome> {
    let request = parse_query(query)?;
    local_lookup(config, &request).map(|_| ())
}

/// Cuts a server's full answer (built for TCP) to what `transport` carries: the last step of
/// [`handle_query`], done by the client agent that received the query. A server answer that does not
/// decode is a SERVFAIL.
pub fn refit(query: &[u8], answer: &[u8], transport: Transport, config: &DnsConfig) -> Option<Vec<u8>> {
    let request = parse_query(query).ok()?;
    match Message::from_vec(answer) {
        Ok(response) if response.metadata.id == request.metadata.id => {
            Some(fit::fit(&request, response, transport, config))
        }
        _ => servfail(query),
    }
}

/// Decodes a query. A message that cannot be decoded gets FORMERR when its header can be read, and is
/// dropped otherwise; responses are dropped (answering them could loop between two servers); an opcode
/// other than QUERY gets NOTIMP and a message without exactly one question FORMERR.
pub fn parse_query(query: &[u8]) -> Result<Message, Outcome> {
    if query.len() > QUERY_BYTES_MAX {
        return Err(Outcome::Drop("query longer than a DNS message can be"));
    }
    let request = match Message::from_vec(query) {
        Ok(request) => request,
        Err(_) => {
            let mut decoder = BinDecoder::new(query);
            return match Header::read(&mut decoder) {
                Ok(header) if header.metadata.message_type == MessageType::Query => {
                    Err(error_reply(header.metadata.id, header.metadata.op_code, ResponseCode::FormErr))
                }
                Ok(_) => Err(Outcome::Drop("undecodable response")),
                Err(_) => Err(Outcome::Drop("no readable DNS header")),
            };
        }
    };
    let metadata = request.metadata;
    if metadata.message_type != MessageType::Query {
        return Err(Outcome::Drop("a response, not a query"));
    }
    if metadata.op_code != OpCode::Query {
        return Err(error_reply(metadata.id, metadata.op_code, ResponseCode::NotImp));
    }
    if request.queries.len() != 1 {
        return Err(error_reply(metadata.id, metadata.op_code, ResponseCode::FormErr));
    }
    Ok(request)
}

/// What a decoded query asks of our domain; a name outside it is recursed or REFUSED.
pub fn local_lookup(config: &DnsConfig, request: &Message) -> Result<Lookup, Outcome> {
    let Some(question) = request.queries.first() else {
        return Err(error_reply(request.metadata.id, request.metadata.op_code, ResponseCode::FormErr));
    };
    match parse_name(question.name(), &config.domain_labels()) {
        Parsed::Ours(lookup) => Ok(lookup),
        Parsed::NotOurs if config.recursion_available => Err(Outcome::Recurse),
        Parsed::NotOurs => Err(Outcome::Reply(encode_or_servfail(&answer::refused(request)))),
    }
}

/// The SERVFAIL answer to a query (every recursor failed); `None` when the query has no readable header.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let mut decoder = BinDecoder::new(query);
    let header = Header::read(&mut decoder).ok()?;
    match Message::from_vec(query) {
        Ok(request) => {
            let mut response = answer::response_to(&request, true);
            response.metadata.response_code = ResponseCode::ServFail;
            Some(encode_or_servfail(&response))
        }
        Err(_) => match error_reply(header.metadata.id, header.metadata.op_code, ResponseCode::ServFail) {
            Outcome::Reply(bytes) => Some(bytes),
            _ => None,
        },
    }
}

fn error_reply(id: u16, op_code: OpCode, code: ResponseCode) -> Outcome {
    Outcome::Reply(encode_or_servfail(&Message::error_msg(id, op_code, code)))
}

/// Encodes `response`; if hickory cannot (a record it refuses to emit), a bare SERVFAIL with the same ID.
pub fn encode_or_servfail(response: &Message) -> Vec<u8> {
    match response.to_vec() {
        Ok(bytes) => bytes,
        Err(_) => {
            let failed = Message::error_msg(response.metadata.id, response.metadata.op_code, ResponseCode::ServFail);
            failed.to_vec().unwrap_or_default()
        }
    }
}

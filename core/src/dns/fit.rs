//! Cutting an answer to what its transport carries, as Consul's `trimUDPResponse`/`trimTCPResponse` do:
//! a UDP reply without EDNS first keeps `min(8, udp_answer_limit)` answers; then any reply keeps the
//! most answers that fit its size (512 bytes, the EDNS size asked for, or 64 KiB over TCP), found by
//! binary search. Additional records go with the SRV answers that name them. TC is set on a UDP reply
//! that lost answers only with `enable_truncate` (Consul's default is to cut silently).

use std::collections::BTreeSet;

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

use super::config::DnsConfig;
use super::{encode_or_servfail, Transport, TCP_BYTES_MAX, UDP_ANSWERS_MAX, UDP_BYTES_DEFAULT, UDP_BYTES_MAX};

/// The size an answer to `request` may have on `transport`.
pub fn bytes_max(request: &Message, transport: Transport) -> usize {
    match (transport, &request.edns) {
        (Transport::Tcp, _) => TCP_BYTES_MAX,
        (Transport::Udp, None) => UDP_BYTES_DEFAULT,
        (Transport::Udp, Some(edns)) => usize::from(edns.max_payload()).clamp(UDP_BYTES_DEFAULT, UDP_BYTES_MAX),
    }
}

/// Encodes `response`, cut to fit `transport`.
pub fn fit(request: &Message, mut response: Message, transport: Transport, config: &DnsConfig) -> Vec<u8> {
    let answers_total = response.answers.len();
    if transport == Transport::Udp && request.edns.is_none() {
        let limit = config.udp_answer_limit.clamp(1, UDP_ANSWERS_MAX);
        keep_answers(&mut response, limit);
    }
    let size_max = bytes_max(request, transport);
    let mut bytes = encode_or_servfail(&response);
    if bytes.len() > size_max {
        // The largest answer count that fits: `low` always fits (0 answers does: a question and an SOA at
        // most), `high` never does.
        let (mut low, mut high) = (0, response.answers.len());
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            let mut candidate = response.clone();
            keep_answers(&mut candidate, middle);
            if encode_or_servfail(&candidate).len() <= size_max {
                low = middle;
            } else {
                high = middle;
            }
        }
        keep_answers(&mut response, low);
        bytes = encode_or_servfail(&response);
    }
    if response.answers.len() < answers_total && transport == Transport::Udp && config.enable_truncate {
        response.metadata.truncation = true;
        bytes = encode_or_servfail(&response);
    }
    bytes
}

/// Keeps the first `count` answers and the additional records for the SRV targets among them.
fn keep_answers(response: &mut Message, count: usize) {
    if response.answers.len() <= count {
        return;
    }
    response.answers.truncate(count);
    let targets: BTreeSet<String> = response
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some(srv.target.to_ascii().to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    response.additionals.retain(|record| targets.contains(&record.name.to_ascii().to_ascii_lowercase()));
}

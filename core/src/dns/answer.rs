//! Building the full answer to a lookup from the catalog, before it is cut to the transport's size.
//! Consul's rules (its `agent/dns.go`): only healthy instances (no critical check, and with
//! `only_passing` no warning either; node checks such as `serfHealth` count), shuffled per query;
//! SRV targets are `NODE.node.DC.DOMAIN`, or `HEX.addr.DC.DOMAIN` for an instance with its own address,
//! with that target's A/AAAA record in the additional section; NXDOMAIN and empty answers carry the SOA.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;

use super::config::DnsConfig;
use super::name::{ip_hex, Lookup};
use super::{UDP_BYTES_DEFAULT, UDP_BYTES_MAX};
use crate::acl::Resource;
use crate::catalog::{CheckStatus, ServiceHealth};
use crate::state::State;

/// Builds the answer to `lookup`, asked by `request` (one question, already checked).
pub fn answer(
    catalog: &State,
    config: &DnsConfig,
    request: &Message,
    lookup: &Lookup,
    rng: &mut impl rand::Rng,
    visible: &super::Visible<'_>,
) -> Message {
    let mut response = response_to(request, config.recursion_available);
    response.metadata.authoritative = true;
    let question = &request.queries[0];
    let qname = question.name().clone();
    let qtype = question.query_type();
    let found = match lookup {
        Lookup::Service { datacenter, .. } | Lookup::Node { datacenter, .. } | Lookup::Addr { datacenter, .. }
            if !is_ours(config, datacenter) =>
        {
            false
        }
        Lookup::Service { service, tag, .. } => {
            service_records(catalog, config, &qname, qtype, (service, tag.as_deref()), rng, &mut response, visible)
        }
        Lookup::Node { node, .. } => {
            visible(Resource::Node, node) && node_records(catalog, config, &qname, qtype, node, &mut response)
        }
        Lookup::Addr { ip, .. } => {
            if wants_address(qtype, *ip) {
                response.answers.push(Record::from_rdata(qname.clone(), 0, address_rdata(*ip)));
            }
            true
        }
        Lookup::Apex => {
            match qtype {
                RecordType::SOA | RecordType::ANY => response.answers.push(soa(catalog, config)),
                RecordType::NS => {
                    if let Ok(ns) = name_in(config, "ns") {
                        let ttl = config.soa.min_ttl_s;
                        response.answers.push(Record::from_rdata(qname.clone(), ttl, RData::NS(NS(ns))));
                    }
                }
                _ => {}
            }
            true
        }
        Lookup::Unknown => false,
    };
    if !found {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    if response.answers.is_empty() {
        response.authorities.push(soa(catalog, config));
    }
    response
}

/// An empty response to `request`: same ID, opcode, RD and question; EDNS echoed when asked for.
pub fn response_to(request: &Message, recursion_available: bool) -> Message {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = recursion_available;
    response.queries = request.queries.clone();
    if let Some(edns) = &request.edns {
        let mut ours = Edns::new();
        let size = usize::from(edns.max_payload()).clamp(UDP_BYTES_DEFAULT, UDP_BYTES_MAX);
        ours.set_max_payload(size as u16);
        response.edns = Some(ours);
    }
    response
}

/// REFUSED: a name outside our domain and no recursors to ask.
pub fn refused(request: &Message) -> Message {
    let mut response = response_to(request, false);
    response.metadata.response_code = ResponseCode::Refused;
    response
}

fn is_ours(config: &DnsConfig, datacenter: &Option<String>) -> bool {
    datacenter.as_deref().is_none_or(|dc| dc.eq_ignore_ascii_case(&config.datacenter))
}

/// Consul's SOA: `DOMAIN SOA ns.DOMAIN hostmaster.DOMAIN`; the serial is the catalog's index, which
/// grows with every change (Consul uses the clock, which core does not read).
fn soa(catalog: &State, config: &DnsConfig) -> Record {
    let domain = Name::from_ascii(config.domain_fqdn()).unwrap_or_else(|_| Name::root());
    let mname = name_in(config, "ns").unwrap_or_else(|_| domain.clone());
    let rname = name_in(config, "hostmaster").unwrap_or_else(|_| domain.clone());
    let soa = &config.soa;
    let serial = catalog.last_index() as u32;
    let rdata =
        SOA::new(mname, rname, serial, soa.refresh_s as i32, soa.retry_s as i32, soa.expire_s as i32, soa.min_ttl_s);
    Record::from_rdata(domain, soa.min_ttl_s, RData::SOA(rdata))
}

/// `PREFIX.DOMAIN`, such as `web.node.dc1.consul.`.
fn name_in(config: &DnsConfig, prefix: &str) -> Result<Name, hickory_proto::ProtoError> {
    Name::from_ascii(format!("{prefix}.{}", config.domain_fqdn()))
}

fn wants_address(qtype: RecordType, ip: IpAddr) -> bool {
    matches!((qtype, ip), (RecordType::A, IpAddr::V4(_)) | (RecordType::AAAA, IpAddr::V6(_)) | (RecordType::ANY, _))
}

fn address_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// Whether an instance is served: Consul leaves out any with a critical check, node checks included.
pub fn is_healthy(entry: &ServiceHealth<'_>, only_passing: bool) -> bool {
    entry.checks.iter().all(|check| match check.status {
        CheckStatus::Passing => true,
        CheckStatus::Warning => !only_passing,
        CheckStatus::Critical => false,
    })
}

/// The healthy instances of `service` with `tag` (case-insensitive), in the catalog's order.
fn healthy_instances<'a>(
    catalog: &'a State,
    config: &DnsConfig,
    service: &str,
    tag: Option<&str>,
    visible: &super::Visible<'_>,
) -> Vec<ServiceHealth<'a>> {
    let mut entries = catalog.service_health(service);
    if entries.is_empty() {
        // DNS is case-insensitive and the query name arrives lower-cased; the catalog keeps the case the
        // service was registered with.
        if let Some(name) = catalog.services().into_keys().find(|name| name.eq_ignore_ascii_case(service)) {
            entries = catalog.service_health(&name);
        }
    }
    entries
        .into_iter()
        .filter(|entry| tag.is_none_or(|tag| entry.service.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))))
        .filter(|entry| is_healthy(entry, config.only_passing))
        .filter(|entry| visible(Resource::Service, &entry.service.service) && visible(Resource::Node, &entry.node.node))
        .collect()
}

/// Answers a service lookup; `false` (NXDOMAIN) when no healthy instance matches.
#[allow(clippy::too_many_arguments)]
fn service_records(
    catalog: &State,
    config: &DnsConfig,
    qname: &Name,
    qtype: RecordType,
    (service, tag): (&str, Option<&str>),
    rng: &mut impl rand::Rng,
    response: &mut Message,
    visible: &super::Visible<'_>,
) -> bool {
    let mut entries = healthy_instances(catalog, config, service, tag, visible);
    if entries.is_empty() {
        return false;
    }
    entries.shuffle(rng);
    let ttl = config.service_ttl_s(&entries[0].service.service);
    match qtype {
        RecordType::SRV => {
            let mut targets_seen = BTreeSet::new();
            for entry in &entries {
                let Some((target, ip)) = srv_target(config, entry) else { continue };
                let weight = srv_weight(entry);
                let srv = SRV::new(1, weight, entry.service.port, target.clone());
                response.answers.push(Record::from_rdata(qname.clone(), ttl, RData::SRV(srv)));
                if let Some(ip) = ip.filter(|_| targets_seen.insert(target.to_ascii())) {
                    response.additionals.push(Record::from_rdata(target, ttl, address_rdata(ip)));
                }
            }
        }
        _ => {
            // The same address twice (one node, several ports) is answered once, as Consul does.
            let mut seen = BTreeSet::new();
            for entry in &entries {
                let Ok(ip) = instance_address(entry).parse::<IpAddr>() else { continue };
                if wants_address(qtype, ip) && seen.insert(ip) {
                    response.answers.push(Record::from_rdata(qname.clone(), ttl, address_rdata(ip)));
                }
            }
        }
    }
    true
}

/// The instance's own address, else its node's.
fn instance_address<'a>(entry: &ServiceHealth<'a>) -> &'a str {
    if entry.service.address.is_empty() {
        &entry.node.address
    } else {
        &entry.service.address
    }
}

/// The SRV target and, when it resolves to an IP, the address for the additional section.
fn srv_target(config: &DnsConfig, entry: &ServiceHealth<'_>) -> Option<(Name, Option<IpAddr>)> {
    let address = instance_address(entry);
    let ip = address.parse::<IpAddr>().ok();
    let own_address = !entry.service.address.is_empty() && entry.service.address != entry.node.address;
    let target = match (own_address, ip) {
        (true, Some(ip)) => name_in(config, &format!("{}.addr.{}", ip_hex(ip), config.datacenter)).ok()?,
        // A host name as the service address is the target itself; its address is not ours to give.
        (true, None) => return Some((Name::from_ascii(format!("{address}.")).ok()?, None)),
        (false, _) => name_in(config, &format!("{}.node.{}", entry.node.node, config.datacenter)).ok()?,
    };
    Some((target, ip))
}

/// Consul's SRV weight: `Weights.Warning` for an instance with a warning check, else `Weights.Passing`.
fn srv_weight(entry: &ServiceHealth<'_>) -> u16 {
    let warning = entry.checks.iter().any(|c| c.status == CheckStatus::Warning);
    let weight = if warning { entry.service.weights.warning } else { entry.service.weights.passing };
    weight.clamp(0, i32::from(u16::MAX)) as u16
}

/// Answers a node lookup: its address, and its meta as RFC 1464 TXT records for TXT and ANY queries
/// (a key starting `rfc1035-` gives the value alone, as Consul does).
fn node_records(
    catalog: &State,
    config: &DnsConfig,
    qname: &Name,
    qtype: RecordType,
    node: &str,
    response: &mut Message,
) -> bool {
    let found = catalog.node(node).or_else(|| catalog.nodes().into_iter().find(|n| n.node.eq_ignore_ascii_case(node)));
    let Some(found) = found else { return false };
    let ttl = config.node_ttl_s;
    if let Ok(ip) = found.address.parse::<IpAddr>() {
        if wants_address(qtype, ip) {
            response.answers.push(Record::from_rdata(qname.clone(), ttl, address_rdata(ip)));
        }
    }
    if matches!(qtype, RecordType::TXT | RecordType::ANY) {
        for (key, value) in &found.meta {
            let text = match key.strip_prefix("rfc1035-") {
                Some(_) => value.clone(),
                None => format!("{key}={value}"),
            };
            response.answers.push(Record::from_rdata(qname.clone(), ttl, RData::TXT(TXT::new(vec![text]))));
        }
    }
    true
}

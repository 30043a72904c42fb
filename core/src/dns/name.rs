//! Parsing a query name into what it asks for, following Consul's forms (case-insensitive):
//! `[tag.]NAME.service[.DC][.DC.dc].DOMAIN`, RFC 2782 `_NAME._TAG[.service][.DC].DOMAIN` (`_tcp`: any tag),
//! `NODE.node[.DC].DOMAIN`, `HEX.addr[.DC].DOMAIN` (the SRV targets of services with their own address)
//! and the domain itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// What a name in our domain asks for. Names and tags are lower case; `datacenter` is `None` when the name
/// has none (ours).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Service {
        service: String,
        tag: Option<String>,
        datacenter: Option<String>,
    },
    Node {
        node: String,
        datacenter: Option<String>,
    },
    Addr {
        ip: IpAddr,
        datacenter: Option<String>,
    },
    /// The domain itself (SOA and NS queries).
    Apex,
    /// In our domain, but no form we answer: NXDOMAIN.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Ours(Lookup),
    /// Outside our domain: for the recursors.
    NotOurs,
}

/// Parses `name` against the domain's lower-case labels (see `DnsConfig::domain_labels`).
pub fn parse_name(name: &Name, domain_labels: &[String]) -> Parsed {
    let labels: Vec<String> = name.iter().map(|label| String::from_utf8_lossy(label).to_ascii_lowercase()).collect();
    let Some(split) = labels.len().checked_sub(domain_labels.len()) else { return Parsed::NotOurs };
    if labels[split..] != *domain_labels {
        return Parsed::NotOurs;
    }
    Parsed::Ours(parse_local(&labels[..split]))
}

/// The labels before the domain, left to right.
fn parse_local(rest: &[String]) -> Lookup {
    if rest.is_empty() {
        return Lookup::Apex;
    }
    // `.DC.dc` (newer form) names the datacenter explicitly.
    let (rest, explicit_dc) = match rest {
        [head @ .., dc, last] if last == "dc" && !head.is_empty() => (head, Some(dc.clone())),
        _ => (rest, None),
    };
    let (head, kind, datacenter) = match rest {
        [head @ .., kind] if is_kind(kind) => (head, kind.as_str(), explicit_dc),
        [head @ .., kind, dc] if is_kind(kind) && explicit_dc.is_none() => (head, kind.as_str(), Some(dc.clone())),
        // RFC 2782 without `.service`: `_NAME._TAG[.DC]`.
        [service, tag] if is_rfc2782(service, tag) => return rfc2782(service, tag, explicit_dc),
        [service, tag, dc] if is_rfc2782(service, tag) && explicit_dc.is_none() => {
            return rfc2782(service, tag, Some(dc.clone()))
        }
        _ => return Lookup::Unknown,
    };
    match kind {
        "service" => match head {
            [service, tag] if is_rfc2782(service, tag) => rfc2782(service, tag, datacenter),
            [service] => Lookup::Service { service: service.clone(), tag: None, datacenter },
            // Consul re-joins the labels before the name: a tag may contain dots.
            [tags @ .., service] if !tags.is_empty() => {
                Lookup::Service { service: service.clone(), tag: Some(tags.join(".")), datacenter }
            }
            _ => Lookup::Unknown,
        },
        "node" if !head.is_empty() => Lookup::Node { node: head.join("."), datacenter },
        "addr" => match head {
            [hex] => hex_ip(hex).map_or(Lookup::Unknown, |ip| Lookup::Addr { ip, datacenter }),
            _ => Lookup::Unknown,
        },
        _ => Lookup::Unknown,
    }
}

fn is_kind(label: &str) -> bool {
    matches!(label, "service" | "node" | "addr")
}

fn is_rfc2782(service: &str, tag: &str) -> bool {
    service.len() > 1 && tag.len() > 1 && service.starts_with('_') && tag.starts_with('_')
}

fn rfc2782(service: &str, tag: &str, datacenter: Option<String>) -> Lookup {
    let tag = &tag[1..];
    // `_tcp` means "any tag" (Consul's dns.go); any other protocol label is a tag filter.
    let tag = (tag != "tcp").then(|| tag.to_string());
    Lookup::Service { service: service[1..].to_string(), tag, datacenter }
}

/// `c000020a` → 192.0.2.10; 32 hex digits → an IPv6 address (Consul's `.addr.` targets).
fn hex_ip(hex: &str) -> Option<IpAddr> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        8 => u32::from_str_radix(hex, 16).ok().map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        32 => u128::from_str_radix(hex, 16).ok().map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        _ => None,
    }
}

/// The `.addr.` label of an address: the inverse of `hex_ip`.
pub fn ip_hex(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{:08x}", u32::from(v4)),
        IpAddr::V6(v6) => format!("{:032x}", u128::from(v6)),
    }
}

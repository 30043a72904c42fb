//! Pushing metrics over UDP as go-metrics' statsd and DogStatsD sinks do, through cadence: statsd gets
//! the label values folded into the dotted name (`consul.api.http.GET.v1_kv_`), DogStatsD gets them as
//! `name:value` tags plus `dogstatsd_tags`, and the host name moves from a gauge's name into a `host:`
//! tag. Sends never block: the sockets are non-blocking and a full buffer drops the line.

use std::net::UdpSocket;
use std::time::Duration;

use cadence::prelude::*;
use cadence::{StatsdClient, UdpMetricSink};

/// What a pushed line records.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Counter(u64),
    Gauge(f64),
    /// Milliseconds.
    Timer(f64),
}

/// One UDP sink.
pub struct Pusher {
    client: StatsdClient,
    /// DogStatsD: labels as tags; statsd: label values in the name.
    tagged: bool,
    /// DogStatsD's global tags.
    tags: Vec<(String, String)>,
    hostname: String,
}

fn client(address: &str) -> Result<StatsdClient, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("cannot open a UDP socket for {address}: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let sink = UdpMetricSink::from(address, socket).map_err(|e| format!("metrics sink {address}: {e}"))?;
    Ok(StatsdClient::from_sink("", sink))
}

/// `key:value` tags; a tag without a colon is a bare tag.
fn split_tag(tag: &str) -> (String, String) {
    match tag.split_once(':') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (tag.to_string(), String::new()),
    }
}

impl Pusher {
    pub fn statsd(address: &str) -> Result<Pusher, String> {
        Ok(Pusher { client: client(address)?, tagged: false, tags: Vec::new(), hostname: String::new() })
    }

    pub fn dogstatsd(address: &str, tags: &[String], hostname: &str) -> Result<Pusher, String> {
        let tags = tags.iter().map(|t| split_tag(t)).collect();
        Ok(Pusher { client: client(address)?, tagged: true, tags, hostname: hostname.to_string() })
    }

    /// Sends one metric; `name` is the full dotted name (with the host name in a gauge's).
    pub fn send(&self, name: &str, labels: &[(String, String)], kind: Kind) {
        if self.tagged {
            let host = format!(".{}.", self.hostname);
            let (name, host_tag) = match name.find(&host) {
                Some(at) if !self.hostname.is_empty() => {
                    (format!("{}.{}", &name[..at], &name[at + host.len()..]), Some(self.hostname.as_str()))
                }
                _ => (name.to_string(), None),
            };
            let tags: Vec<(&str, &str)> = self
                .tags
                .iter()
                .chain(labels.iter())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain(host_tag.map(|h| ("host", h)))
                .collect();
            self.emit(&name, &tags, kind);
        } else {
            let mut parts = vec![name.to_string()];
            parts.extend(labels.iter().map(|(_, v)| v.replace([':', ' '], "_")));
            self.emit(&parts.join("."), &[], kind);
        }
    }

    fn emit(&self, name: &str, tags: &[(&str, &str)], kind: Kind) {
        let result = match kind {
            Kind::Counter(value) => with_tags(self.client.count_with_tags(name, value), tags).try_send().map(|_| ()),
            Kind::Gauge(value) => with_tags(self.client.gauge_with_tags(name, value), tags).try_send().map(|_| ()),
            Kind::Timer(ms) => {
                let time = Duration::from_secs_f64(ms.max(0.0) / 1000.0);
                with_tags(self.client.time_with_tags(name, time), tags).try_send().map(|_| ())
            }
        };
        if let Err(e) = result {
            tracing::trace!(error = %e, metric = name, "metric not pushed");
        }
    }
}

fn with_tags<'a, T: cadence::Metric + From<String>>(
    mut builder: cadence::MetricBuilder<'a, 'a, T>,
    tags: &[(&'a str, &'a str)],
) -> cadence::MetricBuilder<'a, 'a, T> {
    for (key, value) in tags {
        builder = if value.is_empty() { builder.with_tag_value(key) } else { builder.with_tag(key, value) };
    }
    builder
}

//! The node's metrics, named and labelled as Consul's (go-metrics) are: every metric goes to the
//! in-memory sink (`/v1/agent/metrics`), to Prometheus output when `prometheus_retention_time` is set
//! (metrics-exporter-prometheus: counters, gauges, and timers as summaries with quantiles 0.5, 0.9 and
//! 0.99, in milliseconds; a metric unchanged for the retention time is dropped), and to the statsd and
//! DogStatsD sinks. Names are dotted without their prefix (`raft.apply`); the `metrics_prefix` comes first,
//! and a gauge's name carries the host name after it unless `disable_hostname`. `prefix_filter` rules
//! see the full name. Each node has its own `Telemetry`, so the simulator's nodes keep theirs apart.

pub mod inmem;
pub mod push;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use metrics::{Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use metrics_util::MetricKindMask;

use crate::config::telemetry::TelemetrySettings;
use inmem::InmemSink;
use push::{Kind, Pusher};

/// Consul's Prometheus summary quantiles.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

static METADATA: Metadata<'static> = Metadata::new("conclave", metrics::Level::INFO, None);

/// The answer when `?format=prometheus` is asked of an agent without `prometheus_retention_time`.
pub const PROMETHEUS_OFF: &str = "Prometheus is not enabled since its retention time is not positive";

/// Labels as callers pass them.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

pub struct Telemetry {
    settings: TelemetrySettings,
    /// Unix time in ms (the Env's clock).
    clock_ms: Box<dyn Fn() -> u64 + Send + Sync>,
    inmem: Mutex<InmemSink>,
    prometheus: Option<(PrometheusRecorder, PrometheusHandle)>,
    pushers: Vec<Pusher>,
}

impl Telemetry {
    /// Builds the sinks `settings` names (a sink address that does not resolve is an error naming it).
    pub fn new(
        settings: &TelemetrySettings,
        clock_ms: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<Telemetry, String> {
        let prometheus = match settings.prometheus_retention.is_zero() {
            true => None,
            false => {
                let recorder = PrometheusBuilder::new()
                    .set_quantiles(&QUANTILES)
                    .map_err(|e| e.to_string())?
                    .idle_timeout(MetricKindMask::ALL, Some(settings.prometheus_retention))
                    .build_recorder();
                let handle = recorder.handle();
                Some((recorder, handle))
            }
        };
        let mut pushers = Vec::new();
        if let Some(address) = &settings.statsd_address {
            pushers.push(Pusher::statsd(address).map_err(|e| format!("telemetry.statsd_address: {e}"))?);
        }
        if let Some(address) = &settings.dogstatsd_addr {
            let host = if settings.disable_hostname { "" } else { &settings.hostname };
            pushers.push(
                Pusher::dogstatsd(address, &settings.dogstatsd_tags, host)
                    .map_err(|e| format!("telemetry.dogstatsd_addr: {e}"))?,
            );
        }
        Ok(Telemetry { settings: settings.clone(), clock_ms, inmem: Mutex::default(), prometheus, pushers })
    }

    pub fn settings(&self) -> &TelemetrySettings {
        &self.settings
    }

    /// Adds `value` to a counter.
    pub fn counter(&self, name: &str, value: u64, labels: Labels<'_>) {
        let Some((full, labels)) = self.named(name, labels, false) else { return };
        if let Some((recorder, _)) = &self.prometheus {
            recorder.register_counter(&key(&full, &labels), &METADATA).increment(value);
        }
        self.inmem.lock().expect("metrics lock").incr_counter(
            (self.clock_ms)(),
            (full.clone(), map(&labels)),
            value as f64,
        );
        self.push(&full, &labels, Kind::Counter(value));
    }

    /// Sets a gauge.
    pub fn gauge(&self, name: &str, value: f64, labels: Labels<'_>) {
        let Some((full, labels)) = self.named(name, labels, true) else { return };
        if let Some((recorder, _)) = &self.prometheus {
            recorder.register_gauge(&key(&full, &labels), &METADATA).set(value);
        }
        self.inmem.lock().expect("metrics lock").set_gauge((self.clock_ms)(), (full.clone(), map(&labels)), value);
        self.push(&full, &labels, Kind::Gauge(value));
    }

    /// Records one timing, in milliseconds.
    pub fn sample_ms(&self, name: &str, millis: f64, labels: Labels<'_>) {
        let Some((full, labels)) = self.named(name, labels, false) else { return };
        if let Some((recorder, _)) = &self.prometheus {
            recorder.register_histogram(&key(&full, &labels), &METADATA).record(millis);
        }
        self.inmem.lock().expect("metrics lock").add_sample((self.clock_ms)(), (full.clone(), map(&labels)), millis);
        self.push(&full, &labels, Kind::Timer(millis));
    }

    /// Records the time since `start` (go-metrics' `MeasureSince`).
    pub fn since(&self, name: &str, start: tokio::time::Instant, labels: Labels<'_>) {
        self.sample_ms(name, duration_ms(start.elapsed()), labels);
    }

    /// `/v1/agent/metrics` in Consul's JSON shape.
    pub fn json(&self) -> serde_json::Value {
        self.inmem.lock().expect("metrics lock").json((self.clock_ms)())
    }

    /// The Prometheus text format, or `None` when `prometheus_retention_time` is not set.
    pub fn prometheus_text(&self) -> Option<String> {
        let (_, handle) = self.prometheus.as_ref()?;
        handle.run_upkeep();
        Some(handle.render())
    }

    /// Drains the summaries' buckets and drops idle metrics; run every few seconds.
    pub fn upkeep(&self) {
        if let Some((_, handle)) = &self.prometheus {
            handle.run_upkeep();
        }
    }

    /// The full name and owned labels, or `None` when `prefix_filter` drops it.
    fn named(&self, name: &str, labels: Labels<'_>, gauge: bool) -> Option<(String, Vec<(String, String)>)> {
        let prefix = &self.settings.metrics_prefix;
        let full = match (gauge && !self.settings.disable_hostname, prefix.is_empty()) {
            (true, false) => format!("{prefix}.{}.{name}", self.settings.hostname),
            (true, true) => format!("{}.{name}", self.settings.hostname),
            (false, false) => format!("{prefix}.{name}"),
            (false, true) => name.to_string(),
        };
        if !allowed(&self.settings, &full) {
            return None;
        }
        Some((full, labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
    }

    fn push(&self, full: &str, labels: &[(String, String)], kind: Kind) {
        for pusher in &self.pushers {
            pusher.send(full, labels, kind);
        }
    }
}

pub fn duration_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn key(full: &str, labels: &[(String, String)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::new(k.clone(), v.clone())).collect();
    Key::from_parts(full.to_string(), labels)
}

fn map(labels: &[(String, String)]) -> BTreeMap<String, String> {
    labels.iter().cloned().collect()
}

/// go-metrics' filter: the longest `+`/`-` prefix naming the metric decides, else `filter_default`.
fn allowed(settings: &TelemetrySettings, full: &str) -> bool {
    settings
        .prefix_filter
        .iter()
        .filter(|rule| full.starts_with(&rule[1..]))
        .max_by_key(|rule| rule.len())
        .map(|rule| rule.starts_with('+'))
        .unwrap_or(settings.filter_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telemetry(settings: TelemetrySettings) -> Telemetry {
        Telemetry::new(&settings, Box::new(|| 5_000)).unwrap()
    }

    fn names(json: &serde_json::Value, kind: &str) -> Vec<String> {
        json[kind].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn names_carry_the_prefix_and_gauges_the_host_name() {
        let t = telemetry(TelemetrySettings { hostname: "h1".into(), ..Default::default() });
        t.counter("raft.apply", 1, &[]);
        t.gauge("runtime.sys_bytes", 10.0, &[]);
        t.sample_ms("api.http", 2.5, &[("method", "GET"), ("path", "v1_kv_")]);
        let json = t.json();
        assert_eq!(names(&json, "Counters"), vec!["consul.raft.apply"]);
        assert_eq!(names(&json, "Gauges"), vec!["consul.h1.runtime.sys_bytes"]);
        assert_eq!(json["Samples"][0]["Labels"]["method"], "GET");
        let quiet =
            telemetry(TelemetrySettings { disable_hostname: true, metrics_prefix: "svc".into(), ..Default::default() });
        quiet.gauge("runtime.sys_bytes", 1.0, &[]);
        assert_eq!(names(&quiet.json(), "Gauges"), vec!["svc.runtime.sys_bytes"]);
    }

    #[test]
    fn prometheus_output_is_off_until_a_retention_time_and_uses_consuls_names() {
        assert!(telemetry(TelemetrySettings::default()).prometheus_text().is_none());
        let t = telemetry(TelemetrySettings {
            prometheus_retention: Duration::from_secs(60),
            disable_hostname: true,
            ..Default::default()
        });
        t.counter("raft.apply", 3, &[]);
        t.sample_ms("raft.commitTime", 4.0, &[]);
        t.gauge("raft.state.leader", 1.0, &[]);
        let text = t.prometheus_text().unwrap();
        assert!(text.contains("# TYPE consul_raft_apply counter\nconsul_raft_apply 3"), "{text}");
        assert!(text.contains("consul_raft_commitTime{quantile=\"0.99\"}"), "{text}");
        assert!(text.contains("consul_raft_commitTime_count 1"), "{text}");
        assert!(text.contains("consul_raft_state_leader 1"), "{text}");
    }

    #[test]
    fn the_longest_matching_prefix_filter_decides() {
        let t = telemetry(TelemetrySettings {
            prefix_filter: vec!["-consul.raft".into(), "+consul.raft.apply".into()],
            ..Default::default()
        });
        t.counter("raft.apply", 1, &[]);
        t.counter("raft.other", 1, &[]);
        t.counter("kvs.apply", 1, &[]);
        assert_eq!(names(&t.json(), "Counters"), vec!["consul.kvs.apply", "consul.raft.apply"]);
        let closed = telemetry(TelemetrySettings { filter_default: false, ..Default::default() });
        closed.counter("kvs.apply", 1, &[]);
        assert!(names(&closed.json(), "Counters").is_empty());
    }

    #[test]
    fn statsd_lines_fold_labels_into_the_name_and_dogstatsd_tags_them() {
        let statsd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dogstatsd = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for socket in [&statsd, &dogstatsd] {
            socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        let t = telemetry(TelemetrySettings {
            hostname: "h1".into(),
            statsd_address: Some(statsd.local_addr().unwrap().to_string()),
            dogstatsd_addr: Some(dogstatsd.local_addr().unwrap().to_string()),
            dogstatsd_tags: vec!["env:test".into()],
            ..Default::default()
        });
        t.counter("catalog.service.query", 2, &[("service", "web")]);
        t.gauge("runtime.sys_bytes", 7.0, &[]);
        let mut buffer = [0u8; 512];
        let mut read = |socket: &std::net::UdpSocket| {
            let n = socket.recv(&mut buffer).unwrap();
            String::from_utf8_lossy(&buffer[..n]).into_owned()
        };
        assert_eq!(read(&statsd), "consul.catalog.service.query.web:2|c");
        assert_eq!(read(&statsd), "consul.h1.runtime.sys_bytes:7|g");
        assert_eq!(read(&dogstatsd), "consul.catalog.service.query:2|c|#env:test,service:web");
        assert_eq!(read(&dogstatsd), "consul.runtime.sys_bytes:7|g|#env:test,host:h1");
    }
}

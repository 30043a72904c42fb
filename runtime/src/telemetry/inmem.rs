//! The in-memory sink behind `/v1/agent/metrics`, as go-metrics' `InmemSink` that Consul runs: metrics
//! aggregated per 10 s interval, the last minute kept, the JSON showing the latest finished interval
//! (the current one while it is the only one). Counters and samples are aggregates of the interval
//! (count, sum, min, max, mean, stddev, rate per second); gauges keep their last value across intervals.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};

/// Consul's interval and retention.
pub const INTERVAL_MS: u64 = 10_000;
const INTERVALS_KEPT: usize = 6;

/// A metric's full dotted name and its labels.
pub type MetricKey = (String, BTreeMap<String, String>);

/// Count, sum, sum of squares, min, max of the values recorded in one interval.
#[derive(Clone, Debug, Default)]
struct Aggregate {
    count: u64,
    sum: f64,
    sum_of_squares: f64,
    min: f64,
    max: f64,
}

impl Aggregate {
    fn add(&mut self, value: f64) {
        if self.count == 0 || value < self.min {
            self.min = value;
        }
        if self.count == 0 || value > self.max {
            self.max = value;
        }
        self.count += 1;
        self.sum += value;
        self.sum_of_squares += value * value;
    }

    fn stddev(&self) -> f64 {
        if self.count < 2 {
            return 0.0;
        }
        let n = self.count as f64;
        ((self.sum_of_squares - self.sum * self.sum / n) / (n - 1.0)).max(0.0).sqrt()
    }

    fn json(&self, key: &MetricKey) -> Value {
        let mean = if self.count == 0 { 0.0 } else { self.sum / self.count as f64 };
        json!({
            "Name": key.0,
            "Count": self.count,
            "Rate": self.sum / (INTERVAL_MS as f64 / 1000.0),
            "Sum": self.sum,
            "Min": self.min,
            "Max": self.max,
            "Mean": mean,
            "Stddev": self.stddev(),
            "Labels": key.1,
        })
    }
}

#[derive(Clone, Debug, Default)]
struct Interval {
    start_ms: u64,
    gauges: BTreeMap<MetricKey, f64>,
    counters: BTreeMap<MetricKey, Aggregate>,
    samples: BTreeMap<MetricKey, Aggregate>,
}

/// The retained intervals, oldest first.
#[derive(Debug, Default)]
pub struct InmemSink {
    intervals: VecDeque<Interval>,
}

impl InmemSink {
    /// The interval `now_ms` falls in, opened (carrying the gauges over) if it is new.
    fn current(&mut self, now_ms: u64) -> &mut Interval {
        let start_ms = now_ms - now_ms % INTERVAL_MS;
        if self.intervals.back().is_none_or(|last| last.start_ms < start_ms) {
            let gauges = self.intervals.back().map(|last| last.gauges.clone()).unwrap_or_default();
            self.intervals.push_back(Interval { start_ms, gauges, ..Interval::default() });
            while self.intervals.len() > INTERVALS_KEPT {
                self.intervals.pop_front();
            }
        }
        self.intervals.back_mut().expect("an interval was just opened")
    }

    pub fn set_gauge(&mut self, now_ms: u64, key: MetricKey, value: f64) {
        self.current(now_ms).gauges.insert(key, value);
    }

    pub fn incr_counter(&mut self, now_ms: u64, key: MetricKey, value: f64) {
        self.current(now_ms).counters.entry(key).or_default().add(value);
    }

    pub fn add_sample(&mut self, now_ms: u64, key: MetricKey, value: f64) {
        self.current(now_ms).samples.entry(key).or_default().add(value);
    }

    /// Consul's `/v1/agent/metrics` body: the latest finished interval, or the current one when it is the
    /// only one.
    pub fn json(&mut self, now_ms: u64) -> Value {
        self.current(now_ms);
        let n = self.intervals.len();
        let shown = &self.intervals[n.saturating_sub(2)];
        let gauges: Vec<Value> =
            shown.gauges.iter().map(|(key, value)| json!({"Name": key.0, "Value": value, "Labels": key.1})).collect();
        let counters: Vec<Value> = shown.counters.iter().map(|(key, agg)| agg.json(key)).collect();
        let samples: Vec<Value> = shown.samples.iter().map(|(key, agg)| agg.json(key)).collect();
        json!({
            "Timestamp": go_time(shown.start_ms),
            "Gauges": gauges,
            "Points": [],
            "Counters": counters,
            "Samples": samples,
        })
    }
}

/// Go's `time.Time.String()` of a UTC instant: `2026-12-03 06:10:20 +0000 UTC`.
fn go_time(ms: u64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).unwrap_or_default();
    time.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> MetricKey {
        (name.to_string(), BTreeMap::new())
    }

    #[test]
    fn the_json_shows_the_last_finished_interval_with_its_aggregates() {
        let mut sink = InmemSink::default();
        sink.incr_counter(1_000, key("consul.raft.apply"), 1.0);
        sink.add_sample(2_000, key("consul.raft.commitTime"), 2.0);
        sink.add_sample(3_000, key("consul.raft.commitTime"), 4.0);
        sink.set_gauge(3_000, key("consul.h.runtime.sys_bytes"), 7.0);
        // Only one interval: it is shown.
        assert_eq!(sink.json(4_000)["Counters"][0]["Count"], 1);
        // The next interval starts; the finished one is shown, gauges carry over.
        sink.incr_counter(12_000, key("consul.raft.apply"), 1.0);
        let shown = sink.json(12_000);
        assert_eq!(shown["Timestamp"], "1970-01-01 00:00:00 +0000 UTC");
        let commit = &shown["Samples"][0];
        assert_eq!((commit["Count"].as_u64(), commit["Mean"].as_f64()), (Some(2), Some(3.0)));
        assert_eq!((commit["Min"].as_f64(), commit["Max"].as_f64()), (Some(2.0), Some(4.0)));
        assert!((commit["Stddev"].as_f64().unwrap() - 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(commit["Rate"].as_f64(), Some(0.6));
        assert_eq!(sink.json(25_000)["Gauges"][0]["Value"], 7.0);
        assert!(sink.json(25_000)["Points"].as_array().unwrap().is_empty());
    }

    #[test]
    fn only_the_last_minute_is_kept() {
        let mut sink = InmemSink::default();
        for second in (0..200).step_by(10) {
            sink.incr_counter(second * 1000, key("c"), 1.0);
        }
        assert_eq!(sink.intervals.len(), INTERVALS_KEPT);
    }
}

//! The run's trace: every event a node or the simulator records (targets `conclave::event` and `sim`),
//! stamped with simulated time, folded into a hash. Two runs of the same scenario and seed must produce
//! the same hash; the trace text can be kept for diffing two runs that do not.
//! openraft's own log lines are left out: they print `Instant`s whose base is the real clock.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// FNV-1a, 64 bits: tiny, stable across Rust versions (unlike `DefaultHasher`), good enough to tell traces apart.
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct Recording {
    now: Duration,
    hash: Fnv64,
    events: u64,
    /// Kept only when asked for (`--print-trace`), to diff two runs.
    lines: Option<Vec<String>>,
}

thread_local! {
    // turmoil runs every host on the thread that steps the simulation, so the recording is per run.
    static RECORDING: RefCell<Recording> = RefCell::new(Recording::default());
}

/// Starts a fresh recording on this thread.
pub fn reset(keep_lines: bool) {
    RECORDING.with(|r| *r.borrow_mut() = Recording { lines: keep_lines.then(Vec::new), ..Recording::default() });
}

/// Sets the simulated time stamped on the events that follow (the simulator calls it every step).
pub fn set_now(now: Duration) {
    RECORDING.with(|r| r.borrow_mut().now = now);
}

/// Records one line of the trace.
pub fn record(line: &str) {
    RECORDING.with(|r| {
        let mut r = r.borrow_mut();
        let stamped = format!("{:>10}us {line}", r.now.as_micros());
        r.hash.write(stamped.as_bytes());
        r.hash.write(b"\n");
        r.events += 1;
        if let Some(lines) = r.lines.as_mut() {
            lines.push(stamped);
        }
    });
}

/// The hash and event count so far, and the lines if they were kept.
pub fn finish() -> (u64, u64, Vec<String>) {
    RECORDING.with(|r| {
        let mut r = r.borrow_mut();
        (r.hash.finish(), r.events, r.lines.take().unwrap_or_default())
    })
}

struct FieldText(String);

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
}

/// A `tracing` layer that feeds the recording.
pub struct TraceLayer;

impl<S: Subscriber> Layer<S> for TraceLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if !(target.starts_with("conclave::event") || target.starts_with("sim")) {
            return;
        }
        let mut text = FieldText(target.to_string());
        event.record(&mut text);
        record(&text.0);
    }
}

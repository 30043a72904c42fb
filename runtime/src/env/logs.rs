//! The agent's log for people: every line the process logs, fanned out to `/v1/agent/monitor` readers at
//! each reader's own level, whatever the level of the agent's own output (Consul's monitor does the same:
//! an agent at `info` streams `debug` lines to a monitor that asks for them).
//!
//! A `tracing_subscriber` layer ([`MonitorLayer`], installed by `cli agent` beside the process's own
//! output) turns each event into a [`LogLine`] and sends it on one bounded broadcast channel. Sending
//! never waits: a reader more than [`MONITOR_LINES_MAX`] lines behind loses the oldest ones and is told
//! how many in a line of its stream, so a slow reader can never hold the agent up. The layer's filter
//! admits only the levels some reader asks for, so with no reader nothing is formatted.
//!
//! The level of the agent's own output is changed at reload through the hook installed here by the
//! process ([`install_level_reloader`]): the node's reload path calls [`reload_level`] without knowing
//! how the process logs. In the simulator nothing installs the layer or the hook: streams stay empty and
//! a reload leaves the (simulator's own) logging alone.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

/// Lines a reader may fall behind before it loses the oldest; Consul's monitor buffers 512 lines.
pub const MONITOR_LINES_MAX: usize = 512;

/// Fields kept per line: a line with more is cut, so that one event cannot make a line without bound.
pub const LINE_FIELDS_MAX: usize = 32;

/// One log event, as the stream carries it; each reader formats it as text or JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub unix_ms: i64,
    pub level: Level,
    /// The event's target (`conclave::node::checks`), shown as Consul's module name.
    pub target: String,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// Consul's level names (`logging.ValidateLogLevel`): trace, debug, info, warn, err and error, in any
/// case.
pub fn parse_level(text: &str) -> Option<Level> {
    match text.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warn" => Some(Level::WARN),
        "err" | "error" => Some(Level::ERROR),
        _ => None,
    }
}

/// Whether a reader at `level` gets an event of `event_level` from `target`. openraft's own lines are
/// chatter (a debug line per 50 ms tick) that would crowd out the agent's: a reader gets them only at
/// `trace`, and below debug only their real errors, as in the agent's own output (`cli::agent::logging`).
pub fn admits(level: LevelFilter, target: &str, event_level: Level) -> bool {
    if event_level > level {
        return false;
    }
    if level == LevelFilter::TRACE || !target.starts_with("openraft") {
        return true;
    }
    if level == LevelFilter::DEBUG {
        return event_level <= Level::INFO;
    }
    let silenced = target.starts_with("openraft::replication") || target.starts_with("openraft::core::raft_core");
    !silenced && event_level == Level::ERROR
}

/// The process's one log stream.
pub fn stream() -> &'static LogStream {
    static STREAM: LazyLock<LogStream> = LazyLock::new(LogStream::new);
    &STREAM
}

/// The broadcast channel and who reads it.
pub struct LogStream {
    lines: broadcast::Sender<Arc<LogLine>>,
    /// Readers per level, most verbose first (trace, debug, info, warn, error).
    readers: Mutex<[usize; 5]>,
    /// The most verbose level any reader asks for, as [`encode`]d; 0 when nobody reads.
    verbosity: AtomicU8,
    level_reloader: OnceLock<Box<dyn Fn() -> Result<(), String> + Send + Sync>>,
}

const LEVELS: [Level; 5] = [Level::TRACE, Level::DEBUG, Level::INFO, Level::WARN, Level::ERROR];

fn slot(level: Level) -> usize {
    LEVELS.iter().position(|l| *l == level).expect("every level has a slot")
}

fn encode(filter: LevelFilter) -> u8 {
    match filter.into_level() {
        None => 0,
        Some(level) => 5 - slot(level) as u8,
    }
}

fn decode(code: u8) -> LevelFilter {
    match code {
        0 => LevelFilter::OFF,
        n => LevelFilter::from_level(LEVELS[5 - n as usize]),
    }
}

impl LogStream {
    fn new() -> LogStream {
        let (lines, _) = broadcast::channel(MONITOR_LINES_MAX);
        LogStream { lines, readers: Mutex::new([0; 5]), verbosity: AtomicU8::new(0), level_reloader: OnceLock::new() }
    }

    /// The most verbose level some reader asks for (`OFF` without readers).
    pub fn verbosity(&self) -> LevelFilter {
        decode(self.verbosity.load(Ordering::Acquire))
    }

    /// A reader of the lines logged from now on at `level` or above.
    pub fn subscribe(&'static self, level: Level) -> Monitor {
        let receiver = self.lines.subscribe();
        self.count_reader(level, true);
        Monitor { stream: self, receiver, level }
    }

    fn count_reader(&self, level: Level, added: bool) {
        let changed = {
            let mut readers = self.readers.lock().expect("log readers lock");
            let count = &mut readers[slot(level)];
            match added {
                true => *count += 1,
                false => {
                    assert!(*count > 0, "a monitor of level {level} leaves that was never counted");
                    *count -= 1;
                }
            }
            let most = readers.iter().position(|n| *n > 0).map(|i| LevelFilter::from_level(LEVELS[i]));
            let code = encode(most.unwrap_or(LevelFilter::OFF));
            self.verbosity.swap(code, Ordering::AcqRel) != code
        };
        if changed {
            // Call sites cache whether anyone wants them; a new verbosity must reach them.
            tracing::callsite::rebuild_interest_cache();
        }
    }

    fn publish(&self, line: LogLine) {
        // Never waits: with no receiver the line is simply dropped.
        let _ = self.lines.send(Arc::new(line));
    }
}

/// Installs how the process re-reads and applies its log level at a reload; the first one stays.
pub fn install_level_reloader(reload: impl Fn() -> Result<(), String> + Send + Sync + 'static) {
    let _ = stream().level_reloader.set(Box::new(reload));
}

/// Re-reads the agent's log level and applies it (a reload); Ok when the process installed no hook.
pub fn reload_level() -> Result<(), String> {
    match stream().level_reloader.get() {
        Some(reload) => reload(),
        None => Ok(()),
    }
}

/// One reader of the stream, from its creation on. Dropping it (the client went away) gives its level
/// back.
pub struct Monitor {
    stream: &'static LogStream,
    receiver: broadcast::Receiver<Arc<LogLine>>,
    level: Level,
}

impl Monitor {
    /// The next line for this reader, formatted, without its newline: a log line, or a notice of the
    /// lines this reader lost by falling behind.
    pub async fn next_line(&mut self, json: bool) -> String {
        loop {
            match self.receiver.recv().await {
                Ok(line) if admits(LevelFilter::from_level(self.level), &line.target, line.level) => {
                    return match json {
                        true => json_line(&line),
                        false => text_line(&line),
                    };
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(dropped)) => return dropped_notice(dropped, json),
                Err(broadcast::error::RecvError::Closed) => {
                    unreachable!("the log stream's sender lives as long as the process")
                }
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stream.count_reader(self.level, false);
    }
}

/// Consul's words for lost lines (`logging/monitor`), as a line of the stream itself.
fn dropped_notice(dropped: u64, json: bool) -> String {
    let line = LogLine {
        unix_ms: now_unix_ms(),
        level: Level::WARN,
        target: "agent.monitor".into(),
        message: format!("Monitor dropped {dropped} logs during monitor request"),
        fields: vec![("dropped_count".into(), dropped.to_string())],
    };
    match json {
        true => json_line(&line),
        false => text_line(&line),
    }
}

fn now_unix_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    since.as_millis() as i64
}

fn module_of(target: &str) -> String {
    target.replace("::", ".")
}

fn timestamp(unix_ms: i64, micros: bool) -> String {
    let at = chrono::DateTime::from_timestamp_millis(unix_ms).unwrap_or_default();
    match micros {
        true => at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        false => at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

/// hclog's text form, as Consul writes it:
/// `2026-01-02T03:04:05.678Z [INFO]  agent.http: Request finished: method=GET url=/v1/agent/self`.
pub fn text_line(line: &LogLine) -> String {
    let level = match line.level {
        Level::TRACE => "[TRACE]",
        Level::DEBUG => "[DEBUG]",
        Level::INFO => "[INFO] ",
        Level::WARN => "[WARN] ",
        Level::ERROR => "[ERROR]",
    };
    let mut out = format!("{} {level} {}: {}", timestamp(line.unix_ms, false), module_of(&line.target), line.message);
    if !line.fields.is_empty() {
        out.push(':');
    }
    for (key, value) in &line.fields {
        let quoted = value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == '"' || c == '=');
        match quoted {
            true => out.push_str(&format!(" {key}={value:?}")),
            false => out.push_str(&format!(" {key}={value}")),
        }
    }
    out.replace('\n', "\\n")
}

/// hclog's JSON form: `{"@level":"info","@message":…,"@module":…,"@timestamp":…, fields…}`.
pub fn json_line(line: &LogLine) -> String {
    let mut object = serde_json::Map::new();
    for (key, value) in &line.fields {
        object.insert(key.clone(), serde_json::Value::String(value.clone()));
    }
    let level = line.level.as_str().to_ascii_lowercase();
    object.insert("@level".into(), level.into());
    object.insert("@message".into(), line.message.clone().into());
    object.insert("@module".into(), module_of(&line.target).into());
    object.insert("@timestamp".into(), timestamp(line.unix_ms, true).into());
    serde_json::Value::Object(object).to_string()
}

/// The layer that feeds the stream; put it beside the process's output layers with
/// `.with(MonitorLayer.with_filter(MonitorFilter))` so that it sees the levels the readers ask for.
pub struct MonitorLayer;

impl<S: Subscriber> Layer<S> for MonitorLayer {
    fn on_event(&self, event: &Event<'_>, _cx: Context<'_, S>) {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        stream().publish(LogLine {
            unix_ms: now_unix_ms(),
            level: *meta.level(),
            target: meta.target().to_string(),
            message: fields.message,
            fields: fields.pairs,
        });
    }
}

/// Admits the events some reader of the stream wants, and nothing else (spans included).
pub struct MonitorFilter;

impl MonitorFilter {
    fn wants(meta: &Metadata<'_>) -> bool {
        meta.is_event() && admits(stream().verbosity(), meta.target(), *meta.level())
    }
}

impl<S: Subscriber> Filter<S> for MonitorFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        MonitorFilter::wants(meta)
    }

    /// Cached per call site, and rebuilt each time the readers' verbosity changes.
    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match MonitorFilter::wants(meta) {
            true => Interest::always(),
            false => Interest::never(),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(stream().verbosity())
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            name if name.starts_with("log.") => {}
            name if self.pairs.len() < LINE_FIELDS_MAX => self.pairs.push((name.to_string(), value)),
            _ => {}
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, fields: &[(&str, &str)]) -> LogLine {
        LogLine {
            unix_ms: 1_700_000_000_123,
            level,
            target: "conclave::http".into(),
            message: "Request finished".into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn consul_level_names_parse_in_any_case_and_others_do_not() {
        assert_eq!(parse_level("TRACE"), Some(Level::TRACE));
        assert_eq!(parse_level("debug"), Some(Level::DEBUG));
        assert_eq!(parse_level("Info"), Some(Level::INFO));
        assert_eq!(parse_level("warn"), Some(Level::WARN));
        assert_eq!(parse_level("err"), Some(Level::ERROR));
        assert_eq!(parse_level("ERROR"), Some(Level::ERROR));
        assert_eq!(parse_level("loud"), None);
        assert_eq!(parse_level("warning"), None);
    }

    #[test]
    fn a_reader_gets_its_level_and_above_and_openraft_chatter_only_when_debugging() {
        let info = LevelFilter::INFO;
        assert!(admits(info, "conclave::node", Level::WARN));
        assert!(!admits(info, "conclave::node", Level::DEBUG));
        assert!(!admits(info, "openraft::engine", Level::INFO));
        assert!(admits(info, "openraft::engine", Level::ERROR));
        assert!(!admits(info, "openraft::replication", Level::ERROR));
        assert!(!admits(LevelFilter::DEBUG, "openraft::replication", Level::DEBUG));
        assert!(admits(LevelFilter::DEBUG, "openraft::engine", Level::INFO));
        assert!(admits(LevelFilter::TRACE, "openraft::replication", Level::TRACE));
        assert!(!admits(LevelFilter::OFF, "conclave::node", Level::ERROR));
    }

    #[test]
    fn text_lines_read_like_consuls() {
        let text = text_line(&line(Level::INFO, &[("method", "GET"), ("from", "a b")]));
        assert_eq!(text, "2023-11-14T22:13:20.123Z [INFO]  conclave.http: Request finished: method=GET from=\"a b\"");
        assert_eq!(
            text_line(&line(Level::DEBUG, &[])),
            "2023-11-14T22:13:20.123Z [DEBUG] conclave.http: Request finished"
        );
    }

    #[test]
    fn json_lines_carry_hclogs_keys() {
        let value: serde_json::Value = serde_json::from_str(&json_line(&line(Level::WARN, &[("k", "v")]))).unwrap();
        assert_eq!(value["@level"], "warn");
        assert_eq!(value["@message"], "Request finished");
        assert_eq!(value["@module"], "conclave.http");
        assert_eq!(value["@timestamp"], "2023-11-14T22:13:20.123000Z");
        assert_eq!(value["k"], "v");
    }

    #[test]
    fn the_verbosity_code_round_trips() {
        for filter in [LevelFilter::OFF, LevelFilter::ERROR, LevelFilter::WARN, LevelFilter::INFO, LevelFilter::DEBUG] {
            assert_eq!(decode(encode(filter)), filter);
        }
        assert_eq!(decode(encode(LevelFilter::TRACE)), LevelFilter::TRACE);
    }

    #[tokio::test]
    async fn a_lagging_reader_is_told_how_many_lines_it_lost() {
        let stream: &'static LogStream = Box::leak(Box::new(LogStream::new()));
        let mut monitor = stream.subscribe(Level::INFO);
        assert_eq!(stream.verbosity(), LevelFilter::INFO);
        for _ in 0..MONITOR_LINES_MAX + 10 {
            stream.publish(line(Level::INFO, &[]));
        }
        assert_eq!(
            monitor.next_line(false).await.split_once(' ').unwrap().1,
            "[WARN]  agent.monitor: Monitor dropped 10 logs during monitor request: dropped_count=10"
        );
        assert!(monitor.next_line(false).await.ends_with("Request finished"));
        drop(monitor);
        assert_eq!(stream.verbosity(), LevelFilter::OFF);
    }
}

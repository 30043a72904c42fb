//! `conclave debug`: records an agent for a while into a `.tar.gz` archive for whoever debugs it, as
//! `consul debug` does (Consul's `command/debug`): `agent.json` (`/v1/agent/self`), `members.json`
//! (`/v1/agent/members`), `host.json` (`/v1/agent/host`), `metrics.json` (a sample of `/v1/agent/metrics`
//! every interval, concatenated JSON documents as Consul's metrics stream writes them), `consul.log` (the
//! monitor stream at debug level for the duration) and `index.json`, in a directory named after the
//! output path. A capture that fails is written as an `{"Error": …}` document in its place; it does not
//! stop the others. Ctrl-C stops early and archives what was captured.
//!
//! Unlike Consul, the duration and interval have no minimum (Consul refuses under 10s and 5s): a short
//! capture is useful in tests and costs the agent nothing. `-duration` shorter than `-interval` is refused
//! with Consul's words.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use super::acl::go_text::go_duration;
use super::client::HttpFlags;

/// Time added to the duration so that the last interval's capture fits in it (Consul's
/// `debugDurationGrace`).
const DURATION_GRACE: Duration = Duration::from_secs(2);

/// The version of the archive's layout (Consul's `debugProtocolVersion`).
const ARCHIVE_VERSION: u32 = 1;

/// Metrics samples kept at most, whatever the duration and interval: a bound on the file's size.
const METRICS_SAMPLES_MAX: u64 = 10_000;

const TARGETS: [&str; 5] = ["metrics", "logs", "host", "agent", "members"];

#[derive(Args, Debug)]
pub struct DebugArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// How long to capture for (Go duration).
    #[arg(long, default_value = "2m")]
    pub duration: String,
    /// How often to sample the metrics (Go duration).
    #[arg(long, default_value = "30s")]
    pub interval: String,
    /// Path of the directory of captures; the archive is this path with `.tar.gz` (default
    /// `consul-debug-<unix time>`).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// What to capture (repeatable): agent, host, members (or cluster), metrics, logs. Default: all.
    #[arg(long)]
    pub capture: Vec<String>,
    /// Archive and compress the directory (false: leave the directory).
    #[arg(long, default_value = "true", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub archive: bool,
}

/// What a run captures, checked before anything is written.
#[derive(Debug, PartialEq)]
struct Plan {
    duration: Duration,
    interval: Duration,
    targets: Vec<String>,
}

fn plan(duration: &str, interval: &str, capture: &[String]) -> anyhow::Result<Plan> {
    let parse = |text: &str, name: &str| {
        conclave_core::api::parse_go_duration(text)
            .map_err(|e| anyhow::anyhow!("invalid -{name} {text:?}: {}", e.message))
    };
    let duration = parse(duration, "duration")?;
    let interval = parse(interval, "interval")?;
    if interval.is_zero() {
        bail!("Capture validation failed: interval must be longer than 0s");
    }
    if duration < interval {
        bail!(
            "Capture validation failed: duration ({}) must be longer than interval ({})",
            go_duration(duration.as_nanos() as u64),
            go_duration(interval.as_nanos() as u64)
        );
    }
    let mut targets = Vec::new();
    for target in capture {
        let target = match target.as_str() {
            "cluster" => "members",
            "pprof" => {
                eprintln!("==> [WARN] Unable to capture pprof: Conclave has no Go profiles.");
                continue;
            }
            other if TARGETS.contains(&other) => other,
            other => bail!("Capture validation failed: target not found: {other}"),
        };
        if !targets.iter().any(|t| t == target) {
            targets.push(target.to_string());
        }
    }
    if capture.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok(Plan { duration, interval, targets })
}

/// Consul's `writeJSONFile`: indented with tabs.
fn json_text(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("JSON values always serialize");
    out
}

fn error_entry(error: &anyhow::Error) -> Value {
    let at = chrono::DateTime::from_timestamp_millis(unix_ms()).unwrap_or_default();
    json!({ "Error": format!("{error:#}"), "Timestamp": at.to_rfc3339() })
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64
}

/// One JSON endpoint into `file`, or its error in its place.
async fn capture_json(http: &HttpFlags, path: &str, file: &Path) -> anyhow::Result<()> {
    let fetched = async {
        let response = http.call_async("GET", path, Vec::new()).await?;
        if response.status != 200 {
            bail!("Unexpected response code: {} ({})", response.status, String::from_utf8_lossy(&response.body).trim());
        }
        Ok(response.json()?)
    };
    let (value, failure) = match fetched.await {
        Ok(value) => (value, None),
        Err(e) => (error_entry(&e), Some(e)),
    };
    std::fs::write(file, json_text(&value)).with_context(|| format!("cannot write {}", file.display()))?;
    match failure {
        None => Ok(()),
        Some(e) => Err(e.context(format!("capturing {path}"))),
    }
}

/// A sample of the metrics every interval until the duration ends.
async fn capture_metrics(http: &HttpFlags, plan: &Plan, file: &Path) -> anyhow::Result<()> {
    let mut out = std::fs::File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    let mut ticks = tokio::time::interval(plan.interval);
    let deadline = tokio::time::Instant::now() + plan.duration + DURATION_GRACE;
    for count in 0..METRICS_SAMPLES_MAX {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        let sample = match http.call_async("GET", "/v1/agent/metrics", Vec::new()).await {
            Ok(response) if response.status == 200 => {
                response.json().unwrap_or_else(|e| error_entry(&anyhow::anyhow!("invalid metrics JSON: {e}")))
            }
            Ok(response) => error_entry(&anyhow::anyhow!(
                "Unexpected response code: {} ({})",
                response.status,
                String::from_utf8_lossy(&response.body).trim()
            )),
            Err(e) => error_entry(&e),
        };
        out.write_all(&json_text(&sample))?;
        out.write_all(b"\n")?;
        println!(
            "==> Capture successful {} ({count})",
            chrono::DateTime::from_timestamp_millis(unix_ms()).unwrap_or_default()
        );
    }
    Ok(())
}

/// The monitor stream at debug level into `file` for the duration.
async fn capture_logs(http: &HttpFlags, plan: &Plan, file: &Path) -> anyhow::Result<()> {
    let mut out = std::fs::File::create(file).with_context(|| format!("cannot create {}", file.display()))?;
    let path = super::monitor::monitor_path("debug", false);
    let mut write_error = None;
    let follow = http.stream_lines(&path, |line| {
        if let Err(e) = writeln!(out, "{line}") {
            write_error = Some(e);
            anyhow::bail!("cannot write the log");
        }
        Ok(())
    });
    let result = tokio::select! {
        result = follow => result,
        _ = tokio::time::sleep(plan.duration + DURATION_GRACE) => Ok(()),
    };
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if let Err(e) = &result {
        writeln!(out, "{}", error_entry(e))?;
    }
    result
}

/// Writes `dir` into `<dir>.tar.gz`, each file under the directory's name, through a temporary file
/// renamed into place once complete; then removes the directory.
fn archive(dir: &Path) -> anyhow::Result<PathBuf> {
    let name = dir.file_name().context("the output path has no file name")?.to_string_lossy().into_owned();
    let path = dir.with_file_name(format!("{name}.tar.gz"));
    let temporary = dir.with_file_name(format!("{name}.tar.gz.tmp"));
    let file = std::fs::File::create(&temporary).with_context(|| format!("cannot create {}", temporary.display()))?;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
    tar.append_dir_all(&name, dir).context("failed to write the archive")?;
    let file = tar.into_inner().context("failed to write the archive")?.finish()?;
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    std::fs::remove_dir_all(dir).context("failed to remove archived directory")?;
    Ok(path)
}

pub fn debug(args: DebugArgs) -> anyhow::Result<()> {
    let plan = plan(&args.duration, &args.interval, &args.capture)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run(args, plan))
}

async fn run(args: DebugArgs, plan: Plan) -> anyhow::Result<()> {
    let http = &args.http;
    let this = http.call_async("GET", "/v1/agent/self", Vec::new()).await;
    let version = match this {
        Ok(response) if response.status == 200 => {
            response.json()?["Config"]["Version"].as_str().unwrap_or("unknown").to_string()
        }
        Ok(response) => bail!(
            "Capture validation failed: error querying target agent: Unexpected response code: {} ({}). verify connectivity and agent address",
            response.status,
            String::from_utf8_lossy(&response.body).trim()
        ),
        Err(e) => bail!("Capture validation failed: error querying target agent: {e:#}. verify connectivity and agent address"),
    };
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("consul-debug-{}", unix_ms() / 1000)));
    if output.exists() {
        bail!("Capture validation failed: output directory already exists: {}", output.display());
    }
    std::fs::create_dir_all(&output).with_context(|| {
        format!("Capture validation failed: could not create output directory: {}", output.display())
    })?;
    let shown = match args.archive {
        true => format!("{}.tar.gz", output.display()),
        false => output.display().to_string(),
    };
    println!("==> Starting debugger and capturing static information...");
    println!("     Agent Version: '{version}'");
    println!("          Interval: '{}'", go_duration(plan.interval.as_nanos() as u64));
    println!("          Duration: '{}'", go_duration(plan.duration.as_nanos() as u64));
    println!("            Output: '{shown}'");
    println!("           Capture: '{}'", plan.targets.join(", "));
    let wants = |target: &str| plan.targets.iter().any(|t| t == target);

    for (target, path) in [("host", "/v1/agent/host"), ("agent", "/v1/agent/self"), ("members", "/v1/agent/members")] {
        if wants(target) {
            if let Err(e) = capture_json(http, path, &output.join(format!("{target}.json"))).await {
                eprintln!("==> Static capture failed: {e:#}");
            }
        }
    }
    let metrics = async {
        match wants("metrics") {
            true => capture_metrics(http, &plan, &output.join("metrics.json")).await,
            false => Ok(()),
        }
    };
    let logs = async {
        match wants("logs") {
            true => capture_logs(http, &plan, &output.join("consul.log")).await,
            false => Ok(()),
        }
    };
    let dynamic = async { tokio::join!(metrics, logs) };
    tokio::select! {
        (metrics, logs) = dynamic => {
            for result in [metrics, logs] {
                if let Err(e) = result {
                    eprintln!("==> Error encountered during collection: {e:#}");
                }
            }
        }
        _ = tokio::signal::ctrl_c() => eprintln!("==> stopping collection due to shutdown signal"),
    }
    let index = json!({
        "Version": ARCHIVE_VERSION,
        "AgentVersion": version,
        "Interval": go_duration(plan.interval.as_nanos() as u64),
        "Duration": go_duration((plan.duration + DURATION_GRACE).as_nanos() as u64),
        "Targets": plan.targets,
    });
    std::fs::write(output.join("index.json"), json_text(&index)).context("Error creating index document")?;
    if args.archive {
        archive(&output).context("Archive creation failed")?;
    }
    println!("    Saved debug archive: {shown}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_capture_is_everything_and_cluster_means_members() {
        let all = plan("2m", "30s", &[]).unwrap();
        assert_eq!(all.duration, Duration::from_secs(120));
        assert_eq!(all.targets, TARGETS.map(String::from).to_vec());
        let some = plan("3s", "1s", &["cluster".into(), "logs".into(), "members".into()]).unwrap();
        assert_eq!(some.targets, ["members", "logs"]);
    }

    #[test]
    fn a_duration_shorter_than_the_interval_is_refused_in_consuls_words() {
        let error = plan("3s", "5s", &[]).unwrap_err().to_string();
        assert_eq!(error, "Capture validation failed: duration (3s) must be longer than interval (5s)");
        let error = plan("1m", "30s", &["heap".into()]).unwrap_err().to_string();
        assert_eq!(error, "Capture validation failed: target not found: heap");
    }

    #[test]
    fn the_archive_holds_the_directory_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("capture");
        std::fs::create_dir(&output).unwrap();
        std::fs::write(output.join("agent.json"), b"{}").unwrap();
        let path = archive(&output).unwrap();
        assert_eq!(path, dir.path().join("capture.tar.gz"));
        assert!(!output.exists());
        let file = std::fs::File::open(&path).unwrap();
        let mut entries = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let names: Vec<String> =
            entries.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
        assert!(names.contains(&"capture/agent.json".to_string()), "{names:?}");
    }
}

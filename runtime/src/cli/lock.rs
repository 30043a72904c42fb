//! `conclave lock PREFIX COMMAND...`, as `consul lock`: create a session (TTL 15 s, renewed every half
//! TTL), take the lock on `PREFIX/.lock` (waiting for the holder with blocking queries), run COMMAND in a
//! shell while holding it, watch the key, and kill the child if the lock is lost. When the child ends the
//! lock is released and the session destroyed.

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};

use super::client::HttpFlags;
use super::kv::key_path;

/// The flags value `consul lock` writes on its lock key.
const LOCK_FLAG_VALUE: u64 = 0x2ddc_cbc0_58a5_0c18;
const SESSION_TTL: &str = "15s";
const RENEW_EVERY: Duration = Duration::from_millis(7_500);

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Name of the session.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Give up acquiring after this long (a Go duration); wait forever by default.
    #[arg(long = "try")]
    pub try_for: Option<String>,
    /// Exit 2 when the child fails (by default its failure is not propagated).
    #[arg(long = "child-exit-code")]
    pub child_exit_code: bool,
    /// Pass standard input to the child.
    #[arg(long = "pass-stdin")]
    pub pass_stdin: bool,
    /// Print what the lock is doing.
    #[arg(long)]
    pub verbose: bool,
    /// Number of holders (only 1, a lock, is supported).
    #[arg(long = "n", default_value_t = 1)]
    pub limit: u32,
    pub prefix: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn lock(args: LockArgs) -> anyhow::Result<i32> {
    if args.limit != 1 {
        bail!("Semaphores (-n > 1) are not supported by Conclave yet");
    }
    let key = format!("{}/.lock", args.prefix.trim_end_matches('/'));
    let name =
        if args.name.is_empty() { format!("Consul lock for {:?}", args.command.join(" ")) } else { args.name.clone() };
    let created = args.http.ok(
        "PUT",
        "/v1/session/create",
        json!({"Name": name, "TTL": SESSION_TTL, "Behavior": "release"}).to_string().into_bytes(),
    )?;
    let session = created.json()?["ID"].as_str().context("session create answered no ID")?.to_string();
    let stop_renewing = Arc::new(AtomicBool::new(false));
    let renewer = renew_in_background(args.http.clone(), session.clone(), stop_renewing.clone());
    let give_up_at = match &args.try_for {
        Some(text) => {
            Some(Instant::now() + conclave_core::api::parse_go_duration(text).map_err(|e| anyhow::anyhow!(e.message))?)
        }
        None => None,
    };
    let outcome = acquire(&args.http, &key, &session, give_up_at, args.verbose).and_then(|acquired| {
        if acquired {
            run_holding(&args, &key, &session).map(Some)
        } else {
            Ok(None)
        }
    });
    stop_renewing.store(true, Ordering::Relaxed);
    let release = format!("/v1/kv/{}?release={session}&flags={LOCK_FLAG_VALUE}", key_path(&key));
    let _ = args.http.call("PUT", &release, Vec::new());
    let _ = args.http.call("PUT", &format!("/v1/session/destroy/{session}"), Vec::new());
    let _ = renewer.join();
    match outcome? {
        None => {
            eprintln!("Shutdown triggered or timeout during lock acquisition");
            Ok(1)
        }
        Some(code) => Ok(code),
    }
}

fn renew_in_background(http: HttpFlags, session: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() >= RENEW_EVERY {
                let _ = http.call("PUT", &format!("/v1/session/renew/{session}"), Vec::new());
                last = Instant::now();
            }
        }
    })
}

/// Tries to take the lock until it succeeds or `give_up_at` passes, waiting on the key between tries.
fn acquire(
    http: &HttpFlags,
    key: &str,
    session: &str,
    give_up_at: Option<Instant>,
    verbose: bool,
) -> anyhow::Result<bool> {
    let mut index = 0u64;
    loop {
        let put =
            http.ok("PUT", &format!("/v1/kv/{}?acquire={session}&flags={LOCK_FLAG_VALUE}", key_path(key)), Vec::new())?;
        if put.json()?.as_bool() == Some(true) {
            if verbose {
                eprintln!("Lock acquired on {key}");
            }
            return Ok(true);
        }
        if give_up_at.is_some_and(|at| Instant::now() >= at) {
            return Ok(false);
        }
        // Wait for the holder to go (or a lock delay to pass), at most a few seconds per round.
        let wait_ms = give_up_at
            .map(|at| at.saturating_duration_since(Instant::now()).as_millis().max(1))
            .unwrap_or(5_000)
            .min(5_000);
        let (entry, new_index) = read_key(http, key, index, wait_ms as u64)?;
        let free = entry.as_ref().is_none_or(|e| e["Session"].as_str().unwrap_or("").is_empty());
        if free && new_index == index {
            std::thread::sleep(Duration::from_millis(500));
        }
        index = new_index;
    }
}

/// A blocking read of the lock key: its entry (if any) and the index to block on next.
fn read_key(http: &HttpFlags, key: &str, index: u64, wait_ms: u64) -> anyhow::Result<(Option<Value>, u64)> {
    let response = http.call("GET", &format!("/v1/kv/{}?index={index}&wait={wait_ms}ms", key_path(key)), Vec::new())?;
    let new_index = response.header("x-consul-index").and_then(|v| v.parse().ok()).unwrap_or(index);
    match response.status {
        404 => Ok((None, new_index)),
        200 => Ok((response.json()?.as_array().and_then(|a| a.first().cloned()), new_index)),
        status => bail!("Unexpected response code: {status}"),
    }
}

/// Runs the child while the lock is held; kills it if the lock is lost. Returns the exit code to use.
fn run_holding(args: &LockArgs, key: &str, session: &str) -> anyhow::Result<i32> {
    let mut child = spawn_child(&args.command, args.pass_stdin)?;
    let lost = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (http, key, session, lost, done) =
            (args.http.clone(), key.to_string(), session.to_string(), lost.clone(), done.clone());
        std::thread::spawn(move || {
            let mut index = 0;
            while !done.load(Ordering::Relaxed) {
                match read_key(&http, &key, index, 1_000) {
                    Ok((entry, new_index)) => {
                        let ours = entry.as_ref().is_some_and(|e| e["Session"].as_str() == Some(session.as_str()));
                        if !ours {
                            lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        index = new_index;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(500)),
                }
            }
        })
    };
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if lost.load(Ordering::Relaxed) {
            eprintln!("Lock lost, killing child");
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    done.store(true, Ordering::Relaxed);
    let _ = monitor.join();
    Ok(match status {
        None => 1,
        Some(status) if !status.success() && args.child_exit_code => 2,
        Some(_) => 0,
    })
}

fn spawn_child(command: &[String], pass_stdin: bool) -> anyhow::Result<Child> {
    let script = command.join(" ");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(if pass_stdin { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .with_context(|| format!("Error starting handler: {script}"))
}

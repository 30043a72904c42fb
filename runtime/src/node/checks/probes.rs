//! One probe of a check, through the Env: an HTTP(S) request (`http_probe`), a TCP connect or a script run,
//! each bounded by the check's timeout. What a result means is decided in `conclave_core::agent::check_monitor`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use conclave_core::agent::check_monitor::{script_status, PROBE_TIMEOUT_DEFAULT_MS, SCRIPT_TIMEOUT_DEFAULT_MS};
use conclave_core::agent::{truncate_output, CheckRun, ProbeResult};
use conclave_core::catalog::{CheckDefinition, CheckStatus};

pub use super::http_probe::http;
use crate::env::Env;

pub(super) fn timeout_of(definition: &CheckDefinition, default_ms: u64) -> Duration {
    Duration::from_millis(if definition.timeout_ms > 0 { definition.timeout_ms } else { default_ms })
}

pub(super) fn describe(timeout: Duration) -> String {
    format!("timed out after {}", humantime_ms(timeout))
}

fn humantime_ms(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `host:port` (or `[v6]:port`) to an address, resolving names through the Env.
pub(super) async fn resolve<E: Env>(env: &E, host: &str, port: u16) -> io::Result<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match bare.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => env.resolve_host(bare).await?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn split_host_port(target: &str) -> Option<(&str, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

/// A TCP check: passing when a connection opens within the timeout.
pub async fn tcp<E: Env>(env: &E, definition: &CheckDefinition) -> ProbeResult {
    let target = definition.tcp.as_str();
    let timeout = timeout_of(definition, PROBE_TIMEOUT_DEFAULT_MS);
    let attempt = async {
        let (host, port) = split_host_port(target)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address must be host:port"))?;
        let addr = resolve(env, host, port).await?;
        env.connect_tcp(addr).await.map(drop)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => ProbeResult::new(CheckStatus::Passing, format!("TCP connect {target}: Success")),
        Ok(Err(e)) => ProbeResult::new(CheckStatus::Critical, format!("dial tcp {target}: {e}")),
        Err(_) => ProbeResult::new(CheckStatus::Critical, format!("dial tcp {target}: {}", describe(timeout))),
    }
}

/// A script check: exit 0 passing, 1 warning, anything else (or a timeout) critical.
pub async fn script<E: Env>(env: &E, definition: &CheckDefinition, run: &CheckRun) -> ProbeResult {
    let timeout = timeout_of(definition, SCRIPT_TIMEOUT_DEFAULT_MS);
    match tokio::time::timeout(timeout, env.run_script(run.script_args.clone())).await {
        Ok(Ok((code, output))) => {
            ProbeResult::new(script_status(code), truncate_output(&String::from_utf8_lossy(&output)))
        }
        Ok(Err(e)) => ProbeResult::new(CheckStatus::Critical, format!("Failed to execute check: {e}")),
        Err(_) => {
            ProbeResult::new(CheckStatus::Critical, format!("Timed out ({}) running check", humantime_ms(timeout)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_targets_split_at_the_last_colon() {
        assert_eq!(split_host_port("localhost:22"), Some(("localhost", 22)));
        assert_eq!(split_host_port("[::1]:22"), Some(("[::1]", 22)));
        assert_eq!(split_host_port("nohost"), None);
    }
}

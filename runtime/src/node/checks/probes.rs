//! One probe of a check, through the Env: an HTTP(S) request, a TCP connect or a script run, each bounded by
//! the check's timeout. What a result means is decided in `conclave_core::agent::check_monitor`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use conclave_core::agent::check_monitor::{
    http_output, http_status, script_status, PROBE_TIMEOUT_DEFAULT_MS, SCRIPT_TIMEOUT_DEFAULT_MS,
};
use conclave_core::agent::{truncate_output, CheckRun, ProbeResult, CHECK_OUTPUT_BYTES_MAX};
use conclave_core::catalog::{CheckDefinition, CheckStatus};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::env::Env;

/// Redirects an HTTP check follows before it gives up (Go's client default).
const REDIRECTS_MAX: usize = 10;

fn timeout_of(definition: &CheckDefinition, default_ms: u64) -> Duration {
    Duration::from_millis(if definition.timeout_ms > 0 { definition.timeout_ms } else { default_ms })
}

fn describe(timeout: Duration) -> String {
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
async fn resolve<E: Env>(env: &E, host: &str, port: u16) -> io::Result<SocketAddr> {
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

/// An HTTP check: the status code decides, the first 4 KiB of the body are the output.
pub async fn http<E: Env>(env: &E, definition: &CheckDefinition, run: &CheckRun) -> ProbeResult {
    let method = if definition.method.is_empty() { "GET" } else { definition.method.as_str() };
    let timeout = timeout_of(definition, PROBE_TIMEOUT_DEFAULT_MS);
    let mut url = definition.http.clone();
    let outcome = tokio::time::timeout(timeout, async {
        for _ in 0..=REDIRECTS_MAX {
            let answer = http_once(env, method, &url, definition).await?;
            let follow = (300..400).contains(&answer.code) && !run.disable_redirects;
            match answer.location.as_deref().filter(|_| follow) {
                Some(location) => url = redirect_target(&url, location)?,
                None => return Ok(answer),
            }
        }
        Err(io::Error::other(format!("stopped after {REDIRECTS_MAX} redirects")))
    })
    .await;
    let shown = &definition.http;
    match outcome {
        Ok(Ok(answer)) => ProbeResult::new(
            http_status(answer.code),
            http_output(method, shown, answer.code, &answer.reason, &answer.body),
        ),
        Ok(Err(e)) => ProbeResult::new(CheckStatus::Critical, format!("HTTP {method} {shown}: {e}")),
        Err(_) => ProbeResult::new(CheckStatus::Critical, format!("HTTP {method} {shown}: {}", describe(timeout))),
    }
}

struct HttpAnswer {
    code: u16,
    reason: String,
    location: Option<String>,
    /// At most `CHECK_OUTPUT_BYTES_MAX` bytes; the rest of the body is not read.
    body: Vec<u8>,
}

fn parse_url(url: &str) -> io::Result<(hyper::Uri, String, u16)> {
    let uri: hyper::Uri = url.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "unsupported protocol scheme")),
    };
    let host = uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host in URL"))?.to_string();
    let port = uri.port_u16().unwrap_or(default_port);
    Ok((uri, host, port))
}

fn redirect_target(from: &str, location: &str) -> io::Result<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let (uri, _, _) = parse_url(from)?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let scheme = uri.scheme_str().unwrap_or("http");
    let path = if location.starts_with('/') { location.to_string() } else { format!("/{location}") };
    Ok(format!("{scheme}://{authority}{path}"))
}

async fn http_once<E: Env>(env: &E, method: &str, url: &str, definition: &CheckDefinition) -> io::Result<HttpAnswer> {
    let (uri, host, port) = parse_url(url)?;
    let addr = resolve(env, &host, port).await?;
    let stream = env.connect_tcp(addr).await?;
    if uri.scheme_str() == Some("https") {
        let connector = tokio_rustls::TlsConnector::from(super::tls::client_config(definition.tls_skip_verify));
        let name = rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?
            .to_owned();
        let stream = connector.connect(name, stream).await?;
        return exchange(stream, method, &uri, host, definition).await;
    }
    exchange(stream, method, &uri, host, definition).await
}

/// One request and the start of its answer on an open connection (plain or TLS).
async fn exchange<S>(
    stream: S,
    method: &str,
    uri: &hyper::Uri,
    host: String,
    definition: &CheckDefinition,
) -> io::Result<HttpAnswer>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(host);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", authority)
        .header("user-agent", "Consul Health Check")
        .header("accept", "text/plain, text/*, */*");
    for (name, values) in &definition.header {
        for value in values {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let request = builder
        .body(Full::new(Bytes::from(definition.body.clone())))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let result = async {
        let response = sender.send_request(request).await.map_err(io::Error::other)?;
        let code = response.status().as_u16();
        let reason = response.status().canonical_reason().unwrap_or("").to_string();
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body_stream = response.into_body();
        let mut body = Vec::new();
        while body.len() < CHECK_OUTPUT_BYTES_MAX {
            match body_stream.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        body.extend_from_slice(data);
                    }
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => break,
            }
        }
        body.truncate(CHECK_OUTPUT_BYTES_MAX);
        Ok(HttpAnswer { code, reason, location, body })
    }
    .await;
    driver.abort();
    result
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
    fn redirects_resolve_against_the_checked_url() {
        assert_eq!(redirect_target("http://10.0.0.1:9100/a", "/metrics").unwrap(), "http://10.0.0.1:9100/metrics");
        assert_eq!(redirect_target("http://h/a", "http://other/b").unwrap(), "http://other/b");
    }

    #[test]
    fn urls_name_scheme_host_and_port() {
        let (_, host, port) = parse_url("http://127.0.0.1:9100/metrics").unwrap();
        assert_eq!((host.as_str(), port), ("127.0.0.1", 9100));
        assert_eq!(parse_url("http://example.com/").unwrap().2, 80);
        assert_eq!(parse_url("https://x/").unwrap().2, 443);
        assert!(parse_url("ftp://x/").is_err());
    }

    #[test]
    fn tcp_targets_split_at_the_last_colon() {
        assert_eq!(split_host_port("localhost:22"), Some(("localhost", 22)));
        assert_eq!(split_host_port("[::1]:22"), Some(("[::1]", 22)));
        assert_eq!(split_host_port("nohost"), None);
    }
}

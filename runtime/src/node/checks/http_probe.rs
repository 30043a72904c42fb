//! The HTTP(S) probe: a request through the Env, redirects followed as Go's client follows them, HTTPS
//! through the agent's `CheckTls` with the check's `TLSServerName` and `TLSSkipVerify`.

use std::io;

use bytes::Bytes;
use conclave_core::agent::check_monitor::{http_output, http_status, PROBE_TIMEOUT_DEFAULT_MS};
use conclave_core::agent::{CheckRun, ProbeResult, CHECK_OUTPUT_BYTES_MAX};
use conclave_core::catalog::{CheckDefinition, CheckStatus};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::probes::{describe, resolve, timeout_of};
use crate::env::Env;
use crate::security::check_tls::{server_name, CheckTls};

/// Redirects an HTTP check follows before it gives up (Go's client default).
const REDIRECTS_MAX: usize = 10;
/// Causes shown under a hyper error; real chains are a few deep (hyper, io, rustls).
const ERROR_CAUSES_MAX: usize = 8;

/// An HTTP check: the status code decides, the first 4 KiB of the body are the output.
pub async fn http<E: Env>(env: &E, tls: &CheckTls, definition: &CheckDefinition, run: &CheckRun) -> ProbeResult {
    let method = if definition.method.is_empty() { "GET" } else { definition.method.as_str() };
    let timeout = timeout_of(definition, PROBE_TIMEOUT_DEFAULT_MS);
    let mut url = definition.http.clone();
    let outcome = tokio::time::timeout(timeout, async {
        for _ in 0..=REDIRECTS_MAX {
            let answer = http_once(env, tls, method, &url, definition).await?;
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

async fn http_once<E: Env>(
    env: &E,
    tls: &CheckTls,
    method: &str,
    url: &str,
    definition: &CheckDefinition,
) -> io::Result<HttpAnswer> {
    let (uri, host, port) = parse_url(url)?;
    let addr = resolve(env, &host, port).await?;
    let stream = env.connect_tcp(addr).await?;
    if uri.scheme_str() == Some("https") {
        // A redirect to another host keeps the check's TLSServerName, as Go's client keeps its ServerName.
        let name = server_name(&definition.tls_server_name, &host)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = tls.connector(definition.tls_skip_verify).connect(name, stream).await?;
        return exchange(stream, method, &uri, host, definition).await;
    }
    exchange(stream, method, &uri, host, definition).await
}

/// A hyper error with the errors under it: hyper's own text alone ("connection error") hides what the
/// target did, such as a TLS alert refusing the agent for want of a client certificate.
fn with_causes(error: hyper::Error) -> io::Error {
    let causes = std::iter::successors(std::error::Error::source(&error), |e| e.source()).take(ERROR_CAUSES_MAX);
    let mut texts: Vec<String> = std::iter::once(error.to_string()).chain(causes.map(|e| e.to_string())).collect();
    texts.dedup();
    io::Error::other(texts.join(": "))
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
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(with_causes)?;
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
        let response = sender.send_request(request).await.map_err(with_causes)?;
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
                Some(Err(e)) => return Err(with_causes(e)),
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
}

//! How client subcommands reach an agent: `-http-addr`, else `CONSUL_HTTP_ADDR` / `CONCLAVE_HTTP_ADDR`,
//! else 127.0.0.1:8500, over HTTPS when the address says `https://` or `CONSUL_HTTP_SSL` is true (with
//! `-ca-file`, `-ca-path`, `-client-cert`, `-client-key`, `-tls-server-name` or their `CONSUL_CACERT`,
//! `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`, `CONSUL_TLS_SERVER_NAME` variables, and
//! `CONSUL_HTTP_SSL_VERIFY=false` to skip verification); the ACL token goes in `X-Consul-Token`, taken as
//! Consul takes it: `-token`, else `-token-file`, else `CONSUL_HTTP_TOKEN`, else `CONSUL_HTTP_TOKEN_FILE`
//! (files are read and trimmed).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use rustls::pki_types::ServerName;

use crate::env::http_client::{self, HttpResponse};
use crate::security::https_client::HttpsClientTls;

#[derive(Args, Debug, Clone, Default)]
pub struct HttpFlags {
    /// Address of the agent's HTTP API (also CONSUL_HTTP_ADDR or CONCLAVE_HTTP_ADDR); `https://` for HTTPS.
    #[arg(long = "http-addr")]
    pub http_addr: Option<String>,
    /// ACL token sent with requests (also CONSUL_HTTP_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// File holding the ACL token sent with requests (also CONSUL_HTTP_TOKEN_FILE).
    #[arg(long = "token-file")]
    pub token_file: Option<String>,
    /// Datacenter to query (default: the agent's).
    #[arg(long)]
    pub datacenter: Option<String>,
    /// CA file verifying the agent's HTTPS certificate (also CONSUL_CACERT).
    #[arg(long = "ca-file")]
    pub ca_file: Option<PathBuf>,
    /// Directory of CA files verifying the agent's HTTPS certificate (also CONSUL_CAPATH).
    #[arg(long = "ca-path")]
    pub ca_path: Option<PathBuf>,
    /// Client certificate presented to the agent (also CONSUL_CLIENT_CERT).
    #[arg(long = "client-cert")]
    pub client_cert: Option<PathBuf>,
    /// Key of the client certificate (also CONSUL_CLIENT_KEY).
    #[arg(long = "client-key")]
    pub client_key: Option<PathBuf>,
    /// Name the agent's certificate is verified against and sent as SNI (also CONSUL_TLS_SERVER_NAME).
    #[arg(long = "tls-server-name")]
    pub tls_server_name: Option<String>,
}

/// Longest line of a streamed answer kept whole; a longer one is passed on in pieces of this size.
const STREAM_LINE_BYTES_MAX: usize = 1 << 20;

/// A byte stream to the agent: plain TCP or TLS over it.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

/// Where the agent is and how to talk to it.
struct Target {
    addr: SocketAddr,
    /// `host:port`, the Host header.
    host: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Go's strconv.ParseBool, which Consul reads its boolean variables with.
fn env_bool(name: &str) -> anyhow::Result<Option<bool>> {
    let Some(value) = env_var(name) else { return Ok(None) };
    match value.as_str() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(Some(true)),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(Some(false)),
        _ => bail!("Could not parse {name}: {value:?} is not a boolean"),
    }
}

impl HttpFlags {
    fn target(&self) -> anyhow::Result<Target> {
        let raw = self
            .http_addr
            .clone()
            .or_else(|| env_var("CONCLAVE_HTTP_ADDR"))
            .or_else(|| env_var("CONSUL_HTTP_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:8500".to_string());
        let (https, rest) = if let Some(rest) = raw.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = raw.strip_prefix("http://") {
            (env_bool("CONSUL_HTTP_SSL")?.unwrap_or(false), rest)
        } else if raw.starts_with("unix://") {
            bail!("unix socket addresses are not supported: {raw}");
        } else {
            (env_bool("CONSUL_HTTP_SSL")?.unwrap_or(false), raw.as_str())
        };
        let trimmed = rest.trim_end_matches('/');
        let host = if trimmed.contains(':') { trimmed.to_string() } else { format!("{trimmed}:8500") };
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("invalid HTTP address {raw:?}"))?
            .next()
            .context("no address")?;
        let tls = match https {
            true => Some(self.tls(&host)?),
            false => None,
        };
        Ok(Target { addr, host, tls })
    }

    fn tls(&self, host: &str) -> anyhow::Result<(tokio_rustls::TlsConnector, ServerName<'static>)> {
        let path = |flag: &Option<PathBuf>, var: &str| flag.clone().or_else(|| env_var(var).map(PathBuf::from));
        let settings = HttpsClientTls {
            ca_file: path(&self.ca_file, "CONSUL_CACERT"),
            ca_path: path(&self.ca_path, "CONSUL_CAPATH"),
            client_cert: path(&self.client_cert, "CONSUL_CLIENT_CERT"),
            client_key: path(&self.client_key, "CONSUL_CLIENT_KEY"),
            skip_verify: !env_bool("CONSUL_HTTP_SSL_VERIFY")?.unwrap_or(true),
        };
        let config = settings.client_config().map_err(|e| anyhow::anyhow!("Error setting up TLS: {e}"))?;
        let name = self.tls_server_name.clone().or_else(|| env_var("CONSUL_TLS_SERVER_NAME")).unwrap_or_else(|| {
            let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
            host_only.trim_start_matches('[').trim_end_matches(']').to_string()
        });
        let name = ServerName::try_from(name.clone()).with_context(|| format!("invalid TLS server name {name:?}"))?;
        Ok((tokio_rustls::TlsConnector::from(config), name))
    }

    /// The token to send, in Consul's order of precedence (api.Config: an explicit token beats a token
    /// file, and flags beat the environment). An unreadable token file is an error rather than silently
    /// sending no token.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let env_token = from_env("CONSUL_HTTP_TOKEN");
        let env_file = from_env("CONSUL_HTTP_TOKEN_FILE");
        resolve_token(self.token.as_deref(), self.token_file.as_deref(), env_token.as_deref(), env_file.as_deref())
    }

    /// Sends no token at all, as `consul login` does so that a login is not made with another identity.
    pub fn without_token(&self) -> HttpFlags {
        HttpFlags { token: Some(String::new()), token_file: None, ..self.clone() }
    }

    /// Sends one request and returns the response, whatever its status.
    pub fn call(&self, method: &str, path: &str, body: Vec<u8>) -> anyhow::Result<HttpResponse> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(self.call_async(method, path, body))
    }

    /// The path with the `-datacenter` flag added to its query.
    fn with_datacenter(&self, path: &str) -> String {
        let mut path = path.to_string();
        if let Some(dc) = &self.datacenter {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&format!("dc={dc}"));
        }
        path
    }

    /// A connection to the agent (TLS when the address asks for it), and the Host header to send.
    async fn connect(&self) -> anyhow::Result<(Box<dyn Connection>, String)> {
        let Target { addr, host, tls } = self.target()?;
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("Error connecting to agent at {host}: is an agent running there?"))?;
        let connection: Box<dyn Connection> = match tls {
            None => Box::new(stream),
            Some((connector, name)) => Box::new(
                connector
                    .connect(name, stream)
                    .await
                    .with_context(|| format!("Error connecting to agent at {host}: TLS handshake failed"))?,
            ),
        };
        Ok((connection, host))
    }

    /// `call` inside a runtime that is already running (`conclave debug` runs several at once).
    pub async fn call_async(&self, method: &str, path: &str, body: Vec<u8>) -> anyhow::Result<HttpResponse> {
        let path = self.with_datacenter(path);
        let token = self.token()?;
        let (stream, host) = self.connect().await?;
        let headers: Vec<(&str, &str)> = token.iter().map(|t| ("x-consul-token", t.as_str())).collect();
        http_client::request_with_headers(stream, method, &host, &path, body, headers)
            .await
            .context("HTTP request failed")
    }

    /// A GET whose answer is a stream of lines (`/v1/agent/monitor`): each complete line goes to `on_line`
    /// as it arrives, until the agent ends the stream (Ok). A non-200 answer is an error with the agent's
    /// message. Callers stop earlier by dropping the future.
    pub async fn stream_lines(
        &self,
        path: &str,
        mut on_line: impl FnMut(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut response = self.streaming("GET", path, http_client::empty_body()).await?;
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = response.next_chunk().await.context("reading the stream")? {
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                on_line(String::from_utf8_lossy(&line[..end]).trim_end_matches('\r'))?;
            }
            if pending.len() > STREAM_LINE_BYTES_MAX {
                on_line(&String::from_utf8_lossy(&pending))?;
                pending.clear();
            }
        }
        if !pending.is_empty() {
            on_line(&String::from_utf8_lossy(&pending))?;
        }
        Ok(())
    }

    /// One request with a streamed body whose answer is read as it arrives; a non-200 answer is an error
    /// with the agent's message.
    pub async fn streaming(
        &self,
        method: &str,
        path: &str,
        body: http_client::StreamedBody,
    ) -> anyhow::Result<http_client::StreamingResponse> {
        let path = self.with_datacenter(path);
        let token = self.token()?;
        let (stream, host) = self.connect().await?;
        let headers: Vec<(&str, &str)> = token.iter().map(|t| ("x-consul-token", t.as_str())).collect();
        let response = http_client::request_streaming_body(stream, method, &host, &path, headers, body)
            .await
            .context("HTTP request failed")?;
        if response.status != 200 {
            let status = response.status;
            let body = response.rest().await.unwrap_or_default();
            bail!("Unexpected response code: {status} ({})", String::from_utf8_lossy(&body).trim());
        }
        Ok(response)
    }

    /// Like `call`, but a non-200 answer is an error carrying the agent's message.
    pub fn ok(&self, method: &str, path: &str, body: Vec<u8>) -> anyhow::Result<HttpResponse> {
        let response = self.call(method, path, body)?;
        if response.status != 200 {
            bail!("Unexpected response code: {} ({})", response.status, String::from_utf8_lossy(&response.body).trim());
        }
        Ok(response)
    }

    pub fn json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        Ok(self.ok("GET", path, Vec::new())?.json()?)
    }
}

/// Picks the token from the flag, the flag's file, the variable and the variable's file, in that order.
/// `Some("")` from a flag means "no token" and stops the search, as an explicitly empty flag does in Consul.
pub fn resolve_token(
    flag: Option<&str>,
    flag_file: Option<&str>,
    env_token: Option<&str>,
    env_file: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let read = |path: &str| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path).with_context(|| format!("Error loading token file: {path}"))?;
        Ok(text.trim().to_string())
    };
    let token = match (flag, flag_file, env_token, env_file) {
        (Some(token), _, _, _) => token.to_string(),
        (None, Some(path), _, _) => read(path)?,
        (None, None, Some(token), _) => token.to_string(),
        (None, None, None, Some(path)) => read(path)?,
        (None, None, None, None) => String::new(),
    };
    Ok(Some(token).filter(|t| !t.is_empty()))
}

/// Lays out rows in columns separated by two spaces, as Consul's columnize does.
pub fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.iter().map(Vec::len).max().unwrap_or(0))
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_flag_beats_token_file_beats_env_token_beats_env_file() {
        let dir = tempfile::tempdir().unwrap();
        let (flag_file, env_file) = (dir.path().join("flag"), dir.path().join("env"));
        std::fs::write(&flag_file, "  from-flag-file\n").unwrap();
        std::fs::write(&env_file, "from-env-file\n").unwrap();
        let (flag_file, env_file) = (flag_file.to_str().unwrap(), env_file.to_str().unwrap());
        let pick = |flag, file, env, env_file| resolve_token(flag, file, env, env_file).unwrap();
        assert_eq!(pick(Some("f"), Some(flag_file), Some("e"), Some(env_file)).as_deref(), Some("f"));
        assert_eq!(pick(None, Some(flag_file), Some("e"), Some(env_file)).as_deref(), Some("from-flag-file"));
        assert_eq!(pick(None, None, Some("e"), Some(env_file)).as_deref(), Some("e"));
        assert_eq!(pick(None, None, None, Some(env_file)).as_deref(), Some("from-env-file"));
        assert_eq!(pick(None, None, None, None), None);
    }

    #[test]
    fn empty_token_flag_sends_no_token() {
        assert_eq!(resolve_token(Some(""), None, Some("e"), None).unwrap(), None);
    }

    #[test]
    fn unreadable_token_file_is_an_error() {
        let error = resolve_token(None, Some("/nonexistent/token"), None, None).unwrap_err();
        assert_eq!(error.to_string(), "Error loading token file: /nonexistent/token");
    }
}

//! How client subcommands reach an agent: `-http-addr`, else `CONSUL_HTTP_ADDR` / `CONCLAVE_HTTP_ADDR`,
//! else 127.0.0.1:8500; the ACL token goes in `X-Consul-Token`, taken as Consul takes it: `-token`, else
//! `-token-file`, else `CONSUL_HTTP_TOKEN`, else `CONSUL_HTTP_TOKEN_FILE` (files are read and trimmed).

use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{bail, Context};
use clap::Args;

use crate::env::http_client::{self, HttpResponse};

#[derive(Args, Debug, Clone, Default)]
pub struct HttpFlags {
    /// Address of the agent's HTTP API (also CONSUL_HTTP_ADDR or CONCLAVE_HTTP_ADDR).
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
}

impl HttpFlags {
    fn address(&self) -> anyhow::Result<(SocketAddr, String)> {
        let raw = self
            .http_addr
            .clone()
            .or_else(|| std::env::var("CONCLAVE_HTTP_ADDR").ok())
            .or_else(|| std::env::var("CONSUL_HTTP_ADDR").ok())
            .unwrap_or_else(|| "127.0.0.1:8500".to_string());
        let trimmed = raw.trim_start_matches("http://").trim_end_matches('/').to_string();
        if raw.starts_with("https://") {
            bail!("HTTPS is not supported: {raw}");
        }
        let with_port = if trimmed.contains(':') { trimmed.clone() } else { format!("{trimmed}:8500") };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("invalid HTTP address {raw:?}"))?
            .next()
            .context("no address")?;
        Ok((addr, with_port))
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
        let (addr, host) = self.address()?;
        let mut path = path.to_string();
        if let Some(dc) = &self.datacenter {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&format!("dc={dc}"));
        }
        let token = self.token()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("Error connecting to agent at {host}: is an agent running there?"))?;
            http_client::request_with_headers(
                stream,
                method,
                &host,
                &path,
                body,
                token.iter().map(|t| ("x-consul-token", t.as_str())).collect(),
            )
            .await
            .context("HTTP request failed")
        })
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

//! How client subcommands reach an agent: `-http-addr`, else `CONSUL_HTTP_ADDR` / `CONCLAVE_HTTP_ADDR`,
//! else 127.0.0.1:8500; a token from `-token` or `CONSUL_HTTP_TOKEN` goes in `X-Consul-Token`.

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

    fn token(&self) -> Option<String> {
        self.token.clone().or_else(|| std::env::var("CONSUL_HTTP_TOKEN").ok()).filter(|t| !t.is_empty())
    }

    /// Sends one request and returns the response, whatever its status.
    pub fn call(&self, method: &str, path: &str, body: Vec<u8>) -> anyhow::Result<HttpResponse> {
        let (addr, host) = self.address()?;
        let mut path = path.to_string();
        if let Some(dc) = &self.datacenter {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str(&format!("dc={dc}"));
        }
        let token = self.token();
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

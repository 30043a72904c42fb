//! A small blocking HTTP client for tests (ureq), answering every status as a value rather than an error.

use std::time::Duration;

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn index(&self) -> u64 {
        self.header("x-consul-index").and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
}

/// Sends a request; `Err` only when no HTTP answer came back (refused, reset, timed out).
pub fn request(method: &str, url: &str, body: Option<&[u8]>, timeout: Duration) -> Result<Reply, String> {
    let request = agent(timeout).request(method, url);
    let result = match body {
        Some(body) => request.send_bytes(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => return Err(e.to_string()),
    };
    let status = response.status();
    let headers = response.headers_names().into_iter().map(|name| {
        let value = response.header(&name).unwrap_or_default().to_string();
        (name, value)
    });
    let headers = headers.collect();
    let body = response.into_string().map_err(|e| e.to_string())?;
    Ok(Reply { status, headers, body })
}

pub fn get(url: &str) -> Result<Reply, String> {
    request("GET", url, None, Duration::from_secs(10))
}

pub fn put(url: &str, body: &str) -> Result<Reply, String> {
    request("PUT", url, Some(body.as_bytes()), Duration::from_secs(15))
}

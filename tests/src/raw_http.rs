//! A raw HTTP/1.1 client for hostile-input tests: exact bytes on the wire (no URL normalisation of `..` or
//! `%2E%2E`), non-UTF-8 bodies, chunked uploads, lying Content-Length headers. Unlike `http` (ureq), it
//! sends the request target exactly as given and reads an answer even when the server answers early and
//! closes. It talks to an agent's HTTP port, 8500, on the agent's own loopback address.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: Vec<u8>,
    /// From connecting to the end of the answer.
    pub elapsed: Duration,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn short_body(&self) -> String {
        let text = self.body_text();
        if text.len() > 300 {
            let cut = (0..=300).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            format!("{}… ({} bytes)", &text[..cut], self.body.len())
        } else {
            text
        }
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

fn addr(ip: &str) -> SocketAddr {
    format!("{ip}:8500").parse().expect("agent address")
}

/// A TCP connection to the agent's HTTP port, giving up after 5 s.
pub fn connect(ip: &str) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&addr(ip), Duration::from_secs(5))
}

/// Where the head ends and how long the body is, once enough of the answer has arrived.
fn parse_complete(buf: &[u8]) -> Option<(usize, Option<Vec<u8>>)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let rest = &buf[head_end..];
    if head.contains("transfer-encoding: chunked") {
        return Some((head_end, dechunk(rest)));
    }
    let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok());
    match length {
        Some(n) if rest.len() >= n => Some((head_end, Some(rest[..n].to_vec()))),
        Some(_) => Some((head_end, None)),
        // No length and not chunked: the body runs to the close.
        None => Some((head_end, None)),
    }
}

/// A complete chunked body, decoded, or `None` while more is to come.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if rest.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Sends `head` then `body` (from another thread, so an early answer such as a 413 is read while the
/// body is still being written) and reads one answer.
pub fn raw_exchange(ip: &str, head: Vec<u8>, body: Vec<u8>, timeout: Duration) -> Result<Reply, String> {
    let started = Instant::now();
    let mut stream = connect(ip).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    writer.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        // The server may answer and close before taking everything: a failed write is not an answer.
        let _ = writer.write_all(&head).and_then(|()| writer.write_all(&body));
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let outcome = loop {
        if started.elapsed() > timeout {
            break Err(format!("no complete answer within {timeout:?} (got {} bytes)", buf.len()));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some((_, Some(_))) = parse_complete(&buf) {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if buf.is_empty() && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(format!("no answer within {timeout:?} (connection still open)"))
            }
            Err(e) if buf.is_empty() => break Err(format!("read after {:?}: {e}", started.elapsed())),
            // Reset after (part of) an answer: parse what came.
            Err(_) => break Ok(()),
        }
    };
    let elapsed = started.elapsed();
    let _ = stream.shutdown(Shutdown::Both);
    let _ = sender.join();
    outcome?;
    let (head_end, body) = parse_complete(&buf)
        .ok_or_else(|| format!("connection closed without an answer head ({} bytes)", buf.len()))?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let body = body.unwrap_or_else(|| buf[head_end..].to_vec());
    Ok(Reply { status, head, body, elapsed })
}

/// One request with an exact target (already percent-encoded as wanted) and a body with Content-Length.
pub fn raw(ip: &str, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {ip}:8500\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    raw_exchange(ip, head.into_bytes(), body.to_vec(), Duration::from_secs(15))
}

/// A GET with no body.
pub fn raw_get(ip: &str, target: &str) -> Result<Reply, String> {
    let head = format!("GET {target} HTTP/1.1\r\nHost: {ip}:8500\r\nConnection: close\r\n\r\n");
    raw_exchange(ip, head.into_bytes(), Vec::new(), Duration::from_secs(15))
}

/// `body` sent with `Transfer-Encoding: chunked` (no Content-Length), in 64 KiB chunks.
pub fn raw_chunked(ip: &str, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {ip}:8500\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut encoded = Vec::with_capacity(body.len() + body.len() / 1000 + 16);
    for chunk in body.chunks(64 * 1024) {
        encoded.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        encoded.extend_from_slice(chunk);
        encoded.extend_from_slice(b"\r\n");
    }
    encoded.extend_from_slice(b"0\r\n\r\n");
    raw_exchange(ip, head.into_bytes(), encoded, Duration::from_secs(20))
}

/// Every byte but ASCII letters and digits percent-encoded (so `.` becomes `%2E`).
pub fn pct(text: &[u8]) -> String {
    text.iter()
        .map(|&b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Standard base64 with padding, the way Consul shows KV values.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

//! A minimal HTTP/1.1 client over any async stream (hyper), for the CLI, the simulator's clients and the
//! benchmark: one request per connection, the whole body read into memory (or, for streams, read as it
//! arrives).

use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Largest response body read; larger answers are an error rather than an allocation without bound.
pub const RESPONSE_BODY_BYTES_MAX: usize = 64 << 20;

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Sends one request on `stream` and reads the whole response.
pub async fn request<S>(
    stream: S,
    method: &str,
    host: &str,
    path_and_query: &str,
    body: Vec<u8>,
) -> io::Result<HttpResponse>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    request_with_headers(stream, method, host, path_and_query, body, Vec::new()).await
}

/// `request` with extra headers.
pub async fn request_with_headers<S>(
    stream: S,
    method: &str,
    host: &str,
    path_and_query: &str,
    body: Vec<u8>,
    headers: Vec<(&str, &str)>,
) -> io::Result<HttpResponse>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder =
        Request::builder().method(method).uri(path_and_query).header("host", host).header("content-length", body.len());
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(Full::new(Bytes::from(body))).map_err(io::Error::other)?;
    let result = async {
        let response = sender.send_request(request).await.map_err(io::Error::other)?;
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let limited = http_body_util::Limited::new(response.into_body(), RESPONSE_BODY_BYTES_MAX);
        let body = limited.collect().await.map_err(|e| io::Error::other(e.to_string()))?.to_bytes().to_vec();
        Ok(HttpResponse { status, headers, body })
    }
    .await;
    driver.abort();
    result
}

/// A response's headers as (name, value) text pairs, values read lossily as UTF-8.
pub fn header_pairs(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

/// A response whose body is read as it arrives (`/v1/agent/monitor`): the connection lives as long as
/// this value.
pub struct StreamingResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: hyper::body::Incoming,
    driver: tokio::task::JoinHandle<()>,
}

impl StreamingResponse {
    /// The next piece of the body; None once it has ended.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(io::Error::other(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// The rest of the body, up to `RESPONSE_BODY_BYTES_MAX` (an error answer's text).
    pub async fn rest(mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            if out.len() + chunk.len() > RESPONSE_BODY_BYTES_MAX {
                return Err(io::Error::other("response body too large"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl Drop for StreamingResponse {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A request body sent as it is produced (`conclave snapshot restore` sends a file of any size).
pub type StreamedBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;

/// An empty `StreamedBody`.
pub fn empty_body() -> StreamedBody {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
}

/// Sends one bodiless request on `stream` and returns as soon as the response's headers are in.
pub async fn request_streaming<S>(
    stream: S,
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: Vec<(&str, &str)>,
) -> io::Result<StreamingResponse>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    request_streaming_body(stream, method, host, path_and_query, headers, empty_body()).await
}

/// Sends one request whose body is streamed, and returns as soon as the response's headers are in.
pub async fn request_streaming_body<S>(
    stream: S,
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: Vec<(&str, &str)>,
    body: StreamedBody,
) -> io::Result<StreamingResponse>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(io::Error::other)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut builder = Request::builder().method(method).uri(path_and_query).header("host", host);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let request = builder.body(body).map_err(io::Error::other)?;
    match sender.send_request(request).await {
        Ok(response) => Ok(StreamingResponse {
            status: response.status().as_u16(),
            headers: header_pairs(response.headers()),
            body: response.into_body(),
            driver,
        }),
        Err(e) => {
            driver.abort();
            Err(io::Error::other(e))
        }
    }
}

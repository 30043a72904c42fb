//! Watch handlers, as Consul runs them: a script gets the data as JSON on stdin and `CONSUL_INDEX` in its
//! environment (`args` run directly, the legacy `handler` through `sh -c`); an HTTP handler gets the JSON
//! as the body of `method path` with the configured headers and `X-Consul-Index`; without a handler the
//! data is printed, indented by four spaces as `consul watch` prints it.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::config::watches::{HttpHandler, WatchHandler};
use crate::env::http_client;
use crate::security::https_client::HttpsClientTls;

/// Runs `handler` once for the data at `index`; failures are logged (Consul logs and keeps watching).
pub async fn invoke(handler: &WatchHandler, index: u64, data: &Value) {
    let result = match handler {
        WatchHandler::Print => {
            println!("{}", String::from_utf8_lossy(&crate::http::json_body(data, true)).trim_end());
            Ok(())
        }
        WatchHandler::Args(args) => script(args, index, data).await,
        WatchHandler::Shell(command) => script(&["/bin/sh".into(), "-c".into(), command.clone()], index, data).await,
        WatchHandler::Http(http) => post(http, index, data).await,
    };
    if let Err(why) = result {
        tracing::error!(error = %why, "watch: handler failed");
    }
}

/// Consul encodes the handler's input with Go's `json.Encoder`: compact, with a newline.
fn input(data: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(data).expect("JSON values always serialize");
    bytes.push(b'\n');
    bytes
}

async fn script(args: &[String], index: u64, data: &Value) -> Result<(), String> {
    let (program, rest) = args.split_first().ok_or("empty handler")?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env("CONSUL_INDEX", index.to_string())
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("Failed to invoke watch handler {program:?}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A handler that does not read its input is not an error.
        let _ = stdin.write_all(&input(data)).await;
    }
    let status = child.wait().await.map_err(|e| format!("watch handler {program:?}: {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("watch handler {program:?} exited with {status}")),
    }
}

async fn post(http: &HttpHandler, index: u64, data: &Value) -> Result<(), String> {
    let uri: hyper::Uri = http.path.parse().map_err(|e| format!("bad handler URL {:?}: {e}", http.path))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("no host in the handler URL")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_else(|| host.clone());
    let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_else(|| "/".to_string());
    let index_text = index.to_string();
    let mut headers: Vec<(&str, &str)> = http.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    headers.push(("x-consul-index", &index_text));
    headers.push(("content-type", "application/json"));
    let body = input(data);
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
        let response = if https {
            let settings = HttpsClientTls { skip_verify: http.tls_skip_verify, ..HttpsClientTls::default() };
            let connector = tokio_rustls::TlsConnector::from(settings.client_config()?);
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
            let stream = connector.connect(name, stream).await.map_err(|e| e.to_string())?;
            http_client::request_with_headers(stream, &http.method, &authority, &path, body, headers).await
        } else {
            http_client::request_with_headers(stream, &http.method, &authority, &path, body, headers).await
        };
        response.map_err(|e| e.to_string())
    };
    let response = tokio::time::timeout(http.timeout, exchange)
        .await
        .map_err(|_| format!("watch handler {} timed out after {:?}", http.path, http.timeout))??;
    match response.status {
        200..=299 => Ok(()),
        status => Err(format!("watch handler {} answered {status}", http.path)),
    }
}

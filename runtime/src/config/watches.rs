//! The `watches` configuration key (and `conclave watch`'s flags): Consul's watch objects — a `type`
//! with its own keys (`key`, `prefix`, `service`, `tag`, `passingonly`, `state`, `name`), the common
//! `datacenter`, `token` and `stale`, and a handler: `handler_type = "script"` with `args` (or the
//! legacy `handler`, run by a shell) or `"http"` with `http_handler_config`. Every key is consumed;
//! what is left is refused by name (Consul's "Invalid parameters"), so no setting is silently ignored.

use std::time::Duration;

use serde_json::{Map, Value};

/// Consul's default timeout of an HTTP watch handler.
const HTTP_HANDLER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// What a watch follows, with the keys of its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Key {
        key: String,
    },
    KeyPrefix {
        prefix: String,
    },
    Services,
    Nodes,
    Service {
        service: String,
        tags: Vec<String>,
        passing_only: bool,
    },
    /// Checks of one service, or in one state (`any` when neither is given).
    Checks {
        service: String,
        state: String,
        tags: Vec<String>,
    },
    Event {
        name: String,
    },
}

/// What runs when the watched data changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchHandler {
    /// Print the data (the CLI without a handler command).
    Print,
    /// Run `args` directly, the data on stdin.
    Args(Vec<String>),
    /// Run `handler` with `sh -c` (Consul's legacy `handler` key, and the CLI's default `-shell`).
    Shell(String),
    Http(HttpHandler),
}

/// Consul's `http_handler_config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpHandler {
    pub path: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub tls_skip_verify: bool,
}

/// One watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSpec {
    pub kind: WatchKind,
    pub datacenter: Option<String>,
    pub token: Option<String>,
    pub stale: bool,
    pub handler: WatchHandler,
}

/// Parses one watch object of an agent's configuration, which must name a handler.
pub fn parse_watch(value: &Value) -> Result<WatchSpec, String> {
    let mut params = value.as_object().cloned().ok_or("a watch must be an object")?;
    let kind = parse_kind(&mut params)?;
    let datacenter = take_string(&mut params, "datacenter")?.filter(|s| !s.is_empty());
    let token = take_string(&mut params, "token")?.filter(|s| !s.is_empty());
    let stale = take_bool(&mut params, "stale")?.unwrap_or(false);
    let handler = parse_handler(&mut params)?;
    if !params.is_empty() {
        let keys: Vec<&str> = params.keys().map(String::as_str).collect();
        return Err(format!("Invalid parameters: [{}]", keys.join(" ")));
    }
    Ok(WatchSpec { kind, datacenter, token, stale, handler })
}

/// The type and its keys, taken out of `params`.
pub fn parse_kind(params: &mut Map<String, Value>) -> Result<WatchKind, String> {
    let kind = take_string(params, "type")?.ok_or("Watch type must be specified")?;
    let required = |params: &mut Map<String, Value>, key: &str, message: &str| -> Result<String, String> {
        take_string(params, key)?.filter(|s| !s.is_empty()).ok_or_else(|| message.to_string())
    };
    Ok(match kind.as_str() {
        "key" => WatchKind::Key { key: required(params, "key", "Must specify a single key to watch")? },
        "keyprefix" => {
            WatchKind::KeyPrefix { prefix: required(params, "prefix", "Must specify a single prefix to watch")? }
        }
        "services" => WatchKind::Services,
        "nodes" => WatchKind::Nodes,
        "service" => WatchKind::Service {
            service: required(params, "service", "Must specify a single service to watch")?,
            tags: take_strings(params, "tag")?,
            passing_only: take_bool(params, "passingonly")?.unwrap_or(false),
        },
        "checks" => {
            let service = take_string(params, "service")?.unwrap_or_default();
            let state = take_string(params, "state")?.unwrap_or_default();
            if !service.is_empty() && !state.is_empty() {
                return Err("Cannot specify service and state".to_string());
            }
            let state = if service.is_empty() && state.is_empty() { "any".to_string() } else { state };
            WatchKind::Checks { service, state, tags: take_strings(params, "tag")? }
        }
        "event" => WatchKind::Event { name: take_string(params, "name")?.unwrap_or_default() },
        other => return Err(format!("Unsupported watch type: {other}")),
    })
}

fn parse_handler(params: &mut Map<String, Value>) -> Result<WatchHandler, String> {
    let handler_type = take_string(params, "handler_type")?;
    let args = take_strings(params, "args")?;
    let shell = take_string(params, "handler")?.filter(|s| !s.is_empty());
    let http = params.remove("http_handler_config");
    match handler_type.as_deref() {
        Some("http") => {
            if !args.is_empty() || shell.is_some() {
                return Err("Only http_handler_config may be given with handler_type \"http\"".to_string());
            }
            parse_http(http.as_ref().ok_or("Must define http_handler_config for an http watch handler")?)
        }
        None | Some("script") | Some("") => {
            if http.is_some() {
                return Err("http_handler_config needs handler_type \"http\"".to_string());
            }
            match (args.is_empty(), shell) {
                (false, Some(_)) => Err("Only one watch handler allowed".to_string()),
                (false, None) => Ok(WatchHandler::Args(args)),
                (true, Some(shell)) => Ok(WatchHandler::Shell(shell)),
                (true, None) => Err("Must define a watch handler (args, handler or http_handler_config)".to_string()),
            }
        }
        Some(other) => Err(format!("Handler type '{other}' not recognized")),
    }
}

fn parse_http(value: &Value) -> Result<WatchHandler, String> {
    let mut config = value.as_object().cloned().ok_or("http_handler_config must be an object")?;
    let path =
        take_string(&mut config, "path")?.filter(|p| !p.is_empty()).ok_or("http_handler_config.path is required")?;
    if !path.starts_with("http://") && !path.starts_with("https://") {
        return Err(format!("http_handler_config.path must be an http:// or https:// URL: {path:?}"));
    }
    let method = take_string(&mut config, "method")?.filter(|m| !m.is_empty()).unwrap_or_else(|| "POST".to_string());
    let mut headers = Vec::new();
    if let Some(header) = config.remove("header") {
        let map = header.as_object().ok_or("http_handler_config.header must be an object of lists")?;
        for (name, values) in map {
            let values = values.as_array().ok_or("http_handler_config.header values must be lists")?;
            for value in values {
                let value = value.as_str().ok_or("http_handler_config.header values must be strings")?;
                headers.push((name.clone(), value.to_string()));
            }
        }
    }
    let timeout = match take_string(&mut config, "timeout")? {
        None => HTTP_HANDLER_TIMEOUT_DEFAULT,
        Some(text) => conclave_core::api::parse_go_duration(&text)
            .map_err(|_| format!("http_handler_config.timeout: invalid duration {text:?}"))?,
    };
    let tls_skip_verify = take_bool(&mut config, "tls_skip_verify")?.unwrap_or(false);
    if !config.is_empty() {
        let keys: Vec<&str> = config.keys().map(String::as_str).collect();
        return Err(format!("Invalid parameters in http_handler_config: [{}]", keys.join(" ")));
    }
    Ok(WatchHandler::Http(HttpHandler { path, method, headers, timeout, tls_skip_verify }))
}

fn take_string(params: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match params.remove(key) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("Expecting {key} to be a string")),
    }
}

/// A list of strings, or one string (Consul accepts both for `tag`).
fn take_strings(params: &mut Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match params.remove(key) {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| format!("Expecting {key} to be a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("Expecting {key} to be a list of strings")),
    }
}

fn take_bool(params: &mut Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match params.remove(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(text)) if text == "true" || text == "false" => Ok(Some(text == "true")),
        Some(_) => Err(format!("Expecting {key} to be a boolean")),
    }
}

#[cfg(test)]
#[path = "watches_tests.rs"]
mod tests;

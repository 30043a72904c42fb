//! The web UI (`-ui`): one small static page at `/ui/` that reads the HTTP API from the browser —
//! services with their instances and health, nodes, and the leader.

use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};

const PAGE: &str = include_str!("ui.html");

pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

pub async fn root() -> Redirect {
    Redirect::temporary("/ui/")
}

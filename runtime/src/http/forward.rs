//! The HTTP side of forwarding between agents: a client agent's request becomes a
//! [`ForwardedRequest`] for the node to send to a server, the server's answer becomes the client's
//! response, and on a server the router is installed as the node's handler of forwarded requests.

use std::future::Future;
use std::pin::Pin;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, Request as HttpRequest, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::env::Env;
use crate::node::forward::{self, ForwardedAnswer, ForwardedRequest, ForwardedRequestHandler};
use crate::node::Node;

/// On a client agent: forwards a request to a server and answers with what the server answered (a 500
/// naming the failure when no server answered).
pub async fn forward_to_server<E: Env>(
    node: &Node<E>,
    method: &str,
    path_and_query: &str,
    body: Bytes,
    token: String,
) -> Response {
    let request = ForwardedRequest {
        method: method.to_string(),
        path_and_query: path_and_query.to_string(),
        body: body.to_vec(),
        token,
    };
    match forward::forward(node, request).await {
        Ok(answer) => answer_to_response(answer),
        Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    }
}

/// On a server that does not lead: sends a read to the leader and answers with what it answered.
pub async fn forward_to_leader<E: Env>(node: &Node<E>, method: &str, path_and_query: &str, token: String) -> Response {
    let request = ForwardedRequest {
        method: method.to_string(),
        path_and_query: path_and_query.to_string(),
        body: Vec::new(),
        token,
    };
    match forward::forward_to_leader(node, request).await {
        Ok(answer) => answer_to_response(answer),
        Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    }
}

fn answer_to_response(answer: ForwardedAnswer) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// On a server: runs forwarded requests through the HTTP router.
pub struct RouterHandler(pub Router);

impl ForwardedRequestHandler for RouterHandler {
    fn handle(
        &self,
        request: ForwardedRequest,
    ) -> Pin<Box<dyn Future<Output = Result<ForwardedAnswer, String>> + Send>> {
        let router = self.0.clone();
        Box::pin(async move {
            let request = HttpRequest::builder()
                .method(request.method.as_str())
                .uri(request.path_and_query.as_str())
                .header("x-consul-token", request.token.as_str())
                .body(Body::from(request.body))
                .map_err(|e| format!("bad forwarded request: {e}"))?;
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let status = response.status().as_u16();
            let headers = crate::env::http_client::header_pairs(response.headers());
            let body = match response.into_body().collect().await {
                Ok(collected) => collected.to_bytes().to_vec(),
                Err(e) => return Err(format!("cannot read response: {e}")),
            };
            Ok(ForwardedAnswer { status, headers, body })
        })
    }
}

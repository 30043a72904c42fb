//! `PUT /v1/txn`: Consul's transactions. A transaction that writes is one Raft entry (all or nothing;
//! 409 with every failed operation when rolled back); a read-only one is answered from local state after
//! the read barrier its consistency mode asks for, with the query-meta headers.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use conclave_core::api::encode_kv::txn_json;
use conclave_core::kv::{TxnOp, TxnOutcome};
use conclave_core::state::{Command, Response as Applied, WatchKey};

use super::authz::Caller;
use super::{await_read, json_response, set_query_meta, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;

pub async fn txn<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    params.check_datacenter(&node.config.datacenter)?;
    let ops = conclave_core::api::decode_txn(&body)?;
    let datacenter = node.config.datacenter.clone();
    if ops.iter().all(TxnOp::is_read) {
        let read_only = QueryParams { index: None, ..params.clone() };
        await_read(&node, &read_only, &WatchKey::Kv).await?;
        let (index, outcome) = {
            let catalog = node.state.read();
            if let Some(authority) = caller.authority() {
                catalog.authorize(&authority, &Command::Txn(ops.clone()))?;
            }
            (catalog.last_index(), catalog.read_txn(&ops))
        };
        let mut response = answer(outcome, &params, &datacenter);
        set_query_meta(&mut response, &node, &params, index);
        return Ok(response);
    }
    match node.write_as(Command::Txn(ops), caller.authority()).await? {
        (_, Applied::Txn(outcome)) => Ok(answer(outcome, &params, &datacenter)),
        (_, Applied::Denied(why)) => Err(super::authz::denied(why)),
        (_, Applied::Rejected(why)) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why)),
        (_, other) => Err(HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("unexpected answer {other:?}"))),
    }
}

fn answer(outcome: TxnOutcome, params: &QueryParams, datacenter: &str) -> Response {
    match outcome {
        TxnOutcome::Committed(results) => json_response(&txn_json(&results, &[], datacenter), params),
        TxnOutcome::RolledBack(errors) => {
            let mut response = json_response(&txn_json(&[], &errors, datacenter), params);
            *response.status_mut() = StatusCode::CONFLICT;
            response
        }
    }
}

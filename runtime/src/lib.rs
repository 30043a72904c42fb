//! conclave: the Conclave node — the async driver over an `Env`, Raft glue, RPC, the HTTP API and the CLI.
//! The `conclave` binary runs it on tokio and fjall; the `sim` crate runs the same driver on turmoil.

pub mod cli;
pub mod config;
pub mod dns;
pub mod env;
pub mod http;
pub mod http_client;
pub mod node;
pub mod raft;
pub mod rpc;

//! conclave: the Conclave agent — the async node driver over an `Env`, its faces (the HTTP API and DNS)
//! and the CLI. The `conclave` binary runs it on tokio and fjall; the `sim` crate runs the same agent on
//! turmoil. Layers, lowest first; a module imports only from layers below it (`tests/layers.rs` checks):
//! `env`, `config` ← `security`, `telemetry` ← `rpc` ← `raft` ← `node` ← `http`, `dns` ← `agent` ← `cli` ← `main.rs`.

pub mod agent;
pub mod cli;
pub mod config;
pub mod dns;
pub mod env;
pub mod http;
pub mod node;
pub mod raft;
pub mod rpc;
pub mod security;
pub mod telemetry;

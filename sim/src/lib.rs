//! sim: Conclave's deterministic chaos simulator. Servers run the production node driver on turmoil with a
//! simulated disk; clients use the real HTTP API and record histories; scenarios inject crashes and
//! partitions drawn from one seed; the checker proves each history linearizable and durable.
//!
//! A run is `(scenario, seed)`; `run::run` executes it and returns the trace hash and the verdict. A
//! failing run prints the command that replays it.

pub mod acl_client;
pub mod agent_churn_client;
pub mod cas_client;
pub mod checker;
pub mod client;
pub mod disk;
pub mod env;
pub mod faults;
pub mod gossip_client;
pub mod gossip_model;
pub mod health_client;
pub mod keyring_client;
pub mod lock_client;
pub mod run;
pub mod scenarios;
pub mod trace;

//! A sockets-free gossip simulator: thousands of core [`Membership`](conclave_core::gossip::Membership)s driven
//! directly by a discrete-event loop (no turmoil, no tokio), with seeded per-packet loss and latency, to
//! measure dissemination time, failure-detection time and false positives against serf's published model.
//!
//! - [`event_loop`]: the loop (a heap of `(time_ms, seq, event)`), the network model, node seeding;
//! - [`experiments`]: one run per loss level (a user event, a killed node, a false-positive window) and
//!   serf's convergence formula;
//! - [`cli`]: `sim gossip-model --nodes 1000 --loss 0,0.01 --seed 1`.

pub mod cli;
pub mod event_loop;
pub mod experiments;

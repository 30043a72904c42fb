//! conclave-tests: black-box tests that start real `conclave` processes the way a user would, and the
//! benchmark program. `harness` starts agents on loopback, each with its own address, ports and data dir,
//! and kills them all when a test ends, passing or not.

pub mod harness;
pub mod http;

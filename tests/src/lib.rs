//! conclave-tests: black-box tests that start real `conclave` processes the way a user would, and the
//! benchmark program. `harness` starts agents on loopback, each with its own address, ports and data dir,
//! and kills them all when a test ends, passing or not. `raw_http` and `matrix` serve the bad-input tests
//! (`tests/tests/bad_input_*.rs`): exact bytes on the wire, and a matrix of cases checked against a
//! snapshot of the agent's state.

pub mod harness;
pub mod http;
pub mod matrix;
pub mod pki;
pub mod raw_http;
pub mod tools;

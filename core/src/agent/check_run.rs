//! What the agent keeps about running a check that the catalog does not store, shared by the local state
//! (which persists it) and the check monitor (which acts on it): a check's run parameters and the rule
//! that bounds the output it reports.

use serde::{Deserialize, Serialize};

/// How a check is run beyond what the catalog stores (`CheckDefinition`): the parameters only the agent
/// that runs it needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    /// Arguments of a script check (`args` / `script_args`).
    pub script_args: Vec<String>,
    /// `host:port[/service]` of a gRPC health check.
    pub grpc: String,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    /// Consul's `disable_redirects`: a 3xx answer is the result instead of being followed.
    pub disable_redirects: bool,
}

/// Most bytes of a check's output kept, as Consul's `check_output_max_size` (4 KiB).
pub const CHECK_OUTPUT_BYTES_MAX: usize = 4096;

/// Cuts a check's output to `CHECK_OUTPUT_BYTES_MAX`, saying so as Consul does.
pub fn truncate_output(output: &str) -> String {
    if output.len() <= CHECK_OUTPUT_BYTES_MAX {
        return output.to_string();
    }
    let mut end = CHECK_OUTPUT_BYTES_MAX;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ... (captured {end} of {} bytes)", &output[..end], output.len())
}

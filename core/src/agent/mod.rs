//! The agent's local state: the services and checks registered on this agent (through the API or config
//! files), which the agent owns and pushes to the catalog under its own node (`anti_entropy`), and the
//! decisions of the check runner that keeps their checks' statuses (`check_monitor`).

pub mod anti_entropy;
pub mod check_monitor;
mod check_run;
pub mod events;
mod local_state;

pub use check_monitor::{CheckMonitor, ProbeResult};
pub use check_run::{truncate_output, CheckRun, CHECK_OUTPUT_BYTES_MAX};
pub use local_state::{
    LocalCheck, LocalService, LocalState, AGENT_SERVICES_MAX, NODE_MAINTENANCE_CHECK_ID, SERVICE_MAINTENANCE_PREFIX,
};

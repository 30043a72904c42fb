//! The agent's local state: the services and checks registered on this agent (through the API or config
//! files), which the agent owns and pushes to the catalog under its own node.

mod local_state;

pub use local_state::{LocalService, LocalState, NODE_MAINTENANCE_CHECK_ID, SERVICE_MAINTENANCE_PREFIX};

//! Consul's JSON, in and out. Decoding follows Consul's rules (Go's `encoding/json` with unknown fields
//! refused): keys match case-insensitively, snake_case aliases work, durations are Go strings or
//! nanoseconds, and every refusal is a 400 with Consul's message. Encoding builds the exact shapes Consul
//! clients read (`[]` and `{}` rather than null).

pub mod acl_input;
mod catalog_input;
mod check_input;
mod duration;
pub mod encode;
pub mod encode_acl;
pub mod encode_kv;
mod error;
pub mod filter;
mod keys;
mod service_input;
mod session_input;
mod txn_input;

pub use catalog_input::{decode_catalog_deregister, decode_catalog_register};
pub use check_input::{decode_check_definition, ServiceCheck};
pub use duration::{format_go_duration, parse_go_duration};
pub use error::ApiError;
pub use keys::normalize_key;
pub use service_input::{decode_service_definition, ServiceDefinition, SERVICE_DEFINITION_BYTES_MAX};
pub use session_input::{decode_session_create, SESSION_TTL_MAX_MS, SESSION_TTL_MIN_MS};
pub use txn_input::decode_txn;

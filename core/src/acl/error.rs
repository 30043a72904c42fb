//! Why the ACL system refused a request, with Consul's texts (clients match on them: python-consul
//! turns a 403 into `ACLPermissionDenied`, Consul's Go client checks for "ACL not found").

use serde::{Deserialize, Serialize};

use super::authorizer::Need;
use super::rules::Resource;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclError {
    /// The secret names no token, or an expired one.
    NotFound,
    /// The token lacks `need` on `segment` of `resource`.
    Denied { accessor_id: String, resource: Resource, need: Need, segment: String },
}

impl std::fmt::Display for AclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AclError::NotFound => write!(f, "ACL not found"),
            AclError::Denied { accessor_id, resource, need, segment } => {
                write!(
                    f,
                    "Permission denied: token with AccessorID '{accessor_id}' lacks permission '{}:{}'",
                    resource.name(),
                    need.name()
                )?;
                if resource.is_segmented() {
                    write!(f, " on {segment:?}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for AclError {}

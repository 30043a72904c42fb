//! A resolved token in owned form: what a server tells a client agent a token may do, which the client
//! caches and decides reads with. `fallback_allow` is the client's `down_policy` deciding instead of a
//! server.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::authorizer::{Authorizer, CompiledRules};
use super::table::Resolved;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedIdentity {
    pub accessor_id: String,
    pub management: bool,
    pub policies: Vec<CompiledRules>,
    /// Set when `down_policy` decided instead of a server: allow (true) or deny (false) everything.
    pub fallback_allow: Option<bool>,
}

impl ResolvedIdentity {
    /// Everything, decided locally (the agent recovery token).
    pub fn management(accessor_id: &str) -> ResolvedIdentity {
        ResolvedIdentity {
            accessor_id: accessor_id.to_string(),
            management: true,
            policies: Vec::new(),
            fallback_allow: None,
        }
    }

    /// `down_policy`'s answer when no server could resolve a token.
    pub fn fallback(allow: bool) -> ResolvedIdentity {
        ResolvedIdentity {
            accessor_id: String::new(),
            management: false,
            policies: Vec::new(),
            fallback_allow: Some(allow),
        }
    }

    pub fn from_resolved(resolved: Resolved<'_>) -> ResolvedIdentity {
        ResolvedIdentity {
            accessor_id: resolved.accessor_id,
            management: resolved.authorizer.management,
            policies: resolved.authorizer.policies.into_iter().map(Cow::into_owned).collect(),
            fallback_allow: None,
        }
    }

    pub fn authorizer(&self, default_allow: bool) -> Authorizer<'_> {
        match self.fallback_allow {
            Some(allow) => Authorizer { management: allow, default_allow: false, policies: Vec::new() },
            None => Authorizer {
                management: self.management,
                default_allow,
                policies: self.policies.iter().map(Cow::Borrowed).collect(),
            },
        }
    }
}

//! Consul's ACL system: rules ([`rules`]), how a token's policies decide a permission
//! ([`authorizer`]), the records ([`model`]), the replicated table that holds them ([`table`]) and its
//! commands ([`command`]), and Consul's refusal texts ([`error`]).
//!
//! Writes are authorized where they apply: a proposal made on behalf of a request carries an
//! [`Authority`] (the request's secret and the proposer's default policy), and `state::State` checks it
//! against the ACL table as it stands at that log index. A token deleted, or a permission removed, at
//! index `i` therefore refuses every write ordered after `i` on every server, a deposed leader's
//! included: revocation holds once acknowledged.

pub mod authorizer;
pub mod command;
pub mod error;
pub mod identity;
pub mod login;
pub mod model;
pub mod rules;
pub mod selector;
pub mod table;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use authorizer::{Authorizer, CompiledRules, Need};
pub use command::AclCommand;
pub use error::AclError;
pub use identity::ResolvedIdentity;
pub use model::{
    AuthMethod, BindType, BindingRule, Link, NodeIdentity, Policy, Role, ServiceIdentity, Token, ANONYMOUS_TOKEN_ID,
    GLOBAL_MANAGEMENT_POLICY_ID, GLOBAL_MANAGEMENT_POLICY_NAME,
};
pub use rules::{parse_rules, Access, Resource, Rule, Rules, RESOURCES};
pub use table::{AclContext, AclIndexes, AclTable, Resolved};

/// On whose behalf a write is proposed, checked when it applies. Its `Debug` hides the secret: Raft
/// entries are logged at trace level.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    /// The request's SecretID (empty: the anonymous token).
    pub secret_id: String,
    /// The proposing agent's `acl.default_policy` is `allow`.
    pub default_allow: bool,
    /// The proposing agent's datacenter (policies and identities can be limited to some).
    pub datacenter: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("secret_id", &"<hidden>")
            .field("default_allow", &self.default_allow)
            .field("datacenter", &self.datacenter)
            .finish()
    }
}

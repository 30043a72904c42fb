//! The records of the ACL system as the state stores them: tokens, policies, roles, auth methods and
//! binding rules, with Consul's fields. Links between them are by ID; names are looked up when a record
//! is shown, so a renamed policy shows its new name everywhere.

use serde::{Deserialize, Serialize};

use super::authorizer::CompiledRules;

/// The anonymous token's AccessorID (and SecretID): the token of requests that carry none.
pub const ANONYMOUS_TOKEN_ID: &str = "00000000-0000-0000-0000-000000000002";
/// The built-in policy that grants everything.
pub const GLOBAL_MANAGEMENT_POLICY_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const GLOBAL_MANAGEMENT_POLICY_NAME: &str = "global-management";

/// A link from a token or role to a policy or role, by ID (the name is filled in when shown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceIdentity {
    pub service_name: String,
    /// Where it applies; empty: every datacenter.
    pub datacenters: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    pub node_name: String,
    pub datacenter: String,
}

/// Consul's ACL token. Its `Debug` hides the SecretID (commands are logged at trace level).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub accessor_id: String,
    pub secret_id: String,
    pub description: String,
    pub policies: Vec<Link>,
    pub roles: Vec<Link>,
    pub service_identities: Vec<ServiceIdentity>,
    pub node_identities: Vec<NodeIdentity>,
    pub local: bool,
    /// When it stops working (ms since the Unix epoch); None: never.
    pub expiration_time_ms: Option<u64>,
    /// The TTL it was created with, in ns, as Consul shows it (0: none).
    pub expiration_ttl_ns: u64,
    /// The auth method that created it (by login), or empty.
    pub auth_method: String,
    /// Set at apply from the replicated clock (ms since the Unix epoch).
    pub create_time_ms: u64,
    pub create_index: u64,
    pub modify_index: u64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("accessor_id", &self.accessor_id)
            .field("secret_id", &"<hidden>")
            .field("description", &self.description)
            .field("policies", &self.policies)
            .field("roles", &self.roles)
            .field("auth_method", &self.auth_method)
            .field("modify_index", &self.modify_index)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Whether it has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expiration_time_ms.is_some_and(|at| at <= now_ms)
    }
}

/// Consul's ACL policy. `compiled` is the rules' parse, kept so no request parses rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    /// Where it applies; empty: every datacenter.
    pub datacenters: Vec<String>,
    pub compiled: CompiledRules,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Consul's ACL role: policies and identities under one name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
    pub policies: Vec<Link>,
    pub service_identities: Vec<ServiceIdentity>,
    pub node_identities: Vec<NodeIdentity>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// Consul's auth method. `config` is the method's own settings, kept as JSON text (for `jwt`: keys,
/// audiences, claim mappings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthMethod {
    pub name: String,
    pub method_type: String,
    pub display_name: String,
    pub description: String,
    /// Longest life of a token it creates (ns; 0: no limit).
    pub max_token_ttl_ns: u64,
    /// "local" or "global".
    pub token_locality: String,
    pub config_json: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// What a binding rule binds a matching login to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindType {
    Service,
    Node,
    Policy,
    Role,
}

impl BindType {
    pub fn parse(text: &str) -> Option<BindType> {
        Some(match text {
            "service" => BindType::Service,
            "node" => BindType::Node,
            "policy" => BindType::Policy,
            "role" => BindType::Role,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            BindType::Service => "service",
            BindType::Node => "node",
            BindType::Policy => "policy",
            BindType::Role => "role",
        }
    }
}

/// Consul's binding rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRule {
    pub id: String,
    pub description: String,
    pub auth_method: String,
    pub selector: String,
    pub bind_type: BindType,
    pub bind_name: String,
    pub create_index: u64,
    pub modify_index: u64,
}

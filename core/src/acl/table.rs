//! The ACL table of the replicated state: tokens (with an index by SecretID, so resolving a request's
//! token is a look-up, not a scan), policies and roles (with indexes by name), auth methods and binding
//! rules, and the index at which the cluster was bootstrapped. Resolving a secret gives the token's
//! AccessorID and its [`Authorizer`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::authorizer::{node_identity_rules, service_identity_rules, Authorizer, CompiledRules};
use super::error::AclError;
use super::model::{
    AuthMethod, BindingRule, Policy, Role, Token, ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID,
    GLOBAL_MANAGEMENT_POLICY_NAME,
};

/// What resolving a token depends on besides the table: the agent's default policy, its datacenter
/// (policies and identities can be limited to some) and the time (tokens expire).
#[derive(Clone, Copy, Debug)]
pub struct AclContext<'a> {
    pub default_allow: bool,
    pub datacenter: &'a str,
    pub now_ms: u64,
}

/// A resolved token: who it is and what it may do.
#[derive(Clone, Debug)]
pub struct Resolved<'a> {
    pub accessor_id: String,
    pub authorizer: Authorizer<'a>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclTable {
    pub(super) tokens: BTreeMap<String, Token>,
    pub(super) accessor_by_secret: BTreeMap<String, String>,
    pub(super) policies: BTreeMap<String, Policy>,
    pub(super) policy_by_name: BTreeMap<String, String>,
    pub(super) roles: BTreeMap<String, Role>,
    pub(super) role_by_name: BTreeMap<String, String>,
    pub(super) auth_methods: BTreeMap<String, AuthMethod>,
    pub(super) binding_rules: BTreeMap<String, BindingRule>,
    /// The index of the bootstrap (0: not bootstrapped): Consul's reset index.
    pub(super) bootstrap_index: u64,
    pub(super) indexes: AclIndexes,
}

/// The modify index of each kind of record, for blocking queries on the list endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclIndexes {
    pub tokens: u64,
    pub policies: u64,
    pub roles: u64,
    pub auth_methods: u64,
    pub binding_rules: u64,
}

impl Default for AclTable {
    /// The built-ins every cluster has: the anonymous token and the global-management policy.
    fn default() -> AclTable {
        let mut table = AclTable {
            tokens: BTreeMap::new(),
            accessor_by_secret: BTreeMap::new(),
            policies: BTreeMap::new(),
            policy_by_name: BTreeMap::new(),
            roles: BTreeMap::new(),
            role_by_name: BTreeMap::new(),
            auth_methods: BTreeMap::new(),
            binding_rules: BTreeMap::new(),
            bootstrap_index: 0,
            indexes: AclIndexes::default(),
        };
        table.insert_policy(Policy {
            id: GLOBAL_MANAGEMENT_POLICY_ID.to_string(),
            name: GLOBAL_MANAGEMENT_POLICY_NAME.to_string(),
            description: "Builtin Policy that grants unlimited access".to_string(),
            rules: "acl = \"write\"\nagent_prefix \"\" {\n  policy = \"write\"\n}\nevent_prefix \"\" {\n  policy = \
                    \"write\"\n}\nkey_prefix \"\" {\n  policy = \"write\"\n}\nkeyring = \"write\"\nnode_prefix \
                    \"\" {\n  policy = \"write\"\n}\noperator = \"write\"\nmesh = \"write\"\npeering = \
                    \"write\"\nquery_prefix \"\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \
                    \"write\"\n  intentions = \"write\"\n}\nsession_prefix \"\" {\n  policy = \"write\"\n}"
                .to_string(),
            datacenters: Vec::new(),
            compiled: CompiledRules::default(),
            create_index: 0,
            modify_index: 0,
        });
        table.insert_token(Token {
            accessor_id: ANONYMOUS_TOKEN_ID.to_string(),
            secret_id: "anonymous".to_string(),
            description: "Anonymous Token".to_string(),
            policies: Vec::new(),
            roles: Vec::new(),
            service_identities: Vec::new(),
            node_identities: Vec::new(),
            local: false,
            expiration_time_ms: None,
            expiration_ttl_ns: 0,
            auth_method: String::new(),
            create_time_ms: 0,
            create_index: 0,
            modify_index: 0,
        });
        table
    }
}

impl AclTable {
    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    pub fn token(&self, accessor_id: &str) -> Option<&Token> {
        self.tokens.get(accessor_id)
    }

    /// The token whose SecretID is `secret` (the anonymous token for an empty secret).
    pub fn token_by_secret(&self, secret: &str) -> Option<&Token> {
        if secret.is_empty() || secret == ANONYMOUS_TOKEN_ID {
            return self.tokens.get(ANONYMOUS_TOKEN_ID);
        }
        self.accessor_by_secret.get(secret).and_then(|accessor| self.tokens.get(accessor))
    }

    pub fn policies(&self) -> impl Iterator<Item = &Policy> {
        self.policies.values()
    }

    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.get(id)
    }

    pub fn policy_by_name(&self, name: &str) -> Option<&Policy> {
        self.policy_by_name.get(name).and_then(|id| self.policies.get(id))
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id)
    }

    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.role_by_name.get(name).and_then(|id| self.roles.get(id))
    }

    pub fn auth_methods(&self) -> impl Iterator<Item = &AuthMethod> {
        self.auth_methods.values()
    }

    pub fn auth_method(&self, name: &str) -> Option<&AuthMethod> {
        self.auth_methods.get(name)
    }

    pub fn binding_rules(&self) -> impl Iterator<Item = &BindingRule> {
        self.binding_rules.values()
    }

    pub fn binding_rule(&self, id: &str) -> Option<&BindingRule> {
        self.binding_rules.get(id)
    }

    pub fn bootstrap_index(&self) -> u64 {
        self.bootstrap_index
    }

    pub fn indexes(&self) -> AclIndexes {
        self.indexes
    }

    /// Resolves the token with SecretID `secret`: unknown or expired is "ACL not found".
    pub fn resolve(&self, secret: &str, context: &AclContext<'_>) -> Result<Resolved<'_>, AclError> {
        let token = self.token_by_secret(secret).filter(|t| !t.is_expired(context.now_ms)).ok_or(AclError::NotFound)?;
        let mut authorizer =
            Authorizer { management: false, default_allow: context.default_allow, policies: Vec::new() };
        let mut policy_ids: Vec<&str> = token.policies.iter().map(|l| l.id.as_str()).collect();
        let mut service_identities: Vec<_> = token.service_identities.iter().collect();
        let mut node_identities: Vec<_> = token.node_identities.iter().collect();
        for role in token.roles.iter().filter_map(|l| self.roles.get(&l.id)) {
            policy_ids.extend(role.policies.iter().map(|l| l.id.as_str()));
            service_identities.extend(role.service_identities.iter());
            node_identities.extend(role.node_identities.iter());
        }
        for policy in policy_ids.into_iter().filter_map(|id| self.policies.get(id)) {
            if !policy.datacenters.is_empty() && !policy.datacenters.iter().any(|dc| dc == context.datacenter) {
                continue;
            }
            if policy.id == GLOBAL_MANAGEMENT_POLICY_ID {
                authorizer.management = true;
            }
            authorizer.policies.push(Cow::Borrowed(&policy.compiled));
        }
        for identity in service_identities {
            if identity.datacenters.is_empty() || identity.datacenters.iter().any(|dc| dc == context.datacenter) {
                authorizer.policies.push(Cow::Owned(service_identity_rules(&identity.service_name)));
            }
        }
        for identity in node_identities.into_iter().filter(|n| n.datacenter == context.datacenter) {
            authorizer.policies.push(Cow::Owned(node_identity_rules(&identity.node_name)));
        }
        Ok(Resolved { accessor_id: token.accessor_id.clone(), authorizer })
    }

    pub(super) fn insert_token(&mut self, token: Token) {
        if let Some(old) = self.tokens.get(&token.accessor_id) {
            self.accessor_by_secret.remove(&old.secret_id);
        }
        self.accessor_by_secret.insert(token.secret_id.clone(), token.accessor_id.clone());
        self.tokens.insert(token.accessor_id.clone(), token);
    }

    pub(super) fn remove_token(&mut self, accessor_id: &str) -> Option<Token> {
        let token = self.tokens.remove(accessor_id)?;
        self.accessor_by_secret.remove(&token.secret_id);
        Some(token)
    }

    /// Stores a policy, compiling its rules (they were checked before it was proposed; rules that no
    /// longer parse compile to nothing, which grants nothing).
    pub(super) fn insert_policy(&mut self, mut policy: Policy) {
        policy.compiled =
            super::rules::parse_rules(&policy.rules).map(|rules| CompiledRules::compile(&rules)).unwrap_or_default();
        if let Some(old) = self.policies.get(&policy.id) {
            self.policy_by_name.remove(&old.name);
        }
        self.policy_by_name.insert(policy.name.clone(), policy.id.clone());
        self.policies.insert(policy.id.clone(), policy);
    }

    pub(super) fn insert_role(&mut self, role: Role) {
        if let Some(old) = self.roles.get(&role.id) {
            self.role_by_name.remove(&old.name);
        }
        self.role_by_name.insert(role.name.clone(), role.id.clone());
        self.roles.insert(role.id.clone(), role);
    }
}

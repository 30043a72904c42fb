//! The ACL table's commands and their apply. IDs and secrets are chosen by the proposer; names are
//! already resolved to IDs. Apply still checks what depends on the state (a name taken, a link to a
//! policy that is gone, the bootstrap done) and refuses with Consul's text.

use serde::{Deserialize, Serialize};

use super::model::{AuthMethod, BindingRule, Policy, Role, Token, ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_POLICY_ID};
use super::table::AclTable;

/// A secret carried by a command; its `Debug` hides it (commands are logged at trace level).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// A change to the ACL table: one arm of `state::Command`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AclCommand {
    /// Creates the first management token, once (again only with the reset index Consul names).
    Bootstrap {
        token: Token,
        reset_index: Option<u64>,
    },
    /// Creates (`create`) or replaces a token.
    SetToken {
        token: Token,
        create: bool,
    },
    DeleteToken {
        accessor_id: String,
    },
    SetPolicy {
        policy: Policy,
        create: bool,
    },
    DeletePolicy {
        id: String,
    },
    SetRole {
        role: Role,
        create: bool,
    },
    DeleteRole {
        id: String,
    },
    SetAuthMethod {
        method: AuthMethod,
        create: bool,
    },
    /// Deletes the method, its binding rules and the tokens it created.
    DeleteAuthMethod {
        name: String,
    },
    SetBindingRule {
        rule: BindingRule,
        create: bool,
    },
    DeleteBindingRule {
        id: String,
    },
    /// Deletes a token created by a login, by its secret (what `/v1/acl/logout` carries).
    Logout {
        secret_id: Secret,
    },
    /// The configured `initial_management` token: created with global-management unless a token with
    /// that secret exists.
    EnsureManagementToken {
        token: Token,
    },
}

impl AclTable {
    /// Applies `command` at `index`, at replicated time `now_ms`.
    pub fn apply(&mut self, index: u64, now_ms: u64, command: &AclCommand) -> Result<(), String> {
        match command {
            AclCommand::Bootstrap { token, reset_index } => self.bootstrap(index, now_ms, token, *reset_index),
            AclCommand::SetToken { token, create } => self.set_token(index, now_ms, token, *create),
            AclCommand::DeleteToken { accessor_id } => self.delete_token(index, accessor_id),
            AclCommand::SetPolicy { policy, create } => self.set_policy(index, policy, *create),
            AclCommand::DeletePolicy { id } => self.delete_policy(index, id),
            AclCommand::SetRole { role, create } => self.set_role(index, role, *create),
            AclCommand::DeleteRole { id } => self.delete_role(index, id),
            AclCommand::SetAuthMethod { method, create } => self.set_auth_method(index, method, *create),
            AclCommand::DeleteAuthMethod { name } => self.delete_auth_method(index, name),
            AclCommand::SetBindingRule { rule, create } => self.set_binding_rule(index, rule, *create),
            AclCommand::DeleteBindingRule { id } => {
                self.binding_rules.remove(id).ok_or_else(|| format!("Cannot find binding rule {id:?}"))?;
                self.indexes.binding_rules = index;
                Ok(())
            }
            AclCommand::Logout { secret_id } => {
                let token = self.token_by_secret(&secret_id.0).filter(|t| !t.auth_method.is_empty());
                let accessor = token.map(|t| t.accessor_id.clone()).ok_or("ACL not found")?;
                self.remove_token(&accessor);
                self.indexes.tokens = index;
                Ok(())
            }
            AclCommand::EnsureManagementToken { token } => {
                if self.token_by_secret(&token.secret_id).is_none() && !self.tokens.contains_key(&token.accessor_id) {
                    self.set_token(index, now_ms, token, true)?;
                }
                Ok(())
            }
        }
    }

    fn bootstrap(&mut self, index: u64, now_ms: u64, token: &Token, reset_index: Option<u64>) -> Result<(), String> {
        if self.bootstrap_index != 0 && reset_index != Some(self.bootstrap_index) {
            return Err(format!("ACL bootstrap no longer allowed (reset index: {})", self.bootstrap_index));
        }
        self.set_token(index, now_ms, token, true)?;
        self.bootstrap_index = index;
        Ok(())
    }

    fn set_token(&mut self, index: u64, now_ms: u64, token: &Token, create: bool) -> Result<(), String> {
        let mut token = token.clone();
        match (self.tokens.get(&token.accessor_id), create) {
            (Some(_), true) => return Err(format!("Invalid Token: AccessorID {:?} is in use", token.accessor_id)),
            (None, false) => return Err(format!("Cannot find token {:?}", token.accessor_id)),
            (Some(old), false) => {
                if old.secret_id != token.secret_id {
                    return Err("Changing a tokens SecretID is not permitted".to_string());
                }
                token.create_index = old.create_index;
                token.create_time_ms = old.create_time_ms;
                token.auth_method = old.auth_method.clone();
                token.expiration_time_ms = old.expiration_time_ms;
                token.expiration_ttl_ns = old.expiration_ttl_ns;
            }
            (None, true) => {
                if self.accessor_by_secret.contains_key(&token.secret_id) {
                    return Err(format!("Invalid Token: SecretID {:?} is in use", token.secret_id));
                }
                token.create_index = index;
                token.create_time_ms = now_ms;
            }
        }
        for link in &token.policies {
            if !self.policies.contains_key(&link.id) {
                return Err(format!("No such ACL policy with ID {:?}", link.id));
            }
        }
        for link in &token.roles {
            if !self.roles.contains_key(&link.id) {
                return Err(format!("No such ACL role with ID {:?}", link.id));
            }
        }
        token.modify_index = index;
        self.insert_token(token);
        self.indexes.tokens = index;
        Ok(())
    }

    fn delete_token(&mut self, index: u64, accessor_id: &str) -> Result<(), String> {
        if accessor_id == ANONYMOUS_TOKEN_ID {
            return Err("Delete operation not permitted on the anonymous token".to_string());
        }
        // Deleting what is not there is not an error in Consul.
        self.remove_token(accessor_id);
        self.indexes.tokens = index;
        Ok(())
    }

    fn set_policy(&mut self, index: u64, policy: &Policy, create: bool) -> Result<(), String> {
        let mut policy = policy.clone();
        if self.policy_by_name.get(&policy.name).is_some_and(|id| *id != policy.id) {
            return Err(format!("Invalid Policy: A Policy with Name {:?} already exists", policy.name));
        }
        match (self.policies.get(&policy.id), create) {
            (Some(_), true) => return Err(format!("Invalid Policy: ID {:?} is in use", policy.id)),
            (None, false) => return Err(format!("Cannot find policy {:?}", policy.id)),
            (Some(old), false) => {
                if old.id == GLOBAL_MANAGEMENT_POLICY_ID && old.rules != policy.rules {
                    return Err(
                        "Changing the Rules for the builtin global-management policy is not permitted".to_string()
                    );
                }
                policy.create_index = old.create_index;
            }
            (None, true) => policy.create_index = index,
        }
        policy.modify_index = index;
        self.insert_policy(policy);
        self.indexes.policies = index;
        Ok(())
    }

    fn delete_policy(&mut self, index: u64, id: &str) -> Result<(), String> {
        if id == GLOBAL_MANAGEMENT_POLICY_ID {
            return Err("Delete operation not permitted on the builtin global-management policy".to_string());
        }
        let Some(policy) = self.policies.remove(id) else { return Ok(()) };
        self.policy_by_name.remove(&policy.name);
        // Links to a deleted policy go with it, as Consul unlinks them.
        for token in self.tokens.values_mut() {
            token.policies.retain(|l| l.id != id);
        }
        for role in self.roles.values_mut() {
            role.policies.retain(|l| l.id != id);
        }
        self.indexes.policies = index;
        Ok(())
    }

    fn set_role(&mut self, index: u64, role: &Role, create: bool) -> Result<(), String> {
        let mut role = role.clone();
        if self.role_by_name.get(&role.name).is_some_and(|id| *id != role.id) {
            return Err(format!("Invalid Role: A Role with Name {:?} already exists", role.name));
        }
        for link in &role.policies {
            if !self.policies.contains_key(&link.id) {
                return Err(format!("No such ACL policy with ID {:?}", link.id));
            }
        }
        match (self.roles.get(&role.id), create) {
            (Some(_), true) => return Err(format!("Invalid Role: ID {:?} is in use", role.id)),
            (None, false) => return Err(format!("Cannot find role {:?}", role.id)),
            (Some(old), false) => role.create_index = old.create_index,
            (None, true) => role.create_index = index,
        }
        role.modify_index = index;
        self.insert_role(role);
        self.indexes.roles = index;
        Ok(())
    }

    fn delete_role(&mut self, index: u64, id: &str) -> Result<(), String> {
        let Some(role) = self.roles.remove(id) else { return Ok(()) };
        self.role_by_name.remove(&role.name);
        for token in self.tokens.values_mut() {
            token.roles.retain(|l| l.id != id);
        }
        self.indexes.roles = index;
        Ok(())
    }

    fn set_auth_method(&mut self, index: u64, method: &AuthMethod, create: bool) -> Result<(), String> {
        let mut method = method.clone();
        match (self.auth_methods.get(&method.name), create) {
            (Some(_), true) => {
                return Err(format!("Invalid Auth Method: Name {:?} is in use", method.name));
            }
            (None, false) => return Err(format!("Cannot find auth method {:?}", method.name)),
            (Some(old), false) => method.create_index = old.create_index,
            (None, true) => method.create_index = index,
        }
        method.modify_index = index;
        self.auth_methods.insert(method.name.clone(), method);
        self.indexes.auth_methods = index;
        Ok(())
    }

    fn delete_auth_method(&mut self, index: u64, name: &str) -> Result<(), String> {
        if self.auth_methods.remove(name).is_none() {
            return Ok(());
        }
        self.binding_rules.retain(|_, rule| rule.auth_method != name);
        let created: Vec<String> =
            self.tokens.values().filter(|t| t.auth_method == name).map(|t| t.accessor_id.clone()).collect();
        for accessor in created {
            self.remove_token(&accessor);
        }
        self.indexes.auth_methods = index;
        self.indexes.binding_rules = index;
        self.indexes.tokens = index;
        Ok(())
    }

    fn set_binding_rule(&mut self, index: u64, rule: &BindingRule, create: bool) -> Result<(), String> {
        let mut rule = rule.clone();
        if !self.auth_methods.contains_key(&rule.auth_method) {
            return Err(format!("Invalid Binding Rule: unknown auth method {:?}", rule.auth_method));
        }
        match (self.binding_rules.get(&rule.id), create) {
            (Some(_), true) => return Err(format!("Invalid Binding Rule: ID {:?} is in use", rule.id)),
            (None, false) => return Err(format!("Cannot find binding rule {:?}", rule.id)),
            (Some(old), false) => rule.create_index = old.create_index,
            (None, true) => rule.create_index = index,
        }
        rule.modify_index = index;
        self.binding_rules.insert(rule.id.clone(), rule);
        self.indexes.binding_rules = index;
        Ok(())
    }
}

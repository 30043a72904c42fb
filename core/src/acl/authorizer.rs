//! Deciding a permission: a token's policies (and the policies its service and node identities expand
//! to) compiled into per-resource maps, looked up with Consul's precedence. Across all of a token's
//! policies an exact rule beats a prefix rule and the longest prefix wins; where several policies speak
//! about the same segment, deny beats write beats list beats read. Nothing matched falls back to the
//! default policy (`acl`, the ACL system itself, is never granted by a default of allow).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::rules::{Access, Resource, Rules, RESOURCES};

/// What a request needs: read, list (key names) or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    Read,
    List,
    Write,
}

impl Need {
    pub fn name(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::List => "list",
            Need::Write => "write",
        }
    }

    fn granted_by(self, access: Access) -> bool {
        match access {
            Access::Deny => false,
            Access::Write => true,
            Access::List => self != Need::Write,
            Access::Read => self == Need::Read,
        }
    }
}

/// One resource's rules of one policy, duplicates already merged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRules {
    pub exact: BTreeMap<String, Access>,
    pub prefix: BTreeMap<String, Access>,
}

impl ResourceRules {
    /// The longest prefix rule matching `segment`, with its length.
    fn longest_prefix(&self, segment: &str) -> Option<(usize, Access)> {
        if self.prefix.is_empty() {
            return None;
        }
        (0..=segment.len())
            .rev()
            .filter(|end| segment.is_char_boundary(*end))
            .find_map(|end| self.prefix.get(&segment[..end]).map(|access| (end, *access)))
    }
}

/// A policy's rules compiled for look-up: one entry per resource, indexed by [`Resource::index`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledRules {
    pub resources: Vec<ResourceRules>,
}

impl Default for CompiledRules {
    fn default() -> CompiledRules {
        CompiledRules { resources: vec![ResourceRules::default(); RESOURCES.len()] }
    }
}

impl CompiledRules {
    pub fn compile(rules: &Rules) -> CompiledRules {
        let mut compiled = CompiledRules::default();
        for rule in &rules.rules {
            compiled.add(rule.resource, &rule.segment, rule.prefix, rule.access);
        }
        compiled
    }

    /// Adds one rule, merged with what the policy already says about the same segment.
    pub fn add(&mut self, resource: Resource, segment: &str, prefix: bool, access: Access) {
        let rules = &mut self.resources[resource.index()];
        let map = if prefix { &mut rules.prefix } else { &mut rules.exact };
        let merged = map.get(segment).map_or(access, |old| old.strongest(access));
        map.insert(segment.to_string(), merged);
    }

    fn of(&self, resource: Resource) -> &ResourceRules {
        &self.resources[resource.index()]
    }
}

/// Consul's service identity: write on the service (and its sidecar proxy), read on every service and
/// node so it can discover the others.
pub fn service_identity_rules(service_name: &str) -> CompiledRules {
    let mut rules = CompiledRules::default();
    rules.add(Resource::Service, service_name, false, Access::Write);
    rules.add(Resource::Service, &format!("{service_name}-sidecar-proxy"), false, Access::Write);
    rules.add(Resource::Service, "", true, Access::Read);
    rules.add(Resource::Node, "", true, Access::Read);
    rules
}

/// Consul's node identity: write on the node, read on every service.
pub fn node_identity_rules(node_name: &str) -> CompiledRules {
    let mut rules = CompiledRules::default();
    rules.add(Resource::Node, node_name, false, Access::Write);
    rules.add(Resource::Service, "", true, Access::Read);
    rules
}

/// What a token may do: management (everything), or its compiled policies over a default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorizer<'a> {
    pub management: bool,
    pub default_allow: bool,
    pub policies: Vec<std::borrow::Cow<'a, CompiledRules>>,
}

impl Authorizer<'_> {
    /// Allows everything (ACLs off, or an internal write).
    pub fn allow_all() -> Authorizer<'static> {
        Authorizer { management: true, default_allow: true, policies: Vec::new() }
    }

    /// The merged access the policies give `segment` of `resource`, if any rule matches.
    pub fn access(&self, resource: Resource, segment: &str) -> Option<Access> {
        let exact =
            self.policies.iter().filter_map(|p| p.of(resource).exact.get(segment).copied()).reduce(Access::strongest);
        if exact.is_some() {
            return exact;
        }
        let mut best: Option<(usize, Access)> = None;
        for policy in &self.policies {
            if let Some((length, access)) = policy.of(resource).longest_prefix(segment) {
                best = match best {
                    Some((best_length, _)) if best_length > length => best,
                    Some((best_length, best_access)) if best_length == length => {
                        Some((length, best_access.strongest(access)))
                    }
                    _ => Some((length, access)),
                };
            }
        }
        best.map(|(_, access)| access)
    }

    /// Whether `need` on `segment` of `resource` is granted.
    pub fn allows(&self, resource: Resource, segment: &str, need: Need) -> bool {
        if self.management {
            return true;
        }
        match self.access(resource, segment) {
            Some(access) => need.granted_by(access),
            None => self.default_allow && resource != Resource::Acl,
        }
    }

    /// Write on everything under `prefix`: write on the prefix itself and no rule below it that grants
    /// less (Consul's `KeyWritePrefix`, for a recursive delete).
    pub fn allows_write_prefix(&self, resource: Resource, prefix: &str) -> bool {
        if self.management {
            return true;
        }
        if !self.allows(resource, prefix, Need::Write) {
            return false;
        }
        self.policies.iter().all(|policy| {
            let rules = policy.of(resource);
            let below = |map: &BTreeMap<String, Access>| {
                map.range(prefix.to_string()..)
                    .take_while(|(segment, _)| segment.starts_with(prefix))
                    .all(|(_, access)| *access == Access::Write)
            };
            below(&rules.exact) && below(&rules.prefix)
        })
    }
}

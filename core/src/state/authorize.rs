//! What a write needs from the ACL system, and the check of it against the ACL table: Consul's rules
//! for each command (a registration needs `node:write` when it changes the node and `service:write` on
//! the service, a KV write `key:write` on the key, a recursive delete write on all of the prefix, a
//! session `session:write` on its node, an ACL change `acl:write`, a CA or autopilot change `operator:write`; a transaction needs what each of its
//! operations needs, its reads included).

use super::command::Command;
use super::machine::State;
use crate::acl::{AclCommand, AclContext, AclError, Authority, Authorizer, Need, Resource};
use crate::catalog::{CatalogCommand, CatalogVerb, CheckSpec, NodeSpec, RegisterRequest};
use crate::kv::txn::KvVerb;
use crate::kv::{KvCommand, SessionCommand, TxnOp};

/// One permission a command needs. `whole_prefix` asks write on every key under `segment`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub resource: Resource,
    pub segment: String,
    pub need: Need,
    pub whole_prefix: bool,
}

fn permission(resource: Resource, segment: &str, need: Need) -> Permission {
    Permission { resource, segment: segment.to_string(), need, whole_prefix: false }
}

impl State {
    /// Checks that `authority`'s token may carry out `command` against the state as it is now.
    pub fn authorize(&self, authority: &Authority, command: &Command) -> Result<(), AclError> {
        let context = AclContext {
            default_allow: authority.default_allow,
            datacenter: &authority.datacenter,
            now_ms: self.clock_ms,
        };
        let resolved = self.acl.resolve(&authority.secret_id, &context)?;
        for needed in self.permissions_for(command) {
            check(&resolved.authorizer, &resolved.accessor_id, &needed)?;
        }
        Ok(())
    }

    /// The permissions `command` needs, given the state as it is now.
    pub fn permissions_for(&self, command: &Command) -> Vec<Permission> {
        let mut out = Vec::new();
        match command {
            Command::Catalog(CatalogCommand::Register(request)) => self.register_needs(request, &mut out),
            Command::Catalog(CatalogCommand::Deregister(request)) => match (&request.service_id, &request.check_id) {
                (Some(service_id), _) => self.service_id_needs(&request.node, service_id, Need::Write, &mut out),
                (None, Some(check_id)) => self.check_id_needs(&request.node, check_id, &mut out),
                (None, None) => out.push(permission(Resource::Node, &request.node, Need::Write)),
            },
            Command::Kv(command) => out.push(kv_needs(command)),
            Command::Session(SessionCommand::Create(session)) => {
                out.push(permission(Resource::Session, &session.node, Need::Write))
            }
            Command::Session(SessionCommand::Destroy { id }) => {
                if let Some(session) = self.sessions.get(id) {
                    out.push(permission(Resource::Session, &session.node, Need::Write));
                }
            }
            Command::Txn(ops) => {
                for op in ops {
                    self.txn_op_needs(op, &mut out);
                }
            }
            Command::Acl(command) => {
                if !matches!(command, AclCommand::Bootstrap { .. } | AclCommand::Logout { .. }) {
                    out.push(permission(Resource::Acl, "", Need::Write));
                }
            }
            Command::Ca(_) | Command::Autopilot(_) => out.push(permission(Resource::Operator, "", Need::Write)),
            // Consul asks for a management token: a restore replaces the ACL table too.
            Command::Restore(_) => out.push(permission(Resource::Acl, "", Need::Write)),
            Command::ReapTombstones { .. } => out.push(permission(Resource::Operator, "", Need::Write)),
            Command::Noop => {}
        }
        out
    }

    fn register_needs(&self, request: &RegisterRequest, out: &mut Vec<Permission>) {
        if !request.skip_node_update && self.node_changes(&request.node) {
            out.push(permission(Resource::Node, &request.node.node, Need::Write));
        }
        if let Some(service) = &request.service {
            out.push(permission(Resource::Service, &service.service, Need::Write));
            let id = crate::catalog::service_id_of(service);
            if let Some(old) =
                self.catalog.instance(&request.node.node, &id).filter(|old| old.service != service.service)
            {
                out.push(permission(Resource::Service, &old.service, Need::Write));
            }
        }
        for check in &request.checks {
            self.check_spec_needs(&request.node.node, check, request, out);
        }
    }

    fn node_changes(&self, spec: &NodeSpec) -> bool {
        match self.catalog.node(&spec.node) {
            None => true,
            Some(node) => {
                (!spec.id.is_empty() && node.id != spec.id)
                    || node.address != spec.address
                    || node.tagged_addresses != spec.tagged_addresses
                    || node.meta != spec.meta
            }
        }
    }

    fn check_spec_needs(&self, node: &str, check: &CheckSpec, request: &RegisterRequest, out: &mut Vec<Permission>) {
        if check.service_id.is_empty() {
            out.push(permission(Resource::Node, node, Need::Write));
            return;
        }
        let in_request = request
            .service
            .as_ref()
            .filter(|s| crate::catalog::service_id_of(s) == check.service_id)
            .map(|s| s.service.clone());
        match in_request {
            Some(name) => out.push(permission(Resource::Service, &name, Need::Write)),
            None => self.service_id_needs(node, &check.service_id, Need::Write, out),
        }
    }

    /// The service with ID `service_id` on `node` needs `need` on its name; an unknown one needs the node.
    fn service_id_needs(&self, node: &str, service_id: &str, need: Need, out: &mut Vec<Permission>) {
        match self.catalog.instance(node, service_id) {
            Some(instance) => out.push(permission(Resource::Service, &instance.service, need)),
            None => out.push(permission(Resource::Node, node, need)),
        }
    }

    fn check_id_needs(&self, node: &str, check_id: &str, out: &mut Vec<Permission>) {
        match self.catalog.check(node, check_id).filter(|c| !c.service_id.is_empty()) {
            Some(check) => self.service_id_needs(node, &check.service_id.clone(), Need::Write, out),
            None => out.push(permission(Resource::Node, node, Need::Write)),
        }
    }

    fn txn_op_needs(&self, op: &TxnOp, out: &mut Vec<Permission>) {
        let need_of = |verb: CatalogVerb| if verb == CatalogVerb::Get { Need::Read } else { Need::Write };
        match op {
            TxnOp::Kv { verb, key, .. } => out.push(match verb {
                KvVerb::DeleteTree => Permission { whole_prefix: true, ..permission(Resource::Key, key, Need::Write) },
                KvVerb::GetTree => permission(Resource::Key, key, Need::List),
                verb if verb.is_read() => permission(Resource::Key, key, Need::Read),
                _ => permission(Resource::Key, key, Need::Write),
            }),
            TxnOp::Node { verb, node, .. } => out.push(permission(Resource::Node, &node.node, need_of(*verb))),
            TxnOp::Service { verb, node, service, .. } => {
                if service.service.is_empty() {
                    self.service_id_needs(node, &service.id, need_of(*verb), out);
                } else {
                    out.push(permission(Resource::Service, &service.service, need_of(*verb)));
                }
            }
            TxnOp::Check { verb, node, check, .. } => {
                if check.service_id.is_empty() {
                    out.push(permission(Resource::Node, node, need_of(*verb)));
                } else {
                    self.service_id_needs(node, &check.service_id, need_of(*verb), out);
                }
            }
        }
    }
}

fn kv_needs(command: &KvCommand) -> Permission {
    match command {
        KvCommand::DeleteTree { prefix } => {
            Permission { whole_prefix: true, ..permission(Resource::Key, prefix, Need::Write) }
        }
        KvCommand::Set { key, .. }
        | KvCommand::Cas { key, .. }
        | KvCommand::Lock { key, .. }
        | KvCommand::Unlock { key, .. }
        | KvCommand::Delete { key }
        | KvCommand::DeleteCas { key, .. } => permission(Resource::Key, key, Need::Write),
    }
}

/// Checks one permission, answering Consul's permission-denied error.
pub fn check(authorizer: &Authorizer<'_>, accessor_id: &str, needed: &Permission) -> Result<(), AclError> {
    let allowed = if needed.whole_prefix {
        authorizer.allows_write_prefix(needed.resource, &needed.segment)
    } else {
        authorizer.allows(needed.resource, &needed.segment, needed.need)
    };
    if allowed {
        return Ok(());
    }
    Err(AclError::Denied {
        accessor_id: accessor_id.to_string(),
        resource: needed.resource,
        need: needed.need,
        segment: needed.segment.clone(),
    })
}

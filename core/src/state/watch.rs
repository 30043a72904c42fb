//! What a blocking query depends on, across every table: `State::index_of` answers the modify index a
//! query on one of these compares with the client's index.

/// What a blocking query depends on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKey {
    /// The nodes table (`/v1/catalog/nodes`).
    Nodes,
    /// The services table (`/v1/catalog/services`).
    Services,
    /// Everything about one service name: its instances, their checks, and the nodes they run on.
    Service(String),
    /// Everything about one node: the node, its services and its checks.
    Node(String),
    /// The checks table.
    Checks,
    /// Every KV entry under a prefix (a single key is a prefix of itself and its children).
    KvPrefix(String),
    /// One KV key exactly: its modify index, or the index that deleted it.
    KvKey(String),
    /// The whole KV store.
    Kv,
    /// The sessions table.
    Sessions,
    /// The ACL tokens (`/v1/acl/tokens`).
    AclTokens,
    AclPolicies,
    AclRoles,
    AclAuthMethods,
    AclBindingRules,
}

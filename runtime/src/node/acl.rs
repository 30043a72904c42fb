//! The agent's side of ACLs: the tokens it holds (`acl.tokens`, replaced through `/v1/agent/token`,
//! kept in the data dir with `enable_token_persistence`), and resolving a request's token. A server
//! resolves from its replicated ACL table; a client agent asks a server and caches the answer for the
//! TTL, following `down_policy` when no server answers. Writes are not decided here: they carry an
//! [`Authority`] the state checks where the entry applies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conclave_core::acl::{AclContext, AclError, AclIndexes, Authority, ResolvedIdentity};

use super::Node;
use crate::config::{AgentTokens, DownPolicy};
use crate::env::{Env, Space, WriteOp};
use crate::raft::messages::{Reply, Request};

const KEY_AGENT_TOKENS: &[u8] = b"acl_tokens";
/// How long a client agent waits for a server to resolve a token before following `down_policy`.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A server's answer for one secret, with when it was fetched.
type CachedResolution = (tokio::time::Instant, Result<Arc<ResolvedIdentity>, AclError>);

/// A server's resolution of one secret, valid while the ACL table has not changed and the token has not
/// expired: resolving a token then costs a look-up, not a copy of its policies.
#[derive(Clone)]
struct ServerResolution {
    acl_indexes: AclIndexes,
    expires_at_ms: Option<u64>,
    identity: Arc<ResolvedIdentity>,
}

/// Most resolutions a server keeps; beyond it the cache starts over.
const SERVER_CACHE_ENTRIES_MAX: usize = 4096;

/// The agent's tokens and, on a client agent, its cache of resolutions.
#[derive(Default)]
pub struct AclAgent {
    pub tokens: Mutex<AgentTokens>,
    cache: Mutex<BTreeMap<String, CachedResolution>>,
    server_cache: Mutex<BTreeMap<String, ServerResolution>>,
}

impl AclAgent {
    pub fn new(configured: &AgentTokens, persisted: Option<AgentTokens>) -> AclAgent {
        AclAgent {
            tokens: Mutex::new(persisted.unwrap_or_else(|| configured.clone())),
            cache: Mutex::default(),
            server_cache: Mutex::default(),
        }
    }
}

/// The tokens kept in the data dir, if persistence is on and some were set through the API.
pub fn load_persisted_tokens(store: &dyn crate::env::Store, enabled: bool) -> anyhow::Result<Option<AgentTokens>> {
    if !enabled {
        return Ok(None);
    }
    let Some(bytes) = store.get(Space::Agent, KEY_AGENT_TOKENS)? else { return Ok(None) };
    let saved: BTreeMap<String, String> = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("ACL tokens in the data dir (agent/acl_tokens) do not parse: {e}"))?;
    let get = |name: &str| saved.get(name).cloned().unwrap_or_default();
    Ok(Some(AgentTokens {
        initial_management: get("initial_management"),
        agent: get("agent"),
        agent_recovery: get("agent_recovery"),
        default: get("default"),
        replication: get("replication"),
    }))
}

/// On a server: resolves `secret` against the replicated ACL table.
pub fn resolve_on_server<E: Env>(node: &Node<E>, secret: &str) -> Result<Arc<ResolvedIdentity>, AclError> {
    let now_ms = node.env.unix_time_ms();
    let state = node.state.read();
    let acl_indexes = state.acl().indexes();
    let cached = node.acl.server_cache.lock().expect("acl cache lock").get(secret).cloned();
    if let Some(cached) =
        cached.filter(|c| c.acl_indexes == acl_indexes && c.expires_at_ms.is_none_or(|at| now_ms < at))
    {
        return Ok(cached.identity);
    }
    let context =
        AclContext { default_allow: node.config.acl.default_allow, datacenter: &node.config.datacenter, now_ms };
    let identity = Arc::new(ResolvedIdentity::from_resolved(state.acl().resolve(secret, &context)?));
    let expires_at_ms = state.acl().token_by_secret(secret).and_then(|t| t.expiration_time_ms);
    let mut cache = node.acl.server_cache.lock().expect("acl cache lock");
    if cache.len() >= SERVER_CACHE_ENTRIES_MAX {
        cache.clear();
    }
    let entry = ServerResolution { acl_indexes, expires_at_ms, identity: identity.clone() };
    cache.insert(secret.to_string(), entry);
    Ok(identity)
}

impl<E: Env> Node<E> {
    /// The secret a request acts with: its own token, else the agent's default token, else anonymous.
    pub fn request_secret(&self, given: Option<&str>) -> String {
        match given.filter(|t| !t.is_empty()) {
            Some(token) => token.to_string(),
            None => {
                let default = self.acl.tokens.lock().expect("acl tokens lock").default.clone();
                if default.is_empty() {
                    "anonymous".to_string()
                } else {
                    default
                }
            }
        }
    }

    /// The authority a write on behalf of `secret` is proposed under (None with ACLs off).
    pub fn authority(&self, secret: &str) -> Option<Authority> {
        self.config.acl.enabled.then(|| Authority {
            secret_id: secret.to_string(),
            default_allow: self.config.acl.default_allow,
            datacenter: self.config.datacenter.clone(),
        })
    }

    /// The authority of the agent's own writes (anti-entropy): its agent token, else its default token.
    pub fn agent_authority(&self) -> Option<Authority> {
        self.authority(&self.agent_secret())
    }

    /// The secret of the agent's own requests: its agent token, else its default token, else anonymous.
    pub fn agent_secret(&self) -> String {
        let agent = self.acl.tokens.lock().expect("acl tokens lock").agent.clone();
        if agent.is_empty() {
            self.request_secret(None)
        } else {
            agent
        }
    }

    /// Replaces one of the agent's tokens (`agent`, `agent_recovery`, `default`, `replication`) and,
    /// with `enable_token_persistence`, keeps it in the data dir.
    pub fn set_agent_token(&self, kind: &str, token: &str) -> Result<(), String> {
        let mut tokens = self.acl.tokens.lock().expect("acl tokens lock");
        match kind {
            "agent" => tokens.agent = token.to_string(),
            "agent_recovery" | "agent_master" => tokens.agent_recovery = token.to_string(),
            "default" => tokens.default = token.to_string(),
            "replication" => tokens.replication = token.to_string(),
            other => return Err(format!("Token {other:?} is unknown")),
        }
        if self.config.acl.enable_token_persistence {
            let saved: BTreeMap<&str, &str> = [
                ("agent", tokens.agent.as_str()),
                ("agent_recovery", tokens.agent_recovery.as_str()),
                ("default", tokens.default.as_str()),
                ("replication", tokens.replication.as_str()),
            ]
            .into_iter()
            .collect();
            let bytes = serde_json::to_vec(&saved).expect("JSON values always serialize");
            let store = self.env.store();
            store
                .write(vec![WriteOp::Put(Space::Agent, KEY_AGENT_TOKENS.to_vec(), bytes)])
                .and_then(|()| store.sync())
                .map_err(|e| format!("cannot persist ACL tokens: {e}"))?;
        }
        self.acl.cache.lock().expect("acl cache lock").clear();
        Ok(())
    }

    /// On a server: what DNS answers may show for `secret` (None with ACLs off; an unknown token sees
    /// nothing).
    pub fn dns_identity(&self, secret: &str) -> Option<Result<Arc<ResolvedIdentity>, AclError>> {
        self.config.acl.enabled.then(|| resolve_on_server(self, secret))
    }

    /// Whether a DNS answer may show `segment` of `resource` to `identity` (from [`Node::dns_identity`]).
    pub fn dns_visible(
        &self,
        identity: Option<&Result<Arc<ResolvedIdentity>, AclError>>,
        resource: conclave_core::acl::Resource,
        segment: &str,
    ) -> bool {
        match identity {
            None => true,
            Some(Err(_)) => false,
            Some(Ok(identity)) => identity.authorizer(self.config.acl.default_allow).allows(
                resource,
                segment,
                conclave_core::acl::Need::Read,
            ),
        }
    }

    /// What `secret` may do. The agent recovery token is decided here; a server reads its table (after
    /// catching up with the leader when the token is not there yet); a client agent asks a server.
    pub async fn resolve_token(&self, secret: &str) -> Result<Arc<ResolvedIdentity>, AclError> {
        let recovery = self.acl.tokens.lock().expect("acl tokens lock").agent_recovery.clone();
        if !recovery.is_empty() && secret == recovery {
            return Ok(Arc::new(ResolvedIdentity::management("agent-recovery-token")));
        }
        if self.config.server {
            return match resolve_on_server(self, secret) {
                Err(AclError::NotFound) if self.read_barrier().await.is_ok() => resolve_on_server(self, secret),
                other => other,
            };
        }
        self.resolve_through_server(secret).await
    }

    async fn resolve_through_server(&self, secret: &str) -> Result<Arc<ResolvedIdentity>, AclError> {
        let now = tokio::time::Instant::now();
        let cached = self.acl.cache.lock().expect("acl cache lock").get(secret).cloned();
        if let Some((fetched, answer)) = &cached {
            if now.duration_since(*fetched) < self.config.acl.cache_ttl() {
                return answer.clone();
            }
        }
        let request = Request::ResolveToken { secret_id: secret.to_string() };
        let servers = self.known_servers.lock().expect("known servers lock").len().max(1);
        for _ in 0..servers {
            let Some(addr) = self.pick_server().and_then(|a| a.parse().ok()) else { break };
            if let Ok(Reply::Resolved(answer)) = self.pool.call(addr, &request, RESOLVE_TIMEOUT).await {
                let answer = answer.map(Arc::new);
                self.acl.cache.lock().expect("acl cache lock").insert(secret.to_string(), (now, answer.clone()));
                return answer;
            }
        }
        tracing::warn!(target: "conclave::acl", "no server answered a token resolution; following down_policy");
        let fallback = |allow| Arc::new(ResolvedIdentity::fallback(allow));
        match self.config.acl.down_policy {
            DownPolicy::Allow => Ok(fallback(true)),
            DownPolicy::Deny => Ok(fallback(false)),
            DownPolicy::ExtendCache | DownPolicy::AsyncCache => match cached {
                Some((_, answer)) => answer,
                None => Ok(fallback(false)),
            },
        }
    }
}

/// On the leader: the configured `initial_management` token exists, with global-management.
pub async fn ensure_initial_management<E: Env>(node: &Node<E>) {
    let secret = node.config.acl.tokens.initial_management.clone();
    if !node.config.acl.enabled || secret.is_empty() || node.state.read().acl().token_by_secret(&secret).is_some() {
        return;
    }
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut *node.rng.lock().expect("rng lock"), &mut bytes);
    let token = conclave_core::acl::Token {
        accessor_id: uuid::Builder::from_random_bytes(bytes).into_uuid().to_string(),
        secret_id: secret,
        description: "Initial Management Token".to_string(),
        policies: vec![conclave_core::acl::Link { id: conclave_core::acl::GLOBAL_MANAGEMENT_POLICY_ID.to_string() }],
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
    };
    let command = conclave_core::state::Command::Acl(conclave_core::acl::AclCommand::EnsureManagementToken { token });
    if let Err(e) = node.write(command).await {
        tracing::debug!(target: "conclave::acl", error = %e, "initial management token not created yet");
    }
}

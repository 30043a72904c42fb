//! The `acl` block of the agent configuration, as Consul takes it: `enabled`, `default_policy`,
//! `down_policy`, `enable_token_persistence`, the cache TTLs and the `tokens` block (with the old names
//! `master` and `agent_master` as Consul still reads them, and the pre-1.4 top-level `acl_*` keys
//! refused by name). Every key does what Consul's does or is refused.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// What a client agent does when it needs a token resolved and no server answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DownPolicy {
    /// Use the cached resolution even past its TTL; deny what was never resolved (Consul's default).
    #[default]
    ExtendCache,
    /// As extend-cache (Consul also refreshes in the background; Conclave refreshes on the next request).
    AsyncCache,
    Allow,
    Deny,
}

/// The tokens an agent holds for its own use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentTokens {
    /// `initial_management` (formerly `master`): created on the servers with global-management.
    pub initial_management: String,
    /// The agent's own token: node registration, anti-entropy.
    pub agent: String,
    /// `agent_recovery` (formerly `agent_master`): agent endpoints of this agent even when the servers
    /// cannot be reached.
    pub agent_recovery: String,
    /// Used for requests that carry no token (and for DNS).
    pub default: String,
    /// For replication between datacenters; held and shown, Conclave serving one datacenter.
    pub replication: String,
}

/// The resolved ACL settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclSettings {
    pub enabled: bool,
    pub default_allow: bool,
    pub down_policy: DownPolicy,
    pub enable_token_persistence: bool,
    /// How long a client agent trusts a resolved token (the least of token, policy and role TTLs:
    /// Conclave resolves a token with its policies and roles in one answer).
    pub token_ttl: Duration,
    pub policy_ttl: Duration,
    pub role_ttl: Duration,
    pub tokens: AgentTokens,
}

impl Default for AclSettings {
    fn default() -> AclSettings {
        AclSettings {
            enabled: false,
            default_allow: true,
            down_policy: DownPolicy::ExtendCache,
            enable_token_persistence: false,
            token_ttl: Duration::from_secs(30),
            policy_ttl: Duration::from_secs(30),
            role_ttl: Duration::from_secs(30),
            tokens: AgentTokens::default(),
        }
    }
}

impl AclSettings {
    /// How long a client agent caches one resolution.
    pub fn cache_ttl(&self) -> Duration {
        self.token_ttl.min(self.policy_ttl).min(self.role_ttl)
    }
}

fn problem(file: &Path, key: &str, what: impl std::fmt::Display) -> String {
    format!("Error in {}: key {key:?}: {what}", file.display())
}

fn string(file: &Path, key: &str, value: &Value) -> Result<String, String> {
    value.as_str().map(str::to_string).ok_or_else(|| problem(file, key, "expected a string"))
}

fn duration(file: &Path, key: &str, value: &Value) -> Result<Duration, String> {
    let text = string(file, key, value)?;
    conclave_core::api::parse_go_duration(&text).map_err(|e| problem(file, key, e.message))
}

/// Applies one file's `acl` block over `settings`.
pub fn apply_acl(settings: &mut AclSettings, file: &Path, value: &Value) -> Result<(), String> {
    for block in super::objects(value) {
        let map = block.as_object().ok_or_else(|| problem(file, "acl", "expected a block"))?;
        for (key, value) in map {
            let name = format!("acl.{key}");
            match key.as_str() {
                "enabled" => {
                    settings.enabled = value.as_bool().ok_or_else(|| problem(file, &name, "expected true or false"))?
                }
                "default_policy" => {
                    settings.default_allow = match string(file, &name, value)?.as_str() {
                        "allow" => true,
                        "deny" => false,
                        other => return Err(problem(file, &name, format!("{other:?} is not allow or deny"))),
                    }
                }
                "down_policy" => {
                    settings.down_policy = match string(file, &name, value)?.as_str() {
                        "extend-cache" => DownPolicy::ExtendCache,
                        "async-cache" => DownPolicy::AsyncCache,
                        "allow" => DownPolicy::Allow,
                        "deny" => DownPolicy::Deny,
                        other => {
                            return Err(problem(
                                file,
                                &name,
                                format!("{other:?} is not one of extend-cache, async-cache, allow, deny"),
                            ))
                        }
                    }
                }
                "enable_token_persistence" => {
                    settings.enable_token_persistence =
                        value.as_bool().ok_or_else(|| problem(file, &name, "expected true or false"))?
                }
                "token_ttl" => settings.token_ttl = duration(file, &name, value)?,
                "policy_ttl" => settings.policy_ttl = duration(file, &name, value)?,
                "role_ttl" => settings.role_ttl = duration(file, &name, value)?,
                "tokens" => apply_tokens(&mut settings.tokens, file, value)?,
                other => return Err(problem(file, &format!("acl.{other}"), "unknown or unsupported ACL setting")),
            }
        }
    }
    Ok(())
}

fn apply_tokens(tokens: &mut AgentTokens, file: &Path, value: &Value) -> Result<(), String> {
    let map = value.as_object().ok_or_else(|| problem(file, "acl.tokens", "expected a block"))?;
    for (key, value) in map {
        let name = format!("acl.tokens.{key}");
        let token = string(file, &name, value)?;
        match key.as_str() {
            "initial_management" | "master" => tokens.initial_management = token,
            "agent" => tokens.agent = token,
            "agent_recovery" | "agent_master" => tokens.agent_recovery = token,
            "default" => tokens.default = token,
            "replication" => tokens.replication = token,
            other => return Err(problem(file, &format!("acl.tokens.{other}"), "unknown ACL token")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AclSettings, String> {
        let value: Value = hcl::from_str(text).unwrap();
        let mut settings = AclSettings::default();
        apply_acl(&mut settings, Path::new("a.hcl"), &value["acl"])?;
        Ok(settings)
    }

    #[test]
    fn a_full_acl_block_is_read_with_consul_names_old_and_new() {
        let settings = parse(
            r#"acl {
  enabled = true
  default_policy = "deny"
  down_policy = "allow"
  enable_token_persistence = true
  token_ttl = "10s"
  tokens {
    master = "root"
    agent = "a"
    agent_master = "rec"
    default = "d"
    replication = "r"
  }
}"#,
        )
        .unwrap();
        assert!(settings.enabled && !settings.default_allow && settings.enable_token_persistence);
        assert_eq!(settings.down_policy, DownPolicy::Allow);
        assert_eq!(settings.cache_ttl(), Duration::from_secs(10));
        assert_eq!(settings.tokens.initial_management, "root");
        assert_eq!(settings.tokens.agent_recovery, "rec");
    }

    #[test]
    fn unknown_acl_keys_and_values_are_refused_by_name() {
        assert!(parse("acl {\n  default_policy = \"maybe\"\n}").unwrap_err().contains("acl.default_policy"));
        assert!(parse("acl {\n  enable_key_list = true\n}").unwrap_err().contains("acl.enable_key_list"));
        assert!(parse("acl {\n  tokens {\n    bogus = \"x\"\n  }\n}").unwrap_err().contains("acl.tokens.bogus"));
    }
}

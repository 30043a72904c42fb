//! ACL rules: the text of a policy (HCL or JSON, as Consul takes it) parsed into [`Rules`], a list of
//! what each rule grants on which resource. Parsing refuses what Consul refuses (an unknown resource, a
//! policy value that resource does not take, a missing label) with a message naming the line.

use serde::{Deserialize, Serialize};

/// A kind of thing a rule speaks about. Segmented resources have names (`key "app/x"`); the others are
/// one switch for the whole datacenter (`operator = "read"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Resource {
    Acl,
    Agent,
    Event,
    Key,
    Keyring,
    Mesh,
    Node,
    Operator,
    Peering,
    Query,
    Service,
    Session,
}

/// Every resource, in the order [`Resource::index`] numbers them.
pub const RESOURCES: [Resource; 12] = [
    Resource::Acl,
    Resource::Agent,
    Resource::Event,
    Resource::Key,
    Resource::Keyring,
    Resource::Mesh,
    Resource::Node,
    Resource::Operator,
    Resource::Peering,
    Resource::Query,
    Resource::Service,
    Resource::Session,
];

impl Resource {
    /// The name Consul uses in rules and in permission-denied messages.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Acl => "acl",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Key => "key",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Node => "node",
            Resource::Operator => "operator",
            Resource::Peering => "peering",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
        }
    }

    /// Position in [`RESOURCES`].
    pub fn index(self) -> usize {
        RESOURCES.iter().position(|r| *r == self).expect("every resource is listed")
    }

    /// Whether rules name segments of it (`key "x"`, `key_prefix "x"`) rather than set it as a whole.
    pub fn is_segmented(self) -> bool {
        !matches!(self, Resource::Acl | Resource::Keyring | Resource::Mesh | Resource::Operator | Resource::Peering)
    }

    fn of_segmented(word: &str) -> Option<Resource> {
        RESOURCES.into_iter().find(|r| r.is_segmented() && r.name() == word)
    }

    fn of_singleton(word: &str) -> Option<Resource> {
        RESOURCES.into_iter().find(|r| !r.is_segmented() && r.name() == word)
    }
}

/// What a rule grants. `List` exists for keys only (read plus listing key names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Access {
    Read,
    List,
    Write,
    Deny,
}

impl Access {
    fn parse(text: &str, resource: Resource) -> Option<Access> {
        Some(match text {
            "read" => Access::Read,
            "write" => Access::Write,
            "deny" => Access::Deny,
            "list" if resource == Resource::Key => Access::List,
            _ => return None,
        })
    }

    /// Where several rules speak about the same segment: deny beats write beats list beats read.
    pub fn strongest(self, other: Access) -> Access {
        self.max(other)
    }

    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::List => "list",
            Access::Write => "write",
            Access::Deny => "deny",
        }
    }
}

/// One rule: `resource "segment"` (exact), `resource_prefix "segment"` (prefix) or `resource = "..."`
/// (a singleton; segment empty, exact).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    pub resource: Resource,
    pub segment: String,
    pub prefix: bool,
    pub access: Access,
}

/// The rules of one policy, in the order they were written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub rules: Vec<Rule>,
}

/// Resources of Consul Enterprise, refused by name rather than as unknown.
const ENTERPRISE_ONLY: &[&str] = &["namespace", "namespace_prefix", "partition", "partition_prefix"];

/// Parses a policy's rules: JSON when the text starts with `{`, HCL otherwise. Empty text is no rules.
pub fn parse_rules(text: &str) -> Result<Rules, String> {
    let mut rules = Vec::new();
    if text.trim_start().starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("Failed to parse ACL rules: {e}"))?;
        let object = value.as_object().ok_or("Failed to parse ACL rules: not a JSON object")?;
        for (word, body) in object {
            parse_json_entry(text, word, body, &mut rules)?;
        }
    } else {
        let body = hcl::parse(text).map_err(|e| format!("Failed to parse ACL rules: {e}"))?;
        for structure in body.into_inner() {
            match structure {
                hcl::Structure::Attribute(attribute) => {
                    let value = expression_string(&attribute.expr);
                    singleton_rule(text, attribute.key.as_str(), value.as_deref(), &mut rules)?;
                }
                hcl::Structure::Block(block) => parse_hcl_block(text, block, &mut rules)?,
            }
        }
    }
    Ok(Rules { rules })
}

fn expression_string(expr: &hcl::Expression) -> Option<String> {
    match expr {
        hcl::Expression::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `resource "segment" { policy = "..." }` or `resource_prefix "segment" { ... }`.
fn parse_hcl_block(text: &str, block: hcl::Block, rules: &mut Vec<Rule>) -> Result<(), String> {
    let word = block.identifier.as_str().to_string();
    let (resource, prefix) = segmented_word(text, &word)?;
    let [label] = block.labels.as_slice() else {
        return Err(at_line(text, &word, "", &format!("{word} rule needs exactly one name, as {word} \"name\" {{ }}")));
    };
    let segment = label.as_str().to_string();
    let mut policy = None;
    for structure in block.body.into_inner() {
        let hcl::Structure::Attribute(attribute) = structure else {
            return Err(at_line(text, &word, &segment, "unexpected block inside a rule"));
        };
        let value = expression_string(&attribute.expr);
        policy = block_attribute(text, resource, &word, &segment, attribute.key.as_str(), value, policy)?;
    }
    push_segment_rule(text, resource, &word, segment, prefix, policy, rules)
}

/// One `name = "value"` inside a rule block: `policy`, and `intentions` on services (accepted and
/// checked, intentions being Connect's, which Conclave does not serve).
fn block_attribute(
    text: &str,
    resource: Resource,
    word: &str,
    segment: &str,
    key: &str,
    value: Option<String>,
    policy: Option<String>,
) -> Result<Option<String>, String> {
    let value = value.ok_or_else(|| at_line(text, word, segment, &format!("{key} must be a string")))?;
    match key {
        "policy" => Ok(Some(value)),
        "intentions" if resource == Resource::Service => {
            if !matches!(value.as_str(), "read" | "write" | "deny") {
                return Err(at_line(text, word, segment, &format!("Invalid intentions policy: {value:?}")));
            }
            Ok(policy)
        }
        other => Err(at_line(text, word, segment, &format!("unknown field {other:?} in {word} rule"))),
    }
}

fn push_segment_rule(
    text: &str,
    resource: Resource,
    word: &str,
    segment: String,
    prefix: bool,
    policy: Option<String>,
    rules: &mut Vec<Rule>,
) -> Result<(), String> {
    let Some(policy) = policy else {
        return Err(at_line(text, word, &segment, &format!("{word} {segment:?} has no policy")));
    };
    let Some(access) = Access::parse(&policy, resource) else {
        let message = format!("Invalid {word} policy: {policy:?} on {segment:?}");
        return Err(at_line(text, word, &segment, &message));
    };
    rules.push(Rule { resource, segment, prefix, access });
    Ok(())
}

fn segmented_word(text: &str, word: &str) -> Result<(Resource, bool), String> {
    let (base, prefix) = match word.strip_suffix("_prefix") {
        Some(base) => (base, true),
        None => (word, false),
    };
    if ENTERPRISE_ONLY.contains(&word) {
        return Err(at_line(text, word, "", &format!("{word} rules are Consul Enterprise only")));
    }
    match Resource::of_segmented(base) {
        Some(resource) => Ok((resource, prefix)),
        None if Resource::of_singleton(word).is_some() => {
            Err(at_line(text, word, "", &format!("{word} takes a value (`{word} = \"read\"`), not a block")))
        }
        None => Err(at_line(text, word, "", &format!("unknown ACL resource {word:?}"))),
    }
}

/// `acl = "write"`, `operator = "read"`, ...
fn singleton_rule(text: &str, word: &str, value: Option<&str>, rules: &mut Vec<Rule>) -> Result<(), String> {
    let Some(resource) = Resource::of_singleton(word) else {
        if Resource::of_segmented(word.trim_end_matches("_prefix")).is_some() {
            return Err(at_line(text, word, "", &format!("{word} rules need a name: {word} \"name\" {{ }}")));
        }
        return Err(at_line(text, word, "", &format!("unknown ACL resource {word:?}")));
    };
    let value = value.ok_or_else(|| at_line(text, word, "", &format!("{word} must be a string")))?;
    let access = Access::parse(value, resource)
        .ok_or_else(|| at_line(text, word, "", &format!("Invalid {word} policy: {value:?}")))?;
    rules.push(Rule { resource, segment: String::new(), prefix: false, access });
    Ok(())
}

/// JSON rules: `{"key_prefix": {"app/": {"policy": "write"}}, "operator": "read"}`. Consul also takes a
/// list of such objects for a resource (HCL's repeated blocks as JSON).
fn parse_json_entry(text: &str, word: &str, body: &serde_json::Value, rules: &mut Vec<Rule>) -> Result<(), String> {
    if let Some(value) = body.as_str() {
        return singleton_rule(text, word, Some(value), rules);
    }
    let (resource, prefix) = segmented_word(text, word)?;
    let objects: Vec<&serde_json::Value> = match body {
        serde_json::Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for object in objects {
        let segments = object.as_object().ok_or_else(|| format!("{word} must map names to rules"))?;
        for (segment, fields) in segments {
            let fields = fields.as_object().ok_or_else(|| format!("{word} {segment:?} must be an object"))?;
            let mut policy = None;
            for (key, value) in fields {
                let value = value.as_str().map(str::to_string);
                policy = block_attribute(text, resource, word, segment, key, value, policy)?;
            }
            push_segment_rule(text, resource, word, segment.clone(), prefix, policy, rules)?;
        }
    }
    Ok(())
}

/// Prefixes `message` with the line of the rule it is about: the first line naming `word` (and the
/// segment, when there is one).
fn at_line(text: &str, word: &str, segment: &str, message: &str) -> String {
    let quoted = format!("\"{segment}\"");
    let line = text
        .lines()
        .position(|line| line.contains(word) && (segment.is_empty() || line.contains(&quoted)))
        .or_else(|| text.lines().position(|line| line.contains(word)));
    match line {
        Some(n) => format!("Failed to parse ACL rules: line {}: {message}", n + 1),
        None => format!("Failed to parse ACL rules: {message}"),
    }
}

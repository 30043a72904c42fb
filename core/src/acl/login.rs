//! Consul's `jwt` ACL auth method: the method's `Config` ([`JwtConfig`]), checking a login JWT against it
//! ([`validate`], giving an [`Identity`]), binding-rule selectors ([`parse_selector`], a go-bexpr subset)
//! and `BindName` interpolation ([`interpolate_bind_name`]).
//!
//! Selectors and bind names live in [`super::selector`] and are re-exported here.
//!
//! Everything here is pure: keys come from the config (PEM keys or an inline JWKS document, never a URL),
//! and time comes in as `now_unix_s`; jsonwebtoken only checks the signature, every time claim is checked
//! here as Consul's go-sso does (with its defaulting of missing `exp`/`nbf` and its leeways).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

pub use super::selector::{
    interpolate_bind_name, parse_selector, valid_policy_name, valid_role_name, valid_service_name, Identity, Selector,
};

/// Consul's default for `ExpirationLeeway` and `NotBeforeLeeway` when unset (0).
const DEFAULT_EXP_NBF_LEEWAY_S: i64 = 150;
/// Consul's (go-jose's) default for `ClockSkewLeeway` when unset (0).
const DEFAULT_CLOCK_SKEW_S: i64 = 60;
/// Signing algorithms a `jwt` method may list in `JWTSupportedAlgs` (Consul's set, plus EdDSA).
const SUPPORTED_ALGS: &str = "RS256 RS384 RS512 ES256 ES384 ES512 PS256 PS384 PS512 EdDSA";
/// Config fields Consul's `jwt` method has that need the network, so Conclave refuses them.
const NETWORK_FIELDS: &str = "OIDCDiscoveryURL OIDCDiscoveryCACert JWKSURL JWKSCACert";
/// Config fields Consul allows only for type `oidc`.
const OIDC_ONLY_FIELDS: &str =
    "OIDCClientID OIDCClientSecret OIDCScopes OIDCACRValues AllowedRedirectURIs VerboseOIDCLogging";
/// The fields [`JwtConfig`] holds, as Consul spells them.
const KNOWN_FIELDS: &str = "JWTValidationPubKeys JWKS BoundIssuer BoundAudiences ClaimMappings ListClaimMappings \
                            JWTSupportedAlgs ClockSkewLeeway ExpirationLeeway NotBeforeLeeway";

/// The `Config` of an auth method of type "jwt", with Consul's JSON field names.
///
/// Leeways are whole seconds with Consul's meaning: 0 takes the default (150 s for `ExpirationLeeway` and
/// `NotBeforeLeeway`, 60 s for `ClockSkewLeeway`), a negative value turns the leeway off. In JSON they are a
/// number of seconds or a Go duration string ("90s", "1m30s", "-1s").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JwtConfig {
    /// PEM public keys (RSA, EC or Ed25519; SPKI "PUBLIC KEY" or PKCS#1 "RSA PUBLIC KEY").
    #[serde(rename = "JWTValidationPubKeys", default, skip_serializing_if = "Vec::is_empty")]
    pub validation_pub_keys: Vec<String>,
    /// Inline JWKS JSON document text (Conclave's "JWKS file": the CLI reads a file into this).
    #[serde(rename = "JWKS", default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(rename = "BoundIssuer", default, skip_serializing_if = "String::is_empty")]
    pub bound_issuer: String,
    #[serde(rename = "BoundAudiences", default, skip_serializing_if = "Vec::is_empty")]
    pub bound_audiences: Vec<String>,
    /// Claim (name or JSON pointer such as "/nested/claim") to `value.<target>`.
    #[serde(rename = "ClaimMappings", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claim_mappings: BTreeMap<String, String>,
    /// Claim (name or JSON pointer) to `list.<target>`.
    #[serde(rename = "ListClaimMappings", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub list_claim_mappings: BTreeMap<String, String>,
    /// Allowed `alg` header values; empty means `["RS256"]`, as Consul.
    #[serde(rename = "JWTSupportedAlgs", default, skip_serializing_if = "Vec::is_empty")]
    pub supported_algs: Vec<String>,
    #[serde(rename = "ClockSkewLeeway", default, deserialize_with = "de_seconds", skip_serializing_if = "is_zero")]
    pub clock_skew_leeway_s: i64,
    #[serde(rename = "ExpirationLeeway", default, deserialize_with = "de_seconds", skip_serializing_if = "is_zero")]
    pub expiration_leeway_s: i64,
    #[serde(rename = "NotBeforeLeeway", default, deserialize_with = "de_seconds", skip_serializing_if = "is_zero")]
    pub not_before_leeway_s: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A leeway: a JSON number of seconds, or a Go duration string. Sub-second positive durations count as
/// "off" (Consul truncates them to 0 s of leeway, which is not its "default" 0).
fn de_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(0),
        Value::Number(n) => n.as_i64().ok_or_else(|| D::Error::custom("leeway must be a whole number of seconds")),
        Value::String(s) => {
            let ns = parse_go_duration_ns(&s).map_err(|e| D::Error::custom(format!("invalid duration {s:?}: {e}")))?;
            let secs = (ns / 1_000_000_000) as i64;
            Ok(if secs == 0 && ns > 0 { -1 } else { secs })
        }
        _ => Err(D::Error::custom("leeway must be a number of seconds or a duration string like \"60s\"")),
    }
}

/// Go's `time.ParseDuration` grammar: `[-+]?(<decimal><unit>)+` or "0"; result in nanoseconds.
fn parse_go_duration_ns(s: &str) -> Result<i128, String> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let num: f64 = rest[..num_len].parse().map_err(|_| "expected a number".to_string())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err("missing unit".into()),
            u => return Err(format!("unknown unit {u:?}")),
        };
        total += num * scale;
        rest = &rest[unit_len..];
    }
    Ok(if neg { -(total as i128) } else { total as i128 })
}

/// A verification key from the config.
/// (A key of another family than the token's `alg` fails to verify in jsonwebtoken, so it is skipped.)
struct Key {
    kid: Option<String>,
    /// A JWK's own `alg`: `Some(None)` when it names no signing algorithm (such a key never verifies).
    alg: Option<Option<Algorithm>>,
    key: DecodingKey,
    from_jwks: bool,
}

fn pem_key(pem: &str) -> Result<Key, String> {
    let pem = pem.as_bytes();
    let key = DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem));
    let key = key.map_err(|_| "data does not contain any valid RSA, ECDSA, or ED25519 public keys")?;
    Ok(Key { kid: None, alg: None, key, from_jwks: false })
}

fn jwks_keys(text: &str) -> Result<Vec<Key>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
    let Some(Value::Array(keys)) = doc.get("keys") else {
        return Err("JWKS must be an object with a \"keys\" array".into());
    };
    let mut out = Vec::new();
    for (i, raw) in keys.iter().enumerate() {
        let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|e| format!("JWKS key {i}: {e}"))?;
        if let AlgorithmParameters::OctetKey(_) = jwk.algorithm {
            return Err(format!("JWKS key {i}: symmetric keys are not supported"));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("JWKS key {i}: {e}"))?;
        let alg = jwk.common.key_algorithm.map(|a| Algorithm::from_str(&a.to_string()).ok());
        out.push(Key { kid: jwk.common.key_id, alg, key, from_jwks: true });
    }
    if out.is_empty() {
        return Err("JWKS has no keys".into());
    }
    Ok(out)
}

impl JwtConfig {
    /// Parses and checks a config body (from `Config` of POST /v1/acl/auth-method). Field names match as
    /// Consul's decoder does (case-insensitively); unknown fields, fields that need the network
    /// (OIDCDiscoveryURL, JWKSURL and their CA certs) and OIDC-only fields are refused by name.
    pub fn parse(value: &Value) -> Result<JwtConfig, String> {
        let bad = |msg: String| format!("Invalid Auth Method: {msg}");
        let empty = Map::new();
        let obj = match value {
            Value::Object(o) => o,
            Value::Null => &empty,
            _ => return Err(bad("Config must be a JSON object".into())),
        };
        let mut canon = Map::new();
        for (raw_name, v) in obj {
            let set = !matches!(v, Value::Null | Value::Bool(false))
                && v.as_str() != Some("")
                && v.as_array().is_none_or(|a| !a.is_empty());
            let find = |list: &'static str| list.split_whitespace().find(|n| n.eq_ignore_ascii_case(raw_name));
            if let Some(name) = find(NETWORK_FIELDS) {
                if set {
                    return Err(bad(format!(
                        "'{name}' is not supported: Conclave cannot fetch keys over the network; \
                         put the keys in 'JWTValidationPubKeys' or the JWKS document in 'JWKS'"
                    )));
                }
            } else if let Some(name) = find(OIDC_ONLY_FIELDS) {
                if set {
                    return Err(bad(format!("'{name}' must not be set for type \"jwt\"")));
                }
            } else if let Some(name) = find(KNOWN_FIELDS) {
                // Decode one field at a time first, so that an error names its field.
                // A JWKS document given as a JSON object is taken as its text.
                let v = if name == "JWKS" && v.is_object() { Value::String(v.to_string()) } else { v.clone() };
                let one = Value::Object(Map::from_iter([(name.to_string(), v.clone())]));
                serde_json::from_value::<JwtConfig>(one).map_err(|e| bad(format!("invalid '{name}': {e}")))?;
                canon.insert(name.to_string(), v);
            } else {
                return Err(bad(format!("unknown field '{raw_name}' in Config")));
            }
        }
        let config: JwtConfig = serde_json::from_value(Value::Object(canon)).map_err(|e| bad(e.to_string()))?;
        config.check().map_err(bad)?;
        Ok(config)
    }

    /// Consul's checks of a `jwt` config, plus: the JWKS document must parse.
    fn check(&self) -> Result<(), String> {
        let jwks = self.jwks.as_deref().filter(|j| !j.trim().is_empty());
        if self.validation_pub_keys.is_empty() == jwks.is_none() {
            return Err("exactly one of 'JWTValidationPubKeys' or 'JWKS' must be set for type \"jwt\"".into());
        }
        for (i, pem) in self.validation_pub_keys.iter().enumerate() {
            pem_key(pem).map_err(|e| format!("error parsing public key JWTValidationPubKeys[{i}]: {e}"))?;
        }
        if let Some(text) = jwks {
            jwks_keys(text).map_err(|e| format!("error parsing 'JWKS': {e}"))?;
        }
        if let Some(alg) = self.supported_algs.iter().find(|a| !SUPPORTED_ALGS.split(' ').any(|s| s == a.as_str())) {
            return Err(format!("Invalid supported algorithm: {alg}"));
        }
        for (field, map) in [("ClaimMappings", &self.claim_mappings), ("ListClaimMappings", &self.list_claim_mappings)]
        {
            let mut targets = BTreeSet::new();
            if let Some(t) = map.values().find(|t| !targets.insert(t.as_str())) {
                return Err(format!("{field} contains multiple mappings for key {t:?}"));
            }
        }
        Ok(())
    }

    fn keys(&self) -> Result<Vec<Key>, String> {
        let mut keys = Vec::new();
        for pem in &self.validation_pub_keys {
            keys.push(pem_key(pem)?);
        }
        if let Some(text) = self.jwks.as_deref().filter(|j| !j.trim().is_empty()) {
            keys.extend(jwks_keys(text)?);
        }
        Ok(keys)
    }

    /// `JWTSupportedAlgs`, or Consul's default `["RS256"]` when it is empty.
    pub fn effective_algs(&self) -> Vec<String> {
        if self.supported_algs.is_empty() {
            vec!["RS256".to_string()]
        } else {
            self.supported_algs.clone()
        }
    }
}

/// The identity Consul checks a new binding rule's `BindName` against: every ClaimMappings target set to
/// "fake" and every ListClaimMappings target an empty list.
pub fn placeholder_identity(config: &JwtConfig) -> Identity {
    Identity {
        values: config.claim_mappings.values().map(|t| (t.clone(), "fake".to_string())).collect(),
        lists: config.list_claim_mappings.values().map(|t| (t.clone(), Vec::new())).collect(),
        unset_values: BTreeSet::new(),
    }
}

fn leeway(configured: i64, default: i64) -> i64 {
    match configured {
        c if c < 0 => 0,
        0 => default,
        c => c,
    }
}

/// A NumericDate claim; absent or null is 0 (Go's zero), fractions are truncated.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<i64, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64)),
        Some(_) => Err(format!("failed to unmarshal claims: '{name}' is not a number")),
    }
}

/// Verifies a login JWT against the method's config at `now_unix_s` and maps its claims into an
/// [`Identity`]. Errors are human texts for a 403; they never contain the token.
pub fn validate(config: &JwtConfig, jwt: &str, now_unix_s: u64) -> Result<Identity, String> {
    let claims = verify_signature(config, jwt.trim())?;
    let claims = match claims {
        Value::Object(m) => m,
        _ => return Err("failed to unmarshal claims: the payload is not a JSON object".into()),
    };
    if !config.bound_issuer.is_empty() && claims.get("iss").and_then(Value::as_str) != Some(&config.bound_issuer) {
        return Err("error validating claims: validation failed, invalid issuer claim (iss)".into());
    }
    check_times(config, &claims, now_unix_s)?;
    let aud: Vec<&str> = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().ok_or("failed to unmarshal claims: 'aud' must be a string or a list of strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("failed to unmarshal claims: 'aud' must be a string or a list of strings".into()),
    };
    if config.bound_audiences.is_empty() && !aud.is_empty() {
        return Err("error validating claims: audience claim found in JWT but no audiences are bound".into());
    }
    if !config.bound_audiences.is_empty() && !config.bound_audiences.iter().any(|b| aud.contains(&b.as_str())) {
        return Err("error validating claims: aud claim does not match any bound audience".into());
    }
    extract_claims(config, &claims)
}

fn verify_signature(config: &JwtConfig, jwt: &str) -> Result<Value, String> {
    if jwt.is_empty() {
        return Err("missing jwt".into());
    }
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| "error parsing token: not a well-formed signed JWT")?;
    let alg_name = format!("{:?}", header.alg);
    if !config.effective_algs().contains(&alg_name) {
        return Err(format!("token signing algorithm {alg_name} is not allowed by JWTSupportedAlgs"));
    }
    let keys = config.keys().map_err(|e| format!("auth method is misconfigured: {e}"))?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let mut kid_matched = false;
    for key in &keys {
        // A JWKS key is chosen by the token's `kid` when it has one (as go-oidc's key set does).
        if key.from_jwks {
            if let Some(kid) = &header.kid {
                if key.kid.as_ref() != Some(kid) {
                    continue;
                }
            }
            kid_matched = true;
        }
        if key.alg.is_some_and(|a| a != Some(header.alg)) {
            continue;
        }
        match jsonwebtoken::decode::<Value>(jwt, &key.key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_)) => {
                return Err("failed to unmarshal claims: the payload is not valid JSON claims".into())
            }
            Err(_) => {}
        }
    }
    if header.kid.is_some() && !kid_matched && keys.iter().all(|k| k.from_jwks) {
        return Err("error verifying token: no JWKS key has the token's key ID (kid)".into());
    }
    Err("no known key successfully validated the token signature".into())
}

/// Consul's time checks: exp/nbf defaults from iat and the leeways, then go-jose's checks with
/// `ClockSkewLeeway`.
fn check_times(config: &JwtConfig, claims: &Map<String, Value>, now_unix_s: u64) -> Result<(), String> {
    let iat = numeric_date(claims, "iat")?;
    let mut exp = numeric_date(claims, "exp")?;
    let mut nbf = numeric_date(claims, "nbf")?;
    if iat == 0 && exp == 0 && nbf == 0 {
        return Err("no issue time, notbefore, or expiration time encoded in token".into());
    }
    if exp == 0 {
        exp = iat.max(nbf).saturating_add(leeway(config.expiration_leeway_s, DEFAULT_EXP_NBF_LEEWAY_S));
    }
    if nbf == 0 {
        nbf = if iat != 0 {
            iat
        } else {
            exp.saturating_sub(leeway(config.not_before_leeway_s, DEFAULT_EXP_NBF_LEEWAY_S))
        };
    }
    let skew = i128::from(leeway(config.clock_skew_leeway_s, DEFAULT_CLOCK_SKEW_S));
    let now = i128::from(now_unix_s);
    if now + skew < i128::from(nbf) {
        return Err("error validating claims: validation failed, token not valid yet (nbf)".into());
    }
    if now - skew > i128::from(exp) {
        return Err("error validating claims: validation failed, token is expired (exp)".into());
    }
    if now + skew < i128::from(iat) {
        return Err("error validating claims: validation failed, token issued in the future (iat)".into());
    }
    Ok(())
}

/// A claim by name, or by JSON pointer (RFC 6901) when it starts with "/"; null counts as absent.
fn get_claim<'a>(claims: &'a Map<String, Value>, source: &str) -> Option<&'a Value> {
    let Some(pointer) = source.strip_prefix('/') else {
        return claims.get(source).filter(|v| !v.is_null());
    };
    let mut parts = pointer.split('/').map(|p| p.replace("~1", "/").replace("~0", "~"));
    let mut cur = claims.get(&parts.next()?)?;
    for part in parts {
        cur = match cur {
            Value::Object(m) => m.get(&part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur).filter(|v| !v.is_null())
}

/// Consul's stringification: strings as they are, booleans "true"/"false", numbers truncated to integers.
fn stringify(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.as_i64().unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64).to_string()),
        _ => None,
    }
}

fn extract_claims(config: &JwtConfig, claims: &Map<String, Value>) -> Result<Identity, String> {
    let mut id = Identity::default();
    for (source, target) in &config.claim_mappings {
        match get_claim(claims, source) {
            None => {
                id.unset_values.insert(target.clone());
            }
            Some(raw) => {
                let s = stringify(raw).ok_or_else(|| format!("error converting claim '{source}' to string"))?;
                id.values.insert(target.clone(), s);
            }
        }
    }
    for (source, target) in &config.list_claim_mappings {
        let Some(raw) = get_claim(claims, source) else { continue };
        let items = match raw {
            Value::Array(a) => a.as_slice(),
            Value::Object(_) => return Err(format!("{source:?} list claim could not be converted to string list")),
            scalar => std::slice::from_ref(scalar),
        };
        let mut list = Vec::with_capacity(items.len());
        for item in items {
            let s = stringify(item)
                .ok_or_else(|| format!("a value in the {source:?} list claim could not be parsed as string"))?;
            if !s.is_empty() {
                list.push(s);
            }
        }
        id.lists.insert(target.clone(), list);
    }
    Ok(id)
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;

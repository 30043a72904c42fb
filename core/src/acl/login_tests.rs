//! Tests of [`super`]: the `jwt` auth method's config, token validation, selectors and bind names.
//!
//! The key pairs are fixed test keys made with `openssl genrsa 2048` / `openssl ecparam -name prime256v1`;
//! `OTHER_RSA_PUB` is the public half of a second RSA pair whose private half was thrown away.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

const RSA_PRIV: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCV2N+K0wbAIDWE
0f+9NEVmtd6DzUInev8MbC5QZmXO9XN1g3IoMRwtwhF7FeJjy2FdETOYBimzyPz9
oY79L/2w2kZM7O0GziRdmX9lJoAwGcXJMwOCeTirOQVVCxypdKqcCtmFYTYMFLcx
QnAIHwQqluNWMWnheSzl/dfTsi4fT6DpkZt07fVP8OSFWLQtktcczSnaSBcNmd1l
yod0xvROZfiI9EcTDYNmo31bUNndeQq5p1Z/bULN3DjC+bf+bDqt7bocnAvmY+TX
WVCbmJB7cdnPIZZyAqpzDO8T5fqDu9h0+efrDtawvLyfA12TgvlR2zyWNFO1bxJk
0A59cOTNAgMBAAECggEAAxzty/MFXWFt6zP3paUb2f3mQQO3H53ZBZeLwMTX0Zxc
yTCxYu9eP/8boNx8Bwm3HJlaYoqiPCdtRhGgqFbiZNWsBzYW2IDY1Y72TBIoMJeg
ecUTChddm4UEPNeNwWF4l+RLz48M8eROR/oy3KBUVFQtJeHB6tq7GY4T+URm2+Sh
9lnFfL3pQUXjIwNLa0XHKMs7eT930Feo9HFdG/2G+KwTafIt7ckb5Dp6jssqBVmU
YHtiybvyZbJlG3rJCN+dlZ77/LPwVmtMPHnaApQ37d+uYziZZCDqR8djpijeQxvp
TbuZ1YJZoH2L1twfvNqGN9lbbPpPlAOSym/9kubAkQKBgQDEVKcmpNmXu+pMEWNJ
kRV1xIa1QcGx/4rUmgWKsQqG6vgmprHzuPh7JOhpEtGQcbGnLWq9wwo+nnZqwirD
CeboNNRgdgbNIcNz4S3756uZxU6Y5aDux3PJjbc/zpI5uwyObxoTRMOA0ZEW54ft
FiZGRcapo40+wOdskW+7gIrUdQKBgQDDY5vMDiXaTNSY2QlcNurrWAN3m6Nu9kcy
5Rfl2kYSKEkLUn6Enyzg5T7VPh0rzdEHly/anfniUCdSfg4hrQq8Yd1ZVV5tbPry
jixeHgZAfr4jsTDQ5UJeRiMeYtgjsN3XrMRds4QAESdCvNkPGG+VLLBlwhjUBkUf
Yjl+iWNj+QKBgQCiKhn2fWuNPRYFxsbv2PqUz8NErA/FaoHNoXq6WAmN7z8RDdcm
rL3xWUbuozCd0osevxDPtO4dUt4UyFRxzRgA7MIO+u4bOawrZu+Iho7i8Go/OEx5
bh1hecDG32VAchOpAnPTPpUNLgxdkthfKFBs8u1o6UKddtCwiGB1y3LgkQKBgQCH
sYOfgSvUoYr7467WdeVMMEGoLVShWTQ1Klkgbig/r+6aiF4JKKp4PX0Xhx2nMDa8
+MhpIVFLVLMaXSTfSlesYKLiyaDcidT14rr5Wgypedv+2a23RaCD7F2zWp4Um15V
zExLbsJ7cW48sP5lt2i2xuRypwurI/eZRhP7xtpZsQKBgQC9AWP/At4kH9oouqRk
CnaM3bATH3rb7GD8iZc+t2OAGf5EVfHKKRTF8tb5FKwhghXim88tOgyKHjGjRyBD
Lrnd1LUZgPzpXNI/DDHxuTKCjnJpXx8wGGicUZUTY3+9dkUBRqsJFwXjfO9VK12o
BTjeMU5Rf0qCPVq7HYRIHdQ/1g==
-----END PRIVATE KEY-----
";
const RSA_PUB: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAldjfitMGwCA1hNH/vTRF
ZrXeg81CJ3r/DGwuUGZlzvVzdYNyKDEcLcIRexXiY8thXREzmAYps8j8/aGO/S/9
sNpGTOztBs4kXZl/ZSaAMBnFyTMDgnk4qzkFVQscqXSqnArZhWE2DBS3MUJwCB8E
KpbjVjFp4Xks5f3X07IuH0+g6ZGbdO31T/DkhVi0LZLXHM0p2kgXDZndZcqHdMb0
TmX4iPRHEw2DZqN9W1DZ3XkKuadWf21Czdw4wvm3/mw6re26HJwL5mPk11lQm5iQ
e3HZzyGWcgKqcwzvE+X6g7vYdPnn6w7WsLy8nwNdk4L5Uds8ljRTtW8SZNAOfXDk
zQIDAQAB
-----END PUBLIC KEY-----
";
const OTHER_RSA_PUB: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA8lp2ydjh6YX0sFF3iaxZ
Z3o9iBVst5DWVXsoTCPw2yu5JxH+2Osh3t+sKfNJEK5ueIim550eruu72ysEXj8Q
9BxjjuYWpDzBhNt8wLsCBoI3pUD5DGhe/S9sdUluAmrxpMC0HLjkw3upKyrBBt2e
mxRK3HygxSAeynYCwKMTD5/o/yR2897uEIOGjv7/6//7VD1vr8rRfaMRydUtRvqU
mjEnWDUcMhsbA42wSIsb4YVHUJY1cbcLM/PrVc53GJ8S4ogQfWdhlNOu/eWF8rkZ
nvWyWGhhydXqvWL/EcEhClGCH1H69UBx73CPmP0ywtGSm5a+6s+ktWlX3kpnNC5T
KwIDAQAB
-----END PUBLIC KEY-----
";
const EC_PRIV: &str = "\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvOwwPS3akzn86JEf
0EIg4mWTAbKm7W2aKl3Oj5BsFcOhRANCAASt5mhojqUjLcSNk3J0vIdvT7bBo9DO
C/wBxR4VMQ9YYvj7Te+4d5ldDEnBGA/fljxaAljwUTcgl95sVG/YcQio
-----END PRIVATE KEY-----
";
const EC_PUB: &str = "\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEreZoaI6lIy3EjZNydLyHb0+2waPQ
zgv8AcUeFTEPWGL4+03vuHeZXQxJwRgP35Y8WgJY8FE3IJfebFRv2HEIqA==
-----END PUBLIC KEY-----
";
/// RSA_PUB as kid "r1", OTHER_RSA_PUB as kid "r2", EC_PUB as kid "e1".
const JWKS: &str = r#"{"keys": [
  {"kty": "RSA", "kid": "r2", "use": "sig", "alg": "RS256", "e": "AQAB", "n": "8lp2ydjh6YX0sFF3iaxZZ3o9iBVst5DWVXsoTCPw2yu5JxH-2Osh3t-sKfNJEK5ueIim550eruu72ysEXj8Q9BxjjuYWpDzBhNt8wLsCBoI3pUD5DGhe_S9sdUluAmrxpMC0HLjkw3upKyrBBt2emxRK3HygxSAeynYCwKMTD5_o_yR2897uEIOGjv7_6__7VD1vr8rRfaMRydUtRvqUmjEnWDUcMhsbA42wSIsb4YVHUJY1cbcLM_PrVc53GJ8S4ogQfWdhlNOu_eWF8rkZnvWyWGhhydXqvWL_EcEhClGCH1H69UBx73CPmP0ywtGSm5a-6s-ktWlX3kpnNC5TKw"},
  {"kty": "RSA", "kid": "r1", "use": "sig", "alg": "RS256", "e": "AQAB", "n": "ldjfitMGwCA1hNH_vTRFZrXeg81CJ3r_DGwuUGZlzvVzdYNyKDEcLcIRexXiY8thXREzmAYps8j8_aGO_S_9sNpGTOztBs4kXZl_ZSaAMBnFyTMDgnk4qzkFVQscqXSqnArZhWE2DBS3MUJwCB8EKpbjVjFp4Xks5f3X07IuH0-g6ZGbdO31T_DkhVi0LZLXHM0p2kgXDZndZcqHdMb0TmX4iPRHEw2DZqN9W1DZ3XkKuadWf21Czdw4wvm3_mw6re26HJwL5mPk11lQm5iQe3HZzyGWcgKqcwzvE-X6g7vYdPnn6w7WsLy8nwNdk4L5Uds8ljRTtW8SZNAOfXDkzQ"},
  {"kty": "EC", "kid": "e1", "crv": "P-256", "x": "reZoaI6lIy3EjZNydLyHb0-2waPQzgv8AcUeFTEPWGI", "y": "-PtN77h3mV0MScEYD9-WPFoCWPBRNyCX3mxUb9hxCKg"}
]}"#;

const NOW: u64 = 1_700_000_000;

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(EC_PRIV.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(RSA_PRIV.as_bytes()).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, &key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, None, claims)
}

fn pem_config() -> JwtConfig {
    JwtConfig::parse(&json!({
        "JWTValidationPubKeys": [OTHER_RSA_PUB, RSA_PUB],
        "BoundIssuer": "https://issuer.example",
        "BoundAudiences": ["conclave", "other"],
        "ClaimMappings": {"sub": "name", "/nested/team": "team", "admin": "admin", "level": "level", "missing": "gone"},
        "ListClaimMappings": {"groups": "groups", "role": "roles", "/nested/empty": "empty"},
    }))
    .unwrap()
}

fn good_claims() -> Value {
    json!({
        "iss": "https://issuer.example", "aud": ["conclave"], "sub": "web", "iat": NOW - 10, "exp": NOW + 600,
        "nested": {"team": "blue", "empty": []}, "admin": true, "level": 3.9, "groups": ["dev", "", 7], "role": "ops",
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    match value {
        Value::Null => claims.as_object_mut().unwrap().remove(key),
        v => claims.as_object_mut().unwrap().insert(key.to_string(), v),
    };
    claims
}

fn identity(values: &[(&str, &str)], lists: &[(&str, &[&str])]) -> Identity {
    Identity {
        values: values.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        lists: lists.iter().map(|(k, l)| (k.to_string(), l.iter().map(|s| s.to_string()).collect())).collect(),
        unset_values: BTreeSet::new(),
    }
}

#[test]
fn valid_token_maps_claims_into_values_and_lists() {
    let id = validate(&pem_config(), &rs256(&good_claims()), NOW).unwrap();
    let values: Vec<(&str, &str)> = id.values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(values, [("admin", "true"), ("level", "3"), ("name", "web"), ("team", "blue")]);
    assert_eq!(id.lists["groups"], ["dev", "7"], "empty strings dropped, numbers stringified");
    assert_eq!(id.lists["roles"], ["ops"], "a scalar list claim is a one-item list");
    assert!(id.lists["empty"].is_empty());
    assert_eq!(id.unset_values, BTreeSet::from(["gone".to_string()]));
}

#[test]
fn object_claim_for_a_value_mapping_is_refused() {
    let token = rs256(&with(good_claims(), "admin", json!({"a": 1})));
    let err = validate(&pem_config(), &token, NOW).unwrap_err();
    assert!(err.contains("'admin'"), "{err}");
}

#[test]
fn token_signed_by_an_unconfigured_key_is_refused() {
    let config = JwtConfig::parse(&json!({"JWTValidationPubKeys": [OTHER_RSA_PUB]})).unwrap();
    let token = rs256(&json!({"iat": NOW}));
    let err = validate(&config, &token, NOW).unwrap_err();
    assert_eq!(err, "no known key successfully validated the token signature");
    assert!(!err.contains(&token));
}

#[test]
fn tampered_payload_and_unsigned_tokens_are_refused() {
    let token = rs256(&good_claims());
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&with(good_claims(), "sub", json!("root"))).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert!(validate(&pem_config(), &tampered, NOW).is_err());
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert!(validate(&pem_config(), &format!("{none_header}.{forged}."), NOW).is_err());
    assert!(validate(&pem_config(), "not-a-jwt", NOW).is_err());
    assert_eq!(validate(&pem_config(), "", NOW).unwrap_err(), "missing jwt");
}

#[test]
fn expired_token_refused_but_accepted_inside_clock_skew_leeway() {
    let config = pem_config();
    let token = rs256(&with(good_claims(), "exp", json!(NOW - 30)));
    assert!(validate(&config, &token, NOW).is_ok(), "30 s past exp is inside the default 60 s skew");
    assert!(validate(&config, &token, NOW + 31).unwrap_err().contains("token is expired (exp)"));
    let strict = JwtConfig { clock_skew_leeway_s: -1, ..config.clone() };
    assert!(validate(&strict, &token, NOW).unwrap_err().contains("expired"));
    let wide = JwtConfig { clock_skew_leeway_s: 300, ..config };
    assert!(validate(&wide, &token, NOW + 200).is_ok());
}

#[test]
fn not_yet_valid_and_future_issued_tokens_are_refused() {
    let config = pem_config();
    let token = rs256(&with(good_claims(), "nbf", json!(NOW + 100)));
    assert!(validate(&config, &token, NOW).unwrap_err().contains("not valid yet (nbf)"));
    assert!(validate(&config, &token, NOW + 40).is_ok(), "inside the 60 s skew");
    let token = rs256(&with(good_claims(), "iat", json!(NOW + 100)));
    assert!(validate(&config, &token, NOW).unwrap_err().contains("not valid yet"), "nbf defaults to iat");
}

#[test]
fn missing_exp_defaults_from_iat_and_expiration_leeway() {
    let config = pem_config();
    let token = rs256(&with(good_claims(), "exp", Value::Null));
    assert!(validate(&config, &token, NOW - 10 + 150 + 60).is_ok());
    assert!(validate(&config, &token, NOW - 10 + 150 + 61).unwrap_err().contains("expired"));
    let longer = JwtConfig { expiration_leeway_s: 3600, ..config.clone() };
    assert!(validate(&longer, &token, NOW + 3000).is_ok());
    let no_times = rs256(&json!({"iss": "https://issuer.example", "aud": "conclave"}));
    assert!(validate(&config, &no_times, NOW).unwrap_err().contains("no issue time"));
}

#[test]
fn wrong_or_missing_issuer_is_refused() {
    let token = rs256(&with(good_claims(), "iss", json!("https://evil.example")));
    assert!(validate(&pem_config(), &token, NOW).unwrap_err().contains("invalid issuer"));
    let token = rs256(&with(good_claims(), "iss", Value::Null));
    assert!(validate(&pem_config(), &token, NOW).is_err());
}

#[test]
fn audience_must_intersect_bound_audiences() {
    let config = pem_config();
    assert!(validate(&config, &rs256(&with(good_claims(), "aud", json!("other"))), NOW).is_ok());
    let wrong = rs256(&with(good_claims(), "aud", json!(["x", "y"])));
    assert!(validate(&config, &wrong, NOW).unwrap_err().contains("does not match any bound audience"));
    let none = rs256(&with(good_claims(), "aud", Value::Null));
    assert!(validate(&config, &none, NOW).is_err());
    let unbound = JwtConfig { bound_audiences: vec![], ..config };
    let err = validate(&unbound, &rs256(&good_claims()), NOW).unwrap_err();
    assert!(err.contains("no audiences are bound"), "{err}");
    assert!(validate(&unbound, &none, NOW).is_ok());
}

#[test]
fn algorithm_outside_supported_algs_is_refused() {
    let ec_only = JwtConfig::parse(&json!({"JWTValidationPubKeys": [EC_PUB, RSA_PUB]})).unwrap();
    let es = sign(Algorithm::ES256, None, &json!({"iat": NOW}));
    assert!(validate(&ec_only, &es, NOW).unwrap_err().contains("ES256 is not allowed"), "default is RS256 only");
    let rs384 = sign(Algorithm::RS384, None, &json!({"iat": NOW}));
    assert!(validate(&ec_only, &rs384, NOW).unwrap_err().contains("RS384"));
    let both = JwtConfig { supported_algs: vec!["ES256".into(), "RS384".into()], ..ec_only };
    assert!(validate(&both, &es, NOW).is_ok(), "EC P-256 key verifies ES256");
    assert!(validate(&both, &rs384, NOW).is_ok());
}

#[test]
fn jwks_key_is_chosen_by_kid() {
    let config =
        JwtConfig::parse(&json!({"JWKS": JWKS, "JWTSupportedAlgs": ["RS256", "ES256"], "ClaimMappings": {"sub": "s"}}))
            .unwrap();
    let as_object: Value = serde_json::from_str(JWKS).unwrap();
    let from_object = JwtConfig::parse(&json!({"JWKS": as_object.clone()})).unwrap();
    assert_eq!(serde_json::from_str::<Value>(from_object.jwks.as_deref().unwrap()).unwrap(), as_object);
    let claims = json!({"iat": NOW, "sub": "api"});
    let id = validate(&config, &sign(Algorithm::RS256, Some("r1"), &claims), NOW).unwrap();
    assert_eq!(id.values["s"], "api");
    let wrong_kid = sign(Algorithm::RS256, Some("r2"), &claims);
    assert!(validate(&config, &wrong_kid, NOW).unwrap_err().contains("no known key"));
    let unknown_kid = sign(Algorithm::RS256, Some("zz"), &claims);
    assert!(validate(&config, &unknown_kid, NOW).unwrap_err().contains("key ID"));
    assert!(validate(&config, &sign(Algorithm::RS256, None, &claims), NOW).is_ok(), "no kid: every key is tried");
    assert!(validate(&config, &sign(Algorithm::ES256, Some("e1"), &claims), NOW).is_ok());
    assert!(validate(&config, &sign(Algorithm::ES256, Some("r1"), &claims), NOW).is_err());
}

#[test]
fn config_parse_reads_durations_and_round_trips() {
    let config = JwtConfig::parse(&json!({
        "jwtvalidationpubkeys": [RSA_PUB], "ClockSkewLeeway": "1m30s", "ExpirationLeeway": 45,
        "NotBeforeLeeway": "-1s", "OIDCDiscoveryURL": "", "JWTSupportedAlgs": ["RS256", "PS256"],
    }))
    .unwrap();
    assert_eq!((config.clock_skew_leeway_s, config.expiration_leeway_s, config.not_before_leeway_s), (90, 45, -1));
    assert_eq!(config.effective_algs(), ["RS256", "PS256"]);
    assert_eq!(JwtConfig::parse(&serde_json::to_value(&config).unwrap()).unwrap(), config);
    assert_eq!(JwtConfig::default().effective_algs(), ["RS256"]);
    assert_eq!(parse_go_duration_ns("1.5h").unwrap(), 5_400_000_000_000);
    assert!(parse_go_duration_ns("10").is_err());
}

#[test]
fn config_parse_refuses_bad_configs_naming_the_field() {
    let refuse = |v: Value, needle: &str| {
        let err = JwtConfig::parse(&v).unwrap_err();
        assert!(err.starts_with("Invalid Auth Method: ") && err.contains(needle), "{err} lacks {needle}");
    };
    refuse(json!({}), "exactly one of 'JWTValidationPubKeys' or 'JWKS'");
    refuse(json!({"JWTValidationPubKeys": [RSA_PUB], "JWKS": JWKS}), "exactly one");
    refuse(json!({"JWKSURL": "https://x/jwks", "JWTValidationPubKeys": [RSA_PUB]}), "'JWKSURL'");
    refuse(json!({"OIDCDiscoveryURL": "https://x", "JWTValidationPubKeys": [RSA_PUB]}), "'OIDCDiscoveryURL'");
    refuse(json!({"OIDCClientID": "c", "JWTValidationPubKeys": [RSA_PUB]}), "'OIDCClientID'");
    refuse(json!({"Bogus": 1, "JWTValidationPubKeys": [RSA_PUB]}), "'Bogus'");
    refuse(json!({"JWTValidationPubKeys": [RSA_PUB, "junk"]}), "JWTValidationPubKeys[1]");
    refuse(json!({"JWTValidationPubKeys": "not a list"}), "'JWTValidationPubKeys'");
    refuse(json!({"JWKS": "{\"keys\": 3}"}), "'JWKS'");
    refuse(
        json!({"JWTValidationPubKeys": [RSA_PUB], "JWTSupportedAlgs": ["HS256"]}),
        "Invalid supported algorithm: HS256",
    );
    refuse(json!({"JWTValidationPubKeys": [RSA_PUB], "ClockSkewLeeway": "10parsecs"}), "'ClockSkewLeeway'");
    refuse(json!({"JWTValidationPubKeys": [RSA_PUB], "ClaimMappings": {"a": "x", "b": "x"}}), "multiple mappings");
    refuse(json!([1]), "JSON object");
}

#[test]
fn selector_operators_match_values_and_lists() {
    let id = identity(&[("name", "web-1"), ("team", "")], &[("groups", &["dev", "ops"]), ("none", &[])]);
    let m = |s: &str| parse_selector(s).unwrap().matches(&id);
    assert!(m(""), "empty selector matches everything");
    assert!(m(r#"value.name == "web-1""#) && !m(r#"value.name != "web-1""#));
    assert!(m(r#"value["name"] == `web-1`"#) && m("value.team == \"\"") && !m("value.name == web"));
    assert!(m(r#""dev" in list.groups"#) && !m(r#""dev" not in list.groups"#) && m(r#""qa" not in list.groups"#));
    assert!(m(r#"list.groups contains "ops""#) && m(r#"list.groups not contains "qa""#));
    assert!(m(r#""web" in value.name"#), "in on a string is a substring test");
    assert!(m("value.team is empty") && m("list.none is empty") && m("list.groups is not empty"));
    assert!(m(r#""name" in value"#) && !m(r#""nope" in value"#));
    assert!(m(r#"not value.name == "x""#) && m(r#"not not "dev" in list.groups"#));
}

#[test]
fn selector_precedence_is_not_then_and_then_or() {
    let id = identity(&[("a", "1"), ("b", "0"), ("c", "0")], &[]);
    let m = |s: &str| parse_selector(s).unwrap().matches(&id);
    assert!(m(r#"value.a == "1" or value.b == "1" and value.c == "1""#), "and binds tighter than or");
    assert!(!m(r#"(value.a == "1" or value.b == "1") and value.c == "1""#));
    assert!(m(r#"not value.b == "1" and value.a == "1""#), "not binds tighter than and");
    assert!(!m(r#"not (value.b == "0" and value.a == "1")"#));
    assert!(m(r#"( ( value.a == "1" ) )"#));
}

#[test]
fn selector_reading_a_missing_entry_never_matches() {
    let id = identity(&[("a", "1")], &[]);
    let m = |s: &str| parse_selector(s).unwrap().matches(&id);
    assert!(!m(r#"value.gone != "x""#) && !m(r#"not value.gone == "x""#) && !m(r#""x" not in list.gone"#));
    assert!(!m(r#"value.gone == "x" or value.a == "1""#), "the error spoils the whole selector, as bexpr");
    assert!(m(r#"value.a == "1" or value.gone == "x""#), "unless evaluation stops before it");
}

#[test]
fn selector_errors_name_position_and_problem() {
    let err = |s: &str| parse_selector(s).unwrap_err();
    assert_eq!(err("value.name =="), "position 14: expected a value, found the end of the selector");
    assert_eq!(err(r#"value.name = "x""#), "position 12: unexpected character '='");
    assert!(err(r#"(value.a == "1""#).starts_with("position 16: expected ')'"));
    assert!(err(r#"foo.bar == "x""#).contains("position 1: unknown selector \"foo.bar\""));
    assert!(err(r#"value.a.b == "x""#).contains("unknown selector"));
    assert!(err(r#"list.groups == "x""#).contains("position 1: == and != apply to value.<name> only"));
    assert!(err(r#"value.name matches "^w""#).contains("position 12: the 'matches' operator"));
    assert!(err(r#"value.a == "1" value.b == "2""#).starts_with("position 16: expected 'and', 'or'"));
    assert!(err(r#"value.a == "1" and"#).contains("found the end of the selector"));
    assert!(err(r#"value.a == "unterminated"#).contains("unterminated string"));
    assert!(err("   ").contains("position 4"));
    assert!(err(r#""x" in"#).contains("a selector after 'in'"));
}

#[test]
fn bind_name_interpolation_substitutes_values() {
    let mut id = identity(&[("name", "web"), ("env", "prod")], &[("groups", &["dev"])]);
    id.unset_values.insert("gone".into());
    assert_eq!(interpolate_bind_name("svc-${value.name}-${ value.env }", &id).unwrap(), "svc-web-prod");
    assert_eq!(interpolate_bind_name("plain", &id).unwrap(), "plain");
    assert_eq!(interpolate_bind_name("a$${value.name}$b", &id).unwrap(), "a${value.name}$b");
    assert_eq!(interpolate_bind_name("x${value.gone}", &id).unwrap(), "x", "mapped but absent claims are \"\"");
    assert_eq!(interpolate_bind_name("${value.nope}", &id).unwrap_err(), "unknown variable accessed: value.nope");
    assert!(interpolate_bind_name("${list.groups}", &id).unwrap_err().contains("list variable list.groups"));
    assert!(interpolate_bind_name("${name}", &id).unwrap_err().contains("unknown variable"));
    assert!(interpolate_bind_name("${value.name", &id).unwrap_err().contains("unterminated"));
    let placeholder = placeholder_identity(&pem_config());
    assert_eq!(interpolate_bind_name("${value.team}", &placeholder).unwrap(), "fake");
}

#[test]
fn bind_names_are_checked_per_bind_type() {
    assert!(valid_service_name("web-1") && valid_service_name("a") && valid_service_name("a_b"));
    assert!(!valid_service_name("") && !valid_service_name("Web") && !valid_service_name("-web"));
    assert!(!valid_service_name("web-") && !valid_service_name(&"a".repeat(257)));
    assert!(valid_role_name("Ops_Team-1") && !valid_role_name("a b") && !valid_role_name(""));
    assert!(valid_policy_name("global-management") && !valid_policy_name("x/y"));
}

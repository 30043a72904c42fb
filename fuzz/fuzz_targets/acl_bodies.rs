//! Fuzzes the bodies of the ACL endpoints (token, policy, role, auth method, binding rule, login): any
//! bytes decode or give a 4xx, never a panic.
#![no_main]

use conclave_core::api::acl_input;
use libfuzzer_sys::fuzz_target;

fn is_client_error(status: u16) -> bool {
    (400..500).contains(&status)
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = acl_input::decode_token(data).and_then(|t| t.expiry(1_700_000_000_000).map(|_| ())) {
        assert!(is_client_error(e.status), "{e:?}");
    }
    if let Err(e) = acl_input::decode_policy(data) {
        assert!(is_client_error(e.status), "{e:?}");
    }
    if let Err(e) = acl_input::decode_role(data) {
        assert!(is_client_error(e.status), "{e:?}");
    }
    match acl_input::decode_auth_method(data) {
        Ok(method) => {
            let _ = method.max_token_ttl_ns();
            if let Some(config) = &method.config {
                let _ = conclave_core::acl::login::JwtConfig::parse(config);
            }
        }
        Err(e) => assert!(is_client_error(e.status), "{e:?}"),
    }
    if let Err(e) = acl_input::decode_binding_rule(data) {
        assert!(is_client_error(e.status), "{e:?}");
    }
    if let Err(e) = acl_input::decode_login(data) {
        assert!(is_client_error(e.status), "{e:?}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = conclave_core::acl::login::parse_selector(text);
    }
});

//! Fuzzes ACL rules (HCL and JSON): any text parses or gives an error naming the problem, never a
//! panic; what parses compiles and answers every permission question without panicking.
#![no_main]

use std::borrow::Cow;

use conclave_core::acl::{parse_rules, Authorizer, CompiledRules, Need, RESOURCES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_rules(text) {
        Ok(rules) => {
            let compiled = CompiledRules::compile(&rules);
            let authorizer = Authorizer { management: false, default_allow: false, policies: vec![Cow::Owned(compiled)] };
            for rule in &rules.rules {
                for resource in RESOURCES {
                    for need in [Need::Read, Need::List, Need::Write] {
                        authorizer.allows(resource, &rule.segment, need);
                    }
                }
                authorizer.allows_write_prefix(rule.resource, &rule.segment);
            }
        }
        Err(error) => assert!(error.starts_with("Failed to parse ACL rules"), "{error}"),
    }
});

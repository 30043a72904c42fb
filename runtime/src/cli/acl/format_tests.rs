//! The printed text for given API JSON, against Consul's golden files (command/acl/*/testdata).

use serde_json::json;

use super::*;

fn complex_token() -> Value {
    json!({
        "AccessorID": "fbd2447f-7479-4329-ad13-b021d74f86ba",
        "SecretID": "869c6e91-4de9-4dab-b56e-87548435f9c6",
        "Namespace": "foo",
        "Description": "test token",
        "Local": false,
        "AuthMethod": "bar",
        "AuthMethodNamespace": "baz",
        "CreateTime": "2020-05-22T18:52:31Z",
        "ExpirationTime": "2020-05-22T19:52:31Z",
        "Hash": "YWJjZGVm",
        "CreateIndex": 5,
        "ModifyIndex": 10,
        "Policies": [
            {"ID": "beb04680-815b-4d7c-9e33-3d707c24672c", "Name": "hobbiton"},
            {"ID": "18788457-584c-4812-80d3-23d403148a90", "Name": "bywater"}
        ],
        "Roles": [{"ID": "3b0a78fe-b9c3-40de-b8ea-7d4d6674b366", "Name": "shire"}],
        "ServiceIdentities": [{"ServiceName": "gardener", "Datacenters": ["middleearth-northwest"]}, {"ServiceName": "web"}],
        "NodeIdentities": [{"NodeName": "bagend", "Datacenter": "middleearth-northwest"}]
    })
}

#[test]
fn token_prints_consuls_pretty_layout() {
    let expected = "\
AccessorID:       fbd2447f-7479-4329-ad13-b021d74f86ba
SecretID:         869c6e91-4de9-4dab-b56e-87548435f9c6
Namespace:        foo
Description:      test token
Local:            false
Auth Method:      bar (Namespace: baz)
Create Time:      2020-05-22 18:52:31 +0000 UTC
Expiration Time:  2020-05-22 19:52:31 +0000 UTC
Policies:
   beb04680-815b-4d7c-9e33-3d707c24672c - hobbiton
   18788457-584c-4812-80d3-23d403148a90 - bywater
Roles:
   3b0a78fe-b9c3-40de-b8ea-7d4d6674b366 - shire
Service Identities:
   gardener (Datacenters: middleearth-northwest)
   web (Datacenters: all)
Node Identities:
   bagend (Datacenter: middleearth-northwest)
";
    assert_eq!(token(&complex_token(), false), expected);
}

#[test]
fn token_meta_adds_hash_in_hex_and_indexes() {
    let printed = token(&complex_token(), true);
    assert!(printed.contains("Expiration Time:  2020-05-22 19:52:31 +0000 UTC\nHash:             616263646566\nCreate Index:     5\nModify Index:     10\nPolicies:\n"), "{printed}");
}

#[test]
fn bootstrap_token_without_links_prints_only_the_head() {
    let bootstrap = json!({
        "AccessorID": "a", "SecretID": "s", "Description": "Bootstrap Token (Global Management)",
        "Local": false, "CreateTime": "2018-10-22T17:40:14.431357-04:00",
        "Policies": [{"ID": "00000000-0000-0000-0000-000000000001", "Name": "global-management"}]
    });
    let expected = "\
AccessorID:       a
SecretID:         s
Description:      Bootstrap Token (Global Management)
Local:            false
Create Time:      2018-10-22 17:40:14.431357 -0400 -0400
Policies:
   00000000-0000-0000-0000-000000000001 - global-management
";
    assert_eq!(token(&bootstrap, false), expected);
}

#[test]
fn token_list_separates_entries_with_a_blank_line() {
    let a = json!({"AccessorID": "a", "SecretID": "sa", "Description": "", "Local": true, "CreateTime": "2020-01-01T00:00:00Z"});
    let b = json!({"AccessorID": "b", "SecretID": "sb", "Description": "d", "Local": false, "CreateTime": "2020-01-01T00:00:00.500Z"});
    let printed = token_list(&[a, b], false);
    assert_eq!(
        printed,
        "AccessorID:       a\nSecretID:         sa\nDescription:      \nLocal:            true\nCreate Time:      2020-01-01 00:00:00 +0000 UTC\n\
         \nAccessorID:       b\nSecretID:         sb\nDescription:      d\nLocal:            false\nCreate Time:      2020-01-01 00:00:00.5 +0000 UTC\n"
    );
}

#[test]
fn policy_prints_rules_last_without_a_newline() {
    let p = json!({"ID": "p1", "Name": "web", "Description": "d", "Datacenters": ["dc1", "dc2"], "Rules": "service \"web\" { policy = \"write\" }"});
    assert_eq!(
        policy(&p, false),
        "ID:           p1\nName:         web\nDescription:  d\nDatacenters:  dc1, dc2\nRules:\nservice \"web\" { policy = \"write\" }"
    );
}

#[test]
fn policy_list_indents_fields_under_the_name() {
    let p = json!({"ID": "p1", "Name": "web", "Description": "", "Datacenters": []});
    assert_eq!(policy_list(&[p], false), "web:\n   ID:           p1\n   Description:  \n   Datacenters:  \n");
}

#[test]
fn role_list_indents_links_by_six() {
    let r = json!({"ID": "r1", "Name": "db", "Description": "x", "Policies": [{"ID": "p1", "Name": "web"}], "NodeIdentities": [{"NodeName": "n", "Datacenter": "dc1"}]});
    assert_eq!(
        role_list(std::slice::from_ref(&r), false),
        "db:\n   ID:           r1\n   Description:  x\n   Policies:\n      p1 - web\n   Node Identities:\n      n (Datacenter: dc1)\n"
    );
    assert_eq!(role(&r, false), "ID:           r1\nName:         db\nDescription:  x\nPolicies:\n   p1 - web\nNode Identities:\n   n (Datacenter: dc1)\n");
}

#[test]
fn auth_method_prints_config_as_two_space_json() {
    let m = json!({"Name": "k8s", "Type": "kubernetes", "DisplayName": "K", "Description": "", "MaxTokenTTL": "1h0m0s", "TokenLocality": "global", "Config": {"Host": "h"}});
    assert_eq!(
        auth_method(&m, false),
        "Name:          k8s\nType:          kubernetes\nDisplayName:   K\nDescription:   \nMaxTokenTTL:   1h0m0s\nTokenLocality: global\nConfig:\n{\n  \"Host\": \"h\"\n}"
    );
    assert_eq!(
        auth_method_list(&[m], false),
        "k8s:\n   Type:         kubernetes\n   DisplayName:  K\n   Description:  \n"
    );
}

#[test]
fn binding_rule_prints_each_field_aligned() {
    let r = json!({"ID": "b1", "AuthMethod": "k8s", "Description": "", "BindType": "service", "BindName": "web", "Selector": "a==b"});
    assert_eq!(
        binding_rule(&r, false),
        "ID:           b1\nAuthMethod:   k8s\nDescription:  \nBindType:     service\nBindName:     web\nSelector:     a==b\n"
    );
    assert!(binding_rule_list(&[r], true).starts_with("b1:\n   AuthMethod:   k8s\n"));
}

#[test]
fn json_format_indents_by_four_spaces() {
    assert_eq!(json(&json!({"A": [1]})), "{\n    \"A\": [\n        1\n    ]\n}");
}

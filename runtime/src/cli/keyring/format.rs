//! The text `conclave keyring -list` and `-list-primary` print for the agent's `/v1/operator/keyring`
//! answer, as Consul's command/keyring formats it: per pool a blank line, `WAN:` or `<dc> (LAN):` (with
//! ` [<segment>]` or ` [partition: <name>]`), the nodes' messages, then `  <key> [<count>/<nodes>]`. Keys and
//! messages are in sorted order where Consul's follow Go's map order.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One pool's answer in Consul's `KeyringResponse` shape. Go writes absent maps as `null`, hence the options.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyringResponse {
    #[serde(rename = "WAN", default)]
    pub wan: bool,
    #[serde(default)]
    pub datacenter: String,
    #[serde(default)]
    pub segment: String,
    #[serde(default)]
    pub partition: String,
    #[serde(default)]
    pub messages: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub keys: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    pub primary_keys: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    pub num_nodes: u64,
}

/// Which key map of a response to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySet {
    Installed,
    Primary,
}

/// One pool as Consul prints it, without the final newline.
pub fn format_response(response: &KeyringResponse, key_set: KeySet) -> String {
    let mut out = String::from("\n");
    out.push_str(&pool_name(response));
    for (node, message) in response.messages.iter().flatten() {
        out.push_str(&format!("  ===> {node}: {message}\n"));
    }
    let keys = match key_set {
        KeySet::Installed => &response.keys,
        KeySet::Primary => &response.primary_keys,
    };
    for (key, count) in keys.iter().flatten() {
        out.push_str(&format!("  {key} [{count}/{}]\n", response.num_nodes));
    }
    out.trim_end_matches('\n').to_string()
}

/// Every pool of an answer, each followed by a newline, as Consul's `UI.Output` per response.
pub fn format_responses(responses: &[KeyringResponse], key_set: KeySet) -> String {
    responses.iter().map(|r| format_response(r, key_set) + "\n").collect()
}

fn pool_name(response: &KeyringResponse) -> String {
    let pool = if response.wan { "WAN".to_string() } else { format!("{} (LAN)", response.datacenter) };
    let default_partition = response.partition.is_empty() || response.partition == "default";
    let suffix = if !response.segment.is_empty() {
        format!(" [{}]", response.segment)
    } else if !default_partition {
        format!(" [partition: {}]", response.partition)
    } else {
        String::new()
    };
    format!("{pool}{suffix}:\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
    const KEY_B: &str = "HS5lJ+XuTlYKWaeGYyG+/A==";

    fn answer() -> Vec<KeyringResponse> {
        let json = format!(
            r#"[
              {{"WAN":true,"Datacenter":"dc1","Segment":"","Partition":"","Keys":{{"{KEY_A}":3}},
                "PrimaryKeys":{{"{KEY_A}":3}},"Messages":null,"NumNodes":3}},
              {{"WAN":false,"Datacenter":"dc1","Segment":"","Partition":"","Keys":{{"{KEY_B}":5,"{KEY_A}":5}},
                "PrimaryKeys":{{"{KEY_A}":5}},"Messages":{{"c2":"key not installed"}},"NumNodes":5}}
            ]"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn installed_keys_are_listed_per_pool_with_counts_as_consul() {
        let expected = format!(
            "\nWAN:\n  {KEY_A} [3/3]\n\ndc1 (LAN):\n  ===> c2: key not installed\n  {KEY_B} [5/5]\n  {KEY_A} [5/5]\n"
        );
        assert_eq!(format_responses(&answer(), KeySet::Installed), expected);
    }

    #[test]
    fn primary_keys_list_shows_only_the_primary_key_map() {
        let expected =
            format!("\nWAN:\n  {KEY_A} [3/3]\n\ndc1 (LAN):\n  ===> c2: key not installed\n  {KEY_A} [5/5]\n");
        assert_eq!(format_responses(&answer(), KeySet::Primary), expected);
    }

    #[test]
    fn segment_and_partition_mark_the_pool_name() {
        let mut pool = answer().remove(1);
        pool.messages = None;
        pool.keys = None;
        pool.segment = "alpha".into();
        assert_eq!(format_response(&pool, KeySet::Installed), "\ndc1 (LAN) [alpha]:");
        pool.segment.clear();
        pool.partition = "team".into();
        assert_eq!(format_response(&pool, KeySet::Installed), "\ndc1 (LAN) [partition: team]:");
        pool.partition = "default".into();
        assert_eq!(format_response(&pool, KeySet::Installed), "\ndc1 (LAN):");
    }
}

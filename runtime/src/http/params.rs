//! Query parameters shared by the endpoints, parsed as Consul parses them: presence flags (`?stale`,
//! `?consistent`, `?pretty`) are true when present with any value, `tag` repeats, `wait` is a Go duration.

use std::time::Duration;

use super::HttpError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Linearizable through the leader's read index (Conclave's default is as strong as `consistent`).
    Default,
    Consistent,
    /// This server's local state, whatever its lag.
    Stale,
}

impl Consistency {
    pub fn header_value(self) -> &'static str {
        match self {
            Consistency::Default => "leader",
            Consistency::Consistent => "consistent",
            Consistency::Stale => "stale",
        }
    }
}

#[derive(Clone, Debug)]
pub struct QueryParams {
    pub consistency: Consistency,
    pub index: Option<u64>,
    /// `?wait=` as asked (`None`: absent, empty or zero); see [`QueryParams::wait_within`].
    pub wait: Option<Duration>,
    pub pretty: bool,
    pub tags: Vec<String>,
    pub passing: bool,
    pub dc: Option<String>,
    pub node_meta: Vec<(String, String)>,
    /// `?filter=`, parsed; `None` keeps everything.
    pub filter: Option<conclave_core::api::filter::Filter>,
    pub all: Vec<(String, String)>,
}

impl QueryParams {
    /// How long a blocking query waits: `?wait=`, or `default` without one, and never more than `max`
    /// (Consul's `default_query_time` and `max_query_time`).
    pub fn wait_within(&self, default: Duration, max: Duration) -> Duration {
        self.wait.unwrap_or(default).min(max)
    }

    pub fn parse(raw: Option<&str>) -> Result<QueryParams, HttpError> {
        let pairs: Vec<(String, String)> = match raw {
            Some(raw) => {
                serde_urlencoded::from_str(raw).map_err(|e| HttpError::bad_request(format!("Invalid query: {e}")))?
            }
            None => Vec::new(),
        };
        let has = |name: &str| pairs.iter().any(|(k, _)| k == name);
        let value = |name: &str| pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if has("stale") && has("consistent") {
            return Err(HttpError::bad_request("Cannot specify ?stale with ?consistent, conflicting semantics."));
        }
        let consistency = if has("stale") || value("max_stale").is_some_and(|v| !v.is_empty()) {
            Consistency::Stale
        } else if has("consistent") {
            Consistency::Consistent
        } else {
            Consistency::Default
        };
        let index = match value("index") {
            None | Some("") => None,
            Some(text) => Some(text.parse::<u64>().map_err(|_| HttpError::bad_request("Invalid index"))?),
        };
        let wait = match value("wait") {
            None | Some("") => None,
            Some(text) => Some(
                conclave_core::api::parse_go_duration(text).map_err(|_| HttpError::bad_request("Invalid wait time"))?,
            )
            .filter(|wait| !wait.is_zero()),
        };
        let passing = match value("passing") {
            None => false,
            Some("") => true,
            Some(text) => parse_go_bool(text).ok_or_else(|| HttpError::bad_request("Invalid value for ?passing"))?,
        };
        let tags = pairs.iter().filter(|(k, _)| k == "tag").map(|(_, v)| v.clone()).collect();
        let node_meta = pairs
            .iter()
            .filter(|(k, _)| k == "node-meta")
            .map(|(_, v)| match v.split_once(':') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (v.clone(), String::new()),
            })
            .collect();
        Ok(QueryParams {
            consistency,
            index,
            wait,
            pretty: has("pretty"),
            tags,
            passing,
            dc: value("dc").filter(|v| !v.is_empty()).map(str::to_string),
            node_meta,
            filter: conclave_core::api::filter::parse_filter(value("filter").unwrap_or(""))?,
            all: pairs,
        })
    }

    /// Whether `value` passes the request's `?filter=`.
    /// Whether the parameter `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.all.iter().any(|(k, _)| k == name)
    }

    /// The last value given for `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.all.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A presence flag (`?recurse`, `?raw`, `?keys`): true when present without a value or with a true
    /// one, as Consul reads them.
    pub fn flag(&self, name: &str) -> bool {
        match self.value(name) {
            None => false,
            Some("") => true,
            Some(text) => parse_go_bool(text).unwrap_or(true),
        }
    }

    pub fn keep(&self, value: &serde_json::Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(value))
    }

    /// Consul answers 500 "No path to datacenter" for a datacenter it does not know.
    pub fn check_datacenter(&self, ours: &str) -> Result<(), HttpError> {
        match &self.dc {
            Some(dc) if dc != ours => {
                Err(HttpError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter"))
            }
            _ => Ok(()),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub(super) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_flags_count_without_a_value() {
        let params = QueryParams::parse(Some("stale&pretty")).unwrap();
        assert_eq!(params.consistency, Consistency::Stale);
        assert!(params.pretty);
    }

    #[test]
    fn stale_with_consistent_is_rejected() {
        let err = QueryParams::parse(Some("stale&consistent")).unwrap_err();
        assert_eq!(err.message, "Cannot specify ?stale with ?consistent, conflicting semantics.");
    }

    #[test]
    fn tags_repeat_and_bad_index_is_rejected() {
        let params = QueryParams::parse(Some("tag=a&tag=b&index=5&wait=120000ms")).unwrap();
        assert_eq!(params.tags, vec!["a", "b"]);
        assert_eq!(params.index, Some(5));
        assert_eq!(params.wait, Some(Duration::from_secs(120)));
        assert_eq!(QueryParams::parse(Some("index=x")).unwrap_err().message, "Invalid index");
        assert_eq!(QueryParams::parse(Some("wait=15x")).unwrap_err().message, "Invalid wait time");
    }

    #[test]
    fn the_wait_is_the_agents_default_without_one_and_never_beyond_its_maximum() {
        let (default, max) = (Duration::from_secs(30), Duration::from_secs(60));
        for (query, waits) in
            [("index=1", 30), ("wait=&index=1", 30), ("wait=0s", 30), ("wait=5s", 5), ("wait=10m", 60)]
        {
            let params = QueryParams::parse(Some(query)).unwrap();
            assert_eq!(params.wait_within(default, max), Duration::from_secs(waits), "{query}");
        }
    }
}

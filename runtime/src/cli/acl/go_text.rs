//! Go's text forms that Consul's CLI reads and prints: `time.ParseDuration` strings for `-expires-ttl`
//! and `-max-token-ttl`, `Duration.String()`, and `Time.String()` for token times.

/// A Go `time.ParseDuration` string (`1h30m`, `90s`, `1.5h`) in nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut total_ns = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let unit_len =
            rest[number_len..].find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len() - number_len);
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        let unit_ns = match &rest[number_len..number_len + unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total_ns += number * unit_ns;
        rest = &rest[number_len + unit_len..];
    }
    Ok(total_ns.round() as u64)
}

/// An RFC 3339 time as Go's `Time.String()` prints one parsed from JSON: fractional seconds without
/// trailing zeros, and `+0000 UTC` for UTC, else the offset twice (a parsed zone has no name).
pub fn go_time(rfc3339: &str) -> String {
    let Some((date, rest)) = rfc3339.split_once('T') else { return rfc3339.to_string() };
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = match clock.split_once('.') {
        Some((whole, fraction)) if fraction.trim_end_matches('0').is_empty() => whole.to_string(),
        Some((whole, fraction)) => format!("{whole}.{}", fraction.trim_end_matches('0')),
        None => clock.to_string(),
    };
    let offset = zone.replace(':', "");
    let zone = match offset.as_str() {
        "" | "Z" | "z" | "+0000" => "+0000 UTC".to_string(),
        other => format!("{other} {other}"),
    };
    format!("{date} {clock} {zone}")
}

/// Go's `Duration.String()` for whole seconds and more (`1h0m0s`, `90s` is `1m30s`).
pub fn go_duration(nanos: u64) -> String {
    let seconds = nanos / 1_000_000_000;
    let sub_second = nanos % 1_000_000_000;
    let fraction =
        if sub_second == 0 { String::new() } else { format!(".{sub_second:09}").trim_end_matches('0').to_string() };
    match (seconds / 3600, seconds % 3600 / 60, seconds % 60) {
        (0, 0, s) => format!("{s}{fraction}s"),
        (0, m, s) => format!("{m}m{s}{fraction}s"),
        (h, m, s) => format!("{h}h{m}m{s}{fraction}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_ttl_reads_go_durations() {
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("10"), Err("time: invalid duration \"10\"".to_string()));
        assert_eq!(parse_go_duration("5d"), Err("time: invalid duration \"5d\"".to_string()));
    }

    #[test]
    fn go_duration_matches_go_strings() {
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
    }
}

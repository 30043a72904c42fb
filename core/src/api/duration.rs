//! Go durations: `time.ParseDuration` syntax ("15s", "1m30s", "120000ms", "1.5h") through the
//! go-parse-duration crate, and Consul's JSON form that also accepts a number of nanoseconds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ApiError;

/// Parses a Go duration; negative durations are refused (no Consul setting takes one).
pub fn parse_go_duration(text: &str) -> Result<Duration, ApiError> {
    let invalid = || ApiError::bad_request(format!("time: invalid duration {text:?}"));
    // go-parse-duration indexes strings by chars and slices them by bytes, so it panics on non-ASCII
    // input (found by fuzzing). Go's syntax is ASCII apart from the two spellings of "µs".
    let ascii = text.replace(['\u{b5}', '\u{3bc}'], "u");
    if !ascii.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-')) || ascii.len() > 64 {
        return Err(invalid());
    }
    let nanos = go_parse_duration::parse_duration(&cap_fraction_digits(&ascii)).map_err(|_| invalid())?;
    if nanos < 0 {
        return Err(ApiError::bad_request(format!("time: negative duration {text:?}")));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Longest fraction kept: beyond it digits are below a nanosecond for every unit up to hours.
const FRACTION_DIGITS_MAX: usize = 15;

/// go-parse-duration loops forever on a fraction longer than an i64 can hold (it stops advancing once it
/// overflows; found by fuzzing: `?wait=1.5555555555555555555555s` would pin a CPU). Go itself just stops
/// accumulating precision there, so dropping the excess digits gives Go's answer.
fn cap_fraction_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fraction_digits: Option<usize> = None;
    for c in text.chars() {
        match (c, fraction_digits) {
            ('.', _) => fraction_digits = Some(0),
            ('0'..='9', Some(n)) if n >= FRACTION_DIGITS_MAX => continue,
            ('0'..='9', Some(n)) => fraction_digits = Some(n + 1),
            (_, _) => fraction_digits = None,
        }
        out.push(c);
    }
    out
}

/// A duration field as Consul decodes it: a Go duration string or a JSON number of nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoDuration(pub Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Nanos(i64),
        }
        // Go parses negative durations; Consul then refuses a check whose interval or TTL is not > 0,
        // so a negative duration decodes as zero and meets that check with Consul's message.
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => match text.strip_prefix('-') {
                Some(magnitude) if !magnitude.starts_with(['-', '+']) => parse_go_duration(magnitude)
                    .map(|_| GoDuration(Duration::ZERO))
                    .map_err(|_| serde::de::Error::custom(format!("time: invalid duration {text:?}"))),
                _ => parse_go_duration(&text).map(GoDuration).map_err(serde::de::Error::custom),
            },
            Raw::Nanos(nanos) if nanos < 0 => Ok(GoDuration(Duration::ZERO)),
            Raw::Nanos(nanos) => Ok(GoDuration(Duration::from_nanos(nanos as u64))),
        }
    }
}

impl GoDuration {
    /// Whole milliseconds, rounded up so that a positive duration never becomes 0 ("unset").
    pub fn as_millis(self) -> u64 {
        let nanos = self.0.as_nanos();
        nanos.div_ceil(1_000_000).min(u64::MAX as u128) as u64
    }
}

/// Go's `Duration.String()`: `200ms`, `1.5s`, `10s`, `1m30s`, `1h0m0s`, `0s`.
pub fn format_go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let fraction = |value: u128, scale: u128| {
        let (whole, part) = (value / scale, value % scale);
        let digits = scale.to_string().len() - 1;
        let part = format!("{part:0digits$}");
        let part = part.trim_end_matches('0');
        if part.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{part}")
        }
    };
    match nanos {
        0 => "0s".to_string(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}\u{b5}s", fraction(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", fraction(n, 1_000_000)),
        n => {
            let seconds = n / 1_000_000_000;
            let sub = n % 1_000_000_000 + (seconds % 60) * 1_000_000_000;
            let (hours, minutes) = (seconds / 3600, seconds % 3600 / 60);
            let secs = format!("{}s", fraction(sub, 1_000_000_000));
            match (hours, minutes) {
                (0, 0) => secs,
                (0, m) => format!("{m}m{secs}"),
                (h, m) => format!("{h}h{m}m{secs}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_fraction_parses_instead_of_hanging() {
        let parsed = parse_go_duration("1.5555555555555555555555555s").unwrap();
        assert_eq!(parsed, Duration::from_nanos(1_555_555_555));
        assert!(parse_go_duration("11.5555555555555555555555555ks001m3.m").is_err());
    }

    #[test]
    fn duration_accepts_go_string_or_nanoseconds() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("\"15s\"", Some(Duration::from_secs(15))),
            ("\"1m30s\"", Some(Duration::from_secs(90))),
            ("\"120000ms\"", Some(Duration::from_secs(120))),
            ("\"1.5h\"", Some(Duration::from_secs(5400))),
            ("10000000000", Some(Duration::from_secs(10))),
            ("\"15\"", None),
            ("\"-1s\"", Some(Duration::ZERO)),
            ("\"\"", None),
            ("\"1y\"", None),
            ("true", None),
            ("\"1µs\"", Some(Duration::from_micros(1))),
            ("\"1\u{e9}s\"", None),
            ("\"\u{3bc}\"", None),
        ];
        for (json, want) in cases {
            let got = serde_json::from_str::<GoDuration>(json).ok().map(|d| d.0);
            assert_eq!(&got, want, "{json}");
        }
    }

    #[test]
    fn format_go_duration_matches_go_strings() {
        let ms = Duration::from_millis;
        assert_eq!(format_go_duration(ms(200)), "200ms");
        assert_eq!(format_go_duration(ms(10_000)), "10s");
        assert_eq!(format_go_duration(ms(1_500)), "1.5s");
        assert_eq!(format_go_duration(ms(90_000)), "1m30s");
        assert_eq!(format_go_duration(ms(3_600_000)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
        assert_eq!(format_go_duration(Duration::from_micros(1_500)), "1.5ms");
        assert_eq!(format_go_duration(Duration::from_nanos(1_500)), "1.5\u{b5}s");
    }
}

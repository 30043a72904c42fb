//! Fuzzes the Go duration parser (`"15s"`, `"1m30s"`, `"1.5h"`): any text parses or is refused, never a
//! panic (go-parse-duration once panicked on non-ASCII input); a parsed whole-millisecond duration
//! formats the Go way and parses back to itself.
#![no_main]

use conclave_core::api::{encode, parse_go_duration};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(duration) = parse_go_duration(text) else { return };
    let ms = duration.as_millis();
    if duration.as_nanos() % 1_000_000 != 0 || ms == 0 || ms > u128::from(u32::MAX) {
        return;
    }
    let formatted = encode::duration(ms as u64);
    let again = parse_go_duration(&formatted).unwrap_or_else(|e| panic!("{formatted:?} does not parse: {e:?}"));
    assert_eq!(again, duration, "{text:?} → {formatted:?}");
});

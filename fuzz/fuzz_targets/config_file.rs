//! Fuzzes agent config files: the first byte picks JSON or HCL, the rest is the file's text. Any text
//! gives settings or an error naming the file, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let file = if kind % 2 == 0 { Path::new("fuzz.json") } else { Path::new("fuzz.hcl") };
    if let Err(message) = conclave::config::parse_config_text(file, text) {
        assert!(message.contains(&file.display().to_string()), "errors name the file: {message}");
    }
});

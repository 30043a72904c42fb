//! The one place that turns values into bytes for disk and wire: a version byte, then bincode 2 (serde
//! mode, standard config). Decoding refuses unknown versions, trailing bytes and lengths beyond a limit,
//! and never panics on garbage.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::state::State;

/// Version of every encoding this module produces. Bump it when a stored or sent type changes shape.
pub const CODEC_VERSION: u8 = 9;

/// Largest value decoded, so a corrupt length prefix cannot ask for unbounded memory.
pub const DECODE_BYTES_MAX: usize = 256 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("empty input")]
    Empty,
    #[error("unknown encoding version {0} (this build reads version {CODEC_VERSION})")]
    UnknownVersion(u8),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
}

/// Runs `$decode` with `$config` bound to bincode's standard config whose claim limit is the smallest
/// tier (powers of 4 from 64 KiB to 1 TiB) holding `$bytes`, capped at `$cap`. Every byte a value claims
/// (a string's or byte buffer's length) is a byte of the input, so a valid input never reaches its limit,
/// and a corrupt length prefix can make the decoder allocate at most 4 times the input, not the cap.
macro_rules! with_limit_for {
    ($bytes:expr, $cap:expr, |$config:ident| $decode:expr) => {{
        let needed: usize = usize::try_from($bytes).unwrap_or(usize::MAX).min($cap);
        with_limit_for!(@tiers needed, $config, $decode,
            16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40)
    }};
    (@tiers $needed:ident, $config:ident, $decode:expr, $($shift:literal),*) => {{
        $(
            if $needed <= 1usize << $shift {
                let $config = bincode::config::standard().with_limit::<{ 1usize << $shift }>();
                $decode
            } else
        )*
        {
            unreachable!("no decode limit holds {} bytes (the cap is at most 1 TiB)", $needed)
        }
    }};
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![CODEC_VERSION];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("our types always encode");
    out.extend(body);
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_with(bytes, DECODE_BYTES_MAX)
}

/// The version byte checked, then the body decoded with a claim limit fitted to its length and at most
/// `cap_bytes`; trailing bytes are refused.
fn decode_with<T: DeserializeOwned>(bytes: &[u8], cap_bytes: usize) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != CODEC_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, used) =
        with_limit_for!(body.len(), cap_bytes, |config| bincode::serde::decode_from_slice(body, config))
            .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - used));
    }
    Ok(value)
}

/// Largest state a snapshot decodes: far beyond any real state. Below it, each decode's limit is fitted
/// to the bytes it reads (see `with_limit_for`).
pub const SNAPSHOT_BYTES_MAX: usize = 1 << 40;

/// The snapshot of the whole replicated state: each table's part, in `State`'s field order.
pub fn encode_snapshot(state: &State) -> Vec<u8> {
    encode(state)
}

/// [`decode`] with the snapshot limit instead of [`DECODE_BYTES_MAX`], for the stored forms that wrap a
/// whole state (a Raft snapshot and its body).
pub fn decode_large<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_with(bytes, SNAPSHOT_BYTES_MAX)
}

/// [`encode_snapshot`] written to `out` as it is produced, never whole in memory; the bytes written.
pub fn encode_snapshot_into(state: &State, out: &mut impl std::io::Write) -> std::io::Result<u64> {
    out.write_all(&[CODEC_VERSION])?;
    let written = bincode::serde::encode_into_std_write(state, out, bincode::config::standard())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(1 + written as u64)
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<State, CodecError> {
    decode_large(bytes)
}

/// One value read from the front of `input` (which holds at most `size_bytes` in all): the version byte,
/// then the value; what follows it stays in `input`.
pub fn decode_prefix_from<T: DeserializeOwned>(
    input: &mut impl std::io::Read,
    size_bytes: u64,
) -> Result<T, CodecError> {
    let mut version = [0u8; 1];
    input.read_exact(&mut version).map_err(|_| CodecError::Empty)?;
    if version[0] != CODEC_VERSION {
        return Err(CodecError::UnknownVersion(version[0]));
    }
    with_limit_for!(size_bytes, SNAPSHOT_BYTES_MAX, |config| bincode::serde::decode_from_std_read(&mut *input, config))
        .map_err(|e| CodecError::Decode(e.to_string()))
}

/// [`decode_snapshot`] read from `input` (which holds `size_bytes`, the version byte included) as it is
/// decoded; trailing bytes are refused.
pub fn decode_snapshot_from(input: &mut impl std::io::Read, size_bytes: u64) -> Result<State, CodecError> {
    let state = decode_prefix_from(input, size_bytes)?;
    let mut rest = Vec::new();
    let trailing = std::io::Read::read_to_end(&mut std::io::Read::take(input, 1 << 16), &mut rest).unwrap_or(0);
    if trailing > 0 {
        return Err(CodecError::TrailingBytes(trailing));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_version_is_refused() {
        let next = CODEC_VERSION + 1;
        assert_eq!(decode::<u64>(&[next, 1]), Err(CodecError::UnknownVersion(next)));
        assert_eq!(decode::<u64>(&[]), Err(CodecError::Empty));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert_eq!(decode::<u64>(&bytes), Err(CodecError::TrailingBytes(1)));
    }

    /// A 10-byte input claiming a 4 GB string: refused at the claim, before any allocation.
    fn claims_four_gigabytes() -> Vec<u8> {
        let mut bytes = vec![CODEC_VERSION, 0xFD];
        bytes.extend(4_000_000_000u64.to_le_bytes());
        bytes
    }

    #[test]
    fn a_length_beyond_the_input_is_refused_before_allocating() {
        for refused in [decode::<String>(&claims_four_gigabytes()), decode_large::<String>(&claims_four_gigabytes())] {
            match refused {
                Err(CodecError::Decode(message)) => assert!(message.contains("Limit"), "{message}"),
                other => panic!("expected a limit error, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_value_as_long_as_its_input_decodes_at_every_tier_boundary() {
        for len in [0usize, 1, (1 << 16) - 8, 1 << 16, (1 << 18) + 3, 1 << 20] {
            let value = "x".repeat(len);
            assert_eq!(decode_large::<String>(&encode(&value)).unwrap(), value);
            assert_eq!(decode::<String>(&encode(&value)).unwrap(), value);
        }
    }

    #[test]
    fn a_snapshot_streams_out_and_back_in() {
        let state = State::new();
        let mut out = Vec::new();
        let written = encode_snapshot_into(&state, &mut out).unwrap();
        assert_eq!(written as usize, out.len());
        assert_eq!(out, encode_snapshot(&state));
        let size_bytes = out.len() as u64;
        assert_eq!(decode_snapshot_from(&mut out.as_slice(), size_bytes).unwrap(), state);
        out.push(7);
        assert_eq!(decode_snapshot_from(&mut out.as_slice(), size_bytes + 1), Err(CodecError::TrailingBytes(1)));
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A Vec<u8> whose varint length claims 2^63 elements.
        let bytes = [CODEC_VERSION, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }
}

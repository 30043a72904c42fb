//! The one place that turns values into bytes for disk and wire: a version byte, then bincode 2 (serde
//! mode, standard config). Decoding refuses unknown versions, trailing bytes and lengths beyond a limit,
//! and never panics on garbage.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::state::State;

/// Version of every encoding this module produces. Bump it when a stored or sent type changes shape.
pub const CODEC_VERSION: u8 = 7;

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

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_BYTES_MAX>,
> {
    bincode::config::standard().with_limit::<DECODE_BYTES_MAX>()
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![CODEC_VERSION];
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard()).expect("our types always encode");
    out.extend(body);
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_with(bytes, config())
}

/// The version byte checked, then the body decoded with `limits`; trailing bytes are refused.
fn decode_with<T: DeserializeOwned>(bytes: &[u8], limits: impl bincode::config::Config) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != CODEC_VERSION {
        return Err(CodecError::UnknownVersion(version));
    }
    let (value, used) =
        bincode::serde::decode_from_slice(body, limits).map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(CodecError::TrailingBytes(body.len() - used));
    }
    Ok(value)
}

/// Largest state a snapshot decodes: far beyond any real state, so only a corrupt length prefix hits it
/// (each claim is also bounded by the bytes actually present).
pub const SNAPSHOT_BYTES_MAX: usize = 1 << 40;

fn snapshot_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<SNAPSHOT_BYTES_MAX>,
> {
    bincode::config::standard().with_limit::<SNAPSHOT_BYTES_MAX>()
}

/// The snapshot of the whole replicated state: each table's part, in `State`'s field order.
pub fn encode_snapshot(state: &State) -> Vec<u8> {
    encode(state)
}

/// [`decode`] with the snapshot limit instead of [`DECODE_BYTES_MAX`], for the stored forms that wrap a
/// whole state (a Raft snapshot and its body).
pub fn decode_large<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_with(bytes, snapshot_config())
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

/// [`decode_snapshot`] read from `input` as it is decoded; trailing bytes are refused.
pub fn decode_snapshot_from(input: &mut impl std::io::Read) -> Result<State, CodecError> {
    let mut version = [0u8; 1];
    input.read_exact(&mut version).map_err(|_| CodecError::Empty)?;
    if version[0] != CODEC_VERSION {
        return Err(CodecError::UnknownVersion(version[0]));
    }
    let state = bincode::serde::decode_from_std_read(input, snapshot_config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
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
        assert_eq!(decode::<u64>(&[9, 1]), Err(CodecError::UnknownVersion(9)));
        assert_eq!(decode::<u64>(&[]), Err(CodecError::Empty));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert_eq!(decode::<u64>(&bytes), Err(CodecError::TrailingBytes(1)));
    }

    #[test]
    fn a_snapshot_streams_out_and_back_in() {
        let state = State::new();
        let mut out = Vec::new();
        let written = encode_snapshot_into(&state, &mut out).unwrap();
        assert_eq!(written as usize, out.len());
        assert_eq!(out, encode_snapshot(&state));
        assert_eq!(decode_snapshot_from(&mut out.as_slice()).unwrap(), state);
        out.push(7);
        assert_eq!(decode_snapshot_from(&mut out.as_slice()), Err(CodecError::TrailingBytes(1)));
    }

    #[test]
    fn huge_length_prefix_is_an_error_not_an_allocation() {
        // A Vec<u8> whose varint length claims 2^63 elements.
        let bytes = [CODEC_VERSION, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }
}

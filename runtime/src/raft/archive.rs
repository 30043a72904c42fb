//! The snapshot archive of `/v1/snapshot` and `conclave snapshot`: a gzipped tar, as Consul's is, holding
//! `meta.json` (what the snapshot is: Raft index and term, configuration, sizes), `state.bin` (the
//! replicated state in `codec`'s snapshot encoding) and `SHA256SUMS` (the SHA-256 of the other two).
//! Both directions stream: the state goes from a reader to the archive and back to a writer without
//! being held whole in memory, and reading checks every checksum and size before it answers, so a
//! corrupt or truncated archive is refused before anything is restored from it.

use std::io::{self, Read, Write};

use conclave_core::codec::CODEC_VERSION;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

/// Consul's snapshot format version (`meta.json` → `Version`).
pub const ARCHIVE_VERSION: u64 = 1;

/// Largest `meta.json` or `SHA256SUMS` read: both are a few hundred bytes.
const SMALL_FILE_BYTES_MAX: u64 = 1 << 20;

const META: &str = "meta.json";
const STATE: &str = "state.bin";
const SUMS: &str = "SHA256SUMS";

/// One server of the Raft configuration the snapshot was taken with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedServer {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Suffrage")]
    pub suffrage: String,
}

/// `meta.json`, with Consul's field names where Consul has the field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveMeta {
    #[serde(rename = "Version")]
    pub version: u64,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Index")]
    pub index: u64,
    #[serde(rename = "Term")]
    pub term: u64,
    /// Bytes of `state.bin`.
    #[serde(rename = "Size")]
    pub size_bytes: u64,
    #[serde(rename = "Servers")]
    pub servers: Vec<ArchivedServer>,
    /// The `codec` version `state.bin` is encoded with; a build reads only its own.
    #[serde(rename = "CodecVersion")]
    pub codec_version: u8,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
}

/// Why an archive was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> ArchiveError {
    ArchiveError::Invalid(why.into())
}

/// A writer that passes bytes on and keeps their SHA-256 and count.
pub struct HashingWriter<W> {
    inner: W,
    digest: ring::digest::Context,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter { inner, digest: ring::digest::Context::new(&ring::digest::SHA256), bytes: 0 }
    }

    /// The inner writer, the hex SHA-256 and the number of bytes written.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex(self.digest.finish().as_ref()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.digest.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o600);
    header.set_cksum();
    header
}

/// Writes the archive of `meta` and the state (`meta.size_bytes` bytes read from `state`, whose SHA-256
/// is `state_sha256`) to `out`.
pub fn write_archive(
    meta: &ArchiveMeta,
    state: &mut impl Read,
    state_sha256: &str,
    out: impl Write,
) -> Result<(), ArchiveError> {
    let meta_bytes = serde_json::to_vec_pretty(meta).map_err(|e| invalid(e.to_string()))?;
    let sums = format!("{}  {META}\n{state_sha256}  {STATE}\n", sha256_hex(&meta_bytes));
    let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::fast()));
    tar.append_data(&mut header(meta_bytes.len() as u64), META, meta_bytes.as_slice())?;
    tar.append_data(&mut header(meta.size_bytes), STATE, state.take(meta.size_bytes))?;
    tar.append_data(&mut header(sums.len() as u64), SUMS, sums.as_bytes())?;
    tar.into_inner()?.finish()?.flush()?;
    Ok(())
}

/// Reads an archive from `input`, copying its state to `state_out`, and answers its metadata once every
/// checksum, size and version has been checked. On an error `state_out` holds garbage: callers write it
/// to a scratch file and use it only on success.
pub fn read_archive(input: impl Read, state_out: &mut impl Write) -> Result<ArchiveMeta, ArchiveError> {
    let mut archive = tar::Archive::new(GzDecoder::new(input));
    let mut meta_bytes: Option<Vec<u8>> = None;
    let mut sums: Option<String> = None;
    let mut state_digest: Option<(String, u64)> = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().to_string();
        match path.as_str() {
            META | SUMS => {
                let mut bytes = Vec::new();
                (&mut entry).take(SMALL_FILE_BYTES_MAX + 1).read_to_end(&mut bytes)?;
                if bytes.len() as u64 > SMALL_FILE_BYTES_MAX {
                    return Err(invalid(format!("{path} is larger than {SMALL_FILE_BYTES_MAX} bytes")));
                }
                if path == META {
                    meta_bytes = Some(bytes);
                } else {
                    sums = Some(String::from_utf8(bytes).map_err(|_| invalid("SHA256SUMS is not text"))?);
                }
            }
            STATE => {
                let mut hashing = HashingWriter::new(&mut *state_out);
                io::copy(&mut entry, &mut hashing)?;
                let (_, digest, bytes) = hashing.finish();
                state_digest = Some((digest, bytes));
            }
            other => return Err(invalid(format!("unexpected file {other:?} in the archive"))),
        }
    }
    // Read to the end of the gzip stream, so that its own length and CRC are checked too.
    let trailing = io::copy(&mut archive.into_inner().take(SMALL_FILE_BYTES_MAX + 1), &mut io::sink())?;
    if trailing > SMALL_FILE_BYTES_MAX {
        return Err(invalid("data after the end of the archive"));
    }
    let meta_bytes = meta_bytes.ok_or_else(|| invalid("the archive has no meta.json"))?;
    let (state_sha256, state_bytes) = state_digest.ok_or_else(|| invalid("the archive has no state.bin"))?;
    let sums = sums.ok_or_else(|| invalid("the archive has no SHA256SUMS"))?;
    for (name, actual) in [(META, sha256_hex(&meta_bytes)), (STATE, state_sha256)] {
        let expected = sums
            .lines()
            .find_map(|line| line.strip_suffix(name).map(|rest| rest.trim()))
            .ok_or_else(|| invalid(format!("SHA256SUMS has no line for {name}")))?;
        if expected != actual {
            return Err(invalid(format!("checksum mismatch for {name}: expected {expected}, got {actual}")));
        }
    }
    let meta: ArchiveMeta =
        serde_json::from_slice(&meta_bytes).map_err(|e| invalid(format!("meta.json does not decode: {e}")))?;
    if meta.version != ARCHIVE_VERSION {
        return Err(invalid(format!("unsupported snapshot version {}", meta.version)));
    }
    if meta.size_bytes != state_bytes {
        return Err(invalid(format!("state.bin holds {state_bytes} bytes, meta.json says {}", meta.size_bytes)));
    }
    if meta.codec_version != CODEC_VERSION {
        return Err(invalid(format!(
            "the state is encoded with version {} and this build reads version {CODEC_VERSION}",
            meta.codec_version
        )));
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size_bytes: u64) -> ArchiveMeta {
        ArchiveMeta {
            version: ARCHIVE_VERSION,
            id: "2-9-1".to_string(),
            index: 9,
            term: 2,
            size_bytes,
            servers: Vec::new(),
            codec_version: CODEC_VERSION,
            datacenter: "dc1".to_string(),
        }
    }

    fn archive_of(state: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_archive(&meta(state.len() as u64), &mut &state[..], &sha256_hex(state), &mut out).unwrap();
        out
    }

    #[test]
    fn an_archive_reads_back_its_state_and_metadata() {
        let state: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut restored = Vec::new();
        let read = read_archive(archive_of(&state).as_slice(), &mut restored).unwrap();
        assert_eq!(read, meta(state.len() as u64));
        assert_eq!(restored, state);
    }

    #[test]
    fn a_truncated_archive_is_refused() {
        let archive = archive_of(&vec![7u8; 100_000]);
        for cut in [10, archive.len() / 2, archive.len() - 4] {
            assert!(read_archive(&archive[..cut], &mut io::sink()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_changed_state_fails_its_checksum() {
        let state = vec![1u8; 5000];
        let mut out = Vec::new();
        write_archive(&meta(5000), &mut &state[..], &sha256_hex(&[2u8; 5000]), &mut out).unwrap();
        let error = read_archive(out.as_slice(), &mut io::sink()).unwrap_err().to_string();
        assert!(error.contains("checksum mismatch for state.bin"), "{error}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(read_archive(&b"not a snapshot at all"[..], &mut io::sink()).is_err());
    }
}

//! Frame encoding: `u32` big-endian length, then the `codec` bytes. Oversized frames are refused before
//! anything is allocated for them.

use std::io;

use conclave_core::codec;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest frame a node sends or accepts. Snapshots travel in one frame, so this bounds the catalog size
/// that can be replicated by snapshot; 64 MiB is far above the 512 KiB Raft entries Consul suggests.
pub const RPC_FRAME_BYTES_MAX: usize = 64 << 20;

pub async fn write_frame<S: AsyncWrite + Unpin, T: Serialize>(stream: &mut S, message: &T) -> io::Result<()> {
    write_frame_bytes(stream, &codec::encode(message)).await
}

/// Writes one frame holding `bytes`.
pub async fn write_frame_bytes<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() > RPC_FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds {RPC_FRAME_BYTES_MAX}", bytes.len()),
        ));
    }
    // One write for header and body: two small writes would meet Nagle's algorithm and delayed ACKs.
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(bytes);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub async fn read_frame<S: AsyncRead + Unpin, T: DeserializeOwned>(stream: &mut S) -> io::Result<Option<T>> {
    match read_frame_bytes(stream).await? {
        Some(bytes) => decode(&bytes).map(Some),
        None => Ok(None),
    }
}

/// Decodes a frame's bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    codec::decode(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

/// Reads one frame's bytes; `Ok(None)` on a clean end of stream before a frame starts.
pub async fn read_frame_bytes<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Vec<u8>>> {
    let length = match stream.read_u32().await {
        Ok(length) => length as usize,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if length > RPC_FRAME_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {length} bytes exceeds {RPC_FRAME_BYTES_MAX}"),
        ));
    }
    // Grow with the bytes that actually arrive: a peer announcing a huge frame and sending nothing must
    // not make us allocate it.
    let mut bytes = Vec::with_capacity(length.min(64 << 10));
    (&mut *stream).take(length as u64).read_to_end(&mut bytes).await?;
    if bytes.len() != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("frame cut at {} of {length} bytes", bytes.len()),
        ));
    }
    Ok(Some(bytes))
}

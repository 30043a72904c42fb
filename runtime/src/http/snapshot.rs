//! `/v1/snapshot`: GET saves the replicated state as an archive (`raft::archive`), PUT restores one
//! cluster-wide through Raft. Both stream through scratch files, so neither holds the archive in memory:
//! saving encodes the state straight to disk under the state's read lock, restoring receives the upload
//! to disk, checks every checksum and size, and only then proposes the state to Raft in 1 MiB chunks and
//! one commit (`conclave_core::state::RestoreCommand`). Consul asks for a management token for both.
//! Client agents refuse: their forwarding carries one bounded message, not a stream.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use conclave_core::acl::{Need, Resource};
use conclave_core::codec;
use conclave_core::state::{Command, Response as Applied, RestoreCommand, RESTORE_CHUNK_BYTES_MAX};
use futures::StreamExt;

use super::authz::Caller;
use super::{empty_ok, set_query_meta, Consistency, HttpError, QueryParams};
use crate::env::Env;
use crate::node::Node;
use crate::raft::archive::{self, ArchiveMeta, ArchivedServer, HashingWriter};

/// A restore logs its progress every this many chunks.
const RESTORE_PROGRESS_EVERY_CHUNKS: u32 = 64;

/// Bytes read from a scratch file per piece of the streamed answer.
const STREAM_PIECE_BYTES: usize = 256 << 10;

/// A scratch file in the data dir (not `/tmp`, which may be memory), deleted when dropped.
fn scratch_file(data_dir: &Option<std::path::PathBuf>) -> std::io::Result<std::fs::File> {
    match data_dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
}

fn internal(why: impl std::fmt::Display) -> HttpError {
    HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, why.to_string())
}

fn require_server<E: Env>(node: &Node<E>) -> Result<(), HttpError> {
    if node.config.server {
        return Ok(());
    }
    Err(HttpError::bad_request("Snapshots are taken and restored on server agents: send the request to a server"))
}

pub async fn save<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Acl, "", Need::Write)?;
    require_server(&node)?;
    params.check_datacenter(&node.config.datacenter)?;
    // A read barrier makes this server's copy as new as the leader's, so any server saves a consistent
    // snapshot; `?stale` takes this server's copy as it is.
    if params.consistency != Consistency::Stale {
        node.read_barrier().await?;
    }
    let (term, servers) = raft_view(&node);
    let shared = node.state.clone();
    let datacenter = node.config.datacenter.clone();
    let unix_ms = node.env.unix_time_ms();
    let data_dir = node.config.data_dir.clone();
    let (meta, archive) = tokio::task::spawn_blocking(move || -> std::io::Result<(ArchiveMeta, std::fs::File)> {
        let mut state_file = scratch_file(&data_dir)?;
        let (index, sha256, size_bytes): (u64, String, u64) = {
            let started = std::time::Instant::now();
            let state = shared.read();
            let locked_after_ms = started.elapsed().as_millis() as u64;
            // Buffered before the hash: the encoder writes a few bytes at a time.
            let mut buffered = std::io::BufWriter::with_capacity(64 << 10, HashingWriter::new(&mut state_file));
            codec::encode_snapshot_into(&state, &mut buffered)?;
            let (_, sha256, size_bytes) = buffered.into_inner().map_err(|e| e.into_error())?.finish();
            let held_ms = started.elapsed().as_millis() as u64 - locked_after_ms;
            tracing::info!(target: "conclave::event", index = state.last_index(), bytes = size_bytes, locked_after_ms, held_ms, "snapshot state encoded");
            (state.last_index(), sha256, size_bytes)
        };
        let meta = ArchiveMeta {
            version: archive::ARCHIVE_VERSION,
            id: format!("{term}-{index}-{unix_ms}"),
            index,
            term,
            size_bytes,
            servers,
            codec_version: codec::CODEC_VERSION,
            datacenter,
        };
        state_file.seek(SeekFrom::Start(0))?;
        let mut archive_file = scratch_file(&data_dir)?;
        archive::write_archive(
            &meta,
            &mut std::io::BufReader::new(&mut state_file),
            &sha256,
            std::io::BufWriter::new(&mut archive_file),
        )
        .map_err(std::io::Error::other)?;
        archive_file.seek(SeekFrom::Start(0))?;
        Ok((meta, archive_file))
    })
    .await
    .map_err(internal)?
    .map_err(|e| internal(format!("failed to save snapshot: {e}")))?;
    tracing::info!(target: "conclave::event", id = %meta.id, index = meta.index, bytes = meta.size_bytes, "snapshot saved");
    let mut response = Response::new(stream_file(archive));
    response.headers_mut().insert("content-type", HeaderValue::from_static("application/octet-stream"));
    set_query_meta(&mut response, &node, &params, meta.index);
    Ok(response)
}

/// The current term and the Raft configuration, as the archive records them.
fn raft_view<E: Env>(node: &Node<E>) -> (u64, Vec<ArchivedServer>) {
    let Some(raft) = &node.raft else { return (0, Vec::new()) };
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let servers = membership
        .nodes()
        .map(|(id, member)| ArchivedServer {
            id: format!("{id:016x}"),
            address: member.addr.clone(),
            suffrage: if voters.contains(id) { "Voter" } else { "Nonvoter" }.to_string(),
        })
        .collect();
    (metrics.current_term, servers)
}

/// A body that reads `file` piece by piece as the client takes it.
fn stream_file(file: std::fs::File) -> Body {
    let file = tokio::fs::File::from_std(file);
    let pieces = futures::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut piece = vec![0u8; STREAM_PIECE_BYTES];
        match file.read(&mut piece).await {
            Ok(0) => None,
            Ok(n) => {
                piece.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(piece)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Body::from_stream(pieces)
}

pub async fn restore<E: Env>(
    State(node): State<Arc<Node<E>>>,
    caller: Caller,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, HttpError> {
    let params = QueryParams::parse(query.as_deref())?;
    caller.require(Resource::Acl, "", Need::Write)?;
    require_server(&node)?;
    params.check_datacenter(&node.config.datacenter)?;
    let data_dir = node.config.data_dir.clone();
    let mut upload = scratch_file(&data_dir).map_err(internal)?;
    let mut pieces = body.into_data_stream();
    while let Some(piece) = pieces.next().await {
        let piece = piece.map_err(|e| HttpError::bad_request(format!("Error reading snapshot: {e}")))?;
        upload.write_all(&piece).map_err(internal)?;
    }
    let (meta, mut state_file) =
        tokio::task::spawn_blocking(move || -> Result<(ArchiveMeta, std::fs::File), HttpError> {
            upload.seek(SeekFrom::Start(0)).map_err(internal)?;
            let mut state_file = scratch_file(&data_dir).map_err(internal)?;
            let mut state_out = std::io::BufWriter::new(&mut state_file);
            let meta = archive::read_archive(std::io::BufReader::new(upload), &mut state_out)
                .map_err(|e| HttpError::bad_request(format!("Error verifying snapshot: {e}")))?;
            state_out.flush().map_err(internal)?;
            drop(state_out);
            state_file.seek(SeekFrom::Start(0)).map_err(internal)?;
            Ok((meta, state_file))
        })
        .await
        .map_err(internal)??;
    if meta.datacenter != node.config.datacenter {
        tracing::warn!(target: "conclave::event", from = %meta.datacenter, into = %node.config.datacenter, "restoring a snapshot of another datacenter");
    }
    let restore_id = node.env.unix_time_ms() ^ (u64::from(node.raft_id as u32) << 32) ^ node.state.applied_index();
    let authority = caller.authority();
    let mut chunks = 0u32;
    let mut sent_bytes = 0u64;
    loop {
        let mut bytes = vec![0u8; RESTORE_CHUNK_BYTES_MAX];
        let filled = read_full(&mut state_file, &mut bytes).map_err(internal)?;
        bytes.truncate(filled);
        if filled == 0 && chunks > 0 {
            break;
        }
        sent_bytes += filled as u64;
        let command = Command::Restore(RestoreCommand::Chunk { restore_id, seq: chunks, bytes });
        propose(&node, command, authority.clone()).await?;
        chunks += 1;
        if chunks.is_multiple_of(RESTORE_PROGRESS_EVERY_CHUNKS) {
            tracing::info!(target: "conclave::event", id = %meta.id, chunks, sent_bytes, total_bytes = meta.size_bytes, "restoring snapshot");
        }
        if filled < RESTORE_CHUNK_BYTES_MAX {
            break;
        }
    }
    assert_eq!(sent_bytes, meta.size_bytes, "the verified state file changed while it was sent");
    let commit = Command::Restore(RestoreCommand::Commit { restore_id, chunks, size_bytes: meta.size_bytes });
    let index = propose(&node, commit, authority).await?;
    tracing::warn!(target: "conclave::event", id = %meta.id, snapshot_index = meta.index, index, "snapshot restored: the state was replaced");
    let mut response = empty_ok();
    response.headers_mut().insert("x-consul-index", HeaderValue::from(index));
    Ok(response)
}

/// Fills `buf` from `file` unless it ends first; the bytes read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

async fn propose<E: Env>(
    node: &Node<E>,
    command: Command,
    authority: Option<conclave_core::acl::Authority>,
) -> Result<u64, HttpError> {
    match node.write_as(command, authority).await? {
        (index, Applied::Applied) => Ok(index),
        (_, Applied::Denied(why)) => Err(super::authz::denied(why)),
        (_, other) => Err(internal(format!("failed to restore snapshot: {other:?}"))),
    }
}

//! `conclave snapshot save|restore|inspect`, as `consul snapshot` does: `save` streams the archive to a
//! file and verifies it before keeping it, `restore` streams a file to the cluster, `inspect` reads an
//! archive's metadata offline (after checking every checksum). None of them holds an archive in memory.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::client::{columns, HttpFlags};
use crate::env::http_client::StreamedBody;
use crate::raft::archive::{self, ArchiveMeta};

/// Bytes read from the file per piece of a streamed upload.
const UPLOAD_PIECE_BYTES: usize = 1 << 20;

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Saves a snapshot of the cluster's state to a file.
    Save(SnapshotSaveArgs),
    /// Restores the cluster's state from a snapshot file.
    Restore(SnapshotFileArgs),
    /// Shows a snapshot file's metadata.
    Inspect(SnapshotInspectArgs),
}

#[derive(Args, Debug)]
pub struct SnapshotSaveArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Take the snapshot from the agent's server even if it is not the leader (may be behind).
    #[arg(long)]
    pub stale: bool,
    /// File to write.
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct SnapshotFileArgs {
    #[command(flatten)]
    pub http: HttpFlags,
    /// Snapshot file to restore.
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct SnapshotInspectArgs {
    /// Snapshot file to inspect.
    pub file: PathBuf,
}

pub fn run(command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Save(args) => save(args),
        SnapshotCommand::Restore(args) => restore(args),
        SnapshotCommand::Inspect(args) => inspect(args),
    }
}

/// A writer that forgets what it is given (verifying an archive without keeping its state).
struct Discard;

impl Write for Discard {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks every checksum and size of the archive in `path` and returns its metadata.
fn verify(path: &Path) -> anyhow::Result<ArchiveMeta> {
    let file = File::open(path).with_context(|| format!("Error opening snapshot file {}", path.display()))?;
    archive::read_archive(BufReader::new(file), &mut Discard).map_err(|e| anyhow::anyhow!("{e}"))
}

fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Streams the archive to `FILE.tmp`, verifies it, then renames it to `FILE`: a failed save never
/// leaves a file that looks like a snapshot.
fn save(args: SnapshotSaveArgs) -> anyhow::Result<()> {
    let partial = PathBuf::from(format!("{}.tmp", args.file.display()));
    let path = if args.stale { "/v1/snapshot?stale" } else { "/v1/snapshot" };
    let received = current_thread()?.block_on(async {
        let mut response = args.http.streaming("GET", path, crate::env::http_client::empty_body()).await?;
        let mut out = std::io::BufWriter::new(
            File::create(&partial).with_context(|| format!("Error creating snapshot file {}", partial.display()))?,
        );
        while let Some(piece) = response.next_chunk().await.context("Error saving snapshot")? {
            out.write_all(&piece).context("Error writing snapshot file")?;
        }
        let file = out.into_inner().map_err(|e| e.into_error()).context("Error writing snapshot file")?;
        file.sync_all().context("Error syncing snapshot file")?;
        anyhow::Ok(())
    });
    let verified = received.and_then(|()| verify(&partial).context("Error verifying snapshot file"));
    match verified {
        Ok(meta) => {
            std::fs::rename(&partial, &args.file)
                .with_context(|| format!("Error renaming snapshot file to {}", args.file.display()))?;
            println!("Saved and verified snapshot to index {}", meta.index);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// The file as a body read piece by piece while it is sent.
fn file_body(file: File) -> StreamedBody {
    let pieces = futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut piece = vec![0u8; UPLOAD_PIECE_BYTES];
        match file.read(&mut piece) {
            Ok(0) => None,
            Ok(n) => {
                piece.truncate(n);
                Some((Ok(Frame::data(Bytes::from(piece))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    StreamBody::new(pieces).boxed()
}

fn restore(args: SnapshotFileArgs) -> anyhow::Result<()> {
    let file =
        File::open(&args.file).with_context(|| format!("Error opening snapshot file {}", args.file.display()))?;
    current_thread()?
        .block_on(async {
            let response = args.http.streaming("PUT", "/v1/snapshot", file_body(file)).await?;
            response.rest().await.context("reading the answer")?;
            anyhow::Ok(())
        })
        .map_err(|e| anyhow::anyhow!("Error restoring snapshot: {e:#}"))?;
    println!("Restored snapshot");
    Ok(())
}

/// The metadata as `consul snapshot inspect` prints it.
fn inspect_table(meta: &ArchiveMeta) -> String {
    let rows = [
        ("ID", meta.id.clone()),
        ("Size", meta.size_bytes.to_string()),
        ("Index", meta.index.to_string()),
        ("Term", meta.term.to_string()),
        ("Version", meta.version.to_string()),
        ("Datacenter", meta.datacenter.clone()),
        ("Servers", meta.servers.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(",")),
    ];
    columns(&rows.map(|(k, v)| vec![k.to_string(), v]))
}

fn inspect(args: SnapshotInspectArgs) -> anyhow::Result<()> {
    let meta = verify(&args.file).context("Error verifying snapshot file")?;
    print!("{}", inspect_table(&meta));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::archive::ArchivedServer;

    #[test]
    fn inspect_prints_consuls_rows_then_ours() {
        let meta = ArchiveMeta {
            version: 1,
            id: "2-15-1700000000000".into(),
            index: 15,
            term: 2,
            size_bytes: 4096,
            servers: vec![ArchivedServer { id: "a".into(), address: "x:1".into(), suffrage: "Voter".into() }],
            codec_version: 7,
            datacenter: "dc1".into(),
        };
        let table = inspect_table(&meta);
        let keys: Vec<&str> = table.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
        assert_eq!(keys, ["ID", "Size", "Index", "Term", "Version", "Datacenter", "Servers"]);
        assert!(table.contains("15") && table.contains("4096"));
    }

    #[test]
    fn a_damaged_file_is_refused_by_inspect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.snap");
        std::fs::write(&path, b"not an archive").unwrap();
        let err = inspect(SnapshotInspectArgs { file: path }).unwrap_err();
        assert!(format!("{err:#}").contains("Error verifying snapshot file"), "{err:#}");
    }
}

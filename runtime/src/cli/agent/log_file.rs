//! `-log-file` with Consul's rotation: the agent writes to `<name>.log` (`consul.log` when the path is a
//! directory); when the file is older than `-log-rotate-duration` (24 h by default) or larger than
//! `-log-rotate-bytes` (0: no limit), it is renamed `<name>-<unix nanos>.log` and a new one is started;
//! `-log-rotate-max-files` keeps that many old files (0: all, -1: none).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a log file rotates.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub max_age: Duration,
    /// 0: no size limit.
    pub max_bytes: u64,
    /// 0: keep every old file; negative: keep none.
    pub max_files: i64,
}

impl Default for Rotation {
    fn default() -> Rotation {
        Rotation { max_age: Duration::from_secs(24 * 3600), max_bytes: 0, max_files: 0 }
    }
}

/// The log file being written.
pub struct LogFile {
    dir: PathBuf,
    /// The active file's name, with its extension.
    name: String,
    rotation: Rotation,
    file: Option<File>,
    opened_at: Instant,
    bytes_written: u64,
}

impl LogFile {
    /// Opens (truncating) the active file named by `path` as Consul names it.
    pub fn open(path: &Path, rotation: Rotation) -> std::io::Result<LogFile> {
        let text = path.to_string_lossy();
        let (dir, name) = if text.ends_with('/') || path.is_dir() {
            (path.to_path_buf(), "consul.log".to_string())
        } else {
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            (dir, name)
        };
        let name = if Path::new(&name).extension().is_none() { format!("{name}.log") } else { name };
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(&dir)?;
        }
        let mut log = LogFile { dir, name, rotation, file: None, opened_at: Instant::now(), bytes_written: 0 };
        log.open_new()?;
        Ok(log)
    }

    /// The active file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    fn open_new(&mut self) -> std::io::Result<()> {
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(self.path())?;
        self.file = Some(file);
        self.opened_at = Instant::now();
        self.bytes_written = 0;
        Ok(())
    }

    /// `<stem>-` and `.<ext>`: what an old file's name starts and ends with.
    fn archive_affixes(&self) -> (String, String) {
        let path = Path::new(&self.name);
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        let ext = path.extension().map(|e| e.to_string_lossy().to_string()).unwrap_or_else(|| "log".into());
        (format!("{stem}-"), format!(".{ext}"))
    }

    fn rotate_if_due(&mut self) -> std::io::Result<()> {
        let too_big = self.rotation.max_bytes > 0 && self.bytes_written >= self.rotation.max_bytes;
        if !too_big && self.opened_at.elapsed() < self.rotation.max_age {
            return Ok(());
        }
        self.file = None;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        let (prefix, suffix) = self.archive_affixes();
        std::fs::rename(self.path(), self.dir.join(format!("{prefix}{nanos}{suffix}")))?;
        self.prune()?;
        self.open_new()
    }

    fn prune(&self) -> std::io::Result<()> {
        if self.rotation.max_files == 0 {
            return Ok(());
        }
        let (prefix, suffix) = self.archive_affixes();
        let dir = if self.dir.as_os_str().is_empty() { Path::new(".") } else { self.dir.as_path() };
        let mut archives: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                name.starts_with(&prefix) && name.ends_with(&suffix) && name != self.name
            })
            .collect();
        archives.sort();
        let keep = usize::try_from(self.rotation.max_files).unwrap_or(0);
        let remove = archives.len().saturating_sub(keep);
        for old in &archives[..remove] {
            std::fs::remove_file(old)?;
        }
        Ok(())
    }
}

impl Write for LogFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.rotate_if_due()?;
        let file = self.file.as_mut().expect("a log file is open after rotation");
        let written = file.write(bytes)?;
        self.bytes_written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), File::flush)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_directory_path_logs_to_consul_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LogFile::open(&dir.path().join("logs/"), Rotation::default()).unwrap();
        log.write_all(b"hello\n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("logs/consul.log")).unwrap(), "hello\n");
    }

    #[test]
    fn a_full_file_is_renamed_with_a_timestamp_and_old_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation { max_bytes: 10, max_files: 2, ..Rotation::default() };
        let mut log = LogFile::open(&dir.path().join("agent"), rotation).unwrap();
        for i in 0..5 {
            log.write_all(format!("line {i} is long\n").as_bytes()).unwrap();
        }
        let names = files_in(dir.path());
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"agent.log".to_string()), "{names:?}");
        assert!(names.iter().filter(|n| n.starts_with("agent-") && n.ends_with(".log")).count() == 2, "{names:?}");
        assert_eq!(std::fs::read_to_string(log.path()).unwrap(), "line 4 is long\n");
    }

    #[test]
    fn negative_max_files_keeps_no_archive() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation { max_bytes: 1, max_files: -1, ..Rotation::default() };
        let mut log = LogFile::open(&dir.path().join("c.txt"), rotation).unwrap();
        log.write_all(b"a\n").unwrap();
        log.write_all(b"b\n").unwrap();
        assert_eq!(files_in(dir.path()), ["c.txt"]);
    }
}

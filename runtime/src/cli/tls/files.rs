//! Writing the PEM files of the `tls` commands: never over an existing file, private keys readable by
//! their owner only (Consul writes certificates 0666 and keys 0600, before the umask).

use std::io::Write;
use std::path::Path;

/// Who may read a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrecy {
    Public,
    Private,
}

/// Creates `path` with `contents`; fails if it exists already (create-new, so a file appearing between
/// Consul's existence check and the write is not overwritten either).
pub fn write_new(path: &Path, contents: &str, secrecy: Secrecy) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(match secrecy {
            Secrecy::Public => 0o666,
            Secrecy::Private => 0o600,
        });
    }
    #[cfg(not(unix))]
    let _ = secrecy;
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Writes a certificate (`(name, pem)`) and its key into `dir` with `write_new`, saying `==> Saved NAME`
/// for each, as Consul's `tls` commands do; the first failure is the command's error.
pub fn save_pair(dir: &Path, cert: (&str, &str), key: (&str, &str), out: &mut dyn Write) -> anyhow::Result<()> {
    for ((name, pem), secrecy) in [(cert, Secrecy::Public), (key, Secrecy::Private)] {
        if let Err(e) = write_new(&dir.join(name), pem, secrecy) {
            return crate::cli::acl::fail(format!("Error writing {name}: {e}"));
        }
        writeln!(out, "==> Saved {name}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        write_new(&path, "first", Secrecy::Public).unwrap();
        let error = write_new(&path, "second", Secrecy::Public).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca-key.pem");
        write_new(&path, "key", Secrecy::Private).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

//! Third-party programs the tests start (vmagent, VictoriaMetrics, handlers): finding them on the PATH
//! with the install command in the failure, and killing them when the test ends, passing or not.

use std::process::{Child, Command, Stdio};

/// Kills and reaps the child when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The path of `name` on the PATH; panics naming `install` when it is missing (a test never skips).
pub fn require(name: &str, install: &str) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .stdout(Stdio::piped())
        .output()
        .expect("sh runs");
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(!path.is_empty(), "{name} is missing: run `{install}`");
    path
}

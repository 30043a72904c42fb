//! Third-party Consul client libraries against a real agent: python-consul (PyPI), which `.ci/run`
//! installs. The script in `tests/clients/` asserts what each call returns.

use std::process::Command;

use conclave_tests::harness::Cluster;

#[test]
fn python_consul_library_works_against_an_agent() {
    let available = Command::new("python3").args(["-c", "import consul"]).status().is_ok_and(|s| s.success());
    if !available {
        assert!(std::env::var("CI").is_err(), "python-consul is required in CI (.ci/run installs it)");
        eprintln!("skipping: pip install python-consul==1.1.0");
        return;
    }
    let cluster = Cluster::dev(81);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python_consul_client.py");
    let output = Command::new("python3").arg(script).arg(format!("{}:8500", cluster.agents[0].ip)).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python-consul failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python-consul: ok"));
}

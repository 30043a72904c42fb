//! Third-party Consul client libraries against a real agent: python-consul (PyPI), which `.ci/run`
//! installs. The script in `tests/clients/` asserts what each call returns.

use std::process::Command;

use conclave_tests::harness::Cluster;

#[test]
fn python_consul_library_works_against_an_agent() {
    let available = Command::new("python3").args(["-c", "import consul"]).status().is_ok_and(|s| s.success());
    assert!(available, "python-consul is missing: run `python3 -m pip install python-consul==1.1.0`");
    let cluster = Cluster::dev(81);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python_consul_client.py");
    let output = Command::new("python3").arg(script).arg(format!("{}:8500", cluster.agents[0].ip)).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "python-consul failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("python-consul: ok"));
}

/// python-consul's coordination flows (CAS counter, session lock, blocking watch, transaction) on a
/// 3-server cluster, then the leader is killed and the lock, the counter and the session are still there.
#[test]
fn python_consul_kv_flows_survive_a_leader_kill() {
    let available = Command::new("python3").args(["-c", "import consul"]).status().is_ok_and(|s| s.success());
    assert!(available, "python-consul is missing: run `python3 -m pip install python-consul==1.1.0`");
    let mut cluster = Cluster::servers(95, 3);
    let leader = cluster.wait_leader();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python_consul_kv.py");
    let addresses: Vec<String> = cluster.agents.iter().map(|a| format!("{}:8500", a.ip)).collect();
    let run = |args: Vec<String>| {
        let output = Command::new("python3").arg(script).args(&args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "python-consul kv {args:?} failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("python-consul kv: ok"), "{stdout}");
        stdout
    };
    let before = run(std::iter::once("before".to_string()).chain(addresses.iter().cloned()).collect());
    let session = before.lines().find_map(|l| l.strip_prefix("session ")).expect("session printed").to_string();
    cluster.agents[leader].kill();
    let survivors = addresses.iter().enumerate().filter(|(i, _)| *i != leader).map(|(_, a)| a.clone());
    run(["after".to_string(), session].into_iter().chain(survivors).collect());
}

//! ACLs as third-party Consul clients meet them, on real agents started with `acl { enabled = true
//! default_policy = "deny" }`: HashiCorp's reference Go client (`github.com/hashicorp/consul/api`,
//! program in `tests/go/acl`) bootstraps a 3-server cluster plus a client agent and drives policies,
//! roles, tokens, enforcement, revocation, agent tokens and JWT login; python-consul 1.1.0 (script in
//! `tests/clients/python_consul_acl.py`) meets the denials its users see. Subnets 131 and 132.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;

/// What every agent (servers and the client agent alike) reads with `-config-file`.
const ACL_CONFIG: &str = r#"acl {
  enabled = true
  default_policy = "deny"
  down_policy = "extend-cache"
  enable_token_persistence = true
}
"#;

/// Variables through which the clients would pick up a token or address from the caller's shell.
const CLIENT_ENV: &[&str] = &["CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_SSL"];

/// Writes `acl.hcl` into its own temp dir (the cluster's dir only exists once the servers start).
fn acl_config() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("acl.hcl");
    std::fs::write(&path, ACL_CONFIG).expect("write acl.hcl");
    let path = path.display().to_string();
    (dir, path)
}

/// Waits until the agent enforces ACLs: an anonymous KV read is refused with 403 (not 500 for a
/// missing leader or uninitialised ACLs, nor 200/404 as without ACLs).
fn wait_enforcing(cluster: &Cluster, index: usize) {
    let agent = &cluster.agents[index];
    eventually(Duration::from_secs(30), &format!("{} to refuse an anonymous KV read with 403", agent.name), || {
        let reply = http::get(&agent.url("/v1/kv/acl-probe")).ok()?;
        (reply.status == 403).then_some(())
    });
}

/// Runs `command` to completion or kills it after `timeout`; stdout and stderr are captured.
fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    for name in CLIENT_ENV {
        command.env_remove(name);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn client");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for client") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait for killed client");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Asserts the client succeeded and printed `ok_line`, printing its output and the agents' logs if not.
fn assert_client_ok(cluster: &Cluster, what: &str, output: &Output, ok_line: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stdout.lines().any(|l| l.trim() == ok_line) {
        cluster.dump_logs();
        panic!("{what} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}", output.status);
    }
}

#[test]
fn go_consul_api_drives_acls_against_a_default_deny_cluster() {
    let has_go = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
    assert!(has_go, "install Go 1.26: https://go.dev/dl");
    let (_config_dir, config) = acl_config();
    let extra = ["-config-file", config.as_str()];
    let mut cluster = Cluster::servers_with(131, 3, &extra);
    cluster.wait_leader();
    let client = cluster.add_client(131, 4, "c1", &extra);
    for index in 0..cluster.agents.len() {
        wait_enforcing(&cluster, index);
    }
    let servers: Vec<String> = cluster.agents[..3].iter().map(|a| format!("{}:8500", a.ip)).collect();

    let program = Path::new(env!("CARGO_MANIFEST_DIR")).join("go/acl");
    let mut command = Command::new("go");
    command
        .current_dir(&program)
        .args(["run", ".", "-servers", &servers.join(","), "-client"])
        .arg(format!("{}:8500", cluster.agents[client].ip));
    // The first run may download modules and compile the api package.
    let output = run_with_timeout(command, Duration::from_secs(600));
    assert_client_ok(&cluster, "go consul/api acl program", &output, "go consul/api acl: ok");
}

#[test]
fn python_consul_meets_acl_denials() {
    let available = Command::new("python3").args(["-c", "import consul"]).status().is_ok_and(|s| s.success());
    assert!(available, "python-consul is missing: run `python3 -m pip install python-consul==1.1.0`");
    let (_config_dir, config) = acl_config();
    let mut cluster = Cluster::servers_with(132, 1, &["-config-file", config.as_str()]);
    cluster.wait_leader();
    wait_enforcing(&cluster, 0);

    let reply = http::put(&cluster.agents[0].url("/v1/acl/bootstrap"), "").expect("PUT /v1/acl/bootstrap");
    assert_eq!(reply.status, 200, "bootstrap: {}", reply.body);
    let token = reply.json();
    let secret = token["SecretID"].as_str().expect("bootstrap SecretID").to_string();
    assert_eq!(token["Policies"][0]["ID"], "00000000-0000-0000-0000-000000000001", "{token}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/clients/python_consul_acl.py");
    let mut command = Command::new("python3");
    command.arg(script).arg(format!("{}:8500", cluster.agents[0].ip)).arg(&secret);
    let output = run_with_timeout(command, Duration::from_secs(120));
    assert_client_ok(&cluster, "python-consul acl script", &output, "python-consul acl: ok");
}

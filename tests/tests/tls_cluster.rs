//! A cluster secured the way Consul's guides secure one, started from files made by `conclave tls …` and
//! `conclave keygen`: 3 servers with TLS on RPC and HTTPS (`verify_incoming`, `verify_outgoing`,
//! `verify_server_hostname`), gossip encryption, and a client agent that holds only the CA and gets its
//! certificate through auto_encrypt. The seed's flows run over HTTPS (curl with `--cacert`, the CLI, and
//! python-consul with `scheme="https"`), a key rotation runs across the live cluster, and a restarted
//! server still joins with the rotated keyring. Subnet 141.

use std::process::Command;
use std::time::Duration;

use conclave_tests::harness::{eventually, Cluster};
use conclave_tests::http;
use conclave_tests::pki::{conclave, keygen, write, Pki};

const SUBNET: u8 = 141;

fn curl(pki: &Pki, args: &[&str]) -> Option<String> {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10"])
        .args(pki.curl_args())
        .args(args)
        .output()
        .expect("curl is missing: run `apt-get install curl`");
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn https(ip: &str, path: &str) -> String {
    format!("https://{ip}:8501{path}")
}

fn alive_members(pki: &Pki, ip: &str) -> usize {
    let mut args = vec!["members".to_string()];
    args.extend(pki.cli_flags(&format!("{ip}:8501")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    conclave(&pki.dir, &args).lines().filter(|line| line.contains(" alive ")).count()
}

fn keyring(pki: &Pki, ip: &str, op: &[&str]) -> String {
    let mut args = vec!["keyring".to_string()];
    args.extend(pki.cli_flags(&format!("{ip}:8501")));
    args.extend(op.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    conclave(&pki.dir, &args)
}

#[test]
fn tls_cluster_serves_the_seed_flows_over_https_and_rotates_gossip_keys() {
    let pki_dir = tempfile::tempdir().expect("temp dir");
    let ips: Vec<String> = (1..=3).map(|i| format!("127.0.{SUBNET}.{i}")).collect();
    let pki = Pki::create(pki_dir.path(), &ips);
    let old_key = keygen(pki_dir.path());
    let (cert, key) = pki.pair("server");
    let server_config = write(pki_dir.path(), "server.hcl", &pki.server_config((&cert, &key), &old_key));
    let client_config = write(pki_dir.path(), "client.hcl", &pki.client_config(&old_key));
    let mut cluster = Cluster::servers_with(SUBNET, 3, &["-config-file", &server_config]);
    cluster.wait_leader();
    let client_https = write(pki_dir.path(), "client-https.hcl", "ports { https = 8501 }\n");
    let client = cluster.add_client(SUBNET, 10, "c1", &["-config-file", &client_config, "-config-file", &client_https]);

    // The client agent's registration reaches the servers only over RPC with a certificate the servers
    // trust: the one auto_encrypt got it.
    let web = r#"{"ID":"web-1","Name":"web","Port":8080,"Check":{"TTL":"30s","Status":"passing"}}"#;
    assert_eq!(http::put(&cluster.agents[client].url("/v1/agent/service/register"), web).unwrap().status, 200);
    eventually(Duration::from_secs(30), "the client agent's service in the catalog over HTTPS", || {
        curl(&pki, &[&https(&ips[0], "/v1/health/service/web?passing")])?.contains("\"c1\"").then_some(())
    });

    // The client agent serves HTTPS with its auto_encrypt certificate (it has no cert_file), signed by the
    // cluster CA that `/v1/connect/ca/roots` publishes.
    let cluster_root = curl(&pki, &[&https(&ips[0], "/v1/connect/ca/roots?pem=true")]).expect("cluster CA roots");
    assert!(cluster_root.contains("BEGIN CERTIFICATE"), "no cluster root: {cluster_root}");
    let bundle = write(pki_dir.path(), "bundle.pem", &(std::fs::read_to_string(pki.ca()).unwrap() + &cluster_root));
    let client_ip = format!("127.0.{SUBNET}.10");
    let resolve = format!("localhost:8501:{client_ip}");
    let agent_self =
        eventually(Duration::from_secs(30), "the client agent's HTTPS with its auto_encrypt certificate", || {
            curl(&pki, &["--cacert", &bundle, "--resolve", &resolve, "https://localhost:8501/v1/agent/self"])
        });
    assert!(agent_self.contains("\"c1\""), "{agent_self}");
    let untrusted = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert", &pki.ca(), "--resolve", &resolve])
        .arg("https://localhost:8501/v1/agent/self")
        .output()
        .expect("curl");
    assert!(!untrusted.status.success(), "the client agent's certificate verified without the cluster root");

    // KV over HTTPS on one server, read back on another; no client certificate, no answer.
    let put = curl(&pki, &["-X", "PUT", "--data", "hello", &https(&ips[0], "/v1/kv/greeting")]);
    assert_eq!(put.as_deref(), Some("true"));
    let read = curl(&pki, &[&https(&ips[1], "/v1/kv/greeting?raw")]);
    assert_eq!(read.as_deref(), Some("hello"));
    let anonymous = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert", &pki.ca(), &https(&ips[0], "/v1/kv/greeting")])
        .output()
        .unwrap();
    assert!(!anonymous.status.success(), "HTTPS without a client certificate was served");

    // python-consul with scheme="https", verify= the CA and the CLI certificate.
    let (cli_cert, cli_key) = pki.pair("cli");
    let script = format!(
        "import consul\nc = consul.Consul(host='{}', port=8501, scheme='https', verify='{}', cert=('{}', '{}'))\n\
         c.kv.put('py', 'from-python')\nprint(c.kv.get('py')[1]['Value'].decode())\n\
         print(len(c.catalog.nodes()[1]))",
        ips[2],
        pki.ca(),
        cli_cert,
        cli_key
    );
    let python = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is missing: run `pip install python-consul==1.1.0`");
    let printed = String::from_utf8_lossy(&python.stdout);
    assert!(python.status.success(), "python-consul failed: {}", String::from_utf8_lossy(&python.stderr));
    assert_eq!(printed.lines().collect::<Vec<_>>(), ["from-python", "4"]);

    assert_eq!(alive_members(&pki, &ips[0]), 4);

    // Rotation across the live cluster: install, use, remove; every member stays alive.
    let new_key = keygen(pki_dir.path());
    keyring(&pki, &ips[0], &["-install", &new_key]);
    keyring(&pki, &ips[0], &["-use", &new_key]);
    keyring(&pki, &ips[0], &["-remove", &old_key]);
    let listed = keyring(&pki, &ips[1], &["-list"]);
    assert!(listed.contains(&format!("{new_key} [4/4]")), "LAN keyring after rotation: {listed}");
    assert!(listed.contains(&format!("{new_key} [3/3]")), "WAN keyring after rotation: {listed}");
    assert!(!listed.contains(&old_key), "the old key is still installed: {listed}");
    // A local-only list skips the WAN pool but still asks every member of the LAN pool.
    let local = keyring(&pki, &ips[1], &["-list", "-local-only"]);
    assert!(local.contains(&format!("{new_key} [4/4]")) && !local.contains("WAN:"), "local-only list: {local}");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(alive_members(&pki, &ips[0]), 4);

    // A restarted server reads the rotated keyring from its data dir and joins again.
    cluster.agents[1].restart();
    eventually(Duration::from_secs(30), "the restarted server alive and following a leader", || {
        let members = alive_members(&pki, &ips[0]);
        (members == 4 && cluster.agents[1].leader().is_some()).then_some(())
    });
    let keyring_file = std::fs::read_to_string(cluster.agents[1].data_dir.join("serf/local.keyring")).unwrap();
    assert!(keyring_file.contains(&new_key) && !keyring_file.contains(&old_key), "{keyring_file}");
}

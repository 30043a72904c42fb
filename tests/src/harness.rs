//! Starting and stopping real agents. Each test takes its own loopback subnet (127.0.N.x) so tests can
//! run in parallel on Consul's default ports; every agent logs to a file that is printed if the test
//! fails. The binary is `$CONCLAVE_BIN`, or `conclave` next to the test executable's `deps/` directory
//! (cargo builds it there for `cargo test --workspace`).

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http;

pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("CONCLAVE_BIN") {
        return PathBuf::from(path);
    }
    // Tests run from target/<profile>/deps/, the benchmark from target/<profile>/.
    let exe = std::env::current_exe().expect("test executable path");
    let candidates: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(|dir| dir.join("conclave")).collect();
    candidates.iter().find(|path| path.exists()).cloned().unwrap_or_else(|| {
        panic!("conclave not found in {candidates:?}: run `cargo build -p conclave` (same profile) or set CONCLAVE_BIN")
    })
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
pub fn eventually<T>(timeout: Duration, what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub struct Agent {
    pub name: String,
    pub ip: String,
    pub args: Vec<String>,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
    restarts: usize,
}

impl Agent {
    pub fn http(&self) -> String {
        format!("http://{}:8500", self.ip)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http())
    }

    /// The agent's process ID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Starts `conclave` with exactly `args` (a test's own command line), logging to `dir/<name>.log`.
    pub fn launch(name: &str, ip: &str, args: Vec<String>, dir: &std::path::Path) -> Agent {
        let mut agent = Agent {
            name: name.to_string(),
            ip: ip.to_string(),
            args,
            data_dir: dir.join(name),
            log_path: dir.join(format!("{name}.log")),
            child: None,
            restarts: 0,
        };
        agent.spawn();
        agent
    }

    /// Sends `signal` (a `kill -s` name such as `HUP`) to the running agent.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().expect("the agent is running").to_string();
        let status = Command::new("kill").args(["-s", signal, &pid]).status().expect("kill");
        assert!(status.success(), "kill -s {signal} {pid} failed");
    }

    /// Waits up to `timeout` for the process to exit; true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn spawn(&mut self) {
        let log = File::options().create(true).append(true).open(&self.log_path).expect("log file");
        let child = Command::new(binary())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start conclave");
        self.child = Some(child);
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the agent again with the same flags and data dir.
    pub fn restart(&mut self) {
        self.kill();
        self.restarts += 1;
        self.spawn();
        self.wait_http();
    }

    pub fn wait_http(&self) {
        eventually(Duration::from_secs(20), &format!("{} to serve HTTP", self.name), || {
            http::get(&self.url("/v1/status/leader")).ok().map(|_| ())
        });
    }

    /// The leader this agent reports (`ip:port`), if any.
    pub fn leader(&self) -> Option<String> {
        let reply = http::get(&self.url("/v1/status/leader")).ok()?;
        let leader = reply.json().as_str()?.to_string();
        (!leader.is_empty()).then_some(leader)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A set of agents on one loopback subnet, with a temp dir holding their data dirs and logs.
pub struct Cluster {
    pub agents: Vec<Agent>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// `servers` servers `s1..sN` on 127.0.`subnet`.1..N with the seed's flags and default ports.
    pub fn servers(subnet: u8, servers: usize) -> Cluster {
        Cluster::servers_with(subnet, servers, &[])
    }

    /// Like `servers`, with extra flags for every server.
    pub fn servers_with(subnet: u8, servers: usize, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ips: Vec<String> = (1..=servers).map(|i| format!("127.0.{subnet}.{i}")).collect();
        let mut agents = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let name = format!("s{}", i + 1);
            let data_dir = dir.path().join(&name);
            let mut args: Vec<String> = vec![
                "agent".into(),
                "-server".into(),
                "-bootstrap-expect".into(),
                servers.to_string(),
                "-data-dir".into(),
                data_dir.display().to_string(),
                format!("-node={name}"),
                format!("-bind={ip}"),
                "-client".into(),
                ip.clone(),
                "-rejoin".into(),
            ];
            for peer in &ips {
                args.push("-join".into());
                args.push(peer.clone());
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            let log_path = dir.path().join(format!("{name}.log"));
            agents.push(Agent { name, ip: ip.clone(), args, data_dir, log_path, child: None, restarts: 0 });
        }
        for agent in &mut agents {
            agent.spawn();
        }
        for agent in &agents {
            agent.wait_http();
        }
        Cluster { agents, dir }
    }

    /// Adds a client agent on 127.0.`subnet`.`host` joining the servers with `-retry-join`.
    pub fn add_client(&mut self, subnet: u8, host: u8, name: &str, extra: &[&str]) -> usize {
        let ip = format!("127.0.{subnet}.{host}");
        let data_dir = self.dir.path().join(name);
        let mut args: Vec<String> = vec![
            "agent".into(),
            "-data-dir".into(),
            data_dir.display().to_string(),
            format!("-node={name}"),
            format!("-bind={ip}"),
            "-client".into(),
            ip.clone(),
        ];
        for server in self.agents.iter().filter(|a| a.name.starts_with('s')) {
            args.push("-retry-join".into());
            args.push(server.ip.clone());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let log_path = self.dir.path().join(format!("{name}.log"));
        let mut agent = Agent { name: name.to_string(), ip, args, data_dir, log_path, child: None, restarts: 0 };
        agent.spawn();
        agent.wait_http();
        self.agents.push(agent);
        self.agents.len() - 1
    }

    /// A `-dev` agent on 127.0.`subnet`.1.
    pub fn dev(subnet: u8) -> Cluster {
        Cluster::dev_with(subnet, &[])
    }

    /// Like `dev`, with extra flags.
    pub fn dev_with(subnet: u8, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let ip = format!("127.0.{subnet}.1");
        let mut args = vec!["agent".into(), "-dev".into(), format!("-bind={ip}"), "-client".into(), ip.clone()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut agent = Agent {
            name: "dev".into(),
            ip,
            args,
            data_dir: dir.path().join("dev"),
            log_path: dir.path().join("dev.log"),
            child: None,
            restarts: 0,
        };
        agent.spawn();
        agent.wait_http();
        Cluster { agents: vec![agent], dir }
    }

    /// Waits until every running agent names the same leader, and returns its index.
    pub fn wait_leader(&mut self) -> usize {
        let agents = &mut self.agents;
        eventually(Duration::from_secs(30), "one leader known to every running server", || {
            let mut seen = Vec::new();
            for agent in agents.iter_mut() {
                if agent.is_running() {
                    seen.push(agent.leader()?);
                }
            }
            let first = seen.first()?.clone();
            if !seen.iter().all(|l| *l == first) {
                return None;
            }
            let ip = first.split(':').next()?.to_string();
            // Survivors name a dead leader until their election timeout fires: wait for a live one.
            agents.iter_mut().position(|a| a.ip == ip).filter(|&i| agents[i].is_running())
        })
    }

    /// Prints every agent's log (call on failure paths; tests print them via `LogsOnPanic`).
    pub fn dump_logs(&self) {
        for agent in &self.agents {
            eprintln!("===== {} log =====\n{}", agent.name, agent.log());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

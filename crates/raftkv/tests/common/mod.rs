//! Real `raftkv serve` processes on loopback for the integration tests: ports picked by
//! the OS, a temporary directory per cluster, and every child stopped by its pid when the
//! cluster is dropped (also when a test fails).

#![allow(dead_code)]

pub mod etcd;
pub mod proxy;

use raftkv::client::{self, ClientConfig};
use raftkv::proto::NodeStatus;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_raftkv");

/// Election timeouts of the test clusters (ms): short, so failover tests are quick.
pub const ELECTION_MIN_MS: u64 = 200;
pub const ELECTION_MAX_MS: u64 = 400;

/// A free loopback port below Linux's ephemeral range (32768 and up): a port the OS
/// hands out with bind(0) is in that range, where any outgoing connection (the tests'
/// clients, the nodes' peer links) may take it before the child binds it. Random, checked
/// free by binding it, and never handed out twice by this process.
pub fn free_port() -> u16 {
    use rand::Rng;
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(20_000..32_000);
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}

pub struct Node {
    pub id: u64,
    pub peer: String,
    pub client: String,
    pub http: String,
    /// Where it serves etcd's API (in a cluster started with [`Cluster::start_etcd`]).
    pub etcd: String,
}

/// A cluster of `raftkv serve` processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    procs: BTreeMap<u64, Child>,
    /// Node i's settings file (`config_files[i - 1]`).
    config_files: Vec<PathBuf>,
}

impl Cluster {
    /// Starts `n` nodes.
    pub fn start(n: u64) -> Cluster {
        Self::start_with(n, |_, _, real| real.to_owned())
    }

    /// Starts `n` nodes; node `i` reaches node `j`'s peer port at `view(i, j, real)`
    /// (a proxy, say), where `real` is the port node `j` listens on.
    pub fn start_with(n: u64, view: impl Fn(u64, u64, &str) -> String) -> Cluster {
        Self::start_mode(n, false, view)
    }

    /// Starts `n` nodes serving etcd's API (the etcd store as their state machine).
    pub fn start_etcd(n: u64) -> Cluster {
        Self::start_mode(n, true, |_, _, real| real.to_owned())
    }

    fn start_mode(n: u64, etcd: bool, view: impl Fn(u64, u64, &str) -> String) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes: Vec<Node> = (1..=n)
            .map(|id| Node {
                id,
                peer: format!("127.0.0.1:{}", free_port()),
                client: format!("127.0.0.1:{}", free_port()),
                http: format!("127.0.0.1:{}", free_port()),
                etcd: format!("127.0.0.1:{}", free_port()),
            })
            .collect();
        let mut config_files = Vec::new();
        for me in &nodes {
            // The etcd clusters' tests run many clients on this 2-core machine: longer
            // timeouts keep a starved heartbeat from causing an election mid-test.
            let (emin, emax, op) = if etcd {
                (400, 800, 3000)
            } else {
                (ELECTION_MIN_MS, ELECTION_MAX_MS, 1000)
            };
            let mut toml = format!(
                "tick_ms = 10\nelection_timeout_min_ms = {emin}\n\
                 election_timeout_max_ms = {emax}\nheartbeat_ms = 50\n\
                 handshake_timeout_ms = 1000\nop_timeout_ms = {op}\npeer_listen = \"{}\"\n",
                me.peer
            );
            if etcd {
                toml.push_str(&format!("etcd_addr = \"{}\"\n", me.etcd));
            }
            for n in &nodes {
                let peer = if n.id == me.id {
                    n.peer.clone()
                } else {
                    view(me.id, n.id, &n.peer)
                };
                toml.push_str(&format!(
                    "[[nodes]]\nid = {}\npeer = \"{}\"\nclient = \"{}\"\n",
                    n.id, peer, n.client
                ));
                if etcd {
                    toml.push_str(&format!("etcd = \"{}\"\n", n.etcd));
                }
            }
            let file = dir.path().join(format!("node-{}.toml", me.id));
            std::fs::write(&file, toml).expect("config file");
            config_files.push(file);
        }
        let mut c = Cluster {
            dir,
            nodes,
            procs: BTreeMap::new(),
            config_files,
        };
        for id in 1..=n {
            c.spawn(id);
        }
        c
    }

    /// Prepares node `nodes.len() + 1` to join this etcd cluster (`serve --join`, knowing
    /// only its own addresses); start it with [`spawn`](Self::spawn) once the cluster
    /// has added it. Returns its id.
    pub fn add_joining_etcd_node(&mut self) -> u64 {
        let id = self.nodes.len() as u64 + 1;
        let me = Node {
            id,
            peer: format!("127.0.0.1:{}", free_port()),
            client: format!("127.0.0.1:{}", free_port()),
            http: format!("127.0.0.1:{}", free_port()),
            etcd: format!("127.0.0.1:{}", free_port()),
        };
        let toml = format!(
            "tick_ms = 10\nelection_timeout_min_ms = 400\nelection_timeout_max_ms = 800\n\
             heartbeat_ms = 50\nhandshake_timeout_ms = 1000\nop_timeout_ms = 3000\n\
             join = true\netcd_addr = \"{}\"\n\
             [[nodes]]\nid = {id}\npeer = \"{}\"\nclient = \"{}\"\netcd = \"{}\"\n",
            me.etcd, me.peer, me.client, me.etcd
        );
        let file = self.dir.path().join(format!("node-{id}.toml"));
        std::fs::write(&file, toml).expect("config file");
        self.config_files.push(file);
        self.nodes.push(me);
        id
    }

    /// Node `id`'s real peer address.
    pub fn peer_addr(&self, id: u64) -> String {
        self.node(id).peer.clone()
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    /// Starts node `id` (again), from its data directory.
    pub fn spawn(&mut self, id: u64) {
        assert!(!self.procs.contains_key(&id), "node {id} is running");
        let n = self.node(id);
        let log_path = self.dir.path().join(format!("node-{id}.log"));
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        let child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_files[(id - 1) as usize])
            .args(["--id", &id.to_string(), "--http-addr", &n.http])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("node-{id}")))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start raftkv serve");
        self.procs.insert(id, child);
    }

    /// SIGKILLs node `id`.
    pub fn kill9(&mut self, id: u64) {
        if let Some(mut c) = self.procs.remove(&id) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs node `id` (by pid) and waits for it to exit; returns its status.
    pub fn terminate(&mut self, id: u64) -> ExitStatus {
        let mut c = self.procs.remove(&id).expect("node is running");
        let sent = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(s)) = c.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("node {id} did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.client.clone()).collect()
    }

    /// Node `id`'s etcd API address.
    pub fn etcd_addr(&self, id: u64) -> String {
        self.node(id).etcd.clone()
    }

    /// Whether node `id` is running.
    pub fn running(&self, id: u64) -> bool {
        self.procs.contains_key(&id)
    }

    pub fn client_addr(&self, id: u64) -> String {
        self.node(id).client.clone()
    }

    /// Runs the binary as a client against every node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--endpoints")
            .arg(self.endpoints().join(","))
            .env_remove("RUST_LOG")
            .output()
            .expect("run raftkv")
    }

    /// Node `id`'s status, if it answers.
    pub async fn status(&self, id: u64) -> Option<NodeStatus> {
        client::status(&self.client_addr(id), &ClientConfig::default())
            .await
            .ok()
    }

    /// Waits (at most `limit`) until a running node other than `not` leads; its id.
    pub async fn wait_leader(&self, not: Option<u64>, limit: Duration) -> Option<u64> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            for id in self.procs.keys().copied() {
                if Some(id) == not {
                    continue;
                }
                if let Some(st) = self.status(id).await {
                    if st.role == "leader" {
                        return Some(id);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }

    /// The log of node `id`, for failure messages.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log"))).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in self.procs.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

//! `raftkv cluster`: N `raftkv serve` children of this same binary on fixed local ports.

use super::serve::{child_args, stop_signal};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Local child processes, each stopped by its pid: gracefully by [`stop`](Self::stop),
/// with SIGKILL by `Drop` if still running.
pub struct LocalCluster {
    children: Vec<(u64, Child)>,
    /// Ports: peers `base + id`, clients `base + 100 + id`, HTTP `base + 200 + id`.
    pub base: u16,
    /// Where the nodes' data directories and logs are.
    pub dir: PathBuf,
    /// The nodes' etcd API addresses (node 1's first) when they serve it.
    pub etcd: Option<Vec<String>>,
}

impl LocalCluster {
    /// Starts `n` nodes under `dir` with ports from `base`; their logs go to
    /// `dir/node-ID.log`.
    pub fn start(n: u64, dir: &Path, base: u16) -> anyhow::Result<Self> {
        Self::start_with(n, dir, base, None, None)
    }

    /// [`start`](Self::start), the nodes serving etcd's API at `etcd` (node 1's first)
    /// instead of the native protocol when given, each with `worker_threads` threads when
    /// given (else their default, one per core).
    pub fn start_with(
        n: u64,
        dir: &Path,
        base: u16,
        etcd: Option<Vec<String>>,
        worker_threads: Option<usize>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let exe = std::env::current_exe().context("cannot find this program's path")?;
        let mut cluster = LocalCluster {
            children: Vec::new(),
            base,
            dir: dir.to_owned(),
            etcd,
        };
        for id in 1..=n {
            let log_path = dir.join(format!("node-{id}.log"));
            let log = std::fs::File::options()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("cannot open {}", log_path.display()))?;
            let child = Command::new(&exe)
                .args(child_args(
                    id,
                    n,
                    base,
                    dir,
                    cluster.etcd.as_deref(),
                    worker_threads,
                ))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start node {id}"))?;
            cluster.children.push((id, child));
        }
        Ok(cluster)
    }

    /// The nodes' client addresses.
    pub fn client_addrs(&self) -> Vec<String> {
        self.children
            .iter()
            .map(|(id, _)| format!("127.0.0.1:{}", u64::from(self.base) + 100 + id))
            .collect()
    }

    /// Node ids and pids.
    pub fn pids(&self) -> Vec<(u64, u32)> {
        self.children.iter().map(|(id, c)| (*id, c.id())).collect()
    }

    /// A node that has exited, if any, with its status.
    pub fn exited(&mut self) -> Option<(u64, std::process::ExitStatus)> {
        self.children
            .iter_mut()
            .find_map(|(id, c)| c.try_wait().ok().flatten().map(|s| (*id, s)))
    }

    /// Sends SIGTERM to every child by pid and waits for each (up to `grace`, then
    /// SIGKILL). Returns the nodes that did not exit with status 0.
    pub fn stop(&mut self, grace: Duration) -> Vec<u64> {
        // A node that had already exited (killed, crashed) is not stopped again, and
        // its earlier exit is not this stop's failure.
        self.children.retain_mut(|(id, c)| match c.try_wait() {
            Ok(Some(status)) => {
                eprintln!("raftkv: node {id} had already exited ({status})");
                false
            }
            _ => true,
        });
        for (_, c) in &self.children {
            signal(c.id(), libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        let mut failed = Vec::new();
        for (id, c) in &mut self.children {
            let status = loop {
                match c.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break None;
                    }
                }
            };
            if !status.is_some_and(|s| s.success()) {
                failed.push(*id);
            }
        }
        self.children.clear();
        failed
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Sends `sig` to process `pid`.
fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes two integers and touches no memory of this process; the
    // worst a wrong pid can do is signal another process, and this pid is our own
    // child's, not yet reaped (so not reused).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// etcdctl's default endpoint: node 1 serves its etcd API there when it is free.
const ETCD_DEFAULT: &str = "127.0.0.1:2379";

/// The nodes' etcd API addresses: node 1 on 2379 when that port is free (etcdctl then
/// needs no flag), every other one (and node 1 otherwise) on `base + 300 + id`.
fn etcd_addrs(n: u64, base: u16) -> Vec<String> {
    let own = |id: u64| format!("127.0.0.1:{}", u64::from(base) + 300 + id);
    let free = std::net::TcpListener::bind(ETCD_DEFAULT).is_ok();
    (1..=n)
        .map(|id| {
            if id == 1 && free {
                ETCD_DEFAULT.to_owned()
            } else {
                own(id)
            }
        })
        .collect()
}

pub async fn run(
    n: u64,
    dir: PathBuf,
    base: u16,
    etcd: bool,
    worker_threads: Option<usize>,
) -> anyhow::Result<()> {
    if !(1..=9).contains(&n) {
        anyhow::bail!("--nodes must be between 1 and 9");
    }
    let etcd = etcd.then(|| etcd_addrs(n, base));
    let mut cluster = LocalCluster::start_with(n, &dir, base, etcd.clone(), worker_threads)?;
    println!("raftkv: a {n}-node cluster under {}", dir.display());
    match &etcd {
        Some(addrs) => {
            println!("  node  pid      etcd API         peer             metrics/health");
            for ((id, pid), addr) in cluster.pids().into_iter().zip(addrs) {
                let p = |off: u64| format!("127.0.0.1:{}", u64::from(base) + off + id);
                println!(
                    "  {id:<4}  {pid:<7}  {addr:<15}  {:<15}  http://{}/metrics",
                    p(0),
                    p(200)
                );
            }
        }
        None => {
            println!("  node  pid      client           peer             metrics/health");
            for (id, pid) in cluster.pids() {
                let p = |off: u64| format!("127.0.0.1:{}", u64::from(base) + off + id);
                println!(
                    "  {id:<4}  {pid:<7}  {:<15}  {:<15}  http://{}/metrics",
                    p(100),
                    p(0),
                    p(200)
                );
            }
        }
    }
    println!(
        "  logs: {}/node-ID.log   data: {}/node-ID/",
        dir.display(),
        dir.display()
    );
    println!();
    println!("In another terminal:");
    match &etcd {
        Some(addrs) => {
            let flag = if addrs.first().map(String::as_str) == Some(ETCD_DEFAULT) {
                String::new()
            } else {
                format!(" --endpoints={}", addrs.join(","))
            };
            println!("  etcd endpoints: {}", addrs.join(","));
            println!("  etcdctl{flag} put greeting hello");
            println!("  etcdctl{flag} get greeting");
            println!(
                "  etcdctl --endpoints={} endpoint status -w table",
                addrs.join(",")
            );
        }
        None => {
            // The client commands reach the default ports by themselves; others need naming.
            let endpoints = if base == 7000 {
                String::new()
            } else {
                let list: Vec<String> = cluster.client_addrs();
                format!(" --endpoints {}", list.join(","))
            };
            println!("  cargo run --release -p raftkv -- put greeting hello{endpoints}");
            println!("  cargo run --release -p raftkv -- get greeting{endpoints}");
            println!("  cargo run --release -p raftkv -- status{endpoints}");
        }
    }
    println!("Ctrl-C stops every node.");
    let why = loop {
        tokio::select! {
            s = stop_signal() => break s?,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some((id, status)) = cluster.exited() {
                    // Nothing is restarted: say so and keep the others running.
                    eprintln!("raftkv: node {id} exited ({status}); see {}/node-{id}.log", dir.display());
                    cluster.children.retain(|(i, _)| *i != id);
                }
            }
        }
    };
    println!("raftkv: {why}: stopping every node");
    let failed = tokio::task::spawn_blocking(move || cluster.stop(Duration::from_secs(15))).await?;
    if failed.is_empty() {
        println!("raftkv: all nodes stopped");
        Ok(())
    } else {
        anyhow::bail!("nodes {failed:?} did not stop cleanly")
    }
}

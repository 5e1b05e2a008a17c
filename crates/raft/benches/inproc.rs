//! The runtime's throughput in one process, comparable to openraft's
//! `benchmarks/minimal`: three peers in one tokio runtime, in-memory storage, a transport
//! that is a function call, tiny commands, and C concurrent clients that each propose a
//! command to the leader and wait until the leader has applied it before proposing the
//! next. Prints ops/s for each client count.
//!
//! ```text
//! cargo bench -p raft --bench inproc                          # 1, 64, 256, 1024, 4096 clients
//! cargo bench -p raft --bench inproc -- --clients 64 --ops 200000
//! cargo bench -p raft --bench inproc -- --quick                # a few hundred ops (CI)
//! ```

mod common;

use common::Local;
use raft::{ApplyMsg, Bytes, Config, Index, NodeId, Raft, RaftError};
use raft_storage::MemStorage;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Clients waiting for their entry to be applied, by index. Each index has one waiter:
/// every client waits for the index its own `start` returned.
#[derive(Default)]
struct Waiters {
    applied: AtomicU64,
    waiting: Mutex<BTreeMap<Index, oneshot::Sender<()>>>,
}

impl Waiters {
    /// Resolves once `index` is applied.
    async fn applied(&self, index: Index) {
        let rx = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock so that an apply between the check and the insert
            // cannot be missed: the applier takes the same lock after publishing.
            if self.applied.load(Ordering::Acquire) >= index {
                return;
            }
            let (tx, rx) = oneshot::channel();
            waiting.insert(index, tx);
            rx
        };
        let _ = rx.await;
    }

    /// Everything up to `index` is applied: wake its waiters.
    fn publish(&self, index: Index) {
        self.applied.store(index, Ordering::Release);
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(first) = waiting.first_entry() {
            if *first.key() > index {
                break;
            }
            let _ = first.remove().send(());
        }
    }
}

/// The service's apply loop: takes what the channel holds and publishes the last index
/// once per batch, as a state machine applying batches would. It compacts the log as
/// openraft's benchmark does with openraft's defaults (a snapshot every 5,000 entries,
/// keeping the last 1,000), so that memory stays bounded however many commands run; the
/// benchmark's state machine has no state, so a snapshot is empty.
async fn applier(mut rx: mpsc::Receiver<ApplyMsg>, waiters: Arc<Waiters>, raft: Raft) {
    let mut batch = Vec::with_capacity(APPLY_BATCH);
    let mut snapshot = 0;
    while rx.recv_many(&mut batch, APPLY_BATCH).await > 0 {
        if let Some(last) = batch.last() {
            let (ApplyMsg::Command { index, .. }
            | ApplyMsg::NoOp { index, .. }
            | ApplyMsg::Config { index, .. }
            | ApplyMsg::Snapshot { index, .. }) = *last;
            waiters.publish(index);
            if index >= snapshot + SNAPSHOT_EVERY + SNAPSHOT_KEEP {
                snapshot = index - SNAPSHOT_KEEP;
                if raft.snapshot(snapshot, Bytes::new()).await.is_err() {
                    return;
                }
            }
        }
        batch.clear();
    }
}

/// The most apply messages the applier takes at once.
const APPLY_BATCH: usize = 1024;
/// Entries between snapshots (openraft's default `LogsSinceLast(5000)`).
const SNAPSHOT_EVERY: Index = 5_000;
/// Entries a snapshot leaves in the log (openraft's `max_in_snapshot_log_to_keep`).
const SNAPSHOT_KEEP: Index = 1_000;

struct Cluster {
    rafts: Vec<Raft>,
    waiters: Vec<Arc<Waiters>>,
}

impl Cluster {
    async fn start() -> Cluster {
        let ids: Vec<NodeId> = (0..3).collect();
        let registry = Arc::new(OnceLock::new());
        let (mut rafts, mut waiters) = (Vec::new(), Vec::new());
        for &id in &ids {
            let (tx, rx) = mpsc::channel(4096);
            let config = Config {
                seed: 7,
                ..Config::default()
            };
            let transport = Local {
                peers: registry.clone(),
            };
            let raft = Raft::new(&ids, id, MemStorage::new(), tx, config, transport)
                .unwrap_or_else(|e| panic!("cannot start peer {id}: {e}"));
            let w = Arc::new(Waiters::default());
            tokio::spawn(applier(rx, w.clone(), raft.clone()));
            rafts.push(raft);
            waiters.push(w);
        }
        let _ = registry.set(rafts.clone());
        Cluster { rafts, waiters }
    }

    async fn leader(&self) -> usize {
        loop {
            if let Some(l) = self.rafts.iter().position(|r| r.state().1) {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn stop(&self) {
        for r in &self.rafts {
            r.kill();
        }
    }
}

/// One client: `ops` commands, each proposed once the previous one is applied.
async fn client(raft: Raft, waiters: Arc<Waiters>, id: u64, ops: u64) -> Result<(), RaftError> {
    for k in 0..ops {
        let index = loop {
            // Made afresh for a retry rather than cloned: a clone would turn the payload
            // into a shared one, an allocation the runtime itself does not need.
            let command = Bytes::copy_from_slice(&(id << 32 | k).to_le_bytes());
            match raft.start(command).await {
                Ok((index, _)) => break index,
                // A full queue is back-pressure, not failure: let the peer catch up.
                Err(RaftError::Busy(_)) => tokio::task::yield_now().await,
                Err(e) => return Err(e),
            }
        };
        waiters.applied(index).await;
    }
    Ok(())
}

async fn run_point(clients: u64, total: u64) -> Result<f64, RaftError> {
    let cluster = Cluster::start().await;
    let leader = cluster.leader().await;
    let per_client = (total / clients).max(1);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let raft = cluster.rafts[leader].clone();
            let waiters = cluster.waiters[leader].clone();
            tokio::spawn(client(raft, waiters, c, per_client))
        })
        .collect();
    let mut result = Ok(());
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => panic!("client task failed: {e}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    cluster.stop();
    result.map(|()| (per_client * clients) as f64 / secs)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quick = args.iter().any(|a| a == "--quick");
    let clients: Vec<u64> = match value("--clients") {
        Some(list) => list
            .split(',')
            .map(|c| {
                c.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad client count {c:?}"))
            })
            .collect(),
        None if quick => vec![1, 64],
        None => vec![1, 64, 256, 1024, 4096],
    };
    let ops: Option<u64> =
        value("--ops").map(|o| o.parse().unwrap_or_else(|_| panic!("bad --ops {o:?}")));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("cannot build runtime: {e}"));
    println!("3 peers in one process, in-memory storage, function-call transport, 8 B commands");
    println!("{:>8} {:>10} {:>12}", "clients", "ops", "ops/s");
    for c in clients {
        // Enough operations that a point takes about a second at full speed, and at
        // least 20 per client so that start-up does not dominate.
        let total = ops.unwrap_or(if quick { 200 } else { (c * 20).max(100_000) });
        match runtime.block_on(run_point(c, total)) {
            Ok(rate) => println!("{c:>8} {:>10} {rate:>12.0}", (total / c).max(1) * c),
            Err(e) => {
                eprintln!("{c} clients: {e}");
                std::process::exit(1);
            }
        }
    }
}

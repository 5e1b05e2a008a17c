//! The runtime on a slow disk: a write takes milliseconds on the blocking pool while the
//! peer goes on stepping messages and proposals. What needs no write (entries committed
//! and already durable, a leader's replication requests) is handed over while a write
//! runs; every peer must still apply every committed entry once, in order, with no gap,
//! and in both settings of `leader_parallel_write`.

use futures::future::BoxFuture;
use raft::{ApplyMsg, Bytes, Config, Envelope, NodeId, Raft, Transport};
use raft_storage::{MemStorage, Storage, StorageError, WriteBatch};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// In-memory storage whose writes block for `delay`, as a disk's `fsync` does.
struct SlowDisk {
    inner: MemStorage,
    delay: Duration,
}

impl Storage for SlowDisk {
    const BLOCKING: bool = true;
    fn restore(&self) -> Result<raft_core::RestoredState, StorageError> {
        self.inner.restore()
    }
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        std::thread::sleep(self.delay);
        self.inner.write(batch)
    }
    fn raft_state_size(&self) -> u64 {
        self.inner.raft_state_size()
    }
    fn snapshot_size(&self) -> u64 {
        self.inner.snapshot_size()
    }
}

/// Peers in one process: a call is a direct `handle` on the receiver.
#[derive(Clone, Default)]
struct Local {
    peers: Arc<Mutex<BTreeMap<NodeId, Raft>>>,
}

impl Transport for Local {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let peer = self.peers.lock().ok().and_then(|p| p.get(&to).cloned());
        Box::pin(async move { peer?.handle(msg).await })
    }
}

/// What one peer's service saw: the indices of what it applied, in order.
type Applied = Arc<Mutex<Vec<u64>>>;
/// The commands one peer's service applied, in order.
type Commands = Arc<Mutex<Vec<Bytes>>>;

/// Starts three peers on slow disks; returns them and what each applied.
async fn start(config: &Config, delay: Duration) -> (Local, BTreeMap<NodeId, (Applied, Commands)>) {
    let net = Local::default();
    let ids = [1, 2, 3];
    let mut seen: BTreeMap<NodeId, (Applied, Commands)> = BTreeMap::new();
    for id in ids {
        let (tx, mut rx) = mpsc::channel(64);
        let disk = SlowDisk {
            inner: MemStorage::new(),
            delay,
        };
        let raft = Raft::new(&ids, id, disk, tx, config.clone(), net.clone()).expect("peer");
        let indices: Applied = Default::default();
        let commands: Commands = Default::default();
        seen.insert(id, (indices.clone(), commands.clone()));
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let (index, command) = match msg {
                    ApplyMsg::Command { index, command, .. } => (index, Some(command)),
                    ApplyMsg::NoOp { index, .. } | ApplyMsg::Config { index, .. } => (index, None),
                    ApplyMsg::Snapshot { index, .. } => (index, None),
                };
                if let Ok(mut v) = indices.lock() {
                    v.push(index);
                }
                if let (Some(c), Ok(mut v)) = (command, commands.lock()) {
                    v.push(c);
                }
            }
        });
        net.peers.lock().expect("peers").insert(id, raft);
    }
    (net, seen)
}

async fn leader_of(net: &Local) -> Raft {
    loop {
        let peers = net.peers.lock().expect("peers").clone();
        if let Some(r) = peers.values().find(|r| r.state().1) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(parallel_write: bool) {
    const PROPOSERS: usize = 24;
    const EACH: usize = 40;
    let config = Config {
        leader_parallel_write: parallel_write,
        election_timeout_min: Duration::from_millis(400),
        election_timeout_max: Duration::from_millis(800),
        ..Config::default()
    };
    let (net, seen) = start(&config, Duration::from_millis(3)).await;
    let leader = leader_of(&net).await;
    // Many proposers at once, each waiting until its command is applied on the leader
    // before the next: writes overlap proposals, acknowledgements and commits.
    let leader_applied = seen[&leader.id()].0.clone();
    let mut tasks = Vec::new();
    for p in 0..PROPOSERS {
        let (leader, applied) = (leader.clone(), leader_applied.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let cmd = Bytes::from(format!("{p}.{i}"));
                let (index, _) = leader.start(cmd).await.expect("leader stays");
                while !applied.lock().expect("applied").contains(&index) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("proposer");
    }
    // Followers catch up with the leader's commit index within a few heartbeats.
    let target = leader.status().commit_index;
    for _ in 0..500 {
        if seen
            .values()
            .all(|(i, _)| i.lock().expect("i").last() >= Some(&target))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (id, (indices, commands)) in &seen {
        let indices = indices.lock().expect("indices").clone();
        let first = indices.first().copied().unwrap_or(0);
        let expected: Vec<u64> = (first..first + indices.len() as u64).collect();
        assert_eq!(first, 1, "peer {id} began applying at {first}");
        assert!(
            indices == expected,
            "peer {id} applied out of order or with a gap (parallel write {parallel_write}): \
             first break after {:?}",
            indices
                .windows(2)
                .find(|w| w[1] != w[0] + 1)
                .map(|w| (w[0], w[1]))
        );
        assert!(
            indices.last() >= Some(&target),
            "peer {id} applied up to {:?} of {target}",
            indices.last()
        );
        let mut commands = commands.lock().expect("commands").clone();
        commands.sort();
        commands.dedup();
        assert_eq!(
            commands.len(),
            PROPOSERS * EACH,
            "peer {id}: a command lost or doubled"
        );
    }
    for r in net.peers.lock().expect("peers").values() {
        r.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_is_applied_once_in_order_while_writes_run() {
    run(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_is_applied_once_in_order_without_parallel_write() {
    run(false).await;
}

//! The runtime on disk: a 3-peer `raft::Raft` cluster over `WalStorage` in temporary
//! directories, on a tiny in-test transport. Commands are committed, every peer is killed,
//! the peers are restarted from their directories, and the committed commands are still
//! there (and are applied again, in order, once the new leader commits a new command).

use futures::future::BoxFuture;
use raft::{ApplyMsg, Bytes, Config, Envelope, NodeId, Raft, Transport};
use raft_storage::Storage;
use raft_wal::{LogOptions, Preallocate, WalOptions, WalStorage};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

type Peers = Arc<Mutex<Vec<Option<Raft>>>>;

/// Calls the target peer's `handle` directly; a missing peer never answers.
struct Direct(Peers);

impl Transport for Direct {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let peer = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(to as usize)
            .cloned()
            .flatten();
        Box::pin(async move { peer?.handle(msg).await })
    }
}

fn opts(me: u64) -> WalOptions {
    WalOptions {
        log: LogOptions {
            segment_size: 16 << 10,
            group_commit: true,
            preallocate: Preallocate::Background,
        },
        ..WalOptions::new(99, me)
    }
}

fn start(peers: &Peers, dirs: &[PathBuf]) -> Vec<mpsc::Receiver<ApplyMsg>> {
    let ids: Vec<NodeId> = (0..dirs.len() as u64).collect();
    let mut rxs = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let storage = WalStorage::open(dir, opts(i as u64)).expect("open data directory");
        let (tx, rx) = mpsc::channel(1024);
        let raft = Raft::new(
            &ids,
            i as u64,
            storage,
            tx,
            Config::default(),
            Direct(peers.clone()),
        )
        .expect("start peer");
        peers.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(raft);
        rxs.push(rx);
    }
    rxs
}

async fn leader(peers: &Peers) -> Raft {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let found = peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .find(|r| r.state().1)
            .cloned();
        if let Some(r) = found {
            return r;
        }
    }
    panic!("no leader elected within 10 s");
}

/// Receives applied commands until `count` have arrived; returns them.
async fn applied(rx: &mut mpsc::Receiver<ApplyMsg>, count: usize) -> Vec<(u64, Bytes)> {
    let mut got = Vec::new();
    while got.len() < count {
        let msg = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("applied within 10 s")
            .expect("apply channel open");
        if let ApplyMsg::Command { index, command, .. } = msg {
            got.push((index, command));
        }
    }
    got
}

fn kill_all(peers: &Peers) {
    for r in peers.lock().unwrap_or_else(|e| e.into_inner()).iter_mut() {
        if let Some(r) = r.take() {
            r.kill();
        }
    }
}

fn stored_commands(dir: &Path, me: u64) -> Vec<Bytes> {
    let s = WalStorage::open(dir, opts(me)).expect("reopen");
    let r = s.restore().expect("restore");
    r.entries.into_iter().map(|e| e.data).collect()
}

#[tokio::test(start_paused = true)]
async fn committed_commands_survive_killing_every_peer() {
    let root = tempfile::tempdir().expect("tempdir");
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| root.path().join(format!("peer-{i}")))
        .collect();
    let peers: Peers = Arc::new(Mutex::new(vec![None, None, None]));
    let cmds: Vec<Bytes> = (1..=5).map(|i| Bytes::from(format!("cmd-{i}"))).collect();

    let mut rxs = start(&peers, &dirs);
    let l = leader(&peers).await;
    for c in &cmds {
        l.start(c.clone()).await.expect("leader accepts");
    }
    let want: Vec<(u64, Bytes)> = (1..=5).zip(cmds.iter().cloned()).collect();
    for rx in &mut rxs {
        assert_eq!(applied(rx, 5).await, want);
    }
    kill_all(&peers);
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(rxs);

    // Every peer applied all five, so every peer persisted all five.
    for (i, dir) in dirs.iter().enumerate() {
        assert_eq!(stored_commands(dir, i as u64), cmds, "peer {i}");
    }

    // Restarted from their directories, the peers commit a new command after the old ones.
    let mut rxs = start(&peers, &dirs);
    let l = leader(&peers).await;
    let (index, _) = l
        .start(Bytes::from_static(b"cmd-6"))
        .await
        .expect("leader accepts");
    assert_eq!(index, 6, "the log survived the restart");
    let mut want = want;
    want.push((6, Bytes::from_static(b"cmd-6")));
    for rx in &mut rxs {
        assert_eq!(applied(rx, 6).await, want);
    }
    kill_all(&peers);
}

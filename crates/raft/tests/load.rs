//! The runtime under load: time keeps moving however busy a peer is, and memory stays
//! bounded when the service applies slower than clients propose.

use futures::future::BoxFuture;
use raft::{ApplyMsg, Bytes, Config, Envelope, Message, NodeId, Raft, RaftError, Transport};
use raft_storage::MemStorage;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Peers in one process: a call is a direct `handle` on the receiver.
#[derive(Clone, Default)]
struct Local {
    peers: Arc<Mutex<BTreeMap<NodeId, Raft>>>,
}

impl Local {
    fn get(&self, id: NodeId) -> Option<Raft> {
        self.peers.lock().ok()?.get(&id).cloned()
    }
    fn remove(&self, id: NodeId) -> Option<Raft> {
        self.peers.lock().ok()?.remove(&id)
    }
}

impl Transport for Local {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let peer = self.get(to);
        Box::pin(async move { peer?.handle(msg).await })
    }
}

/// Starts peers 0..3; each applies through `apply` (index, msg) in its own task.
fn cluster(
    config: &Config,
    apply: impl Fn(NodeId, Raft, mpsc::Receiver<ApplyMsg>) + Clone,
) -> Local {
    let net = Local::default();
    let ids = [0, 1, 2];
    for id in ids {
        let (tx, rx) = mpsc::channel(16);
        let raft = Raft::new(&ids, id, MemStorage::new(), tx, config.clone(), net.clone())
            .expect("valid peer");
        apply(id, raft.clone(), rx);
        if let Ok(mut peers) = net.peers.lock() {
            peers.insert(id, raft);
        }
    }
    net
}

fn leaders(net: &Local) -> Vec<(NodeId, u64)> {
    let peers = net.peers.lock().map(|p| p.clone()).unwrap_or_default();
    peers
        .iter()
        .filter_map(|(id, r)| {
            let (term, leader) = r.state();
            leader.then_some((*id, term))
        })
        .collect()
}

async fn wait_for_leader(net: &Local, within: Duration) -> (NodeId, u64) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let [one] = leaders(net)[..] {
            return one;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no single leader within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Before the fix, the event loop took every queued command before it looked at the
/// clock, so a peer flooded with commands stopped ticking: a leader stopped sending
/// heartbeats (and its followers elected another), a follower whose leader died never
/// timed out. Real threads are needed for a flood that never lets the queue drain; the
/// bounds are generous (an election needs 10 heartbeats in a row to be missed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_moves_under_a_flood_of_commands() {
    let config = Config {
        election_timeout_min: Duration::from_millis(1000),
        election_timeout_max: Duration::from_millis(2000),
        ..Config::default()
    };
    let net = cluster(&config, |_, _, mut rx| {
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
    });
    let (leader, term) = wait_for_leader(&net, Duration::from_secs(10)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut flooders = Vec::new();
    for id in [0, 1, 2] {
        for _ in 0..2 {
            let (peer, stop) = (net.get(id).expect("peer"), stop.clone());
            flooders.push(tokio::spawn(async move {
                let bogus = Envelope {
                    from: 99,
                    to: id,
                    msg: Message::RequestVoteResponse {
                        term: 0,
                        granted: false,
                    },
                };
                while !stop.load(Ordering::Relaxed) {
                    // 64 commands outstanding at a time, each refused at once (unknown
                    // sender / not the leader), but each one a command the peer's task
                    // must take: the queue never drains.
                    let calls = (0..32).map(|_| {
                        let (peer, bogus) = (peer.clone(), bogus.clone());
                        async move {
                            let _ = peer.handle(bogus).await;
                            let _ = peer.start(Bytes::from_static(b"x")).await;
                        }
                    });
                    futures::future::join_all(calls).await;
                    // Calls to a killed peer fail without ever waiting: without a yield,
                    // two such loops would hold both worker threads forever.
                    tokio::task::yield_now().await;
                }
            }));
        }
    }
    // Flooded, the leader keeps its followers quiet with heartbeats: no election.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        leaders(&net),
        vec![(leader, term)],
        "leadership changed under the flood"
    );
    let followers_term: Vec<u64> = [0, 1, 2]
        .iter()
        .filter_map(|id| net.get(*id).map(|r| r.state().0))
        .collect();
    assert!(
        followers_term.iter().all(|t| *t == term),
        "{followers_term:?}"
    );
    // Flooded, the followers still time out when the leader dies.
    if let Some(dead) = net.remove(leader) {
        dead.kill();
    }
    let (new_leader, new_term) = wait_for_leader(&net, Duration::from_secs(15)).await;
    assert_ne!(new_leader, leader);
    assert!(new_term > term);
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
}

/// A service that applies one entry per 2 ms of (virtual) time while clients propose as
/// fast as they can: the leader answers `Busy` once `max_unapplied_entries` wait, the
/// apply channel holds at most its capacity, and the persisted log (snapshotted every
/// 100 applied entries) stays small. Before the fix the apply channel was unbounded and
/// proposals were never refused: the log grew with every proposal.
#[tokio::test(start_paused = true)]
async fn memory_stays_bounded_when_the_service_applies_slowly() {
    const LIMIT: u64 = 300;
    let config = Config {
        max_unapplied_entries: LIMIT,
        ..Config::default()
    };
    let applied = Arc::new(BTreeMap::from([
        (0, AtomicU64::new(0)),
        (1, AtomicU64::new(0)),
        (2, AtomicU64::new(0)),
    ]));
    let counters = applied.clone();
    let net = cluster(&config, move |id, raft, mut rx| {
        let counters = counters.clone();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                tokio::time::sleep(Duration::from_millis(2)).await;
                let index = match msg {
                    ApplyMsg::Command { index, .. }
                    | ApplyMsg::NoOp { index, .. }
                    | ApplyMsg::Config { index, .. }
                    | ApplyMsg::Snapshot { index, .. } => index,
                };
                counters[&id].store(index, Ordering::Release);
                if index % 100 == 0 {
                    let _ = raft.snapshot(index, Bytes::from_static(b"state")).await;
                }
            }
        });
    });
    let (leader, _) = wait_for_leader(&net, Duration::from_secs(10)).await;
    let raft = net.get(leader).expect("leader");
    let (mut accepted, mut busy, mut max_size) = (0u64, 0u64, 0u64);
    let entry_size = (raft_core::Entry::OVERHEAD + 8) as u64;
    for i in 0..20_000u64 {
        match raft.start(Bytes::from(i.to_le_bytes().to_vec())).await {
            Ok((index, _)) => {
                accepted += 1;
                // The core counts as applied what it handed to the channel: up to its 16
                // slots and the entry being applied are ahead of the service.
                let done = applied[&leader].load(Ordering::Acquire);
                assert!(
                    index <= done + LIMIT + 16 + 1,
                    "proposal {index} accepted with only {done} applied"
                );
            }
            Err(RaftError::Busy(_)) => busy += 1,
            Err(e) => panic!("unexpected {e}"),
        }
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        for id in [0, 1, 2] {
            if let Some(peer) = net.get(id) {
                max_size = max_size.max(peer.raft_state_size());
            }
        }
    }
    assert!(busy > 0, "the limit never engaged");
    assert!(accepted > 1_000, "only {accepted} proposals accepted");
    // Unapplied entries plus the 100 applied since the last snapshot, on every peer.
    let bound = (LIMIT + 17 + 100 + 64) * entry_size + 64;
    assert!(
        max_size <= bound,
        "persisted log reached {max_size} bytes (bound {bound}); accepted {accepted}, busy {busy}"
    );
}

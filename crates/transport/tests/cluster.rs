//! A 3-node Raft cluster (the runtime with in-memory storage) over real TCP on loopback:
//! it elects a leader and commits commands; a follower's listener closes and reopens on
//! the same port, and the leader's connection to it comes back; a follower that was down
//! while the others compacted their logs catches up through a snapshot sent in chunks.

mod common;

use common::*;
use raft::{ApplyMsg, Bytes, Config, NodeId, Raft};
use raft_storage::MemStorage;
use raft_transport::{Handler, TcpTransport, TransportConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const IDS: [NodeId; 3] = [1, 2, 3];

struct Node {
    raft: Raft,
    transport: TcpTransport,
    server: Option<Server>,
    applied: mpsc::Receiver<ApplyMsg>,
    /// What the node's service has applied: commands by index, from 1.
    log: Vec<Bytes>,
    config: TransportConfig,
    storage: MemStorage,
    snapshots_installed: usize,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.raft.kill();
    }
}

fn handler(raft: &Raft) -> Handler {
    let raft = raft.clone();
    Arc::new(move |env| {
        let raft = raft.clone();
        Box::pin(async move { raft.handle(env).await })
    })
}

fn raft_config(id: NodeId) -> Config {
    Config {
        seed: id,
        // Small chunks, so that a snapshot crosses the wire in many frames.
        snapshot_chunk_bytes: 1024,
        // Within the tests' 64 KiB frames (checked by `validate_for`).
        max_msg_bytes: 16 << 10,
        ..Config::default()
    }
}

/// Starts node `id` on `listener` with `storage` (fresh, or a crashed node's).
fn start_node(
    id: NodeId,
    addrs: &BTreeMap<NodeId, SocketAddr>,
    storage: MemStorage,
    listener: TcpListener,
) -> Node {
    let cfg = config(id, addrs);
    cfg.validate_for(&raft_config(id))
        .expect("frames fit the runtime");
    let transport = TcpTransport::new(cfg.clone()).expect("valid");
    let (tx, rx) = mpsc::channel(1024);
    let raft = Raft::new(
        &IDS,
        id,
        storage.clone(),
        tx,
        raft_config(id),
        transport.clone(),
    )
    .expect("valid");
    let server = Server::start(listener, cfg.clone(), handler(&raft));
    Node {
        raft,
        transport,
        server: Some(server),
        applied: rx,
        log: Vec::new(),
        config: cfg,
        storage,
        snapshots_installed: 0,
    }
}

async fn start_cluster() -> BTreeMap<NodeId, Node> {
    let mut listeners = BTreeMap::new();
    let mut addrs: BTreeMap<NodeId, SocketAddr> = BTreeMap::new();
    for id in IDS {
        let (l, a) = listener().await;
        listeners.insert(id, l);
        addrs.insert(id, a);
    }
    listeners
        .into_iter()
        .map(|(id, l)| (id, start_node(id, &addrs, MemStorage::new(), l)))
        .collect()
}

async fn leader(nodes: &BTreeMap<NodeId, Node>) -> NodeId {
    for _ in 0..200 {
        let leaders: Vec<_> = nodes
            .iter()
            .filter(|(_, n)| n.raft.state().1)
            .map(|(&id, _)| id)
            .collect();
        if leaders.len() == 1 {
            return leaders[0];
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no single leader within 10 s");
}

/// Moves what each node has applied into its `log`.
fn drain(nodes: &mut BTreeMap<NodeId, Node>) {
    for n in nodes.values_mut() {
        while let Ok(msg) = n.applied.try_recv() {
            match msg {
                ApplyMsg::Command { index, command, .. } => {
                    assert_eq!(index, n.log.len() as u64 + 1, "applied in order");
                    n.log.push(command);
                }
                // No reads here, so no no-op is ever committed; were one, it keeps its
                // index as an empty command so that indices stay aligned.
                ApplyMsg::NoOp { index, .. } | ApplyMsg::Config { index, .. } => {
                    assert_eq!(index, n.log.len() as u64 + 1, "applied in order");
                    n.log.push(Bytes::new());
                }
                ApplyMsg::Snapshot { index, data, .. } => {
                    let log: Vec<Vec<u8>> = postcard::from_bytes(&data).expect("our snapshot");
                    assert_eq!(log.len() as u64, index);
                    n.log = log.into_iter().map(Bytes::from).collect();
                    n.snapshots_installed += 1;
                }
            }
        }
    }
}

/// Commits `cmd` and waits until every node has applied it. A command that a deposed
/// leader took may never commit, so it is proposed again after a while (a loaded machine
/// can delay heartbeats past an election timeout).
async fn commit(nodes: &mut BTreeMap<NodeId, Node>, cmd: &[u8]) {
    for _ in 0..4 {
        let l = leader(nodes).await;
        if nodes[&l]
            .raft
            .start(Bytes::copy_from_slice(cmd))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        for _ in 0..1000 {
            drain(nodes);
            if nodes.values().all(|n| n.log.iter().any(|c| &c[..] == cmd)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    panic!("{cmd:?} not applied everywhere");
}

/// No two nodes applied different commands at one index.
fn logs_agree(nodes: &BTreeMap<NodeId, Node>) {
    let logs: Vec<_> = nodes.values().map(|n| &n.log).collect();
    for pair in logs.windows(2) {
        let common = pair[0].len().min(pair[1].len());
        assert_eq!(pair[0][..common], pair[1][..common]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_tcp_elect_commit_and_survive_a_listener_restart() {
    let mut nodes = start_cluster().await;
    for k in 0..5u8 {
        commit(&mut nodes, &[b'a', k]).await;
    }
    let l = leader(&nodes).await;
    let follower = IDS.into_iter().find(|&id| id != l).expect("a follower");
    let before = nodes[&l].transport.stats()[&follower].clone();
    assert!(before.connected && before.messages_sent > 0, "{before:?}");

    // The follower's listener closes (and with it its inbound connections), then opens
    // again on the same port; its Raft keeps running.
    let addr = nodes[&follower].config.peers[&follower];
    let server = nodes.get_mut(&follower).and_then(|n| n.server.take());
    server.expect("running").stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let l2 = TcpListener::bind(addr).await.expect("rebind the same port");
    let node = &nodes[&follower];
    let server = Server::start(l2, node.config.clone(), handler(&node.raft));
    nodes.get_mut(&follower).expect("node").server = Some(server);

    for k in 0..3u8 {
        commit(&mut nodes, &[b'b', k]).await;
    }
    logs_agree(&nodes);
    // Someone reconnected to the restarted follower: the leader, or whoever leads now.
    let reconnects: u64 = nodes
        .values()
        .filter_map(|n| n.transport.stats().get(&follower).map(|s| s.reconnects))
        .sum();
    assert!(reconnects >= 1, "a connection to node {follower} came back");
    for n in nodes.values_mut() {
        if let Some(s) = n.server.take() {
            s.stop().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_through_a_snapshot_in_chunks() {
    let mut nodes = start_cluster().await;
    commit(&mut nodes, b"first").await;
    let l = leader(&nodes).await;
    let down = IDS.into_iter().find(|&id| id != l).expect("a follower");
    // The follower crashes: its peer, its transport and its listener go away.
    let addrs = nodes[&down].config.peers.clone();
    let mut gone = nodes.remove(&down).expect("node");
    gone.raft.kill();
    gone.raft.stopped().await;
    gone.transport.shutdown();
    if let Some(s) = gone.server.take() {
        s.stop().await;
    }
    let storage = gone.storage.deep_copy();
    drop(gone);

    // The others go on, then compact their logs into snapshots of ~8 KiB (the chunks
    // are 1 KiB).
    // Proposed back to back (a follower learns of a commit only with the next message,
    // so committing one at a time costs a heartbeat each); the marker's commit means the
    // ones before it are in (unless a change of leader lost some, which does no harm).
    let l = leader(&nodes).await;
    for k in 0..40u8 {
        let _ = nodes[&l].raft.start(Bytes::from(vec![k; 200])).await;
    }
    commit(&mut nodes, b"marker").await;
    drain(&mut nodes);
    assert!(nodes.values().all(|n| n.log.len() > 20));
    for n in nodes.values() {
        let log: Vec<Vec<u8>> = n.log.iter().map(|c| c.to_vec()).collect();
        let data = postcard::to_allocvec(&log).expect("encode");
        n.raft
            .snapshot(log.len() as u64, Bytes::from(data))
            .await
            .expect("snapshot");
    }

    // The follower restarts from its storage on the same port.
    let l2 = TcpListener::bind(addrs[&down])
        .await
        .expect("rebind the same port");
    nodes.insert(down, start_node(down, &addrs, storage, l2));
    commit(&mut nodes, b"last").await;
    drain(&mut nodes);
    let n = &nodes[&down];
    assert!(n.snapshots_installed >= 1, "caught up through a snapshot");
    assert_eq!(n.log.last().map(|c| &c[..]), Some(&b"last"[..]));
    logs_agree(&nodes);
    for n in nodes.values_mut() {
        if let Some(s) = n.server.take() {
            s.stop().await;
        }
    }
}

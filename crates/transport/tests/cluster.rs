//! A 3-node Raft cluster (the runtime with in-memory storage) over real TCP on loopback:
//! it elects a leader and commits commands; a follower's listener closes and reopens on
//! the same port, and the leader's connection to it comes back.

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
    log: Vec<Bytes>,
    config: TransportConfig,
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

async fn start_cluster() -> BTreeMap<NodeId, Node> {
    let mut listeners = BTreeMap::new();
    let mut addrs: BTreeMap<NodeId, SocketAddr> = BTreeMap::new();
    for id in IDS {
        let (l, a) = listener().await;
        listeners.insert(id, l);
        addrs.insert(id, a);
    }
    let mut nodes = BTreeMap::new();
    for (id, l) in listeners {
        let cfg = config(id, &addrs);
        let transport = TcpTransport::new(cfg.clone()).expect("valid");
        let (tx, rx) = mpsc::channel(1024);
        let raft = Raft::new(
            &IDS,
            id,
            MemStorage::new(),
            tx,
            Config {
                seed: id,
                ..Config::default()
            },
            transport.clone(),
        )
        .expect("valid");
        let server = Server::start(l, cfg.clone(), handler(&raft));
        nodes.insert(
            id,
            Node {
                raft,
                transport,
                server: Some(server),
                applied: rx,
                log: Vec::new(),
                config: cfg,
            },
        );
    }
    nodes
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
            if let ApplyMsg::Command { index, command, .. } = msg {
                assert_eq!(index, n.log.len() as u64 + 1, "applied in order");
                n.log.push(command);
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
        for _ in 0..100 {
            drain(nodes);
            if nodes.values().all(|n| n.log.iter().any(|c| &c[..] == cmd)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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

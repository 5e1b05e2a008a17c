//! The replica in virtual time: a one-node cluster (it elects itself) for the apply path,
//! snapshots, restarts and leases; a node that never hears from its peers for the errors.

use super::*;
use etcd_api::store::{CommandOutput, PutRequest, RangeRequest};
use futures::future::BoxFuture;
use raft::Envelope;
use raft_storage::MemStorage;

/// A transport to nowhere: with peers, the node never wins an election.
struct Nowhere;

impl Transport for Nowhere {
    fn call(&self, _to: NodeId, _msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        Box::pin(async { None })
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

fn config() -> EtcdNodeConfig {
    let mut c = EtcdNodeConfig::default();
    c.raft.snapshot_interval = Some(5);
    c.store.min_lease_ttl = 1;
    c
}

fn put(key: &str, value: &str, lease: i64) -> Command {
    Command::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        lease,
        ..PutRequest::default()
    })
}

async fn value(node: &EtcdNode, key: &str, consistency: ReadConsistency) -> Option<Vec<u8>> {
    let key = key.as_bytes().to_vec();
    node.read(consistency, move |s| s.get(&key).map(|kv| kv.value.clone()))
        .await
        .expect("read")
}

/// Proposes until the one-node cluster has elected itself.
async fn propose_when_leading(node: &EtcdNode, cmd: Command) -> Applied {
    for _ in 0..100 {
        match node.propose(cmd.clone()).await {
            Ok(a) => return a,
            Err(EtcdError::NoLeader | EtcdError::NotLeader) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("propose: {e}"),
        }
    }
    panic!("never led")
}

#[test]
fn writes_watches_snapshots_and_a_restart_keep_the_revision_model() {
    paused_runtime().block_on(async {
        let storage = MemStorage::new();
        let node = EtcdNode::new(&[1], 1, storage.clone(), config(), Nowhere).expect("starts");
        let first = propose_when_leading(&node, put("k0", "v0", 0)).await;
        assert_eq!(first.revision, 2);
        let mut feed = node.watch(0).await.expect("watch");
        for i in 1..20 {
            let a = node
                .propose(put(&format!("k{i}"), &format!("v{i}"), 0))
                .await
                .expect("put");
            assert_eq!(a.revision, 2 + i);
        }
        for i in 1..20 {
            let g = feed.next().await.expect("event");
            assert_eq!(g.revision, 2 + i, "every revision once, in order");
            assert_eq!(g.events[0].kv.key, format!("k{i}").into_bytes());
        }
        assert_eq!(
            value(&node, "k7", ReadConsistency::Linearizable).await,
            Some(b"v7".to_vec())
        );
        assert!(node.stats().snapshots_taken >= 3, "{:?}", node.stats());
        let before = node
            .read(ReadConsistency::Serializable, |s| s.clone())
            .await
            .expect("read");
        node.kill();
        node.raft().stopped().await;
        assert_eq!(
            node.propose(put("x", "y", 0)).await.expect_err("stopped"),
            EtcdError::Stopped
        );

        // The same disk: snapshot first, then the entries after it.
        let node = EtcdNode::new(&[1], 1, storage, config(), Nowhere).expect("restarts");
        propose_when_leading(&node, put("after", "restart", 0)).await;
        let after = node
            .read(ReadConsistency::Serializable, |s| s.clone())
            .await
            .expect("read");
        assert!(node.stats().snapshots_installed >= 1);
        assert_eq!(after.revision(), before.revision() + 1);
        let range = RangeRequest {
            key: b"k".to_vec(),
            range_end: b"l".to_vec(),
            ..RangeRequest::default()
        };
        assert_eq!(
            after.range(&range).expect("range"),
            before.range(&range).expect("range")
        );
        node.kill();
    });
}

#[test]
fn the_leader_expires_leases_through_the_log() {
    paused_runtime().block_on(async {
        let node = EtcdNode::new(&[1], 1, MemStorage::new(), config(), Nowhere).expect("starts");
        let granted = propose_when_leading(&node, Command::LeaseGrant { id: 0, ttl: 2 }).await;
        let Ok(CommandOutput::LeaseGrant { id, ttl: 2 }) = granted.output else {
            panic!("grant: {granted:?}")
        };
        node.propose(put("held", "1", id)).await.expect("put");
        let start = Instant::now();
        // Kept alive for 5 s, it outlives its TTL.
        while start.elapsed() < Duration::from_secs(5) {
            assert_eq!(node.lease_keep_alive(id).await, Ok(2));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(
            value(&node, "held", ReadConsistency::Serializable).await,
            Some(b"1".to_vec())
        );
        assert_eq!(node.lease_remaining(id).await, Ok(Some(1)));
        // Left alone, it expires within its TTL plus a tick or two.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            value(&node, "held", ReadConsistency::Linearizable).await,
            None
        );
        assert_eq!(node.stats().leases_expired, 1);
        assert_eq!(
            node.lease_keep_alive(id).await,
            Err(EtcdError::LeaseNotFound)
        );
        node.kill();
    });
}

#[test]
fn a_node_without_a_leader_fails_writes_and_linearizable_reads_but_reads_locally() {
    paused_runtime().block_on(async {
        let node =
            EtcdNode::new(&[1, 2, 3], 1, MemStorage::new(), config(), Nowhere).expect("starts");
        let e = node.propose(put("k", "v", 0)).await.expect_err("no leader");
        assert_eq!(e, EtcdError::NoLeader);
        let e = node
            .read(ReadConsistency::Linearizable, |s| s.revision())
            .await
            .expect_err("cannot confirm");
        assert!(
            matches!(e, EtcdError::NoLeader | EtcdError::Timeout),
            "{e:?}"
        );
        let rev = node
            .read(ReadConsistency::Serializable, |s| s.revision())
            .await;
        assert_eq!(rev, Ok(1));
        assert_eq!(
            node.lease_keep_alive(5).await,
            Err(EtcdError::LeaseNotFound)
        );
        let status = node.status().await.expect("status");
        assert_eq!((status.leader, status.version.as_str()), (0, "3.5.0"));
        node.kill();
    });
}

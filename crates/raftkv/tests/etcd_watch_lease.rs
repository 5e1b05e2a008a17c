//! Watches, leases and a lock through etcd's API on three `raftkv serve --etcd-addr`
//! processes: a watcher on a follower sees every event of a writer on another node, in
//! order, once; a lease's expiry deletes its keys on every replica at one revision; a
//! lock built from a lease and a transaction never has two holders.

mod common;

use common::etcd::{connect, other, retry, wait_leader};
use common::Cluster;
use etcd_client::{
    Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::time::timeout;

type Seen = (i64, EventType, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_on_a_follower_sees_every_event_of_a_concurrent_writer_in_order() {
    let cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    let follower = other(&cluster, leader);
    let mut w = connect(&cluster, follower).await;
    let mut stream = w
        .watch("w/", Some(WatchOptions::new().with_prefix()))
        .await
        .expect("watch");
    let created = stream.message().await.expect("stream").expect("created");
    assert!(created.created());

    let from = created.header().expect("header").revision() + 1;

    let mut writer = connect(&cluster, leader).await;
    let write = tokio::spawn(async move {
        // A write that failed (a leader change) is retried, and may then apply twice: what
        // the watcher must see is the store's own history, replayed below, which holds
        // every acknowledged put.
        let mut acknowledged = Vec::new();
        for i in 0..150 {
            let key = format!("w/{}", i % 10);
            let r = retry!(writer.put(key.clone(), i.to_string(), None).await);
            acknowledged.push(r.header().expect("header").revision());
            retry!(writer.put(format!("other/{i}"), "x", None).await);
            if i % 7 == 6 {
                retry!(writer.delete(key.clone(), None).await);
            }
        }
        retry!(writer.put(END, "", None).await);
        acknowledged
    });
    let acknowledged = write.await.expect("writer");
    let seen = until_end(&mut stream).await;

    let mut r = connect(&cluster, leader).await;
    let mut replay = r
        .watch(
            "w/",
            Some(WatchOptions::new().with_prefix().with_start_revision(from)),
        )
        .await
        .expect("replay watch");
    let history = until_end(&mut replay).await;
    assert_eq!(seen, history, "every event once, in revision order");
    let puts: Vec<i64> = history
        .iter()
        .filter(|(_, t, _)| *t == EventType::Put)
        .map(|(rev, _, _)| *rev)
        .collect();
    for rev in acknowledged {
        assert!(
            puts.contains(&rev),
            "acknowledged put at revision {rev} not in the history"
        );
    }
    assert!(
        history
            .iter()
            .filter(|(_, t, _)| *t == EventType::Delete)
            .count()
            >= 21,
        "the deletes are in the history"
    );
}

/// The key the writer puts last: the watchers read up to it.
const END: &str = "w/end";

/// The events of `stream` up to the put of [`END`] (not included).
async fn until_end(stream: &mut etcd_client::WatchStream) -> Vec<Seen> {
    let mut seen = Vec::new();
    loop {
        let r = timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("an event within 20 s")
            .expect("stream")
            .expect("open");
        for e in r.events() {
            let kv = e.kv().expect("kv");
            let key = kv.key_str().expect("utf-8").to_owned();
            if key == END {
                return seen;
            }
            seen.push((kv.mod_revision(), e.event_type(), key));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_removes_its_keys_on_every_replica() {
    let cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    let mut c = connect(&cluster, other(&cluster, leader)).await;
    let kept = c.lease_grant(60, None).await.expect("grant").id();
    let lease = c.lease_grant(2, None).await.expect("grant");
    assert_eq!(lease.ttl(), 2);
    for k in ["l/1", "l/2", "l/3"] {
        c.put(k, "v", Some(PutOptions::new().with_lease(lease.id())))
            .await
            .expect("put");
    }
    c.put("l/kept", "v", Some(PutOptions::new().with_lease(kept)))
        .await
        .expect("put");
    let before = c
        .get("l/", Some(GetOptions::new().with_prefix()))
        .await
        .expect("get");
    assert_eq!(
        before.count(),
        4,
        "the keys are there before the lease runs out"
    );
    let ttl = c.lease_time_to_live(lease.id(), None).await.expect("ttl");
    assert!((0..=2).contains(&ttl.ttl()), "{}", ttl.ttl());

    // Each replica, read locally, loses the three keys, at the same revision.
    let mut revisions = Vec::new();
    for n in &cluster.nodes {
        let mut c = connect(&cluster, n.id).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let g = c
                .get(
                    "l/",
                    Some(GetOptions::new().with_prefix().with_serializable()),
                )
                .await
                .expect("serializable get");
            if g.count() == 1 {
                assert_eq!(g.kvs()[0].key(), b"l/kept");
                revisions.push(g.header().expect("header").revision());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {}: {} keys left",
                n.id,
                g.count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(revisions.windows(2).all(|w| w[0] == w[1]), "{revisions:?}");
    let e = c.lease_keep_alive(lease.id()).await;
    if let Ok((mut keeper, mut stream)) = e {
        keeper.keep_alive().await.expect("send");
        let r = stream.message().await.expect("stream").expect("answer");
        assert_eq!(r.ttl(), 0, "an expired lease cannot be renewed");
    }
    let leases = c.leases().await.expect("leases");
    let ids: Vec<i64> = leases.leases().iter().map(|l| l.id()).collect();
    assert_eq!(ids, vec![kept]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_from_a_lease_and_a_txn_never_has_two_holders() {
    const CLIENTS: u64 = 4;
    const ROUNDS: usize = 5;
    let cluster = Cluster::start_etcd(3);
    wait_leader(&cluster).await;
    let holders = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for me in 0..CLIENTS {
        let mut c = connect(&cluster, me % 3 + 1).await;
        let (holders, acquired) = (holders.clone(), acquired.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let lease = retry!(c.lease_grant(10, None).await).id();
                loop {
                    let take = Txn::new()
                        .when([Compare::create_revision("lock", CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(
                            "lock",
                            me.to_string(),
                            Some(PutOptions::new().with_lease(lease)),
                        )]);
                    if let Ok(t) = c.txn(take).await {
                        if t.succeeded() {
                            break;
                        }
                    }
                    // Held by someone, or the answer was lost: ours if it has our lease.
                    let g = retry!(c.get("lock", None).await);
                    if g.kvs().first().is_some_and(|kv| kv.lease() == lease) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                acquired.fetch_add(1, Ordering::SeqCst);
                let g = retry!(c.get("lock", None).await);
                assert_eq!(g.kvs()[0].value_str().expect("utf-8"), me.to_string());
                tokio::time::sleep(Duration::from_millis(10)).await;
                holders.fetch_sub(1, Ordering::SeqCst);
                // Releasing: revoking the lease deletes the lock key (a repeated revoke
                // of a revoked lease answers "not found").
                let _ = retry!(match c.lease_revoke(lease).await {
                    Err(etcd_client::Error::GRpcStatus(s))
                        if s.message().contains("lease not found") =>
                    {
                        Ok(None)
                    }
                    other => other.map(Some),
                });
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    assert_eq!(acquired.load(Ordering::SeqCst), CLIENTS as usize * ROUNDS);
}

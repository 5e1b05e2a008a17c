//! The Lease, Cluster and Maintenance services through the `etcd-client` crate.

mod common;

use std::time::Duration;

use common::{status, TestServer};
use etcd_client::{
    AlarmAction, AlarmType, EventType, GetOptions, LeaseGrantOptions, LeaseTimeToLiveOptions,
    PutOptions, WatchOptions,
};
use tokio::time::{sleep, timeout, Instant};
use tonic::Code;

#[tokio::test]
async fn grant_attach_keepalive_ttl_list_revoke() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let g = c.lease_grant(60, None).await.unwrap();
    let id = g.id();
    assert_eq!(g.ttl(), 60);
    let mine = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(4242)))
        .await
        .unwrap();
    assert_eq!(mine.id(), 4242);
    let e = status(
        c.lease_grant(30, Some(LeaseGrantOptions::new().with_id(4242)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code(), e.message()),
        (Code::FailedPrecondition, "etcdserver: lease already exists")
    );

    for k in ["s/1", "s/2"] {
        c.put(k, "v", Some(PutOptions::new().with_lease(id)))
            .await
            .unwrap();
    }
    c.put("s/keep", "v", None).await.unwrap();
    assert_eq!(c.get("s/1", None).await.unwrap().kvs()[0].lease(), id);

    let (mut keeper, mut responses) = c.lease_keep_alive(id).await.unwrap();
    keeper.keep_alive().await.unwrap();
    let r = responses.message().await.unwrap().unwrap();
    assert_eq!((r.id(), r.ttl()), (id, 60));

    let t = c
        .lease_time_to_live(id, Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(t.granted_ttl(), 60);
    assert!((58..=60).contains(&t.ttl()), "remaining {}", t.ttl());
    assert_eq!(t.keys(), [b"s/1".to_vec(), b"s/2".to_vec()]);
    let leases: Vec<i64> = c
        .leases()
        .await
        .unwrap()
        .leases()
        .iter()
        .map(|l| l.id())
        .collect();
    assert_eq!(leases, [id, 4242]);

    let before = c
        .get("s/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let rev = before.header().unwrap().revision();
    let r = c.lease_revoke(id).await.unwrap();
    assert_eq!(
        r.header().unwrap().revision(),
        rev + 1,
        "both keys go at one revision"
    );
    let after = c
        .get("s/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(after.kvs().len(), 1);
    assert_eq!(after.kvs()[0].key(), b"s/keep");

    let e = status(c.lease_revoke(id).await.unwrap_err());
    assert_eq!(
        (e.code(), e.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );
    let t = c.lease_time_to_live(id, None).await.unwrap();
    assert_eq!(t.ttl(), -1, "etcd reports a missing lease as TTL -1");
    keeper.keep_alive().await.unwrap();
    let r = responses.message().await.unwrap().unwrap();
    assert_eq!(
        r.ttl(),
        0,
        "etcd answers a keep-alive of a missing lease with TTL 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_deletes_its_keys_at_one_revision() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let start = Instant::now();
    let id = c.lease_grant(1, None).await.unwrap().id();
    c.put("e/a", "1", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    c.put("e/b", "1", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    let mut w = c
        .watch("e/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(w.message().await.unwrap().unwrap().created());
    // The deadline is 1 s; the bound is generous for a loaded machine.
    let r = timeout(Duration::from_secs(30), w.message())
        .await
        .expect("lease did not expire within 30 s")
        .unwrap()
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "expired before its TTL"
    );
    let kinds: Vec<_> = r
        .events()
        .iter()
        .map(|e| (e.event_type(), e.kv().unwrap().mod_revision()))
        .collect();
    let rev = r.header().unwrap().revision();
    assert_eq!(kinds, [(EventType::Delete, rev), (EventType::Delete, rev)]);
    assert_eq!(
        c.get("e/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap()
            .count(),
        0
    );
    assert_eq!(c.lease_time_to_live(id, None).await.unwrap().ttl(), -1);
}

#[tokio::test]
async fn member_list_status_and_alarms() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.put("x", "y", None).await.unwrap();
    let m = c.member_list().await.unwrap();
    assert_eq!(m.members().len(), 1);
    assert_eq!(
        m.members()[0].client_urls(),
        [format!("http://{}", server.addr)]
    );
    let s = c.status().await.unwrap();
    assert_eq!(s.version(), "3.5.0");
    assert_eq!((s.leader(), s.raft_term()), (1, 1));
    assert!(s.raft_index() >= 1 && s.db_size() > 0);
    assert_eq!(s.header().unwrap().revision(), 2);
    let a = c
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .unwrap();
    assert!(a.alarms().is_empty());
    // A single in-memory node changes no membership: every change is Unimplemented.
    let add = c
        .member_add(
            ["http://127.0.0.1:1"],
            Some(etcd_client::MemberAddOptions::new().with_is_learner()),
        )
        .await;
    let remove = c.member_remove(1).await;
    let promote = c.member_promote(1).await;
    let update = c
        .member_update(1, vec!["http://127.0.0.1:1".to_string()])
        .await;
    for r in [
        add.map(|_| ()),
        remove.map(|_| ()),
        promote.map(|_| ()),
        update.map(|_| ()),
    ] {
        match r {
            Err(etcd_client::Error::GRpcStatus(s)) => {
                assert_eq!(s.code(), tonic::Code::Unimplemented, "{s:?}")
            }
            other => panic!("expected Unimplemented, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_from_lease_and_txn_never_has_two_holders() {
    use etcd_client::{Compare, CompareOp, Txn, TxnOp};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 10;
    let server = TestServer::start().await;
    let holders = Arc::new(AtomicUsize::new(0));
    let acquired = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for me in 0..CLIENTS {
        let mut c = server.client().await;
        let holders = holders.clone();
        let acquired = acquired.clone();
        tasks.push(tokio::spawn(async move {
            let lease = c.lease_grant(30, None).await.unwrap().id();
            for _ in 0..ROUNDS {
                // Acquire: create the lock key, attached to my lease, only if it is absent.
                loop {
                    let take = Txn::new()
                        .when([Compare::create_revision("lock", CompareOp::Equal, 0)])
                        .and_then([TxnOp::put(
                            "lock",
                            me.to_string(),
                            Some(PutOptions::new().with_lease(lease)),
                        )]);
                    if c.txn(take).await.unwrap().succeeded() {
                        break;
                    }
                    sleep(Duration::from_millis(2)).await;
                }
                assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                acquired.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_millis(1)).await;
                holders.fetch_sub(1, Ordering::SeqCst);
                // Release only my own lock.
                let release = Txn::new()
                    .when([Compare::value("lock", CompareOp::Equal, me.to_string())])
                    .and_then([TxnOp::delete("lock", None)]);
                assert!(c.txn(release).await.unwrap().succeeded());
            }
            c.lease_revoke(lease).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(acquired.load(Ordering::SeqCst), CLIENTS * ROUNDS);
}

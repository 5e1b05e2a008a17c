//! etcd's KV, Cluster and Maintenance APIs against three `raftkv serve --etcd-addr`
//! processes, with the `etcd-client` crate: every request to a follower (writes forwarded
//! to the leader), and a compare-and-swap counter under 8 concurrent clients.

mod common;

use common::etcd::{connect, other, wait_leader};
use common::Cluster;
use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_put_delete_txn_members_and_status_through_a_follower() {
    let cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    let follower = other(&cluster, leader);
    let mut c = connect(&cluster, follower).await;

    let r = c.put("a/1", "one", None).await.expect("put");
    let rev = r.header().expect("header").revision();
    assert_eq!(r.header().expect("header").member_id(), follower);
    c.put("a/2", "two", None).await.expect("put");
    let r = c
        .put("a/1", "uno", Some(PutOptions::new().with_prev_key()))
        .await
        .expect("put");
    assert_eq!(r.prev_key().expect("prev").value(), b"one");
    assert_eq!(r.header().expect("header").revision(), rev + 2);

    let g = c.get("a/1", None).await.expect("get");
    let kv = &g.kvs()[0];
    assert_eq!(
        (
            kv.value(),
            kv.create_revision(),
            kv.mod_revision(),
            kv.version()
        ),
        (&b"uno"[..], rev, rev + 2, 2)
    );
    let g = c
        .get("a/", Some(GetOptions::new().with_prefix()))
        .await
        .expect("range");
    assert_eq!(g.count(), 2);
    let g = c
        .get("a/", Some(GetOptions::new().with_prefix().with_limit(1)))
        .await
        .expect("range");
    assert!(g.more() && g.kvs().len() == 1);
    assert!(c.get("none", None).await.expect("get").kvs().is_empty());

    let txn = Txn::new()
        .when([Compare::value("a/1", CompareOp::Equal, "uno")])
        .and_then([TxnOp::put("a/3", "three", None), TxnOp::get("a/2", None)])
        .or_else([TxnOp::get("a/1", None)]);
    let t = c.txn(txn.clone()).await.expect("txn");
    assert!(t.succeeded());
    let TxnOpResponse::Get(g) = &t.op_responses()[1] else {
        panic!("not a get")
    };
    assert_eq!(g.kvs()[0].value(), b"two");
    let t = c
        .txn(
            Txn::new()
                .when([Compare::version("a/1", CompareOp::Greater, 5)])
                .or_else([TxnOp::get("a/1", None)]),
        )
        .await
        .expect("txn");
    assert!(!t.succeeded());

    let d = c
        .delete(
            "a/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .expect("delete");
    assert_eq!((d.deleted(), d.prev_kvs().len()), (3, 3));
    let last = d.header().expect("header").revision();

    // Every replica applies the same revisions: a serializable read on each node
    // reaches the last one.
    for n in &cluster.nodes {
        let mut c = connect(&cluster, n.id).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let g = c
                .get(
                    "a/",
                    Some(GetOptions::new().with_prefix().with_serializable()),
                )
                .await
                .expect("serializable get");
            if g.header().expect("header").revision() >= last {
                assert_eq!(g.count(), 0, "node {}", n.id);
                break;
            }
            assert!(Instant::now() < deadline, "node {} is behind", n.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let st = c.status().await.expect("status");
        assert_eq!(st.leader(), leader);
        assert_eq!(st.version(), "3.5.0");
        assert!(st.raft_term() >= 1 && st.raft_index() >= 5 && st.db_size() > 0);
    }

    let members = c.member_list().await.expect("member list");
    let mut seen: Vec<(u64, Vec<String>)> = members
        .members()
        .iter()
        .map(|m| (m.id(), m.client_urls().to_vec()))
        .collect();
    seen.sort();
    let expected: Vec<(u64, Vec<String>)> = cluster
        .nodes
        .iter()
        .map(|n| (n.id, vec![format!("http://{}", n.etcd)]))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cas_counter_under_8_concurrent_clients_counts_every_increment() {
    const CLIENTS: u64 = 8;
    const EACH: u64 = 10;
    let cluster = Cluster::start_etcd(3);
    wait_leader(&cluster).await;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let mut c = connect(&cluster, i % 3 + 1).await;
        tasks.push(tokio::spawn(async move {
            let (mut done, mut attempt) = (0, 0);
            while done < EACH {
                attempt += 1;
                // A read is retried on an error (as etcd's clients do). A transaction
                // that failed may still be applied, even later: each attempt writes its
                // own marker key with the increment, so the markers count the
                // increments that took effect.
                let Ok(g) = c.get("counter", None).await else {
                    continue;
                };
                let (n, rev) = g.kvs().first().map_or((0, 0), |kv| {
                    let n: u64 = kv.value_str().expect("utf-8").parse().expect("number");
                    (n, kv.mod_revision())
                });
                let marker = format!("inc/{i}/{attempt}");
                let cas = Txn::new()
                    .when([Compare::mod_revision("counter", CompareOp::Equal, rev)])
                    .and_then([
                        TxnOp::put("counter", (n + 1).to_string(), None),
                        TxnOp::put(marker.as_str(), "", None),
                    ]);
                let applied = match c.txn(cas).await {
                    Ok(t) => t.succeeded(),
                    Err(_) => loop {
                        if let Ok(g) = c.get(marker.as_str(), None).await {
                            break g.count() == 1;
                        }
                    },
                };
                if applied {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let mut c = connect(&cluster, 1).await;
    let g = c.get("counter", None).await.expect("get");
    assert_eq!(
        g.kvs()[0].value_str().expect("utf-8"),
        (CLIENTS * EACH).to_string()
    );
    assert_eq!(g.kvs()[0].version() as u64, CLIENTS * EACH);
    let markers = c
        .get(
            "inc/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count");
    assert_eq!(markers.count() as u64, CLIENTS * EACH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_etcds_errors_and_the_cluster_keeps_serving() {
    let cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    let mut c = connect(&cluster, other(&cluster, leader)).await;
    let e = c
        .put("big", vec![b'x'; 1_700_000], None)
        .await
        .expect_err("over the request limit");
    assert!(e.to_string().contains("request is too large"), "{e}");
    let e = c.put("", "v", None).await.expect_err("empty key");
    assert!(e.to_string().contains("key is not provided"), "{e}");
    let all = c
        .get(
            "\0",
            Some(GetOptions::new().with_from_key().with_limit(i64::MAX)),
        )
        .await
        .expect("the whole keyspace");
    assert!(all.kvs().iter().any(|kv| kv.key() == b"ready"));
    let mut w = connect(&cluster, leader).await;
    let far = all.header().expect("header").revision() + 1_000_000;
    let mut stream = w
        .watch(
            "future",
            Some(etcd_client::WatchOptions::new().with_start_revision(far)),
        )
        .await
        .expect("a watch from far in the future waits");
    c.put("future", "not yet", None).await.expect("put");
    match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
        Err(_) => {}
        Ok(Ok(Some(m))) => assert!(m.events().is_empty(), "an event before its start: {m:?}"),
        Ok(other) => panic!("the watch ended: {other:?}"),
    }
    let r = c.put("after", "ok", None).await.expect("still serving");
    assert!(r.header().expect("header").revision() > 1);
}

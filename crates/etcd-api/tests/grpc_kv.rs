//! The KV service through the `etcd-client` crate: put/get/prefix/delete, sorting and
//! limits, past revisions, compaction, transactions (a compare-and-swap counter under 8
//! concurrent clients), and etcd's error codes and messages.

mod common;

use common::{status, TestServer};
use etcd_api::service::ServiceConfig;
use etcd_api::store::StoreConfig;
use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
    TxnOpResponse,
};
use tonic::Code;

#[tokio::test]
async fn put_get_prefix_delete() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let r = c.put("greeting", "hello", None).await.unwrap();
    let h = r.header().unwrap();
    assert_eq!((h.revision(), h.cluster_id(), h.member_id()), (2, 1, 1));
    let r = c
        .put("greeting", "hi", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(r.prev_key().unwrap().value(), b"hello");
    let g = c.get("greeting", None).await.unwrap();
    let kv = &g.kvs()[0];
    assert_eq!(
        (
            kv.value(),
            kv.create_revision(),
            kv.mod_revision(),
            kv.version()
        ),
        (&b"hi"[..], 2, 3, 2)
    );
    assert_eq!(g.header().unwrap().revision(), 3);
    assert!(
        c.get("missing", None).await.unwrap().kvs().is_empty(),
        "a missing key is not an error"
    );

    for (k, v) in [("dir/b", "2"), ("dir/a", "3"), ("dir/c", "1"), ("dis", "x")] {
        c.put(k, v, None).await.unwrap();
    }
    let g = c
        .get("dir/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    let keys: Vec<_> = g
        .kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["dir/a", "dir/b", "dir/c"]);
    assert_eq!(g.count(), 3);
    let g = c
        .get(
            "dir/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Descend)
                    .with_limit(2),
            ),
        )
        .await
        .unwrap();
    let values: Vec<_> = g
        .kvs()
        .iter()
        .map(|kv| kv.value_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        (values, g.more(), g.count()),
        (vec!["3".to_string(), "2".into()], true, 3)
    );
    let g = c
        .get(
            "dir/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_keys_only()
                    .with_serializable(),
            ),
        )
        .await
        .unwrap();
    assert!(g.kvs().iter().all(|kv| kv.value().is_empty()));
    let g = c
        .get(
            "dir/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!((g.kvs().len(), g.count()), (0, 3));
    let g = c
        .get("", Some(GetOptions::new().with_all_keys()))
        .await
        .unwrap();
    assert_eq!(g.count(), 5);
    let g = c
        .get("dir/b", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(g.count(), 4, "dir/b, dir/c, dis, greeting");

    let d = c
        .delete(
            "dir/",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    assert_eq!((d.deleted(), d.prev_kvs().len()), (3, 3));
    let rev = d.header().unwrap().revision();
    let d = c
        .delete("dir/", Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!((d.deleted(), d.header().unwrap().revision()), (0, rev));

    // Reads at a past revision, then etcd's errors around the window.
    let g = c
        .get(
            "dir/",
            Some(GetOptions::new().with_prefix().with_revision(rev - 1)),
        )
        .await
        .unwrap();
    assert_eq!(g.count(), 3);
    let e = status(
        c.get("dir/a", Some(GetOptions::new().with_revision(rev + 10)))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code(), Code::OutOfRange);
    assert_eq!(
        e.message(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    c.compact(rev - 1, None).await.unwrap();
    let e = status(
        c.get("dir/a", Some(GetOptions::new().with_revision(rev - 2)))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code(), Code::OutOfRange);
    assert_eq!(
        e.message(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    let e = status(c.compact(rev - 1, None).await.unwrap_err());
    assert_eq!(
        e.message(),
        "etcdserver: mvcc: required revision has been compacted"
    );
}

#[tokio::test]
async fn errors_carry_etcds_codes_and_messages() {
    let config = ServiceConfig {
        max_request_bytes: 64 * 1024,
        max_txn_ops: 4,
        ..ServiceConfig::default()
    };
    let server = TestServer::start_with(StoreConfig::default(), config).await;
    let mut c = server.client().await;
    let e = status(c.put("big", vec![7u8; 100 * 1024], None).await.unwrap_err());
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "etcdserver: request is too large")
    );
    let e = status(c.put("", "v", None).await.unwrap_err());
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "etcdserver: key is not provided")
    );
    let e = status(c.get("", None).await.unwrap_err());
    assert_eq!(e.message(), "etcdserver: key is not provided");
    let e = status(
        c.put("k", "v", Some(PutOptions::new().with_ignore_value()))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code(), Code::Unimplemented);
    let e = status(
        c.put("k", "v", Some(PutOptions::new().with_lease(42)))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.code(), e.message()),
        (Code::NotFound, "etcdserver: requested lease not found")
    );
    let many: Vec<TxnOp> = (0..5)
        .map(|i| TxnOp::put(format!("k{i}"), "v", None))
        .collect();
    let e = status(c.txn(Txn::new().and_then(many)).await.unwrap_err());
    assert_eq!(
        (e.code(), e.message()),
        (
            Code::InvalidArgument,
            "etcdserver: too many operations in txn request"
        )
    );
    let dup = [TxnOp::put("k", "1", None), TxnOp::put("k", "2", None)];
    let e = status(c.txn(Txn::new().and_then(dup)).await.unwrap_err());
    assert_eq!(
        e.message(),
        "etcdserver: duplicate key given in txn request"
    );
    // The server keeps serving after every error.
    c.put("k", "ok", None).await.unwrap();
    assert_eq!(c.get("k", None).await.unwrap().kvs()[0].value(), b"ok");
}

#[tokio::test]
async fn txn_branches_and_responses() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.put("lock", "free", None).await.unwrap();
    let txn = Txn::new()
        .when([Compare::value("lock", CompareOp::Equal, "free")])
        .and_then([TxnOp::put("lock", "held", None), TxnOp::get("lock", None)])
        .or_else([TxnOp::get("lock", None)]);
    let r = c.txn(txn.clone()).await.unwrap();
    assert!(r.succeeded());
    assert_eq!(r.header().unwrap().revision(), 3);
    let ops = r.op_responses();
    let TxnOpResponse::Get(g) = &ops[1] else {
        panic!("{ops:?}")
    };
    assert_eq!(g.kvs()[0].value(), b"held");
    let r = c.txn(txn).await.unwrap();
    assert!(!r.succeeded());
    assert_eq!(
        r.header().unwrap().revision(),
        3,
        "a read-only branch makes no revision"
    );
    let r = c
        .txn(Txn::new().when([
            Compare::version("lock", CompareOp::Equal, 2),
            Compare::create_revision("lock", CompareOp::Equal, 2),
            Compare::mod_revision("lock", CompareOp::Greater, 2),
            Compare::version("nothing", CompareOp::Equal, 0),
            Compare::value("lock", CompareOp::NotEqual, "free"),
        ]))
        .await
        .unwrap();
    assert!(r.succeeded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_counter_with_8_concurrent_clients() {
    const CLIENTS: usize = 8;
    const EACH: usize = 25;
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.put("counter", "0", None).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = server.client().await;
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..EACH {
                loop {
                    let g = c.get("counter", None).await.unwrap();
                    let kv = &g.kvs()[0];
                    let n: u64 = kv.value_str().unwrap().parse().unwrap();
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            "counter",
                            CompareOp::Equal,
                            kv.mod_revision(),
                        )])
                        .and_then([TxnOp::put("counter", (n + 1).to_string(), None)]);
                    if c.txn(txn).await.unwrap().succeeded() {
                        break;
                    }
                    conflicts += 1;
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.unwrap();
    }
    let g = c.get("counter", None).await.unwrap();
    let kv = &g.kvs()[0];
    assert_eq!(kv.value_str().unwrap(), (CLIENTS * EACH).to_string());
    assert_eq!(
        kv.version() as usize,
        CLIENTS * EACH + 1,
        "exactly one write per increment"
    );
    eprintln!("{} increments, {conflicts} failed compares", CLIENTS * EACH);
}

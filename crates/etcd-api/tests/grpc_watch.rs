//! The Watch service through the `etcd-client` crate: every event of a concurrent writer in
//! order and exactly once, history from a past revision, prev_kv, filters, cancellation,
//! progress, compaction, and a watcher that falls behind and catches up from the history.

mod common;

use std::time::Duration;

use common::TestServer;
use etcd_api::backend::EtcdBackend;
use etcd_api::mem::MemBackend;
use etcd_api::service::ServiceConfig;
use etcd_api::store::{Command, PutRequest, StoreConfig};
use etcd_client::{DeleteOptions, EventType, WatchFilterType, WatchOptions, WatchStream};
use tokio::time::timeout;

/// The next response, failing the test after a generous bound instead of hanging.
async fn next(stream: &mut WatchStream) -> etcd_client::WatchResponse {
    timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("no watch response within 20 s")
        .expect("watch stream error")
        .expect("watch stream ended")
}

type Seen = (i64, EventType, String);

fn events(r: &etcd_client::WatchResponse) -> Vec<Seen> {
    r.events()
        .iter()
        .map(|e| {
            let kv = e.kv().unwrap();
            (
                kv.mod_revision(),
                e.event_type(),
                kv.key_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_every_event_of_a_concurrent_writer_in_order() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let mut w = c
        .watch("w/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    let mut writer = server.client().await;
    let write = tokio::spawn(async move {
        let mut expected: Vec<Seen> = Vec::new();
        for i in 0..300 {
            let key = format!("w/{}", i % 10);
            let r = writer.put(key.clone(), i.to_string(), None).await.unwrap();
            expected.push((r.header().unwrap().revision(), EventType::Put, key.clone()));
            writer.put(format!("other/{i}"), "x", None).await.unwrap();
            if i % 7 == 6 {
                let d = writer.delete(key.clone(), None).await.unwrap();
                assert_eq!(d.deleted(), 1);
                expected.push((d.header().unwrap().revision(), EventType::Delete, key));
            }
        }
        expected
    });
    let mut seen = Vec::new();
    while seen.len() < 300 + 300 / 7 {
        let r = next(&mut w).await;
        assert_eq!(r.watch_id(), created.watch_id());
        seen.extend(events(&r));
    }
    let expected = write.await.unwrap();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn watch_from_a_past_revision_with_prev_kv_and_filters() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.put("k", "1", None).await.unwrap(); // 2
    c.put("k", "2", None).await.unwrap(); // 3
    c.delete("k", None).await.unwrap(); // 4
    let mut w = c
        .watch(
            "k",
            Some(WatchOptions::new().with_start_revision(3).with_prev_key()),
        )
        .await
        .unwrap();
    assert!(next(&mut w).await.created());
    let mut got = Vec::new();
    while got.len() < 2 {
        let r = next(&mut w).await;
        for e in r.events() {
            got.push((e.event_type(), e.prev_kv().map(|p| p.value().to_vec())));
        }
    }
    assert_eq!(
        got,
        [
            (EventType::Put, Some(b"1".to_vec())),
            (EventType::Delete, Some(b"2".to_vec()))
        ]
    );
    // A second watcher on the same stream, deletes filtered out, without prev_kv.
    w.watch(
        "f/",
        Some(
            WatchOptions::new()
                .with_prefix()
                .with_filters([WatchFilterType::NoDelete]),
        ),
    )
    .await
    .unwrap();
    let created = next(&mut w).await;
    assert!(created.created());
    let id = created.watch_id();
    c.put("f/a", "1", None).await.unwrap();
    c.delete("f/", Some(DeleteOptions::new().with_prefix()))
        .await
        .unwrap();
    c.put("f/b", "1", None).await.unwrap();
    let mut keys = Vec::new();
    while keys.len() < 2 {
        let r = next(&mut w).await;
        assert_eq!(r.watch_id(), id);
        for e in r.events() {
            assert_eq!(e.event_type(), EventType::Put);
            assert!(e.prev_kv().is_none());
            keys.push(e.kv().unwrap().key_str().unwrap().to_owned());
        }
    }
    assert_eq!(keys, ["f/a", "f/b"]);
    // Cancel it: the answer says so, and no further event comes for it.
    w.cancel(id).await.unwrap();
    let r = next(&mut w).await;
    assert!(r.canceled() && r.watch_id() == id);
    c.put("f/c", "1", None).await.unwrap();
    c.put("k", "again", None).await.unwrap();
    let r = next(&mut w).await;
    assert_eq!(
        r.watch_id(),
        created.watch_id() - 1,
        "only the first watcher hears more"
    );
    assert_eq!(events(&r)[0].2, "k");
}

#[tokio::test]
async fn progress_and_compaction() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    for i in 0..5 {
        c.put("p", i.to_string(), None).await.unwrap(); // revisions 2..=6
    }
    let mut w = c.watch("p", None).await.unwrap();
    assert!(next(&mut w).await.created());
    w.request_progress().await.unwrap();
    let r = next(&mut w).await;
    assert_eq!((r.watch_id(), r.header().unwrap().revision()), (-1, 6));
    assert!(r.events().is_empty());

    c.compact(5, None).await.unwrap();
    let mut old = c
        .watch("p", Some(WatchOptions::new().with_start_revision(3)))
        .await
        .unwrap();
    assert!(next(&mut old).await.created());
    let r = next(&mut old).await;
    assert!(r.canceled());
    assert_eq!(r.compact_revision(), 5);
    // At the compaction revision itself, history is still there.
    let mut at = c
        .watch("p", Some(WatchOptions::new().with_start_revision(5)))
        .await
        .unwrap();
    assert!(next(&mut at).await.created());
    assert_eq!(events(&next(&mut at).await)[0].0, 5);
    // A watch from far in the future is accepted (as etcd does) and stays silent until then.
    let mut future = c
        .watch(
            "p",
            Some(WatchOptions::new().with_start_revision(1_000_000)),
        )
        .await
        .unwrap();
    assert!(next(&mut future).await.created());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_falls_behind_catches_up_from_history() {
    const WRITES: usize = 3000;
    let backend = MemBackend::new(StoreConfig {
        history_limit: 10 * WRITES,
        min_lease_ttl: 1,
    })
    .with_watch_queue(4);
    let server = TestServer::start_backend(backend.clone(), ServiceConfig::default()).await;
    let mut c = server.client().await;
    let mut w = c
        .watch("lag/", Some(WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(next(&mut w).await.created());
    // Writes far faster than the client reads (it reads nothing until they are done): the
    // watcher's queue overflows and the hub drops it.
    for i in 0..WRITES {
        backend
            .propose(Command::Put(PutRequest {
                key: format!("lag/{}", i % 50).into_bytes(),
                value: vec![b'v'; 100],
                ..Default::default()
            }))
            .await
            .unwrap();
    }
    let mut revisions = Vec::new();
    while revisions.len() < WRITES {
        revisions.extend(events(&next(&mut w).await).into_iter().map(|e| e.0));
    }
    let expected: Vec<i64> = (2..2 + WRITES as i64).collect();
    assert_eq!(revisions, expected, "every revision once, in order");
}

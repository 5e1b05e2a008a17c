//! A leader killed with SIGKILL while three clients write and read through etcd's API:
//! the history of acknowledged operations is linearizable (the project's checker; a
//! write that failed may or may not have happened, so it is recorded as never
//! returning), every acknowledged write is still there afterwards, and a watcher on a
//! surviving follower saw every revision once, in order, across the leader change.

mod common;

use common::etcd::{connect, other, wait_leader};
use common::Cluster;
use etcd_client::{Client, WatchOptions};
use linearizability::{check, Operation, Recorder};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: u64 = 3;
const OPS: u64 = 40;
const KEYS: [&str; 2] = ["k/x", "k/y"];

/// One client: its own op schedule, moving to the next node when one fails.
async fn client(
    me: u64,
    endpoints: Vec<String>,
    rec: Recorder,
    done: Arc<AtomicU64>,
) -> BTreeMap<String, (u64, String)> {
    let mut at = me as usize;
    let mut c: Option<Client> = None;
    // The last acknowledged put per key, with its return time.
    let mut acked: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for i in 0..OPS {
        let key = KEYS[((me + i) % 2) as usize];
        let conn = match c.as_mut() {
            Some(conn) => conn,
            None => {
                let opts = etcd_client::ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(1))
                    .with_timeout(Duration::from_secs(3));
                match Client::connect([endpoints[at % endpoints.len()].clone()], Some(opts)).await {
                    Ok(conn) => c.insert(conn),
                    Err(_) => {
                        at += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
        };
        let call = rec.now();
        let ok = if (me + i * 3) % 5 < 2 {
            match conn.get(key, None).await {
                Ok(g) => {
                    let v = g
                        .kvs()
                        .first()
                        .map(|kv| kv.value_str().expect("utf-8").to_owned())
                        .unwrap_or_default();
                    rec.record(Operation::get(me, key, v, call, rec.now()));
                    true
                }
                Err(_) => false,
            }
        } else {
            let value = format!("{me}.{i}");
            match conn.put(key, value.clone(), None).await {
                Ok(_) => {
                    let ret = rec.now();
                    rec.record(Operation::put(me, key, value.clone(), call, ret));
                    acked.insert(key.to_owned(), (ret, value));
                    true
                }
                Err(_) => {
                    // Maybe applied, maybe not: it may take effect any time after its call.
                    rec.record(Operation::put(me, key, value, call, u64::MAX));
                    false
                }
            }
        };
        if !ok {
            c = None;
            at += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        done.fetch_add(1, Ordering::SeqCst);
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_during_writes_loses_no_acknowledged_write_and_stays_linearizable() {
    let mut cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    let watcher_node = other(&cluster, leader);
    let mut w = connect(&cluster, watcher_node).await;
    let start = w
        .get("ready", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    let mut stream = w
        .watch(
            "k/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start + 1),
            ),
        )
        .await
        .expect("watch");

    let endpoints: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("http://{}", n.etcd))
        .collect();
    let rec = Recorder::new();
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|me| tokio::spawn(client(me, endpoints.clone(), rec.clone(), done.clone())))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while done.load(Ordering::SeqCst) < CLIENTS * OPS / 3 {
        assert!(Instant::now() < deadline, "clients made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill9(leader);
    let mut acked = BTreeMap::new();
    for t in tasks {
        for (key, (ret, value)) in t.await.expect("client") {
            let e = acked.entry(key).or_insert((ret, value.clone()));
            if ret > e.0 {
                *e = (ret, value);
            }
        }
    }
    let new_leader = wait_leader(&cluster).await;
    assert_ne!(new_leader, leader);

    // Every key holds an acknowledged value or a later one; the checker decides which.
    let mut c = connect(&cluster, new_leader).await;
    for key in KEYS {
        let call = rec.now();
        let g = c.get(key, None).await.expect("final get");
        let v = g
            .kvs()
            .first()
            .map(|kv| kv.value_str().expect("utf-8").to_owned())
            .unwrap_or_default();
        rec.record(Operation::get(99, key, v.clone(), call, rec.now()));
        assert!(
            !acked.contains_key(key) || !v.is_empty(),
            "{key} lost its value"
        );
    }
    let history = rec.history().expect("history");
    let result = check(&history, Duration::from_secs(60));
    assert!(result.is_linearizable(), "{result:?}");

    // The watcher on a survivor saw every k/ revision once, in order, across the leader
    // change: the same sequence a new watcher replays from the store's history.
    let end = c
        .put("k/end", "", None)
        .await
        .expect("put")
        .header()
        .expect("header")
        .revision();
    let live = revisions_until(&mut stream, end).await;
    let mut replay = c
        .watch(
            "k/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(start + 1),
            ),
        )
        .await
        .expect("watch");
    let replayed = revisions_until(&mut replay, end).await;
    assert_eq!(live, replayed);
    assert!(
        live.windows(2).all(|w| w[0] < w[1]),
        "in order, once: {live:?}"
    );
    assert!(live.len() as u64 > CLIENTS * OPS / 3, "{live:?}");
}

/// The revisions of the events on `stream` up to and including `end`.
async fn revisions_until(stream: &mut etcd_client::WatchStream, end: i64) -> Vec<i64> {
    let mut seen: Vec<i64> = Vec::new();
    while !matches!(seen.last(), Some(&r) if r >= end) {
        let r = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("events within 20 s")
            .expect("stream")
            .expect("open");
        seen.extend(
            r.events()
                .iter()
                .map(|e| e.kv().expect("kv").mod_revision()),
        );
    }
    seen
}

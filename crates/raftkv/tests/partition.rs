//! A leader cut off from the majority by TCP proxies between the real processes, under
//! concurrent clients; the whole history is checked for linearizability.

mod common;

use common::proxy::Link;
use common::Cluster;
use linearizability::{check, CheckResult, Operation, Recorder};
use raftkv::client::{ClientConfig, RaftKvClient};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs random gets, puts and appends on three keys until `stop`, recording each.
async fn client(num: u64, mut c: RaftKvClient, rec: Recorder, stop: Arc<AtomicBool>) -> usize {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(num);
    let mut done = 0;
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        let key = format!("k{}", rng.gen_range(0..3));
        let value = format!("x{num}.{i} ");
        let call = rec.now();
        match rng.gen_range(0..3) {
            0 => {
                // A get that failed tells nothing: it is left out.
                if let Ok(out) = c.get(&key).await {
                    rec.record(Operation::get(num, &key, out, call, rec.now()));
                    done += 1;
                }
            }
            1 => {
                // A write that failed may still take effect, at any later time.
                let ret = match c.put(&key, &value).await {
                    Ok(()) => {
                        done += 1;
                        rec.now()
                    }
                    Err(_) => u64::MAX,
                };
                rec.record(Operation::put(num, &key, &value, call, ret));
            }
            _ => {
                let ret = match c.append(&key, &value).await {
                    Ok(()) => {
                        done += 1;
                        rec.now()
                    }
                    Err(_) => u64::MAX,
                };
                rec.record(Operation::append(num, &key, &value, call, ret));
            }
        }
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_is_replaced_and_the_history_is_linearizable() {
    // links[(i, j)]: how node i reaches node j.
    let links: Arc<Mutex<BTreeMap<(u64, u64), Link>>> = Arc::default();
    let made = links.clone();
    let mut c = Cluster::start_with(3, move |i, j, real| {
        let link = Link::start(real.to_owned());
        let addr = link.addr.clone();
        made.lock().expect("links").insert((i, j), link);
        addr
    });
    let old = c
        .wait_leader(None, Duration::from_secs(10))
        .await
        .expect("a leader");

    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for num in 0..3 {
        let config = ClientConfig {
            op_timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        };
        let cl = RaftKvClient::connect(&c.endpoints(), config)
            .await
            .expect("connect");
        tasks.push(tokio::spawn(client(num, cl, rec.clone(), stop.clone())));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Cut the leader off in both directions.
    let cut = |on: bool| {
        for ((i, j), link) in links.lock().expect("links").iter() {
            if *i == old || *j == old {
                link.set_cut(on);
            }
        }
    };
    cut(true);
    let new = c
        .wait_leader(Some(old), Duration::from_secs(5))
        .await
        .expect("the majority elects a new leader");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    cut(false);
    // The old leader hears the new term and follows.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let st = c.status(old).await;
        if st
            .as_ref()
            .is_some_and(|s| s.role == "follower" && s.leader.is_some())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "old leader {old} did not rejoin: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Release);
    let mut done = 0;
    for t in tasks {
        done += t.await.expect("client task");
    }
    assert!(done > 20, "the clients made progress ({done} operations)");
    let history = rec.history().expect("history");
    let result = check(&history, Duration::from_secs(20));
    eprintln!("{} operations, new leader {new}: {result}", history.len());
    assert!(
        !matches!(result, CheckResult::NotLinearizable { .. }),
        "{result}\n{}",
        history.to_jsonl_string()
    );
    c.kill9(old);
}

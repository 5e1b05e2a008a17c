//! Faults between the real processes, made by TCP proxies on every peer link, under
//! concurrent clients: a leader cut off from the majority, and links that delay and lose
//! traffic. Each whole history is checked for linearizability.

mod common;

use common::proxy::{Link, Mode};
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

/// How node i reaches node j, for every ordered pair.
type Links = Arc<Mutex<BTreeMap<(u64, u64), Link>>>;

/// Three nodes whose peer links all go through proxies.
fn proxied_cluster() -> (Cluster, Links) {
    let links: Links = Arc::default();
    let made = links.clone();
    let c = Cluster::start_with(3, move |i, j, real| {
        let link = Link::start(real.to_owned());
        let addr = link.addr.clone();
        made.lock().expect("links").insert((i, j), link);
        addr
    });
    (c, links)
}

/// Starts three recording clients; returns their tasks.
async fn start_clients(
    c: &Cluster,
    rec: &Recorder,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<usize>> {
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
    tasks
}

/// Stops the clients and checks their history; returns the operations that succeeded.
async fn finish(
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<usize>>,
    rec: Recorder,
) -> usize {
    stop.store(true, Ordering::Release);
    let mut done = 0;
    for t in tasks {
        done += t.await.expect("client task");
    }
    let history = rec.history().expect("history");
    let result = check(&history, Duration::from_secs(20));
    eprintln!("{} operations, {done} succeeded: {result}", history.len());
    assert!(
        !matches!(result, CheckResult::NotLinearizable { .. }),
        "{result}\n{}",
        history.to_jsonl_string()
    );
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_is_replaced_and_the_history_is_linearizable() {
    let (mut c, links) = proxied_cluster();
    let old = c
        .wait_leader(None, Duration::from_secs(10))
        .await
        .expect("a leader");

    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_clients(&c, &rec, &stop).await;
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
    eprintln!("new leader {new}");
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
    let done = finish(stop, tasks, rec).await;
    assert!(done > 20, "the clients made progress ({done} operations)");
    c.kill9(old);
}

/// Every peer link delays each chunk by a few milliseconds and loses one in 30 (each loss
/// breaks its connection, so the messages in flight on it are lost and the transport
/// reconnects), changing every 300 ms, for 3 seconds; then the network heals and the
/// clients must still finish their operations. The history must be linearizable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_and_lossy_links_keep_the_history_linearizable() {
    let (c, links) = proxied_cluster();
    c.wait_leader(None, Duration::from_secs(10))
        .await
        .expect("a leader");
    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = start_clients(&c, &rec, &stop).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..10 {
        for link in links.lock().expect("links").values() {
            link.set_mode(Mode {
                cut: false,
                delay: Duration::from_millis(rng.gen_range(0..6)),
                loss: 1.0 / 30.0,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for link in links.lock().expect("links").values() {
        link.set_mode(Mode::default());
    }
    // Healed: a leader serves again, and the clients get through.
    c.wait_leader(None, Duration::from_secs(10))
        .await
        .expect("a leader once the network heals");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let done = finish(stop, tasks, rec).await;
    assert!(done > 20, "the clients made progress ({done} operations)");
}

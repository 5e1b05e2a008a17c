//! Three real `raftkv serve` processes on loopback: the CLI, status, redirection, a
//! leader killed with SIGKILL under load, and a full stop and restart.

mod common;

use common::{stderr, stdout, Cluster};
use kvraft::{KvRequest, Op, ServerError};
use raftkv::client::{ClientConfig, RaftKvClient, TcpEnd};
use raftkv::proto::{RequestBody, ResponseBody};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEADER_WAIT: Duration = Duration::from_secs(10);

/// The whole answer to `GET path` on a node's HTTP port.
async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out))
        .await
        .expect("answer in time")
        .expect("read");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_writes_and_reads_status_shows_one_leader_and_a_follower_redirects() {
    let c = Cluster::start(3);
    let leader = c.wait_leader(None, LEADER_WAIT).await.expect("a leader");
    for args in [&["put", "k", "v1"][..], &["append", "k", "+2"]] {
        let o = c.cli(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(stdout(&c.cli(&["get", "k"])).trim(), "v1+2");
    assert!(c.cli(&["del", "k"]).status.success());
    assert_eq!(stdout(&c.cli(&["get", "k"])), "\n");
    assert!(c.cli(&["put", "k2", "x"]).status.success());

    // Every node applies what was committed.
    let commit = c.status(leader).await.expect("leader status").commit_index;
    let deadline = Instant::now() + Duration::from_secs(5);
    for id in 1..=3 {
        loop {
            let st = c.status(id).await.expect("status");
            if st.applied_index >= commit {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} stuck at {st:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The HTTP port: health, and metrics that follow the log.
    let health = http_get(&c.nodes[(leader - 1) as usize].http, "/health").await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("role=leader"),
        "{health}"
    );
    let metrics = http_get(&c.nodes[(leader - 1) as usize].http, "/metrics").await;
    assert!(metrics.contains("raftkv_is_leader 1"), "{metrics}");
    assert!(metrics.contains("raftkv_commit_index "), "{metrics}");
    assert!(
        metrics.contains("raftkv_commit_latency_seconds_count"),
        "{metrics}"
    );
    assert!(
        metrics.contains("raftkv_storage_write_seconds_count"),
        "{metrics}"
    );
    let missing = http_get(&c.nodes[0].http, "/nothing").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    let o = c.cli(&["status"]);
    let table = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        table.contains("3 of 3 nodes answered; 1 leader(s)"),
        "{table}"
    );

    // A follower answers a write with the leader's id and client address...
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    let config = ClientConfig::default();
    let end = TcpEnd::new(c.client_addr(follower), Arc::new(config.clone()));
    let req = KvRequest {
        client_id: 77,
        seq: 1,
        op: Op::OpenSession,
    };
    match end.request(RequestBody::Kv(req)).await.expect("answer") {
        ResponseBody::Kv {
            reply: Err(ServerError::WrongLeader { leader_hint }),
            leader: Some(m),
        } => {
            assert_eq!(leader_hint, Some(leader));
            assert_eq!(m.id, leader);
            assert_eq!(m.client_addr, Some(c.client_addr(leader)));
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
    // ...and a client given only the follower's address follows it.
    let mut client = RaftKvClient::connect(&[c.client_addr(follower)], config)
        .await
        .expect("connect");
    client
        .put("r", "1")
        .await
        .expect("put through a follower's address");
    assert_eq!(client.get("r").await.expect("get"), "1");
}

/// Appends `<i>` to the client's own key until told to stop; returns the acknowledged i.
async fn appender(
    mut client: RaftKvClient,
    key: String,
    stop: Arc<AtomicBool>,
) -> (RaftKvClient, Vec<u64>) {
    let mut acked = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        if client.append(&key, &format!("<{i}>")).await.is_ok() {
            acked.push(i);
        }
    }
    (client, acked)
}

/// Every acknowledged append is in the value exactly once, and nothing twice.
fn check_appends(value: &str, acked: &[u64]) {
    let seen: Vec<u64> = value
        .split('<')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('>').parse().expect("a number"))
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "an append applied twice or out of order: {seen:?}"
    );
    for a in acked {
        assert!(seen.contains(a), "acknowledged append {a} lost: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_under_load_is_replaced_and_catches_up_after_restart() {
    let mut c = Cluster::start(3);
    let old = c.wait_leader(None, LEADER_WAIT).await.expect("a leader");
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for k in 0..2 {
        let client = RaftKvClient::connect(&c.endpoints(), ClientConfig::default())
            .await
            .expect("connect");
        tasks.push(tokio::spawn(appender(
            client,
            format!("load{k}"),
            stop.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.kill9(old);
    let killed_at = Instant::now();
    // A few election timeouts (at most 400 ms each here), generously.
    let new = c
        .wait_leader(Some(old), Duration::from_secs(5))
        .await
        .unwrap_or_else(|| {
            let logs: Vec<String> = (1..=3)
                .map(|i| format!("--- node {i}\n{}", c.log(i)))
                .collect();
            panic!("no new leader after killing {old}\n{}", logs.join("\n"))
        });
    let took = killed_at.elapsed();
    eprintln!("new leader {new} {took:?} after node {old} was killed");
    tokio::time::sleep(Duration::from_millis(500)).await;

    c.spawn(old);
    let target = c.status(new).await.expect("leader status").commit_index;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = c.status(old).await {
            if st.applied_index >= target {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "restarted node {old} did not catch up to {target}\n{}",
            c.log(old)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Release);
    for (k, t) in tasks.into_iter().enumerate() {
        let (mut client, acked) = t.await.expect("load task");
        assert!(acked.len() > 5, "the load made progress: {acked:?}");
        let value = client.get(&format!("load{k}")).await.expect("get");
        check_appends(&value, &acked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_all_three_stop_and_restart_every_acknowledged_write_is_there() {
    let mut c = Cluster::start(3);
    c.wait_leader(None, LEADER_WAIT).await.expect("a leader");
    let mut client = RaftKvClient::connect(&c.endpoints(), ClientConfig::default())
        .await
        .expect("connect");
    for i in 0..40 {
        client
            .put(&format!("k{i}"), &format!("v{i}"))
            .await
            .expect("put");
    }
    client.append("k0", "+").await.expect("append");
    client.delete("k1").await.expect("delete");
    drop(client);
    // A client keeps appending while the nodes stop: requests in flight fail over or
    // wait, and nothing acknowledged may be lost.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = RaftKvClient::connect(&c.endpoints(), ClientConfig::default())
        .await
        .expect("connect");
    let load = tokio::spawn(appender(loader, "load".into(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A graceful stop (SIGTERM) exits 0, also with requests in flight.
    for id in 1..=3 {
        let status = tokio::task::block_in_place(|| c.terminate(id));
        assert!(status.success(), "node {id} exited {status}\n{}", c.log(id));
    }
    stop.store(true, Ordering::Release);
    for id in 1..=3 {
        c.spawn(id);
    }
    c.wait_leader(None, LEADER_WAIT)
        .await
        .expect("a leader after restart");
    // The appender's last operation completes (or times out) once the cluster is back.
    let (mut loader, acked) = load.await.expect("load task");
    assert!(!acked.is_empty(), "the load made progress");
    check_appends(&loader.get("load").await.expect("get"), &acked);
    let mut client = RaftKvClient::connect(&c.endpoints(), ClientConfig::default())
        .await
        .expect("connect");
    assert_eq!(client.get("k0").await.expect("get"), "v0+");
    assert_eq!(client.get("k1").await.expect("get"), "");
    for i in 2..40 {
        assert_eq!(
            client.get(&format!("k{i}")).await.expect("get"),
            format!("v{i}")
        );
    }
}

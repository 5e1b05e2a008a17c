//! etcd's Cluster service against three `raftkv serve --etcd-addr` processes, with the
//! `etcd-client` crate: a fourth node started with `--join` is added as a learner,
//! catches up, is promoted, takes writes; the leader is removed; every member ends with
//! the same data, also the new one after a restart from its WAL. And the errors etcd's
//! clients expect for what cannot be done.

mod common;

use common::etcd::{connect, other, retry, wait_leader};
use common::Cluster;
use etcd_client::{Client, GetOptions, MemberAddOptions};
use std::time::{Duration, Instant};
use tonic::Code;

fn code<T: std::fmt::Debug>(r: Result<T, etcd_client::Error>) -> (Code, String) {
    match r {
        Err(etcd_client::Error::GRpcStatus(s)) => (s.code(), s.message().to_owned()),
        other => panic!("expected a gRPC error, got {other:?}"),
    }
}

/// Every member in `c`'s list, as (id, name, is_learner, client URL count).
async fn members(c: &mut Client) -> Vec<(u64, String, bool, usize)> {
    let l = c.member_list().await.expect("member list");
    l.members()
        .iter()
        .map(|m| {
            (
                m.id(),
                m.name().to_owned(),
                m.is_learner(),
                m.client_urls().len(),
            )
        })
        .collect()
}

/// Waits (at most 20 s) until node `id` holds `want` under prefix `k/` (a serializable
/// read of its own store).
async fn wait_data(cluster: &Cluster, id: u64, want: &[(String, String)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = connect(cluster, id).await;
    loop {
        let got: Vec<(String, String)> = match c
            .get(
                "k/",
                Some(GetOptions::new().with_prefix().with_serializable()),
            )
            .await
        {
            Ok(r) => r
                .kvs()
                .iter()
                .map(|kv| {
                    (
                        String::from_utf8_lossy(kv.key()).into_owned(),
                        String::from_utf8_lossy(kv.value()).into_owned(),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} holds {got:?}, not {want:?}\n{}",
            cluster.log(id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_learner_is_promoted_takes_writes_and_the_leader_is_removed() {
    let mut cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    let follower = other(&cluster, leader);
    let mut c = connect(&cluster, follower).await;
    let list = members(&mut c).await;
    assert_eq!(
        list.iter().map(|m| (m.0, m.2)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, false)]
    );

    // What cannot be done, with etcd's errors.
    let new = cluster.add_joining_etcd_node();
    let url = format!("http://{}", cluster.peer_addr(new));
    let (co, msg) = code(c.member_add([url.as_str()], None).await);
    assert_eq!(co, Code::FailedPrecondition, "{msg}");
    assert!(msg.contains("learners only"), "{msg}");
    let taken = format!("http://{}", cluster.peer_addr(leader));
    let (co, msg) = code(
        c.member_add(
            [taken.as_str()],
            Some(MemberAddOptions::new().with_is_learner()),
        )
        .await,
    );
    assert_eq!(
        (co, msg.as_str()),
        (
            Code::FailedPrecondition,
            "etcdserver: Peer URLs already exists"
        )
    );
    let (co, msg) = code(c.member_remove(99).await);
    assert_eq!(
        (co, msg.as_str()),
        (Code::NotFound, "etcdserver: member not found")
    );
    let (co, msg) = code(c.member_promote(leader).await);
    assert_eq!(
        (co, msg.as_str()),
        (
            Code::FailedPrecondition,
            "etcdserver: can only promote a learner member"
        )
    );
    let (co, _) = code(c.member_update(leader, vec![taken.clone()]).await);
    assert_eq!(co, Code::Unimplemented);

    // Added as a learner through a follower (forwarded to the leader): it gets the next
    // id, and is reported unstarted (no name) until it publishes its addresses.
    let added = c
        .member_add(
            [url.as_str()],
            Some(MemberAddOptions::new().with_is_learner()),
        )
        .await
        .expect("member add --learner");
    let m = added.member().expect("the member added");
    assert_eq!((m.id(), m.is_learner(), m.name()), (new, true, ""));
    assert_eq!(m.peer_urls(), std::slice::from_ref(&url));
    assert_eq!(added.member_list().len(), 4);
    let (co, msg) = code(c.member_promote(new).await);
    assert_eq!(
        (co, msg.as_str()),
        (
            Code::FailedPrecondition,
            "etcdserver: can only promote a learner member which is in sync with leader"
        ),
        "not started: cannot be in sync"
    );

    // Started empty with --join: it catches up, publishes its addresses, is promoted.
    c.put("k/before", "1", None).await.expect("put");
    cluster.spawn(new);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !members(&mut c)
        .await
        .contains(&(new, format!("node-{new}"), true, 1))
    {
        assert!(
            Instant::now() < deadline,
            "node {new} never published\n{}",
            cluster.log(new)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c4 = connect(&cluster, new).await;
    assert!(c4.status().await.expect("status").is_learner());
    retry!(c.member_promote(new).await);
    assert!(!c4.status().await.expect("status").is_learner());
    assert!(members(&mut c)
        .await
        .iter()
        .all(|m| !m.2 && m.1 == format!("node-{}", m.0)));

    // Written through the new member (forwarded to the leader).
    c4.put("k/through-new", "2", None)
        .await
        .expect("put through the new node");

    // The leader removes itself; the other three elect a leader and go on.
    let mut cl = connect(&cluster, leader).await;
    let after = cl.member_remove(leader).await.expect("remove the leader");
    assert_eq!(
        after.members().iter().map(|m| m.id()).collect::<Vec<_>>(),
        (1..=new).filter(|&i| i != leader).collect::<Vec<_>>()
    );
    cluster.kill9(leader);
    retry!(c4.put("k/after", "3", None).await);
    let rest: Vec<u64> = (1..=new).filter(|&i| i != leader).collect();
    assert_eq!(
        members(&mut c4)
            .await
            .iter()
            .map(|m| m.0)
            .collect::<Vec<_>>(),
        rest
    );
    let want: Vec<(String, String)> = [("k/after", "3"), ("k/before", "1"), ("k/through-new", "2")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for &id in &rest {
        wait_data(&cluster, id, &want).await;
    }

    // The new member restarts from its WAL: it still knows every member's address.
    drop(c4);
    assert!(cluster.terminate(new).success());
    cluster.spawn(new);
    let mut c4 = connect(&cluster, new).await;
    retry!(c4.put("k/restarted", "4", None).await);
    let mut want = want;
    want.push(("k/restarted".into(), "4".into()));
    want.sort();
    for &id in &rest {
        wait_data(&cluster, id, &want).await;
    }
}

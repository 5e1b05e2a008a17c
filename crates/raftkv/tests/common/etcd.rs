//! etcd clients (the `etcd-client` crate) against a cluster started with
//! [`super::Cluster::start_etcd`].

use super::Cluster;
use etcd_client::{Client, ConnectOptions};
use std::time::{Duration, Instant};

/// A client of node `id` only (each request fails after 5 s).
pub async fn connect(cluster: &Cluster, id: u64) -> Client {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    Client::connect([format!("http://{}", cluster.etcd_addr(id))], Some(opts))
        .await
        .expect("connect")
}

/// Waits (at most 20 s) until a running node says it leads and a write through it
/// succeeds; its id.
pub async fn wait_leader(cluster: &Cluster) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for n in &cluster.nodes {
            if !cluster.running(n.id) {
                continue;
            }
            let mut c = connect(cluster, n.id).await;
            let Ok(st) = c.status().await else { continue };
            let me = st.header().map(|h| h.member_id());
            if Some(st.leader()) == me && c.put("ready", "1", None).await.is_ok() {
                return n.id;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no etcd leader within 20 s\n{}", cluster.log(1));
}

/// Another running node than `not`.
pub fn other(cluster: &Cluster, not: u64) -> u64 {
    cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .find(|&id| id != not && cluster.running(id))
        .expect("another running node")
}

/// Runs a client call until it succeeds (at most 20 s), as etcd's clients retry what
/// failed for want of a leader or in time: only for calls safe to repeat.
#[allow(unused_macros)]
macro_rules! retry {
    ($call:expr) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match $call {
                Ok(v) => break v,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("retrying after: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("still failing after 20 s: {e}"),
            }
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use retry;

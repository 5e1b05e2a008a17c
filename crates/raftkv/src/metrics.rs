//! Prometheus metrics: recorded through the `metrics` facade, rendered by
//! `metrics-exporter-prometheus`, served on the HTTP port ([`crate::http`]).

use crate::ServedNode;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use raft::NodeId;
use raft_core::RestoredState;
use raft_storage::{Storage, StorageError, WriteBatch};
use raft_transport::TcpTransport;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why the metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(String);

/// Installs the global recorder and describes the metrics; returns the handle that
/// renders them. Fails if a recorder is already installed.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    // Buckets (seconds) from 50 µs to 5 s: a durable commit on a fast disk to a stall.
    let buckets = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0,
    ];
    let recorder = PrometheusBuilder::new()
        .set_buckets(&buckets)
        .map_err(|e| MetricsError(e.to_string()))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| MetricsError(e.to_string()))?;
    describe_gauge!("raftkv_term", "current Raft term");
    describe_gauge!("raftkv_commit_index", "highest committed log index");
    describe_gauge!(
        "raftkv_applied_index",
        "highest log index applied to the key/value state"
    );
    describe_gauge!("raftkv_last_log_index", "last index in the log");
    describe_gauge!(
        "raftkv_snapshot_index",
        "last index covered by the snapshot"
    );
    describe_gauge!(
        "raftkv_log_bytes",
        "bytes of persisted Raft state (log and hard state)"
    );
    describe_gauge!("raftkv_is_leader", "1 while this node leads");
    describe_counter!(
        "raftkv_leader_changes_total",
        "times the known leader changed"
    );
    describe_counter!(
        "raftkv_requests_total",
        "client key/value requests, by kind and outcome"
    );
    describe_histogram!(
        "raftkv_commit_latency_seconds",
        "client write latency at the server: received to applied"
    );
    describe_histogram!(
        "raftkv_storage_write_seconds",
        "one durable storage write (WAL append and fdatasync)"
    );
    Ok(handle)
}

/// Records one client request: a write that succeeded adds to the commit latency.
pub fn request(write: bool, ok: bool, took: Duration) {
    let kind = if write { "write" } else { "read" };
    let outcome = if ok { "ok" } else { "error" };
    counter!("raftkv_requests_total", "kind" => kind, "outcome" => outcome).increment(1);
    if write && ok {
        histogram!("raftkv_commit_latency_seconds").record(took.as_secs_f64());
    }
}

/// Publishes the node's Raft state and the transport's per-peer counters every `every`
/// until `stop`, counting leader changes.
pub async fn poll<N: ServedNode>(
    kv: N,
    transport: TcpTransport,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut leader = None;
    let mut sent: BTreeMap<NodeId, u64> = BTreeMap::new();
    loop {
        for (peer, st) in transport.stats() {
            // The transport's counters are totals; the Prometheus counter follows them.
            let before = sent.insert(peer, st.bytes_sent).unwrap_or(0);
            counter!("raftkv_peer_bytes_sent_total", "peer" => peer.to_string())
                .increment(st.bytes_sent.saturating_sub(before));
            gauge!("raftkv_peer_dropped_calls", "peer" => peer.to_string())
                .set((st.dropped_backpressure + st.dropped_unreachable) as f64);
        }
        let st = kv.raft().status();
        gauge!("raftkv_term").set(st.term as f64);
        gauge!("raftkv_commit_index").set(st.commit_index as f64);
        gauge!("raftkv_applied_index").set(kv.last_applied() as f64);
        gauge!("raftkv_last_log_index").set(st.last_log_index as f64);
        gauge!("raftkv_snapshot_index").set(st.snapshot_index as f64);
        gauge!("raftkv_log_bytes").set(st.raft_state_size as f64);
        gauge!("raftkv_is_leader").set(if st.role == raft::Role::Leader {
            1.0
        } else {
            0.0
        });
        if st.leader.is_some() && st.leader != leader {
            counter!("raftkv_leader_changes_total").increment(1);
            tracing::info!(leader = ?st.leader, term = st.term, "leader known");
        }
        leader = st.leader.or(leader);
        tokio::select! {
            _ = crate::until_stopped(&mut stop) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A storage that times its writes (each one WAL batch and one `fdatasync`).
pub struct Timed<S>(pub S);

impl<S: Storage> Storage for Timed<S> {
    const BLOCKING: bool = S::BLOCKING;

    fn restore(&self) -> Result<RestoredState, StorageError> {
        self.0.restore()
    }

    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        let start = Instant::now();
        let result = self.0.write(batch);
        histogram!("raftkv_storage_write_seconds").record(start.elapsed().as_secs_f64());
        result
    }

    fn raft_state_size(&self) -> u64 {
        self.0.raft_state_size()
    }

    fn snapshot_size(&self) -> u64 {
        self.0.snapshot_size()
    }
}

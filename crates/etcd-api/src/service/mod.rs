//! The gRPC services of etcd's v3 API over any [`EtcdBackend`], and the router that serves
//! them.

mod cluster;
mod kv;
mod lease;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::transport::server::Router;
use tonic::transport::Server;

use crate::backend::EtcdBackend;
use crate::proto::etcdserverpb as pb;
use crate::proto::etcdserverpb::{
    cluster_server::ClusterServer, kv_server::KvServer, lease_server::LeaseServer,
    maintenance_server::MaintenanceServer, watch_server::WatchServer,
};

pub use cluster::{ClusterService, MaintenanceService};
pub use kv::KvService;
pub use lease::LeaseService;
pub use watch::WatchService;

/// The etcd API version this server speaks, reported by `Status` (etcdctl prints it, and
/// clients use it to decide which features they may use).
pub const API_VERSION: &str = "3.5.0";

/// Limits and timings of the services.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The largest encoded write request accepted (etcd's `--max-request-bytes`, 1.5 MiB
    /// by default); larger ones answer "etcdserver: request is too large".
    pub max_request_bytes: usize,
    /// The most compares and operations per branch of a transaction (etcd's
    /// `--max-txn-ops`, 128 by default).
    pub max_txn_ops: usize,
    /// How often a watcher that asked for progress notifications gets one (etcd: 10 min).
    pub progress_notify_interval: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            max_request_bytes: 3 * 512 * 1024,
            max_txn_ops: 128,
            progress_notify_interval: Duration::from_secs(600),
        }
    }
}

/// The largest gRPC message decoded: the request limit plus etcd's allowance for gRPC
/// overhead, so that a request a little over the limit gets etcd's own error.
fn max_message_bytes(config: &ServiceConfig) -> usize {
    config.max_request_bytes + 512 * 1024
}

/// A tonic router serving KV, Watch, Lease, Cluster and Maintenance over `backend`.
pub fn router<B: EtcdBackend>(backend: Arc<B>, config: ServiceConfig) -> Router {
    let max = max_message_bytes(&config);
    let config = Arc::new(config);
    Server::builder()
        .add_service(
            KvServer::new(KvService::new(backend.clone(), config.clone()))
                .max_decoding_message_size(max),
        )
        .add_service(
            WatchServer::new(WatchService::new(backend.clone(), config.clone()))
                .max_decoding_message_size(max),
        )
        .add_service(
            LeaseServer::new(LeaseService::new(backend.clone())).max_decoding_message_size(max),
        )
        .add_service(ClusterServer::new(ClusterService::new(backend.clone())))
        .add_service(MaintenanceServer::new(MaintenanceService::new(backend)))
}

/// Serves the etcd API on `listener` until `shutdown` resolves.
pub async fn serve<B: EtcdBackend>(
    backend: Arc<B>,
    config: ServiceConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Without TCP_NODELAY a response's HTTP/2 frames can wait for the client's delayed
    // ACK (about 40 ms on Linux): tail latencies of tens of milliseconds on loopback.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    });
    router(backend, config)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// A response header from the node's IDs and a revision.
fn header<B: EtcdBackend>(backend: &B, revision: i64) -> pb::ResponseHeader {
    let ids = backend.node_ids();
    pb::ResponseHeader {
        cluster_id: ids.cluster_id,
        member_id: ids.member_id,
        revision,
        raft_term: ids.raft_term,
    }
}

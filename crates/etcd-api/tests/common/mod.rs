//! A single-node etcd API server on 127.0.0.1:0, stopped when dropped (also when a test
//! fails), and helpers for the `etcd-client` crate's errors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use etcd_api::mem::MemBackend;
use etcd_api::service::{serve, ServiceConfig};
use etcd_api::store::StoreConfig;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    #[allow(dead_code)] // used by some of the test binaries that share this module
    pub backend: MemBackend,
    stop: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(
            StoreConfig {
                history_limit: 1000,
                min_lease_ttl: 1,
            },
            ServiceConfig::default(),
        )
        .await
    }

    pub async fn start_with(store: StoreConfig, config: ServiceConfig) -> Self {
        Self::start_backend(MemBackend::new(store), config).await
    }

    pub async fn start_backend(backend: MemBackend, config: ServiceConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        backend.set_client_urls(vec![format!("http://{addr}")]);
        let expiry = backend.spawn_lease_expiry(Duration::from_millis(20));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn({
            let backend = Arc::new(backend.clone());
            async move {
                serve(backend, config, listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("server failed");
            }
        });
        TestServer {
            addr,
            backend,
            stop: Some(stop),
            tasks: vec![expiry, server],
        }
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([format!("http://{}", self.addr)], None)
            .await
            .expect("connect")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The gRPC status of an etcd-client error (panics on any other kind of error).
#[allow(dead_code)] // not every test binary sharing this module needs it
pub fn status(e: etcd_client::Error) -> tonic::Status {
    match e {
        etcd_client::Error::GRpcStatus(s) => s,
        other => panic!("not a gRPC status: {other:?}"),
    }
}

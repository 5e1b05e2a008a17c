//! # raftkv
//!
//! The deployable replicated key/value server: kvraft's service on real sockets and a
//! real disk.
//!
//! - [`proto`]: the native client protocol, on the frames and handshake of
//!   `raft-transport` (length-delimited frames, a version byte, postcard; a hello with
//!   the cluster id and role `Client`) (request ids; get, put, append, delete,
//!   status, health; wrong-leader answers carry the leader's id and client address).
//! - [`client`]: [`RaftKvClient`], the client library for any tokio program (kvraft's
//!   clerk over TCP: exactly-once writes, leader redirection, timeouts, typed errors).
//! - [`client_port`]: the server side of the client protocol.
//! - Between nodes, `raft-transport`'s `TcpTransport` and peer server.
//! - [`etcd`]: etcd's v3 API through Raft ([`etcd::EtcdNode`], the state machine a node
//!   runs instead of kvraft's when it serves `--etcd-addr`).
//! - [`config`]: `raftkv serve`'s settings (TOML file, flags over it).
//! - [`metrics`] and [`http`]: Prometheus metrics and the health endpoint.
//!
//! The `raftkv` binary (`serve`, `cluster`, `put`/`get`/`append`/`del`/`status`,
//! `bench`) is built on these; docs/OPERATIONS.md says how to run it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod client_port;
pub mod config;
pub mod etcd;
pub mod http;
pub mod metrics;
pub mod proto;

pub use client::{ClientConfig, ClientError, RaftKvClient, TcpEnd};

/// What the HTTP port and the metrics need of a node, whichever state machine it runs.
pub trait ServedNode: Clone + Send + Sync + 'static {
    /// Its Raft peer.
    fn raft(&self) -> &raft::Raft;
    /// Whether it has been stopped.
    fn killed(&self) -> bool;
    /// The highest log index applied to its state machine.
    fn last_applied(&self) -> u64;
    /// Stops it and its Raft peer.
    fn kill(&self);
}

impl ServedNode for kvraft::KvServer {
    fn raft(&self) -> &raft::Raft {
        kvraft::KvServer::raft(self)
    }
    fn killed(&self) -> bool {
        kvraft::KvServer::killed(self)
    }
    fn last_applied(&self) -> u64 {
        self.stats().last_applied
    }
    fn kill(&self) {
        kvraft::KvServer::kill(self)
    }
}

impl ServedNode for etcd::EtcdNode {
    fn raft(&self) -> &raft::Raft {
        etcd::EtcdNode::raft(self)
    }
    fn killed(&self) -> bool {
        etcd::EtcdNode::killed(self)
    }
    fn last_applied(&self) -> u64 {
        self.stats().last_applied
    }
    fn kill(&self) {
        etcd::EtcdNode::kill(self)
    }
}

/// A framed TCP connection (both halves).
pub type Conn =
    raft_transport::FramedConn<tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf>;

/// The default client addresses of the cluster `raftkv cluster` starts (nodes 1..=5 at
/// 127.0.0.1:7101..7105); the client commands' `--endpoints` default to the first three.
pub fn default_client_addr(id: u64) -> String {
    format!("127.0.0.1:{}", 7100 + id)
}

/// The default peer address of node `id` in `raftkv cluster` (127.0.0.1:7001..).
pub fn default_peer_addr(id: u64) -> String {
    format!("127.0.0.1:{}", 7000 + id)
}

/// The default HTTP (metrics, health) address of node `id` in `raftkv cluster`.
pub fn default_http_addr(id: u64) -> String {
    format!("127.0.0.1:{}", 7200 + id)
}

/// Waits until `stop` holds `true` (or its sender is gone). The guard `wait_for` returns
/// is dropped here, so the future can be held across `.await` in spawned tasks.
pub async fn until_stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

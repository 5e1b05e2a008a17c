//! Shared helpers of the transport's tests: loopback listeners, configs with short
//! timeouts, an echo handler, servers that stop (by their token) when the test ends.
#![allow(dead_code)]

use raft::{Envelope, Message, NodeId};
use raft_transport::{serve_peers, CancellationToken, Handler, TransportConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const CLUSTER: u64 = 7;

/// A listener on a free loopback port.
pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("local addr");
    (l, addr)
}

/// Settings with short handshake and backoff times, generous call timeouts.
pub fn config(me: NodeId, peers: &BTreeMap<NodeId, SocketAddr>) -> TransportConfig {
    let mut c = TransportConfig::new(CLUSTER, me, peers.clone());
    c.max_frame = 64 << 10;
    c.call_timeout = Duration::from_secs(5);
    c.handshake_timeout = Duration::from_millis(300);
    c.backoff_initial = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(100);
    c
}

/// Answers every RequestVote with a granted vote, from the addressee.
pub fn echo() -> Handler {
    Arc::new(|env: Envelope| Box::pin(async move { Some(vote_reply(&env)) }))
}

pub fn vote_reply(env: &Envelope) -> Envelope {
    Envelope {
        from: env.to,
        to: env.from,
        msg: Message::RequestVoteResponse {
            term: env.msg.term(),
            granted: true,
        },
    }
}

pub fn vote(from: NodeId, to: NodeId, term: u64) -> Envelope {
    Envelope {
        from,
        to,
        msg: Message::RequestVote {
            term,
            last_log_index: 0,
            last_log_term: 0,
        },
    }
}

/// A running peer server; stopped (and awaited) on `stop`, cancelled on drop.
pub struct Server {
    pub token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(listener: TcpListener, config: TransportConfig, handler: Handler) -> Server {
        let token = CancellationToken::new();
        let t = token.clone();
        let task = tokio::spawn(async move {
            serve_peers(listener, &config, handler, t)
                .await
                .expect("valid config");
        });
        Server {
            token,
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("server stops within 10 s")
                .expect("server task ends cleanly");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Log lines written while the returned guard lives, on this thread (the tests' runtime
/// is single-threaded, so that covers every task of the test).
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// A shared buffer that tracing writes into.
#[derive(Clone, Default)]
pub struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        let buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

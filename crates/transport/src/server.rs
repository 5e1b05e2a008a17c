//! The inbound side: [`PeerServer`] accepts peer connections and hands their requests to
//! the node.
//!
//! Per connection: the handshake (a wrong cluster id, an unknown or own node id, a client
//! role: refused with a logged reason, then closed), then a reader that decodes and checks
//! every request and starts the handler for it without waiting for earlier ones (up to
//! `max_concurrent_requests` at once), and a writer task that writes responses in the
//! order they finish. Anything malformed closes that connection with a log line; nothing
//! a peer sends can panic the process.

use crate::config::{ConfigError, TransportConfig};
use crate::frame::{
    accept_hello, FrameError, FrameWriter, FramedConn, HandshakeError, Hello, Role,
};
use crate::wire::{PeerRequest, PeerResponse};
use crate::TcpTransport;
use futures::future::BoxFuture;
use raft_core::{Envelope, NodeId};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What the server calls for every request: the node's answer, or `None`. A deployed
/// server passes `move |env| { let raft = raft.clone(); Box::pin(async move { raft.handle(env).await }) }`.
pub type Handler = Arc<dyn Fn(Envelope) -> BoxFuture<'static, Option<Envelope>> + Send + Sync>;

/// Accepts and serves peer connections for one node. See the module docs of
/// [`server`](crate::server) for what it checks.
pub struct PeerServer {
    ctx: Arc<Ctx>,
}

/// Which node ids a [`PeerServer`] accepts connections from (besides the cluster id check).
#[derive(Clone)]
pub enum Accept {
    /// The other nodes of the configuration's `peers` (fixed at start).
    Listed,
    /// The peers a transport knows at the moment of the handshake: a cluster whose
    /// membership changes at run time grows and shrinks this set with
    /// [`TcpTransport::set_peer`] and [`TcpTransport::remove_peer`].
    KnownTo(TcpTransport),
    /// Any other node id of this cluster: for a node joining a running cluster, which
    /// does not know the members yet when its first leader calls.
    AnyMember,
}

enum Known {
    Fixed(BTreeSet<NodeId>),
    Live(TcpTransport),
    Any,
}

impl Known {
    fn contains(&self, id: NodeId) -> bool {
        match self {
            Known::Fixed(set) => set.contains(&id),
            Known::Live(t) => t.knows(id),
            Known::Any => true,
        }
    }
}

struct Ctx {
    cluster_id: u64,
    me: NodeId,
    known: Known,
    max_frame: usize,
    handshake_timeout: Duration,
    /// How long a closing connection waits for its in-flight handler calls.
    grace: Duration,
    max_concurrent: usize,
    max_connections: usize,
    handler: Handler,
}

impl PeerServer {
    /// A server for node `config.node_id`, accepting the other nodes of `config.peers`.
    pub fn new(config: &TransportConfig, handler: Handler) -> Result<Self, ConfigError> {
        Self::accepting(config, handler, Accept::Listed)
    }

    /// A server for node `config.node_id`, accepting the node ids `accept` says.
    pub fn accepting(
        config: &TransportConfig,
        handler: Handler,
        accept: Accept,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let known = match accept {
            Accept::Listed => Known::Fixed(config.peers.keys().copied().collect()),
            Accept::KnownTo(t) => Known::Live(t),
            Accept::AnyMember => Known::Any,
        };
        Ok(PeerServer {
            ctx: Arc::new(Ctx {
                cluster_id: config.cluster_id,
                me: config.node_id,
                known,
                max_frame: config.max_frame,
                handshake_timeout: config.handshake_timeout,
                grace: config.call_timeout,
                max_concurrent: config.max_concurrent_requests,
                max_connections: config.max_inbound_connections,
                handler,
            }),
        })
    }

    /// Serves `listener` until `shutdown` is cancelled, then stops accepting, closes every
    /// connection (after its in-flight handler calls finish, for at most the call timeout)
    /// and returns once all are closed.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        let mut conns = JoinSet::new();
        loop {
            while conns.try_join_next().is_some() {}
            let accepted = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, addr)) if conns.len() >= self.ctx.max_connections => {
                    tracing::warn!(
                        %addr,
                        limit = self.ctx.max_connections,
                        "peer connection refused: too many connections"
                    );
                    drop(stream);
                }
                Ok((stream, addr)) => {
                    conns.spawn(serve_connection(
                        stream,
                        addr,
                        self.ctx.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("peer listener: accept failed: {e}");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
        drop(listener);
        while conns.join_next().await.is_some() {}
    }
}

/// Validates `config`, then serves peers on `listener` with `handler` until `shutdown`
/// is cancelled (see [`PeerServer::serve`]).
pub async fn serve_peers(
    listener: TcpListener,
    config: &TransportConfig,
    handler: Handler,
    shutdown: CancellationToken,
) -> Result<(), ConfigError> {
    PeerServer::new(config, handler)?
        .serve(listener, shutdown)
        .await;
    Ok(())
}

impl Ctx {
    fn check_hello(&self, h: &Hello) -> Result<(), String> {
        if h.role != Role::Peer {
            return Err(format!("this port serves peers, not {:?}s", h.role));
        }
        if h.cluster_id != self.cluster_id {
            return Err(format!(
                "cluster id {} is not this cluster's ({})",
                h.cluster_id, self.cluster_id
            ));
        }
        if h.node_id == self.me {
            return Err(format!("node {} is this node", h.node_id));
        }
        if !self.known.contains(h.node_id) {
            return Err(format!("node {} is not a member", h.node_id));
        }
        Ok(())
    }

    fn check_request(&self, env: &Envelope, peer: NodeId) -> Result<(), String> {
        if env.from != peer {
            return Err(format!(
                "envelope from {} on node {peer}'s connection",
                env.from
            ));
        }
        if env.to != self.me {
            return Err(format!(
                "envelope to {}, but this is node {}",
                env.to, self.me
            ));
        }
        if env.msg.is_response() {
            return Err("a response where a request was expected".into());
        }
        env.msg.validate().map_err(|e| e.to_string())
    }
}

async fn serve_connection(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: Arc<Ctx>,
    shutdown: CancellationToken,
) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%addr, "cannot set TCP_NODELAY: {e}");
    }
    let mut conn = FramedConn::from_tcp(stream, ctx.max_frame);
    let hello = tokio::select! {
        _ = shutdown.cancelled() => return,
        h = accept_hello(&mut conn, ctx.handshake_timeout, |h| ctx.check_hello(h)) => h,
    };
    let peer = match hello {
        Ok(h) => h.node_id,
        Err(HandshakeError::Refused { reason }) => {
            tracing::warn!(%addr, "peer connection refused: {reason}");
            return;
        }
        Err(e) => {
            tracing::warn!(%addr, "peer connection refused: {e}");
            return;
        }
    };
    tracing::debug!(%addr, peer, "peer connected");
    let (mut reader, writer) = conn.split();
    let (tx, rx) = mpsc::channel(ctx.max_concurrent);
    let mut write_task = tokio::spawn(write_responses(writer, rx, peer, ctx.grace * 2));
    let permits = Arc::new(Semaphore::new(ctx.max_concurrent));
    loop {
        let req = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // The writer gave up (the peer stopped reading, or the link broke).
            _ = &mut write_task => return,
            r = reader.recv::<PeerRequest>() => r,
        };
        let req = match req {
            Ok(r) => r,
            Err(FrameError::Closed) => {
                tracing::debug!(%addr, peer, "peer closed the connection");
                break;
            }
            Err(e) => {
                tracing::warn!(%addr, peer, "closing peer connection: {e}");
                break;
            }
        };
        if let Err(reason) = ctx.check_request(&req.envelope, peer) {
            tracing::warn!(%addr, peer, "closing peer connection: invalid request: {reason}");
            break;
        }
        // Bounded concurrency: when every permit is taken, stop reading until one frees.
        let permit = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let answer = (ctx.handler)(req.envelope);
        let tx = tx.clone();
        let id = req.id;
        tokio::spawn(async move {
            let envelope = answer.await;
            let _ = tx.send(PeerResponse { id, envelope }).await;
            drop(permit);
        });
    }
    // Stop reading; let in-flight handler calls answer, then the writer ends when the
    // last sender is gone.
    drop(reader);
    drop(tx);
    if tokio::time::timeout(ctx.grace, &mut write_task)
        .await
        .is_err()
    {
        write_task.abort();
    }
}

/// Writes responses as they come; gives up on a write that makes no progress for
/// `stall` (a peer that stopped reading would otherwise hold the connection forever).
async fn write_responses(
    mut writer: FrameWriter<OwnedWriteHalf>,
    mut rx: mpsc::Receiver<PeerResponse>,
    peer: NodeId,
    stall: Duration,
) {
    while let Some(mut resp) = rx.recv().await {
        loop {
            let Ok(written) = tokio::time::timeout(stall, writer.feed(&resp)).await else {
                tracing::warn!(peer, "peer stopped reading; closing the connection");
                return;
            };
            match written {
                Ok(_) => break,
                Err(FrameError::TooLarge { max }) => {
                    // Our own answer is too big for the link: say "no answer" instead.
                    tracing::warn!(peer, max, "response over the frame limit; answering none");
                    resp.envelope = None;
                }
                Err(e) => {
                    tracing::info!(peer, "peer connection lost while writing: {e}");
                    return;
                }
            }
        }
        if rx.is_empty() {
            match tokio::time::timeout(stall, writer.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!(peer, "peer connection lost while writing: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(peer, "peer stopped reading; closing the connection");
                    return;
                }
            }
        }
    }
    let _ = tokio::time::timeout(stall, writer.flush()).await;
}

//! A plain peer transport over the framed connections of [`crate::wire`]: each call
//! borrows an idle connection to the peer (or opens one), sends the message and waits
//! for the answer, so calls in flight each have their own connection.
//!
//! Stand-in until the project's peer transport (`crates/transport`, with bounded queues,
//! pipelining on one connection, reconnect backoff and streamed snapshots) is merged.

use crate::wire::{self, Conn, FrameError, Hello, HelloReply, Role};
use futures::future::BoxFuture;
use raft::{Envelope, NodeId, Raft, Transport};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Idle connections kept per peer.
const MAX_IDLE: usize = 8;
/// Time to connect and say hello.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Time for a peer's answer: past it the call counts as lost (Raft resends).
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// [`raft::Transport`] over TCP.
pub struct PeerTransport {
    me: NodeId,
    cluster_id: u64,
    max_frame: usize,
    addrs: BTreeMap<NodeId, String>,
    idle: Arc<Mutex<BTreeMap<NodeId, Vec<Conn>>>>,
}

impl PeerTransport {
    /// A transport of node `me` to the peers at `addrs`.
    pub fn new(
        me: NodeId,
        cluster_id: u64,
        max_frame: usize,
        addrs: BTreeMap<NodeId, String>,
    ) -> Self {
        PeerTransport {
            me,
            cluster_id,
            max_frame,
            addrs,
            idle: Arc::default(),
        }
    }
}

impl Transport for PeerTransport {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let addr = self.addrs.get(&to).cloned();
        let idle = self.idle.clone();
        let (me, cluster_id, max_frame) = (self.me, self.cluster_id, self.max_frame);
        Box::pin(async move {
            let addr = addr?;
            let pooled = idle
                .lock()
                .ok()
                .and_then(|mut m| m.get_mut(&to).and_then(Vec::pop));
            let mut conn = match pooled {
                Some(c) => c,
                None => match connect(&addr, me, cluster_id, max_frame).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!(to, %addr, error = %e, "peer unreachable");
                        return None;
                    }
                },
            };
            let exchange = async {
                wire::send(&mut conn, &msg).await?;
                wire::recv::<Option<Envelope>>(&mut conn).await
            };
            match tokio::time::timeout(CALL_TIMEOUT, exchange).await {
                Ok(Ok(resp)) => {
                    if let Ok(mut m) = idle.lock() {
                        let pool = m.entry(to).or_default();
                        if pool.len() < MAX_IDLE {
                            pool.push(conn);
                        }
                    }
                    resp
                }
                Ok(Err(e)) => {
                    tracing::debug!(to, error = %e, "peer call failed");
                    None
                }
                Err(_) => None,
            }
        })
    }
}

async fn connect(
    addr: &str,
    me: NodeId,
    cluster_id: u64,
    max_frame: usize,
) -> Result<Conn, FrameError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| FrameError::Timeout)??;
    stream.set_nodelay(true)?;
    let mut conn = wire::framed(stream, max_frame);
    let hello = Hello {
        cluster_id,
        node_id: me,
        role: Role::Peer,
    };
    wire::send(&mut conn, &hello).await?;
    match wire::recv_within(&mut conn, CONNECT_TIMEOUT).await? {
        HelloReply::Accepted { .. } => Ok(conn),
        HelloReply::Refused { reason } => Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            reason,
        ))),
    }
}

/// Serves peers' messages to `raft` until `stop` turns true: a hello from a node of
/// this cluster listed in `peers` is accepted, anything else refused and logged.
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    cluster_id: u64,
    peers: Vec<NodeId>,
    max_frame: usize,
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let peers = Arc::new(peers);
    let for_conns = stop.clone();
    loop {
        tokio::select! {
            biased;
            _ = crate::until_stopped(&mut stop) => return,
            accepted = listener.accept() => {
                let Ok((stream, from)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (raft, peers, stop) = (raft.clone(), peers.clone(), for_conns.clone());
                tokio::spawn(async move {
                    let conn = wire::framed(stream, max_frame);
                    if let Err(e) = peer_connection(conn, raft, cluster_id, &peers, handshake_timeout, stop).await {
                        tracing::debug!(%from, error = %e, "peer connection closed");
                    }
                });
            }
        }
    }
}

async fn peer_connection(
    mut conn: Conn,
    raft: Raft,
    cluster_id: u64,
    peers: &[NodeId],
    handshake_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FrameError> {
    let hello: Hello = wire::recv_within(&mut conn, handshake_timeout).await?;
    let refusal = if hello.role != Role::Peer {
        Some("this is the peer port".to_owned())
    } else if hello.cluster_id != cluster_id {
        Some(format!(
            "cluster id {} is not {cluster_id}",
            hello.cluster_id
        ))
    } else if !peers.contains(&hello.node_id) || hello.node_id == raft.id() {
        Some(format!(
            "node {} is not a peer of this cluster",
            hello.node_id
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        tracing::warn!(%reason, "peer refused");
        return wire::send(&mut conn, &HelloReply::Refused { reason }).await;
    }
    wire::send(&mut conn, &HelloReply::Accepted { node_id: raft.id() }).await?;
    loop {
        let msg: Envelope = tokio::select! {
            biased;
            _ = crate::until_stopped(&mut stop) => return Ok(()),
            msg = wire::recv(&mut conn) => msg?,
        };
        if msg.from != hello.node_id {
            tracing::warn!(
                from = msg.from,
                said = hello.node_id,
                "message from another sender"
            );
            return Ok(());
        }
        let resp = raft.handle(msg).await;
        wire::send(&mut conn, &resp).await?;
    }
}

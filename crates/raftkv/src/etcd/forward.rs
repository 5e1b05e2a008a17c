//! Forwarding to the leader: a follower hands a write, a lease keep-alive or a lease's
//! remaining time to the leader over a small framed TCP protocol (raft-transport's frames
//! and hello, role `Peer`), on the leader's client address, which a node serving etcd's
//! API does not otherwise use. etcd does the same, so an etcd client may write through
//! any member (etcdctl's default endpoint included).
//!
//! One request at a time per connection; connections are pooled per leader. The leader
//! answers from its own state and never forwards again (a node that lost leadership
//! answers "not leader", and the client retries).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use etcd_api::store::{Applied, Command, CommandOutput};
use etcd_api::EtcdError;
use raft::NodeId;
use raft_transport::frame::{accept_hello, send_hello, FrameError, Hello, Role};
use raft_transport::FramedConn;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::EtcdNode;
use crate::Conn;

/// Connections kept open to each leader.
const POOL_PER_PEER: usize = 32;

/// What a follower asks the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    /// Replicate this command.
    Propose(Command),
    /// Renew this lease.
    KeepAlive(i64),
    /// The seconds this lease has left.
    Remaining(i64),
    /// Change the membership (only the leader does).
    Member(super::members::MemberOp),
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardReply {
    /// A proposal's revision and output.
    Applied {
        /// The store's revision after it.
        revision: i64,
        /// Its output or the store's error.
        output: Result<CommandOutput, EtcdError>,
    },
    /// A renewed lease's TTL.
    Ttl(i64),
    /// A lease's remaining seconds.
    Remaining(Option<i64>),
    /// The request failed on the leader.
    Failed(EtcdError),
    /// A membership change made: the member added (if any) and every member after it.
    Members(super::members::MemberReply),
}

/// Where the other nodes take forwarded requests, and the open connections to them.
#[derive(Clone)]
pub struct Forwarder {
    addrs: Arc<RwLock<BTreeMap<NodeId, String>>>,
    pool: Arc<Mutex<BTreeMap<NodeId, Vec<Conn>>>>,
    cluster_id: u64,
    me: NodeId,
    max_frame: usize,
    timeout: Duration,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Forwarder {
    /// Forwards to `addrs` (node id to its client address), as node `me` of `cluster_id`,
    /// giving up on a request after `timeout`.
    pub fn new(
        addrs: BTreeMap<NodeId, String>,
        cluster_id: u64,
        me: NodeId,
        max_frame: usize,
        timeout: Duration,
    ) -> Self {
        Forwarder {
            addrs: Arc::new(RwLock::new(addrs)),
            pool: Arc::default(),
            cluster_id,
            me,
            max_frame,
            timeout,
        }
    }

    /// Whether node `to` can be forwarded to.
    pub fn reaches(&self, to: NodeId) -> bool {
        self.addrs().contains_key(&to)
    }

    /// Replaces the addresses (the membership changed): node id to client address.
    pub fn set_addrs(&self, addrs: BTreeMap<NodeId, String>) {
        let mut now = self.addrs.write().unwrap_or_else(|e| e.into_inner());
        if *now != addrs {
            // Pooled connections to a node whose address changed or went are stale.
            let gone: Vec<NodeId> = now
                .iter()
                .filter(|(id, a)| addrs.get(id) != Some(a))
                .map(|(id, _)| *id)
                .collect();
            *now = addrs;
            drop(now);
            let mut pool = self.lock();
            for id in gone {
                pool.remove(&id);
            }
        }
    }

    fn addrs(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, String>> {
        // Only ever replaced whole.
        self.addrs.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `req` to node `to` and returns its answer; "no leader" (Unavailable) when it
    /// cannot be reached (a write may then still take effect).
    pub async fn call(&self, to: NodeId, req: &ForwardRequest) -> ForwardReply {
        match tokio::time::timeout(self.timeout, self.exchange(to, req)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(to, error = %e, "forward failed");
                // The node restarted or went away: its other pooled connections are dead
                // too, and must not fail the next requests one by one.
                self.lock().remove(&to);
                ForwardReply::Failed(EtcdError::NoLeader)
            }
            Err(_) => ForwardReply::Failed(EtcdError::Timeout),
        }
    }

    async fn exchange(&self, to: NodeId, req: &ForwardRequest) -> Result<ForwardReply, String> {
        let pooled = self.lock().get_mut(&to).and_then(Vec::pop);
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect(to).await?,
        };
        conn.send(req).await.map_err(|e| e.to_string())?;
        let reply: ForwardReply = conn.recv().await.map_err(|e| e.to_string())?;
        let mut pool = self.lock();
        let idle = pool.entry(to).or_default();
        if idle.len() < POOL_PER_PEER {
            idle.push(conn);
        }
        Ok(reply)
    }

    async fn connect(&self, to: NodeId) -> Result<Conn, String> {
        let addr = self.addrs().get(&to).cloned().ok_or("no address")?;
        let stream = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let mut conn = FramedConn::from_tcp(stream, self.max_frame);
        let hello = Hello::new(self.cluster_id, self.me, Role::Peer);
        send_hello(&mut conn, &hello, self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        Ok(conn)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Vec<Conn>>> {
        // The pool is only pushed to and popped from: never half-updated.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves forwarded requests on `listener` until `stop` turns true.
pub async fn serve(
    node: EtcdNode,
    listener: TcpListener,
    cluster_id: u64,
    max_frame: usize,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = crate::until_stopped(&mut stop) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (node, stop) = (node.clone(), stop.clone());
                    tokio::spawn(connection(node, stream, cluster_id, max_frame, stop));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn connection(
    node: EtcdNode,
    stream: TcpStream,
    cluster_id: u64,
    max_frame: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut conn = FramedConn::from_tcp(stream, max_frame);
    let check = |h: &Hello| {
        if h.role != Role::Peer {
            Err("this node serves etcd's API (gRPC) on its etcd address; this port only takes requests forwarded by other nodes".to_owned())
        } else if h.cluster_id != cluster_id {
            Err(format!(
                "cluster id {} does not match this node's {cluster_id}",
                h.cluster_id
            ))
        } else {
            Ok(())
        }
    };
    if accept_hello(&mut conn, Duration::from_secs(5), check)
        .await
        .is_err()
    {
        return;
    }
    loop {
        let req = tokio::select! {
            biased;
            _ = crate::until_stopped(&mut stop) => return,
            req = conn.recv::<ForwardRequest>() => req,
        };
        let req = match req {
            Ok(r) => r,
            Err(FrameError::Closed) => return,
            Err(e) => {
                tracing::info!(error = %e, "bad forwarded request");
                return;
            }
        };
        let reply = answer(&node, req).await;
        if conn.send(&reply).await.is_err() {
            return;
        }
    }
}

/// Answers a forwarded request from this node's own state, never forwarding it again.
async fn answer(node: &EtcdNode, req: ForwardRequest) -> ForwardReply {
    let result = match req {
        ForwardRequest::Propose(cmd) => {
            node.propose_here(cmd).await.map(|a| ForwardReply::Applied {
                revision: a.revision,
                output: a.output,
            })
        }
        ForwardRequest::KeepAlive(id) => node.keep_alive_here(id).map(ForwardReply::Ttl),
        ForwardRequest::Remaining(id) => Ok(ForwardReply::Remaining(node.remaining_here(id))),
        ForwardRequest::Member(op) => node.member_op_here(op).await.map(ForwardReply::Members),
    };
    result.unwrap_or_else(ForwardReply::Failed)
}

/// A forwarded proposal's answer as the services expect it.
pub(super) fn applied(reply: ForwardReply) -> Result<Applied, EtcdError> {
    match reply {
        ForwardReply::Applied { revision, output } => Ok(Applied {
            revision,
            output,
            events: None,
        }),
        ForwardReply::Failed(e) => Err(e),
        _ => Err(EtcdError::NoLeader),
    }
}

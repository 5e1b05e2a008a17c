//! The server side of the client protocol: accepts connections, checks their hello,
//! and serves their requests concurrently, answering each with its id.

use crate::proto::{Health, Member, NodeStatus, Request, RequestBody, Response, ResponseBody};
use kvraft::{KvServer, ServerError};
use raft::NodeId;
use raft_transport::frame::{accept_hello, FrameError, HandshakeError, Hello, Role};
use raft_transport::FramedConn;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

/// Requests of one connection served at once; more wait to be read.
const MAX_IN_FLIGHT_PER_CONN: usize = 256;

/// What the client port needs to know.
#[derive(Clone)]
pub struct ClientPort {
    /// The key/value server.
    pub kv: KvServer,
    /// This node's id.
    pub id: NodeId,
    /// The cluster's id.
    pub cluster_id: u64,
    /// Every node, with its client address (for redirects and `status`).
    pub members: Arc<Vec<Member>>,
    /// Largest frame, in bytes.
    pub max_frame: usize,
    /// Time to say hello.
    pub handshake_timeout: Duration,
    /// Longest silence after the hello.
    pub idle_timeout: Duration,
}

impl ClientPort {
    /// Accepts connections on `listener` until `stop` turns true; each is served on its
    /// own task until it closes, misbehaves, idles out or `stop` turns true.
    pub async fn serve(self, listener: TcpListener, mut stop: watch::Receiver<bool>) {
        let this = Arc::new(self);
        let for_conns = stop.clone();
        loop {
            tokio::select! {
                biased;
                _ = crate::until_stopped(&mut stop) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, from)) => {
                        let _ = stream.set_nodelay(true);
                        let this = this.clone();
                        let stop = for_conns.clone();
                        tokio::spawn(async move {
                            if let Err(e) = this.connection(stream, stop).await {
                                tracing::info!(%from, error = %e, "client connection closed");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, for instance: pause rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        tracing::info!("client port closed");
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), ConnError> {
        let mut conn = FramedConn::from_tcp(stream, self.max_frame);
        let check = |h: &Hello| {
            if h.role != Role::Client {
                Err("this is the client port; peers connect to the peer port".to_owned())
            } else if h.cluster_id != self.cluster_id {
                Err(format!(
                    "cluster id {} does not match this node's {}",
                    h.cluster_id, self.cluster_id
                ))
            } else {
                Ok(())
            }
        };
        accept_hello(&mut conn, self.handshake_timeout, check).await?;

        let (mut reader, mut writer) = conn.split();
        let (tx, mut rx) = mpsc::channel::<Response>(MAX_IN_FLIGHT_PER_CONN);
        let writer = tokio::spawn(async move {
            while let Some(resp) = rx.recv().await {
                if writer.send(&resp).await.is_err() {
                    break;
                }
            }
        });
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONN));
        let result = loop {
            let next = tokio::select! {
                biased;
                _ = crate::until_stopped(&mut stop) => break Ok(()),
                next = tokio::time::timeout(self.idle_timeout, reader.recv::<Request>()) => next,
            };
            let req = match next {
                Err(_) => break Err(ConnError::Idle(self.idle_timeout)),
                Ok(Err(FrameError::Closed)) => break Ok(()),
                Ok(Err(e @ FrameError::Io(_))) => break Err(e.into()),
                Ok(Err(e)) => {
                    // Over the limit, undecodable, another version: say why, then close.
                    let _ = tx.send(error(format!("bad request: {e}"))).await;
                    break Err(e.into());
                }
                Ok(Ok(req)) => req,
            };
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break Ok(());
            };
            let (this, tx) = (self.clone(), tx.clone());
            tokio::spawn(async move {
                let resp = this.answer(req).await;
                let _ = tx.send(resp).await;
                drop(permit);
            });
        };
        // Let the answers already computed go out before the socket closes.
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        result
    }

    async fn answer(&self, req: Request) -> Response {
        let body = match req.body {
            RequestBody::Kv(kv_req) => {
                let write = kv_req.op.is_write();
                let start = Instant::now();
                let reply = self.kv.handle(kv_req).await;
                crate::metrics::request(write, reply.is_ok(), start.elapsed());
                let leader = match &reply {
                    Err(ServerError::WrongLeader {
                        leader_hint: Some(l),
                    }) => self.members.iter().find(|m| m.id == *l).cloned(),
                    _ => None,
                };
                ResponseBody::Kv { reply, leader }
            }
            RequestBody::Status => ResponseBody::Status(self.status()),
            RequestBody::Health => {
                let st = self.kv.raft().status();
                ResponseBody::Health(Health {
                    serving: !self.kv.killed() && !self.kv.raft().killed(),
                    leader: st.leader,
                })
            }
        };
        Response { id: req.id, body }
    }

    /// This node's status.
    pub fn status(&self) -> NodeStatus {
        node_status(&self.kv, &self.members)
    }
}

/// A node's status, from its Raft peer and key/value server.
pub fn node_status(kv: &KvServer, members: &[Member]) -> NodeStatus {
    let st = kv.raft().status();
    NodeStatus {
        id: st.id,
        role: role_name(st.role),
        term: st.term,
        leader: st.leader,
        commit_index: st.commit_index,
        applied_index: kv.stats().last_applied,
        last_log_index: st.last_log_index,
        snapshot_index: st.snapshot_index,
        log_bytes: st.raft_state_size,
        members: members.to_vec(),
    }
}

/// The role's name as `status` prints it (`leader`, `follower`, ...): its Debug name in
/// lower case, so that a role added to the core needs no change here.
pub fn role_name(role: raft::Role) -> String {
    format!("{role:?}").to_lowercase()
}

/// Why a client connection was closed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The handshake failed or was refused.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// A frame was bad, or the socket failed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Nothing arrived for too long.
    #[error("idle for {0:?}")]
    Idle(Duration),
}

fn error(text: String) -> Response {
    Response {
        id: 0,
        body: ResponseBody::Error(text),
    }
}

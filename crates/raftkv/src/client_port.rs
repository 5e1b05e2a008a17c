//! The server side of the client protocol: accepts connections, checks their hello,
//! and serves their requests concurrently, answering each with its id.

use crate::proto::{Health, Member, NodeStatus, Request, RequestBody, Response, ResponseBody};
use crate::wire::{self, FrameError, Hello, HelloReply, Role};
use futures::{SinkExt, StreamExt};
use kvraft::{KvServer, ServerError};
use raft::NodeId;
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
    ) -> Result<(), FrameError> {
        let mut conn = wire::framed(stream, self.max_frame);
        let hello: Hello = wire::recv_within(&mut conn, self.handshake_timeout).await?;
        let refusal = if hello.role != Role::Client {
            Some("this is the client port; peers connect to the peer port".to_owned())
        } else if hello.cluster_id != self.cluster_id {
            Some(format!(
                "cluster id {} does not match this node's {}",
                hello.cluster_id, self.cluster_id
            ))
        } else {
            None
        };
        if let Some(reason) = refusal {
            tracing::info!(%reason, "client refused");
            wire::send(&mut conn, &HelloReply::Refused { reason }).await?;
            return Ok(());
        }
        wire::send(&mut conn, &HelloReply::Accepted { node_id: self.id }).await?;

        let (mut sink, mut frames) = conn.split();
        let (tx, mut rx) = mpsc::channel::<Response>(MAX_IN_FLIGHT_PER_CONN);
        let writer = tokio::spawn(async move {
            while let Some(resp) = rx.recv().await {
                let Ok(body) = wire::encode(&resp) else {
                    continue;
                };
                if sink.send(body).await.is_err() {
                    break;
                }
            }
        });
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONN));
        let result = loop {
            let next = tokio::select! {
                biased;
                _ = crate::until_stopped(&mut stop) => break Ok(()),
                next = tokio::time::timeout(self.idle_timeout, frames.next()) => next,
            };
            let body = match next {
                Err(_) => break Err(FrameError::Timeout),
                Ok(None) => break Ok(()),
                Ok(Some(Err(e))) if e.kind() == std::io::ErrorKind::InvalidData => {
                    let _ = tx
                        .send(error(format!(
                            "frame over the limit of {} bytes",
                            self.max_frame
                        )))
                        .await;
                    break Err(FrameError::TooLarge {
                        max: self.max_frame,
                    });
                }
                Ok(Some(Err(e))) => break Err(FrameError::Io(e)),
                Ok(Some(Ok(body))) => body,
            };
            let req: Request = match wire::decode(&body) {
                Ok(req) => req,
                Err(e) => {
                    let _ = tx.send(error(format!("bad request: {e}"))).await;
                    break Err(e);
                }
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

fn error(text: String) -> Response {
    Response {
        id: 0,
        body: ResponseBody::Error(text),
    }
}

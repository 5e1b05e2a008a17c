//! The client library: [`RaftKvClient`], kvraft's [`Clerk`] over TCP ends ([`TcpEnd`]).
//!
//! A client is given some endpoints (client addresses of nodes). On connect it asks them,
//! in turn, for the cluster's members and their client addresses, so that it holds an
//! end to every node by its Raft id: a wrong-leader answer (which names the leader) is
//! then followed straight to the leader. Each end keeps one connection open and reuses
//! it; a connection that fails is dropped and opened again on the next call.

use crate::proto::{Health, Member, NodeStatus, Request, RequestBody, Response, ResponseBody};
use crate::Conn;
use futures::future::BoxFuture;
use kvraft::{Clerk, ClerkConfig, ClerkError, InputError, KvEnd, KvReply, KvRequest, Limits};
use raft::NodeId;
use raft_transport::frame::{send_hello, FrameError, HandshakeError, Hello, Role};
use raft_transport::FramedConn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A client's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The cluster to talk to: a node of another cluster refuses the connection.
    pub cluster_id: u64,
    /// Time to connect to a node and have the hello answered.
    pub connect_timeout: Duration,
    /// Time for one node's answer before trying another.
    pub request_timeout: Duration,
    /// Longest time one operation may take, retries included: past it the operation
    /// fails with [`ClientError::Timeout`] (a write may or may not have been applied).
    pub op_timeout: Duration,
    /// Largest frame.
    pub max_frame: usize,
    /// Limits checked before sending (keep them equal to the servers').
    pub limits: Limits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            cluster_id: 1,
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(3),
            op_timeout: Duration::from_secs(10),
            max_frame: raft_transport::frame::DEFAULT_MAX_FRAME,
            limits: Limits::default(),
        }
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request is invalid (empty key, key or value over the limit); not applied.
    #[error("invalid request: {0}")]
    Invalid(#[from] InputError),
    /// No node answered in time (the operation may or may not have been applied).
    #[error("no answer within {0:?} (a write may or may not have been applied)")]
    Timeout(Duration),
    /// No endpoints were given.
    #[error("no endpoints given")]
    NoEndpoints,
    /// The settings cannot work; the text says why.
    #[error("unusable client settings: {0}")]
    Config(String),
    /// The node refused the connection (another cluster, for instance).
    #[error("refused by {addr}: {reason}")]
    Refused {
        /// The node's address.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// The handshake failed (no answer in time, not a raftkv node, ...).
    #[error("{addr}: handshake: {source}")]
    Handshake {
        /// The node's address.
        addr: String,
        /// What went wrong.
        source: HandshakeError,
    },
    /// The node could not be reached or broke the protocol.
    #[error("{addr}: {source}")]
    Connection {
        /// The node's address.
        addr: String,
        /// What went wrong.
        source: FrameError,
    },
    /// The node answered something unexpected.
    #[error("{addr}: unexpected answer: {what}")]
    Protocol {
        /// The node's address.
        addr: String,
        /// The answer.
        what: String,
    },
    /// The service refused the operation for good.
    #[error(transparent)]
    Service(ClerkError),
}

impl From<ClerkError> for ClientError {
    fn from(e: ClerkError) -> Self {
        match e {
            ClerkError::Invalid(e) => ClientError::Invalid(e),
            other => ClientError::Service(other),
        }
    }
}

/// One node's client address, with one reusable connection.
pub struct TcpEnd {
    addr: String,
    config: Arc<ClientConfig>,
    /// The idle connection. A call takes it out and puts it back only after a complete
    /// exchange, so a call abandoned half-way never leaves a half-read stream behind.
    conn: Arc<tokio::sync::Mutex<Option<Conn>>>,
    next_id: Arc<AtomicU64>,
}

impl TcpEnd {
    /// An end to the node serving clients at `addr`; connects on first use.
    pub fn new(addr: impl Into<String>, config: Arc<ClientConfig>) -> Self {
        TcpEnd {
            addr: addr.into(),
            config,
            conn: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The node's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `body` and returns the node's answer.
    pub fn request(
        &self,
        body: RequestBody,
    ) -> BoxFuture<'static, Result<ResponseBody, ClientError>> {
        let (addr, config, slot) = (self.addr.clone(), self.config.clone(), self.conn.clone());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            let taken = slot.lock().await.take();
            let mut conn = match taken {
                Some(c) => c,
                None => connect(&addr, &config).await?,
            };
            let err = |source| ClientError::Connection {
                addr: addr.clone(),
                source,
            };
            conn.send(&Request { id, body }).await.map_err(err)?;
            loop {
                let resp: Response = tokio::time::timeout(config.request_timeout, conn.recv())
                    .await
                    .map_err(|_| ClientError::Timeout(config.request_timeout))?
                    .map_err(err)?;
                if let ResponseBody::Error(what) = resp.body {
                    return Err(ClientError::Protocol { addr, what });
                }
                // An answer to an earlier, abandoned request of this end is skipped.
                if resp.id == id {
                    *slot.lock().await = Some(conn);
                    return Ok(resp.body);
                }
            }
        })
    }
}

async fn connect(addr: &str, config: &ClientConfig) -> Result<Conn, ClientError> {
    let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::Timeout(config.connect_timeout))?
        .map_err(|e| ClientError::Connection {
            addr: addr.to_owned(),
            source: FrameError::Io(e),
        })?;
    let _ = stream.set_nodelay(true);
    let mut conn = FramedConn::from_tcp(stream, config.max_frame);
    let hello = Hello::new(config.cluster_id, 0, Role::Client);
    match send_hello(&mut conn, &hello, config.connect_timeout).await {
        Ok(()) => Ok(conn),
        Err(HandshakeError::Refused { reason }) => Err(ClientError::Refused {
            addr: addr.to_owned(),
            reason,
        }),
        Err(source) => Err(ClientError::Handshake {
            addr: addr.to_owned(),
            source,
        }),
    }
}

impl KvEnd for TcpEnd {
    fn call(&self, req: &KvRequest) -> BoxFuture<'static, Option<KvReply>> {
        let answer = self.request(RequestBody::Kv(req.clone()));
        let addr = self.addr.clone();
        Box::pin(async move {
            match answer.await {
                Ok(ResponseBody::Kv { reply, .. }) => Some(reply),
                Ok(other) => {
                    tracing::debug!(%addr, ?other, "not a key/value answer");
                    None
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "no answer");
                    None
                }
            }
        })
    }
}

/// A client of a raftkv cluster. One operation at a time (`&mut self`), as for kvraft's
/// [`Clerk`], whose exactly-once writes it inherits; use one client per concurrent task.
pub struct RaftKvClient {
    clerk: Clerk<TcpEnd>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for RaftKvClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftKvClient")
            .field("clerk", &self.clerk)
            .finish()
    }
}

impl RaftKvClient {
    /// A client of the cluster reached through `endpoints`. Asks them in turn for the
    /// cluster's members (to follow leader hints to any node); if none answers, uses the
    /// endpoints alone, trying them in turn.
    pub async fn connect(endpoints: &[String], config: ClientConfig) -> Result<Self, ClientError> {
        if endpoints.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        // A request at the limits must fit a frame, or it could never be sent (and the
        // clerk would retry it until the time limit).
        let needed = config.limits.max_key_bytes + config.limits.max_value_bytes + 256;
        let room = config
            .max_frame
            .saturating_sub(raft_transport::FRAME_OVERHEAD);
        if needed > room {
            return Err(ClientError::Config(format!(
                "max_frame {} leaves {room} bytes for a request, less than the key and value \
                 limits need ({needed})",
                config.max_frame
            )));
        }
        let config = Arc::new(config);
        let mut members: Vec<Member> = Vec::new();
        let mut last_err = None;
        for addr in endpoints {
            match status(addr, &config).await {
                Ok(st) => {
                    members = st.members;
                    break;
                }
                Err(e @ ClientError::Refused { .. }) => return Err(e),
                Err(e) => last_err = Some(e),
            }
        }
        if members.is_empty() {
            if let Some(e) = last_err {
                tracing::debug!(error = %e, "no endpoint told the cluster's members");
            }
        }
        // Known members first (by id), then any endpoint that is none of theirs.
        let mut addrs: Vec<(Option<NodeId>, String)> = members
            .iter()
            .filter_map(|m| m.client_addr.clone().map(|a| (Some(m.id), a)))
            .collect();
        for e in endpoints {
            if !addrs.iter().any(|(_, a)| a == e) {
                addrs.push((None, e.clone()));
            }
        }
        let (nodes, ends): (Vec<_>, Vec<_>) = addrs
            .into_iter()
            .map(|(id, a)| (id, TcpEnd::new(a, config.clone())))
            .unzip();
        let clerk_config = ClerkConfig {
            rpc_timeout: config.request_timeout,
            retry_backoff: Duration::from_millis(20),
            limits: config.limits,
        };
        let clerk = Clerk::with_nodes(ends, nodes, rand::random(), clerk_config);
        Ok(RaftKvClient { clerk, config })
    }

    /// The value of `key` (`""` if it has none).
    pub async fn get(&mut self, key: &str) -> Result<String, ClientError> {
        let limit = self.config.op_timeout;
        within(limit, self.clerk.get(key)).await
    }

    /// Sets `key` to `value`.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        let limit = self.config.op_timeout;
        within(limit, self.clerk.put(key, value)).await
    }

    /// Appends `value` to `key`'s value.
    pub async fn append(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        let limit = self.config.op_timeout;
        within(limit, self.clerk.append(key, value)).await
    }

    /// Removes `key`.
    pub async fn delete(&mut self, key: &str) -> Result<(), ClientError> {
        let limit = self.config.op_timeout;
        within(limit, self.clerk.delete(key)).await
    }

    /// The node the client will try first (its believed leader), as an end index.
    pub fn leader(&self) -> usize {
        self.clerk.leader()
    }
}

async fn within<T>(
    limit: Duration,
    op: impl std::future::Future<Output = Result<T, ClerkError>>,
) -> Result<T, ClientError> {
    match tokio::time::timeout(limit, op).await {
        Ok(result) => result.map_err(ClientError::from),
        Err(_) => Err(ClientError::Timeout(limit)),
    }
}

/// One node's status.
pub async fn status(addr: &str, config: &ClientConfig) -> Result<NodeStatus, ClientError> {
    match one_shot(addr, config, RequestBody::Status).await? {
        ResponseBody::Status(st) => Ok(st),
        other => Err(ClientError::Protocol {
            addr: addr.to_owned(),
            what: format!("{other:?}"),
        }),
    }
}

/// One node's health.
pub async fn health(addr: &str, config: &ClientConfig) -> Result<Health, ClientError> {
    match one_shot(addr, config, RequestBody::Health).await? {
        ResponseBody::Health(h) => Ok(h),
        other => Err(ClientError::Protocol {
            addr: addr.to_owned(),
            what: format!("{other:?}"),
        }),
    }
}

async fn one_shot(
    addr: &str,
    config: &ClientConfig,
    body: RequestBody,
) -> Result<ResponseBody, ClientError> {
    let end = TcpEnd::new(addr, Arc::new(config.clone()));
    let limit = config.connect_timeout + config.request_timeout;
    tokio::time::timeout(limit, end.request(body))
        .await
        .map_err(|_| ClientError::Timeout(limit))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_that_cannot_fit_a_frame_are_refused() {
        let config = ClientConfig {
            max_frame: 64 << 10,
            ..ClientConfig::default()
        };
        let err = RaftKvClient::connect(&["127.0.0.1:1".into()], config)
            .await
            .expect_err("1 MiB values cannot fit 64 KiB frames");
        assert!(matches!(err, ClientError::Config(_)), "{err}");
        assert!(matches!(
            RaftKvClient::connect(&[], ClientConfig::default()).await,
            Err(ClientError::NoEndpoints)
        ));
    }
}

//! The clerk: the service's client.

use crate::op::{InputError, KvReply, KvRequest, Limits, Op, OpOutput, ServerError};
use futures::future::BoxFuture;
use raft::NodeId;
use std::time::Duration;

/// How a clerk reaches one server.
///
/// `None` means no answer, for whatever reason (lost request or reply, dead server,
/// unreachable); the clerk then tries elsewhere.
pub trait KvEnd: Send + Sync + 'static {
    /// Sends `req` to the server and returns its reply, or `None`.
    fn call(&self, req: &KvRequest) -> BoxFuture<'static, Option<KvReply>>;
}

/// Settings of a clerk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClerkConfig {
    /// How long to wait for one server's answer before trying the next (default 2 s;
    /// servers answer [`ServerError::Timeout`] sooner on their own).
    pub rpc_timeout: Duration,
    /// Pause after every full round of servers that all failed, so that a clerk does
    /// not spin while there is no leader (default 20 ms).
    pub retry_backoff: Duration,
    /// Limits checked before sending; keep them equal to the servers'.
    pub limits: Limits,
}

impl Default for ClerkConfig {
    fn default() -> Self {
        ClerkConfig {
            rpc_timeout: Duration::from_secs(2),
            retry_backoff: Duration::from_millis(20),
            limits: Limits::default(),
        }
    }
}

/// Why a clerk's operation failed. Network trouble is never an error: the clerk retries
/// for as long as it takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// The request is invalid (checked locally, or by a server); it was not applied.
    #[error("invalid request: {0}")]
    Invalid(#[from] InputError),
    /// The service refused the request for good (a newer request of this clerk's id was
    /// already applied: two clerks share an id).
    #[error("refused: {0}")]
    Refused(ServerError),
    /// The clerk's session had expired (it was idle for longer than the servers'
    /// [`session_ttl`](crate::KvConfig::session_ttl)): the write was not applied now, and
    /// if it was a retry, whether an earlier copy was applied cannot be known. The clerk
    /// opens a new session on its next write.
    #[error("the session expired; the write may or may not have been applied")]
    SessionExpired,
    /// The clerk has no servers to talk to.
    #[error("the clerk has no servers")]
    NoServers,
    /// A server answered a get with no value, or a put with a value: a protocol
    /// mismatch between clerk and server.
    #[error("unexpected reply {0:?}")]
    UnexpectedReply(OpOutput),
}

/// A client of the key/value service.
///
/// Each clerk has its own 64-bit id and numbers its requests 1, 2, 3, ...; a retry
/// keeps its number, which is how the service applies every write exactly once (a get
/// changes nothing and is simply read again). Before its first write the clerk opens a
/// session ([`Op::OpenSession`]); a clerk that only reads never opens one.
/// Operations take `&mut self`: one clerk has at most one operation outstanding, which
/// exactly-once semantics rely on. Use one clerk per concurrent client.
///
/// A wrong-leader answer names the leader its server believes in (a Raft node id); the
/// clerk tries that node next when it has an end to it, and otherwise the next end in
/// turn. [`Clerk::new`] and [`Clerk::with_id`] take `ends[i]` to reach node `i`;
/// [`Clerk::with_nodes`] takes the node ids explicitly.
pub struct Clerk<E: KvEnd> {
    ends: Vec<E>,
    /// `nodes[i]`: the Raft id of the server `ends[i]` reaches, when known.
    nodes: Vec<Option<NodeId>>,
    id: u64,
    seq: u64,
    leader: usize,
    config: ClerkConfig,
    /// Whether this clerk has opened its session (and not seen it expire).
    session_open: bool,
}

impl<E: KvEnd> std::fmt::Debug for Clerk<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clerk")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("leader", &self.leader)
            .field("servers", &self.ends.len())
            .finish()
    }
}

impl<E: KvEnd> Clerk<E> {
    /// A clerk with a random id and default settings.
    pub fn new(ends: Vec<E>) -> Self {
        Self::with_id(ends, rand::random(), ClerkConfig::default())
    }

    /// A clerk with a given id (tests draw it from a seeded generator, for
    /// reproducibility) and settings. The id must be unique among clerks. The first
    /// server tried is `id % ends.len()`, which spreads clerks over the servers.
    pub fn with_id(ends: Vec<E>, id: u64, config: ClerkConfig) -> Self {
        let nodes = (0..ends.len() as NodeId).map(Some).collect();
        Self::with_nodes(ends, nodes, id, config)
    }

    /// A clerk whose `ends[i]` reaches the server with Raft id `nodes[i]` (`None`: not
    /// known, so no leader hint leads there). `nodes` shorter than `ends` counts as
    /// `None` for the rest. Otherwise as [`with_id`](Self::with_id).
    pub fn with_nodes(
        ends: Vec<E>,
        mut nodes: Vec<Option<NodeId>>,
        id: u64,
        config: ClerkConfig,
    ) -> Self {
        nodes.resize(ends.len(), None);
        let leader = if ends.is_empty() {
            0
        } else {
            (id % ends.len() as u64) as usize
        };
        Clerk {
            ends,
            nodes,
            id,
            seq: 0,
            leader,
            config,
            session_open: false,
        }
    }

    /// The clerk's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The server the clerk believes leads (the next it will try), as an index into its
    /// ends.
    pub fn leader(&self) -> usize {
        self.leader
    }

    /// The end index of the server with Raft id `node`, if the clerk has one.
    fn end_of(&self, node: NodeId) -> Option<usize> {
        self.nodes.iter().position(|n| *n == Some(node))
    }

    /// The value of `key` (`""` if it was never written).
    pub async fn get(&mut self, key: &str) -> Result<String, ClerkError> {
        match self.execute(Op::Get { key: key.into() }).await? {
            OpOutput::Value(v) => Ok(v),
            other => Err(ClerkError::UnexpectedReply(other)),
        }
    }

    /// Sets `key` to `value`.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        let op = Op::Put {
            key: key.into(),
            value: value.into(),
        };
        self.mutate(op).await
    }

    /// Appends `value` to `key`'s value.
    pub async fn append(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        let op = Op::Append {
            key: key.into(),
            value: value.into(),
        };
        self.mutate(op).await
    }

    /// Removes `key` (a later get reads `""`).
    pub async fn delete(&mut self, key: &str) -> Result<(), ClerkError> {
        self.mutate(Op::Delete { key: key.into() }).await
    }

    async fn mutate(&mut self, op: Op) -> Result<(), ClerkError> {
        match self.execute(op).await? {
            OpOutput::Done => Ok(()),
            other => Err(ClerkError::UnexpectedReply(other)),
        }
    }

    /// Performs `op` (a write exactly once): checks it, opens the clerk's session first
    /// if `op` is a write and none is open, then sends it to the server believed to
    /// lead, moving on (or following a leader hint) on every failure, until a server
    /// answers with the result. Returns only a permanent error (invalid input, a
    /// refusal, an expired session); never gives up on the network.
    pub async fn execute(&mut self, op: Op) -> Result<OpOutput, ClerkError> {
        self.config.limits.check(&op)?;
        if self.ends.is_empty() {
            return Err(ClerkError::NoServers);
        }
        let mut op = op;
        // At most twice: a write refused on its very first attempt because the session
        // had expired was certainly not applied, so it is sent again in a new session.
        for _ in 0..2 {
            if op.is_write() && !self.session_open {
                self.send(Op::OpenSession)
                    .await
                    .map_err(SendError::into_clerk)?;
                self.session_open = true;
            }
            match self.send(op).await {
                Ok(out) => return Ok(out),
                Err(SendError::ExpiredUnapplied(back)) => {
                    self.session_open = false;
                    op = back;
                }
                Err(e) => {
                    if matches!(e, SendError::Clerk(ClerkError::SessionExpired)) {
                        self.session_open = false;
                    }
                    return Err(e.into_clerk());
                }
            }
        }
        Err(ClerkError::SessionExpired)
    }

    /// Sends `op` under the next sequence number until a server answers.
    async fn send(&mut self, op: Op) -> Result<OpOutput, SendError> {
        let n = self.ends.len();
        self.seq += 1;
        let req = KvRequest {
            client_id: self.id,
            seq: self.seq,
            op,
        };
        let mut failures: usize = 0;
        let mut first_attempt = true;
        loop {
            let i = self.leader.min(n - 1);
            let call = self.ends[i].call(&req);
            let reply = tokio::time::timeout(self.config.rpc_timeout, call)
                .await
                .ok()
                .flatten();
            match reply {
                Some(Ok(out)) => {
                    self.leader = i;
                    return Ok(out);
                }
                Some(Err(ServerError::Invalid(e))) => {
                    return Err(SendError::Clerk(ClerkError::Invalid(e)))
                }
                Some(Err(e @ ServerError::Stale { .. })) => {
                    return Err(SendError::Clerk(ClerkError::Refused(e)))
                }
                // Only the answer to the first copy sent proves no copy was applied.
                Some(Err(ServerError::SessionExpired)) if first_attempt => {
                    return Err(SendError::ExpiredUnapplied(req.op))
                }
                Some(Err(ServerError::SessionExpired)) => {
                    return Err(SendError::Clerk(ClerkError::SessionExpired))
                }
                Some(Err(ServerError::WrongLeader {
                    leader_hint: Some(h),
                })) => match self.end_of(h) {
                    Some(j) if j != i => self.leader = j,
                    _ => self.leader = (i + 1) % n,
                },
                _ => self.leader = (i + 1) % n,
            }
            first_attempt = false;
            // After a full round of failures, pause before the next one.
            failures += 1;
            if failures == n {
                failures = 0;
                tokio::time::sleep(self.config.retry_backoff).await;
            }
        }
    }
}

/// Why [`Clerk::send`] gave up.
enum SendError {
    /// For good.
    Clerk(ClerkError),
    /// The first copy sent was refused for want of a session, so no copy was applied:
    /// the operation comes back to be sent again in a new session.
    ExpiredUnapplied(Op),
}

impl SendError {
    fn into_clerk(self) -> ClerkError {
        match self {
            SendError::Clerk(e) => e,
            SendError::ExpiredUnapplied(_) => ClerkError::SessionExpired,
        }
    }
}

/// A clerk for callers outside the async runtime: every operation blocks the calling
/// thread until it completes.
///
/// It makes sense only with a multi-threaded tokio runtime and from a thread that is
/// not one of the runtime's (tokio panics if `block_on` is called from inside the
/// runtime, and a current-thread runtime cannot make progress while its only thread
/// blocks). Inside async code, and in the virtual-time tests, use [`Clerk`] directly.
pub struct BlockingClerk<E: KvEnd> {
    clerk: Clerk<E>,
    handle: tokio::runtime::Handle,
}

impl<E: KvEnd> BlockingClerk<E> {
    /// Wraps `clerk`; its operations run on the runtime behind `handle`.
    pub fn new(clerk: Clerk<E>, handle: tokio::runtime::Handle) -> Self {
        BlockingClerk { clerk, handle }
    }

    /// The value of `key` (`""` if it was never written). Blocks.
    pub fn get(&mut self, key: &str) -> Result<String, ClerkError> {
        self.handle.block_on(self.clerk.get(key))
    }

    /// Sets `key` to `value`. Blocks.
    pub fn put(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        self.handle.block_on(self.clerk.put(key, value))
    }

    /// Appends `value` to `key`'s value. Blocks.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), ClerkError> {
        self.handle.block_on(self.clerk.append(key, value))
    }

    /// Removes `key`. Blocks.
    pub fn delete(&mut self, key: &str) -> Result<(), ClerkError> {
        self.handle.block_on(self.clerk.delete(key))
    }

    /// The wrapped async clerk.
    pub fn into_inner(self) -> Clerk<E> {
        self.clerk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// An end that always gives the same reply and counts its calls.
    struct Fixed(KvReply, Arc<AtomicUsize>);

    impl KvEnd for Fixed {
        fn call(&self, _req: &KvRequest) -> BoxFuture<'static, Option<KvReply>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            let reply = self.0.clone();
            Box::pin(async move { Some(reply) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_hint_is_followed_by_node_id() {
        let calls: Vec<_> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let hint = |h| Err(ServerError::WrongLeader { leader_hint: h });
        let ends = vec![
            Fixed(hint(Some(9)), calls[0].clone()),
            Fixed(hint(None), calls[1].clone()),
            Fixed(Ok(OpOutput::Value("v".into())), calls[2].clone()),
        ];
        let nodes = vec![Some(5), Some(3), Some(9)];
        // id 3: the first end tried is 3 % 3 = 0, which names node 9 (end 2) as leader.
        let mut clerk = Clerk::with_nodes(ends, nodes, 3, ClerkConfig::default());
        assert_eq!(clerk.get("k").await, Ok("v".into()));
        let counts: Vec<_> = calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(counts, [1, 0, 1], "end 1 was skipped");
        assert_eq!(clerk.leader(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hint_to_an_unknown_node_moves_to_the_next_end() {
        let calls: Vec<_> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let ends = vec![
            Fixed(
                Err(ServerError::WrongLeader {
                    leader_hint: Some(42),
                }),
                calls[0].clone(),
            ),
            Fixed(Ok(OpOutput::Value("w".into())), calls[1].clone()),
        ];
        let mut clerk = Clerk::with_nodes(ends, vec![None], 0, ClerkConfig::default());
        assert_eq!(clerk.get("k").await, Ok("w".into()));
        assert_eq!(calls[1].load(Ordering::SeqCst), 1);
    }
}

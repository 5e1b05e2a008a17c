//! The clerk: the service's client.

use crate::op::{InputError, KvReply, KvRequest, Limits, Op, OpOutput, ServerError};
use crate::KV_METHOD;
use futures::future::BoxFuture;
use std::time::Duration;

/// How a clerk reaches one server.
///
/// `None` means no answer, for whatever reason (lost request or reply, dead server,
/// unreachable); the clerk then tries elsewhere.
pub trait KvEnd: Send + Sync + 'static {
    /// Sends `req` to the server and returns its reply, or `None`.
    fn call(&self, req: &KvRequest) -> BoxFuture<'static, Option<KvReply>>;
}

impl KvEnd for labrpc::ClientEnd {
    fn call(&self, req: &KvRequest) -> BoxFuture<'static, Option<KvReply>> {
        let end = self.clone();
        let req = req.clone();
        Box::pin(async move { end.call::<KvRequest, KvReply>(KV_METHOD, &req).await.ok() })
    }
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
/// keeps its number, which is how the service applies every operation exactly once.
/// Operations take `&mut self`: one clerk has at most one operation outstanding, which
/// exactly-once semantics rely on. Use one clerk per concurrent client.
///
/// `ends[i]` must reach the server whose Raft id is `i`, so that the leader hints the
/// servers give can be followed.
pub struct Clerk<E: KvEnd = labrpc::ClientEnd> {
    ends: Vec<E>,
    id: u64,
    seq: u64,
    leader: usize,
    config: ClerkConfig,
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
        let leader = if ends.is_empty() {
            0
        } else {
            (id % ends.len() as u64) as usize
        };
        Clerk {
            ends,
            id,
            seq: 0,
            leader,
            config,
        }
    }

    /// The clerk's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The server the clerk believes leads (the next it will try).
    pub fn leader(&self) -> usize {
        self.leader
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

    async fn mutate(&mut self, op: Op) -> Result<(), ClerkError> {
        match self.execute(op).await? {
            OpOutput::Done => Ok(()),
            other => Err(ClerkError::UnexpectedReply(other)),
        }
    }

    /// Performs `op` exactly once: checks it, then sends it to the server believed to
    /// lead, moving on (or following a leader hint) on every failure, until a server
    /// answers with the result. Returns only a permanent error (invalid input, or a
    /// refusal); never gives up on the network.
    pub async fn execute(&mut self, op: Op) -> Result<OpOutput, ClerkError> {
        self.config.limits.check(&op)?;
        let n = self.ends.len();
        if n == 0 {
            return Err(ClerkError::NoServers);
        }
        self.seq += 1;
        let req = KvRequest {
            client_id: self.id,
            seq: self.seq,
            op,
        };
        let mut failures: usize = 0;
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
                Some(Err(ServerError::Invalid(e))) => return Err(ClerkError::Invalid(e)),
                Some(Err(e @ ServerError::Stale { .. })) => return Err(ClerkError::Refused(e)),
                Some(Err(ServerError::WrongLeader {
                    leader_hint: Some(h),
                })) if (h as usize) < n && h as usize != i => self.leader = h as usize,
                _ => self.leader = (i + 1) % n,
            }
            // After a full round of failures, pause before the next one.
            failures += 1;
            if failures == n {
                failures = 0;
                tokio::time::sleep(self.config.retry_backoff).await;
            }
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
pub struct BlockingClerk<E: KvEnd = labrpc::ClientEnd> {
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

    /// The wrapped async clerk.
    pub fn into_inner(self) -> Clerk<E> {
        self.clerk
    }
}

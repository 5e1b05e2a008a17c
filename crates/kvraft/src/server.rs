//! The key/value server: one replica of the service.

use crate::decode_command;
use crate::op::{encode_command, KvReply, KvRequest, Limits, LogCommand, OpOutput, ServerError};
use crate::state::{Applied, KvStateMachine};
use raft::{ApplyMsg, Config, Index, NodeId, Raft, RaftError, Term, Transport};
use raft_storage::Storage;
use reads::{answer_reads, ReadWaiter};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

/// At most this many apply messages are handled between two snapshot decisions.
const APPLY_BATCH: usize = 256;
/// Capacity of the channel from the Raft peer to the apply loop: committed entries beyond
/// it wait in the peer (bounded by `Config::max_unapplied_entries`), not in memory here.
const APPLY_QUEUE: usize = 1024;

/// The default [`KvConfig::session_ttl`]: one hour.
pub(crate) const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);

/// Settings of one key/value server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvConfig {
    /// The Raft peer's settings. Its `max_log_size` is the service's `maxraftstate`
    /// (see [`max_raft_state`](Self::max_raft_state)) and its `snapshot_interval`, when
    /// set, makes the server also snapshot every that many applied entries.
    pub raft: Config,
    /// Limits on client input.
    pub limits: Limits,
    /// How long a request may wait for its operation to commit before the server
    /// answers [`ServerError::Timeout`] (default 500 ms). This is what frees a clerk
    /// held by a leader that leads a minority without knowing it.
    pub op_timeout: Duration,
    /// How often the server checks its Raft peer's term and role, to answer waiting
    /// requests [`ServerError::WrongLeader`] once it has lost leadership (default 10 ms).
    /// The check runs on schedule however busy the server is applying commands.
    pub leader_check_interval: Duration,
    /// How long a client's session lives without activity (default 1 hour). After that
    /// the service forgets the client's last write, and a write from it is answered
    /// [`ServerError::SessionExpired`] (the [`Clerk`](crate::Clerk) reopens its session
    /// on its next write). Expiry is decided from the time stamps in the log, so every
    /// replica drops the same sessions; it **must be the same on every replica**.
    ///
    /// Why an hour: a session must outlive any retry of its client's last write (a
    /// clerk retries for as long as it is cut off, so a short time-to-live turns a long
    /// partition into `SessionExpired` errors), and clock skew between leaders (which
    /// can expire a session early by the skew) must be small beside it; memory is one
    /// small record per client active in the last hour, about 20 bytes each.
    pub session_ttl: Duration,
    /// The server's clock at start, in milliseconds; it then advances with the tokio
    /// clock. `None` (the default): the Unix time. Stamps on proposed commands come from
    /// this clock; the tests set it from the virtual clock so that runs are reproducible.
    pub clock_origin_ms: Option<u64>,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            raft: Config::default(),
            limits: Limits::default(),
            op_timeout: Duration::from_millis(500),
            leader_check_interval: Duration::from_millis(10),
            session_ttl: DEFAULT_SESSION_TTL,
            clock_origin_ms: None,
        }
    }
}

impl KvConfig {
    /// The default settings with `maxraftstate` set (`None`: never snapshot).
    pub fn with_max_raft_state(max_raft_state: Option<u64>) -> Self {
        let mut config = KvConfig::default();
        config.raft.max_log_size = max_raft_state;
        config
    }

    /// The classic `maxraftstate`: the server snapshots once its persisted Raft state
    /// reaches this many bytes. `None`: never.
    pub fn max_raft_state(&self) -> Option<u64> {
        self.raft.max_log_size
    }
}

/// Why a server could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KvServerError {
    /// The Raft peer could not start (bad peers, bad configuration, unreadable storage).
    #[error(transparent)]
    Raft(#[from] RaftError),
    /// The settings are unusable; the text says why.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// Counters of one server, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// The highest log index applied to the state machine.
    pub last_applied: Index,
    /// Requests applied for the first time.
    pub applied_ops: u64,
    /// Retries recognised by the exactly-once table and not applied again.
    pub duplicates: u64,
    /// Snapshots this server took.
    pub snapshots_taken: u64,
    /// Snapshots this server installed (from the leader, or its own on restart).
    pub snapshots_installed: u64,
}

/// One request waiting for its operation to be applied.
struct Waiter {
    client_id: u64,
    seq: u64,
    /// The operation is a write or opens a session: a snapshot that covers it answers it.
    recorded: bool,
    /// Where and in which term the operation was proposed, once `start` has returned.
    placed: Option<(Index, Term)>,
    tx: oneshot::Sender<KvReply>,
}

/// What request handlers and the apply task share.
#[derive(Default)]
struct Shared {
    waiters: BTreeMap<u64, Waiter>,
    next_waiter: u64,
    /// Gets with their read index, answered by the apply task once it has applied it.
    reads: Vec<ReadWaiter>,
    stats: ServerStats,
    /// The applied state, copied after every batch (for the `get-local` planted bug only).
    #[cfg(kv_bug = "get-local")]
    local: KvStateMachine,
}

impl Shared {
    /// Answers and removes every waiter for which `pick` returns a reply.
    fn answer(&mut self, mut pick: impl FnMut(&Waiter) -> Option<KvReply>) {
        let chosen: Vec<(u64, KvReply)> = self
            .waiters
            .iter()
            .filter_map(|(id, w)| pick(w).map(|r| (*id, r)))
            .collect();
        for (id, reply) in chosen {
            if let Some(w) = self.waiters.remove(&id) {
                // The handler may have given up; then nobody needs the answer.
                let _ = w.tx.send(reply);
            }
        }
    }
}

struct Inner {
    me: NodeId,
    raft: Raft,
    config: KvConfig,
    shared: Mutex<Shared>,
    killed: AtomicBool,
    stop: Notify,
    /// Wakes the apply task when a get is queued in `Shared::reads`.
    read_wake: Notify,
    /// The clock's origin: the tokio instant the server started and its reading then.
    clock: (Instant, u64),
}

impl Inner {
    fn new(me: NodeId, raft: Raft, config: KvConfig) -> Inner {
        let origin = config.clock_origin_ms.unwrap_or_else(unix_ms);
        Inner {
            me,
            raft,
            config,
            shared: Mutex::new(Shared::default()),
            killed: AtomicBool::new(false),
            stop: Notify::new(),
            read_wake: Notify::new(),
            clock: (Instant::now(), origin),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // No critical section can panic half-way through an update.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server's clock, in milliseconds (see [`KvConfig::clock_origin_ms`]).
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.clock.0.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.clock.1.saturating_add(elapsed)
    }
}

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One replica of the key/value service. Cloning gives another handle to the same
/// server.
///
/// Serve [`handle`](Self::handle) to clients and [`raft`](Self::raft)`().handle` to the
/// other replicas, over any transport (the tests put both on one labrpc server).
#[derive(Clone)]
pub struct KvServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KvServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvServer")
            .field("me", &self.inner.me)
            .field("killed", &self.killed())
            .finish()
    }
}

impl KvServer {
    /// Starts replica `me` of the cluster `peers`, resuming from `storage` (its snapshot,
    /// if any, is loaded first), reaching the other replicas' Raft peers through
    /// `transport`. Returns at once; must be called inside a tokio runtime.
    pub fn new<S: Storage, T: Transport>(
        peers: &[NodeId],
        me: NodeId,
        storage: S,
        config: KvConfig,
        transport: T,
    ) -> Result<KvServer, KvServerError> {
        Self::start(me, config, |apply_tx, raft_config| {
            Raft::new(peers, me, storage, apply_tx, raft_config, transport)
        })
    }

    /// Checks `config`, starts the Raft peer `make` builds, and the apply loop.
    fn start(
        me: NodeId,
        config: KvConfig,
        make: impl FnOnce(mpsc::Sender<ApplyMsg>, Config) -> Result<Raft, RaftError>,
    ) -> Result<KvServer, KvServerError> {
        if config.op_timeout.is_zero()
            || config.leader_check_interval.is_zero()
            || config.session_ttl.is_zero()
        {
            return Err(KvServerError::InvalidConfig(
                "op_timeout, leader_check_interval and session_ttl must be positive".into(),
            ));
        }
        if config.limits.max_key_bytes == 0 {
            return Err(KvServerError::InvalidConfig(
                "max_key_bytes must be positive".into(),
            ));
        }
        let (apply_tx, apply_rx) = mpsc::channel(APPLY_QUEUE);
        let raft = make(apply_tx, config.raft.clone())?;
        let inner = Arc::new(Inner::new(me, raft, config));
        tokio::spawn(apply_loop(inner.clone(), apply_rx));
        Ok(KvServer { inner })
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.inner.me
    }

    /// The replica's Raft peer: serve its `handle` to the other replicas; its `state`
    /// says whether this replica leads.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The server's counters.
    pub fn stats(&self) -> ServerStats {
        self.inner.lock().stats
    }

    /// Serves one client request. A write (or session opening) is proposed through Raft
    /// and answered once applied (with its result, or the result of its first application
    /// if it is a retry). A get does not touch the log: the server asks Raft for a read
    /// index ([`Raft::read_index`], forwarded to the leader when this replica follows),
    /// waits until it has applied that index, and reads its own state. Answers an error
    /// instead when the request is invalid, this replica is not the leader (for a write)
    /// or knows no leader (for a get), it loses leadership or changes term while the
    /// request waits, another entry is applied at the request's index, the request waits
    /// longer than [`KvConfig::op_timeout`], or the server is killed.
    pub async fn handle(&self, req: KvRequest) -> KvReply {
        let inner = &self.inner;
        if self.killed() {
            return Err(ServerError::ShuttingDown);
        }
        inner.config.limits.check(&req.op)?;
        #[cfg(kv_bug = "get-local")]
        if let crate::Op::Get { key } = &req.op {
            // The planted bug `get-local`: a server that believes it leads answers a get
            // from its own applied state, without confirming its leadership first.
            if inner.raft.state().1 {
                return Ok(OpOutput::Value(inner.lock().local.get(key).to_owned()));
            }
        }
        if let crate::Op::Get { key } = &req.op {
            return self.read(key.clone()).await;
        }
        let cmd = LogCommand {
            stamp_ms: inner.now_ms(),
            req,
        };
        let command = encode_command(&cmd).map_err(|e| ServerError::Internal(e.to_string()))?;
        let req = cmd.req;

        // Register before proposing, so that the apply task can never miss the
        // application of this request.
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut s = inner.lock();
            let id = s.next_waiter;
            s.next_waiter += 1;
            s.waiters.insert(
                id,
                Waiter {
                    client_id: req.client_id,
                    seq: req.seq,
                    recorded: !matches!(req.op, crate::Op::Get { .. }),
                    placed: None,
                    tx,
                },
            );
            id
        };
        // However this function ends (even if its future is dropped), the waiter goes.
        let _guard = WaiterGuard { inner, id };
        match inner.raft.start(command).await {
            Ok((index, term)) => {
                let mut s = inner.lock();
                let applied = s.stats.last_applied;
                if let Some(w) = s.waiters.get_mut(&id) {
                    if index <= applied {
                        // Something else was applied at this index before we could
                        // record it (ours would have answered the waiter already).
                        return Err(ServerError::WrongLeader { leader_hint: None });
                    }
                    w.placed = Some((index, term));
                }
            }
            Err(e) => {
                return Err(match e {
                    RaftError::NotLeader { leader } => ServerError::WrongLeader {
                        leader_hint: leader,
                    },
                    RaftError::Killed => ServerError::ShuttingDown,
                    other => ServerError::Internal(other.to_string()),
                });
            }
        }
        match tokio::time::timeout(inner.config.op_timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(ServerError::ShuttingDown),
            Err(_) => Err(ServerError::Timeout),
        }
    }

    /// Stops the server and its Raft peer. Idempotent. Waiting requests are answered
    /// [`ServerError::ShuttingDown`].
    pub fn kill(&self) {
        if self.inner.killed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.raft.kill();
        self.inner.stop.notify_one();
        self.inner
            .lock()
            .answer(|_| Some(Err(ServerError::ShuttingDown)));
    }

    /// True once [`kill`](Self::kill) has been called (or the server stopped itself
    /// because its state could not be loaded).
    pub fn killed(&self) -> bool {
        self.inner.killed.load(Ordering::Acquire)
    }
}

/// Removes a request's waiter when its handler ends, however it ends.
struct WaiterGuard<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.inner.lock().waiters.remove(&self.id);
    }
}

/// The apply task: applies committed commands and snapshots, answers waiting requests,
/// takes snapshots, and watches the Raft peer's term and role.
///
/// The leadership check is driven by time, not by the channel being idle: it runs at the
/// top of every turn once due, so a saturated apply channel cannot starve it (a `biased`
/// select with the channel first did: waiters of a deposed leader then waited for their
/// whole `op_timeout` instead of hearing `WrongLeader` within a check interval).
async fn apply_loop(inner: Arc<Inner>, mut rx: mpsc::Receiver<ApplyMsg>) {
    let mut sm = KvStateMachine::with_session_ttl(inner.config.session_ttl);
    let mut last_snapshot: Index = 0;
    let every = inner.config.leader_check_interval;
    let mut next_check = Instant::now() + every;
    loop {
        let now = Instant::now();
        if now >= next_check {
            check_leadership(&inner);
            next_check = now + every;
        }
        tokio::select! {
            biased;
            _ = inner.stop.notified() => break,
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let mut ok = apply_one(&inner, &mut sm, msg);
                let mut n = 1;
                while ok && n < APPLY_BATCH {
                    let Ok(msg) = rx.try_recv() else { break };
                    ok = apply_one(&inner, &mut sm, msg);
                    n += 1;
                }
                if !ok {
                    // The state could not be loaded: this replica must not go on.
                    KvServer { inner: inner.clone() }.kill();
                    break;
                }
                #[cfg(kv_bug = "get-local")]
                {
                    inner.lock().local = sm.clone();
                }
                maybe_snapshot(&inner, &sm, &mut last_snapshot).await;
            }
            _ = inner.read_wake.notified() => {}
            _ = tokio::time::sleep_until(next_check) => {}
        }
        answer_reads(&inner, &sm);
    }
    inner
        .lock()
        .answer(|_| Some(Err(ServerError::ShuttingDown)));
}

/// Applies one message; false if a snapshot could not be decoded.
fn apply_one(inner: &Inner, sm: &mut KvStateMachine, msg: ApplyMsg) -> bool {
    match msg {
        ApplyMsg::Command {
            index,
            term,
            command,
        } => {
            let last = inner.lock().stats.last_applied;
            if index <= last {
                tracing::debug!(server = inner.me, index, "command already applied; skipped");
                return true;
            }
            if index != last + 1 {
                tracing::warn!(server = inner.me, index, last, "gap in applied indices");
            }
            let decoded = decode_command(&command);
            let outcome = decoded
                .as_ref()
                .ok()
                .map(|cmd| (&cmd.req, sm.apply(&cmd.req, cmd.stamp_ms, term)));
            let mut s = inner.lock();
            s.stats.last_applied = index;
            match outcome {
                Some((req, applied)) => {
                    let reply = match applied {
                        Applied::Fresh(out) => {
                            s.stats.applied_ops += 1;
                            Ok(out)
                        }
                        Applied::Duplicate(out) => {
                            s.stats.duplicates += 1;
                            Ok(out)
                        }
                        Applied::Stale { latest } => Err(ServerError::Stale {
                            seq: req.seq,
                            latest,
                        }),
                        Applied::SessionExpired => Err(ServerError::SessionExpired),
                    };
                    let (client_id, seq) = (req.client_id, req.seq);
                    s.answer(|w| {
                        if w.client_id == client_id && w.seq == seq {
                            Some(reply.clone())
                        } else if w.placed.is_some_and(|(i, _)| i <= index) {
                            // Another entry holds this waiter's index.
                            Some(Err(ServerError::WrongLeader { leader_hint: None }))
                        } else {
                            None
                        }
                    });
                }
                None => {
                    if let Err(e) = decoded {
                        tracing::error!(server = inner.me, index, error = %e, "undecodable command skipped");
                    }
                    s.answer(|w| {
                        w.placed
                            .is_some_and(|(i, _)| i <= index)
                            .then_some(Err(ServerError::WrongLeader { leader_hint: None }))
                    });
                }
            }
            true
        }
        ApplyMsg::NoOp { index, .. } | ApplyMsg::Config { index, .. } => {
            // The leader's empty entry (or a configuration entry) (see `Raft::read_index`): nothing to apply, but it
            // holds its index, so a write waiting there lost its place.
            let mut s = inner.lock();
            if index > s.stats.last_applied {
                s.stats.last_applied = index;
                s.answer(|w| {
                    w.placed
                        .is_some_and(|(i, _)| i <= index)
                        .then_some(Err(ServerError::WrongLeader { leader_hint: None }))
                });
            }
            true
        }
        ApplyMsg::Snapshot { index, data, .. } => {
            let last = inner.lock().stats.last_applied;
            if index <= last {
                tracing::debug!(server = inner.me, index, last, "older snapshot ignored");
                return true;
            }
            match KvStateMachine::decode(&data) {
                Ok(restored) => {
                    *sm = restored;
                    sm.set_session_ttl(inner.config.session_ttl);
                    let mut s = inner.lock();
                    s.stats.last_applied = index;
                    s.stats.snapshots_installed += 1;
                    // A waiting write whose operation the snapshot covers is answered
                    // from the table; others placed at or before the snapshot lost
                    // their place (a get is retried and reads again).
                    s.answer(|w| match sm.client(w.client_id) {
                        Some(rec) if w.recorded && rec.last_write_seq == w.seq => {
                            Some(Ok(OpOutput::Done))
                        }
                        _ if w.placed.is_some_and(|(i, _)| i <= index) => {
                            Some(Err(ServerError::WrongLeader { leader_hint: None }))
                        }
                        _ => None,
                    });
                    true
                }
                Err(e) => {
                    tracing::error!(server = inner.me, index, error = %e, "cannot load snapshot; stopping");
                    false
                }
            }
        }
    }
}

/// Snapshots when the persisted Raft state has reached `maxraftstate`, or every
/// `snapshot_interval` entries when that is set.
async fn maybe_snapshot(inner: &Inner, sm: &KvStateMachine, last_snapshot: &mut Index) {
    let applied = inner.lock().stats.last_applied;
    let size = inner.raft.raft_state_size();
    if !inner
        .config
        .raft
        .snapshot_due(size, applied, *last_snapshot)
    {
        return;
    }
    let data = match sm.encode() {
        Ok(data) => data,
        Err(e) => {
            tracing::error!(server = inner.me, error = %e, "cannot encode snapshot");
            return;
        }
    };
    match inner.raft.snapshot(applied, data).await {
        Ok(()) => {
            *last_snapshot = applied;
            inner.lock().stats.snapshots_taken += 1;
        }
        Err(e) => tracing::debug!(server = inner.me, error = %e, "snapshot refused"),
    }
}

/// Answers the waiting requests placed in another term, or all of them once this
/// replica is no longer the leader.
fn check_leadership(inner: &Inner) {
    let (term, leader) = inner.raft.state();
    let mut s = inner.lock();
    if s.waiters.is_empty() {
        return;
    }
    // The leader this replica now believes in, so the clerk can go straight there.
    let hint = inner.raft.status().leader.filter(|&l| l != inner.me);
    s.answer(|w| {
        w.placed
            .is_some_and(|(_, t)| !leader || t != term)
            .then_some(Err(ServerError::WrongLeader { leader_hint: hint }))
    });
}

mod membership;
mod reads;
#[cfg(test)]
mod tests;

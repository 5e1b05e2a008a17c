//! The node actor: one task owns the core; everything reaches it through a channel.
//!
//! Every queue is bounded. The command queue holds `Config::command_queue` commands
//! (beyond that, proposals get [`RaftError::Busy`] and peer messages are dropped, which
//! Raft tolerates); the apply channel is the service's, with the capacity it chose (the
//! actor hands over only what fits and keeps the rest committed in the core); calls to a
//! peer in flight are capped (beyond that a message is dropped). Time always progresses:
//! the tick is the first branch of the event loop and a turn handles a bounded number of
//! commands.

use crate::membership::{ConfRequest, ConfTx, ConfWaiters, MembershipStatus};
use crate::{ApplyMsg, Config, Observed, Observer, RaftError, Status, Transport};
use raft_core::{
    Bytes, EntryKind, Envelope, HardState, Index, NodeId, RaftCore, Ready, Snapshot, Term,
};
use raft_storage::{Storage, WriteBatch};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

type ReplyTx = oneshot::Sender<Option<Envelope>>;

/// Raft instances created in this process: the high half of their read ids, so that a
/// late answer to a forwarded read of a killed instance can never match a read of its
/// restarted successor (see `RaftCore::read_index`). Across processes, the old
/// connections and what was in flight on them are gone with the old process.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// Commands handled in one turn of the event loop before time is looked at again.
const MAX_COMMANDS_PER_TURN: usize = 256;
/// Calls in flight to one peer before more are dropped (see `Actor::call`), at least:
/// bounds what piles up for a peer that stopped answering.
const MIN_CALLS_PER_PEER: usize = 256;
/// Committed entries handed to the apply channel in one turn.
const MAX_APPLY_PER_TURN: usize = 1024;

type ReadTx = oneshot::Sender<Result<Index, RaftError>>;

/// Says whether a command touches what a read reads (see [`Raft::read_index_for`]).
type Touches = Box<dyn Fn(&[u8]) -> bool + Send>;

pub(crate) enum Command {
    Propose(Bytes, oneshot::Sender<Result<(Index, Term), RaftError>>),
    ReadIndex(ReadTx, Option<Touches>),
    Snapshot(Index, Bytes, oneshot::Sender<Result<(), RaftError>>),
    /// A membership change, answered once committed.
    Conf(ConfRequest, ConfTx),
    /// The configuration in force.
    Membership(oneshot::Sender<MembershipStatus>),
    /// On the leader: what a peer holds of the log, and the commit index.
    Progress(NodeId, oneshot::Sender<Option<(Index, Index)>>),
    /// A message from another peer; requests carry the slot for their response.
    Step(Envelope, Option<ReplyTx>),
    Kill,
}

/// State the actor publishes for cheap reads without touching the core.
#[derive(Default)]
struct Published {
    /// `term << 1 | is_leader`, in one word so that readers never see a torn pair.
    term_and_role: AtomicU64,
    raft_state_size: AtomicU64,
    /// The operator's view, refreshed with `term_and_role` (`None` until the first turn).
    status: std::sync::Mutex<Option<Status>>,
    killed: AtomicBool,
    /// Set, and `ended` notified, once the task (and any write it had in flight) is over.
    stopped: AtomicBool,
    ended: tokio::sync::Notify,
}

/// A handle to one Raft peer. Cloning it gives another handle to the same peer.
#[derive(Clone)]
pub struct Raft {
    me: NodeId,
    tx: mpsc::Sender<Command>,
    published: Arc<Published>,
}

impl Raft {
    /// Creates peer `me` of the cluster `peers` and starts it; returns at once.
    ///
    /// The peer resumes from what `storage` holds, reaches the others through
    /// `transport`, and sends committed commands on `apply_tx`, in order; when that
    /// channel is full it waits for room without holding up ticks or messages. Must be
    /// called inside a tokio runtime. Fails with a clear error for an empty peer list,
    /// an id not in it, a duplicate peer, an unusable `config` or unreadable storage.
    pub fn new<S: Storage, T: Transport>(
        peers: &[NodeId],
        me: NodeId,
        storage: S,
        apply_tx: mpsc::Sender<ApplyMsg>,
        config: Config,
        transport: T,
    ) -> Result<Raft, RaftError> {
        Self::start_core(
            me,
            storage,
            apply_tx,
            config,
            transport,
            |cfg, restored, rng| RaftCore::new(me, peers, cfg, restored, rng),
        )
    }

    /// Builds peer `me`'s core with `make` from `config`, what `storage` holds and the
    /// peer's seeded randomness, and starts its actor.
    pub(crate) fn start_core<S: Storage, T: Transport>(
        me: NodeId,
        storage: S,
        apply_tx: mpsc::Sender<ApplyMsg>,
        config: Config,
        transport: T,
        make: impl FnOnce(
            raft_core::CoreConfig,
            raft_core::RestoredState,
            ChaCha8Rng,
        ) -> Result<RaftCore<ChaCha8Rng>, raft_core::CoreError>,
    ) -> Result<Raft, RaftError> {
        let core_cfg = config.core_config()?;
        let restored = storage.restore()?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ me.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let max_inflight = core_cfg.max_inflight_msgs;
        let core = make(core_cfg, restored, rng)?;
        Ok(Self::spawn(
            core,
            max_inflight,
            storage,
            apply_tx,
            config,
            transport,
        ))
    }

    /// Starts the actor of `core` and returns its handle.
    pub(crate) fn spawn<S: Storage, T: Transport>(
        core: RaftCore<ChaCha8Rng>,
        max_inflight: usize,
        storage: S,
        apply_tx: mpsc::Sender<ApplyMsg>,
        config: Config,
        transport: T,
    ) -> Raft {
        let me = core.id();
        let (tx, rx) = mpsc::channel(config.command_queue);
        let published = Arc::new(Published::default());
        published
            .raft_state_size
            .store(storage.raft_state_size(), Ordering::Release);
        // Heartbeats, read rounds and snapshot chunks take calls too, not only the
        // replication window: a cap tied to that window alone (2 by default) dropped the
        // read rounds of 64 readers, whose reads then waited for a round a tick later.
        let max_calls = (4 * max_inflight + 16).max(MIN_CALLS_PER_PEER);
        let mut actor = Actor {
            core,
            storage: Some(storage),
            writing: None,
            transport: Arc::new(transport),
            apply_tx,
            tx: tx.downgrade(),
            rx,
            published: published.clone(),
            replies: BTreeMap::new(),
            calls: BTreeMap::new(),
            max_calls,
            max_unapplied: config.max_unapplied_entries,
            observer: config.observer.clone().map(|o| (o, None)),
            reads: BTreeMap::new(),
            lease_mode: matches!(config.read_mode, crate::config::ReadMode::Lease { .. }),
            next_read: INSTANCES.fetch_add(1, Ordering::Relaxed) << 32,
            conf: ConfWaiters::default(),
        };
        actor.observe_start();
        actor.publish();
        let published_for_panic = published.clone();
        let task = tokio::spawn(actor.run(config.tick));
        // A broken invariant panics the actor (never a corrupt log): the peer is then dead,
        // and says so.
        tokio::spawn(async move {
            let published = published_for_panic;
            if let Err(e) = task.await {
                if e.is_panic() {
                    tracing::error!(peer = me, "raft peer stopped: {e}");
                }
            }
            published.killed.store(true, Ordering::Release);
            published.stopped.store(true, Ordering::Release);
            published.ended.notify_waiters();
        });
        Raft { me, tx, published }
    }

    /// Sends the actor a command made around a reply slot, and waits for the reply.
    pub(crate) async fn ask<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send(make(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => RaftError::Busy("command queue full"),
            mpsc::error::TrySendError::Closed(_) => RaftError::Killed,
        })?;
        rx.await.map_err(|_| RaftError::Killed)
    }

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Starts agreement on `command` and returns at once with the index and term it will
    /// have if it commits. There is no guarantee that it will: a leader can lose its
    /// office first. Fails with [`RaftError::NotLeader`] on a follower or candidate, and
    /// with [`RaftError::Busy`] when the peer is overloaded.
    pub async fn start(&self, command: Bytes) -> Result<(Index, Term), RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .try_send(Command::Propose(command, tx))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => RaftError::Busy("command queue full"),
                mpsc::error::TrySendError::Closed(_) => RaftError::Killed,
            })?;
        rx.await.map_err(|_| RaftError::Killed)?
    }

    /// Asks for a read index (ReadIndex, §6.4 of the thesis): resolves, once the leader
    /// has confirmed with a majority that it still leads, with an index such that a read
    /// of the service's state made after the service has applied it is linearizable.
    /// Nothing is written to the log (a new leader commits one empty entry of its term
    /// first, delivered as [`ApplyMsg::NoOp`](crate::ApplyMsg::NoOp)). On a follower the
    /// read is forwarded to the leader. Fails with [`RaftError::NotLeader`] when no leader
    /// is known (or the one asked is not the leader), [`RaftError::LeadershipLost`],
    /// [`RaftError::Timeout`] (no confirmation within the longest election timeout),
    /// [`RaftError::Busy`] or [`RaftError::Killed`]; any of them can be retried.
    ///
    /// In [`ReadMode::Lease`](crate::ReadMode::Lease), a leader holding its lease answers
    /// at once, without any message.
    pub async fn read_index(&self) -> Result<Index, RaftError> {
        self.read_index_cmd(None).await
    }

    /// Like [`read_index`](Self::read_index), for a read of something `touches` can
    /// recognise in a command: in [`ReadMode::Lease`](crate::ReadMode::Lease), a new
    /// leader still inheriting its predecessor's lease answers at once when no command of
    /// the limbo range (entries of earlier terms it cannot commit yet) touches it
    /// (`touches(command)` is false for all of them); otherwise as `read_index`.
    /// `touches` runs on the peer's task: it must be quick.
    pub async fn read_index_for(
        &self,
        touches: impl Fn(&[u8]) -> bool + Send + 'static,
    ) -> Result<Index, RaftError> {
        self.read_index_cmd(Some(Box::new(touches))).await
    }

    async fn read_index_cmd(&self, touches: Option<Touches>) -> Result<Index, RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .try_send(Command::ReadIndex(tx, touches))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => RaftError::Busy("command queue full"),
                mpsc::error::TrySendError::Closed(_) => RaftError::Killed,
            })?;
        rx.await.map_err(|_| RaftError::Killed)?
    }

    /// The current term and whether this peer believes it is the leader.
    pub fn state(&self) -> (Term, bool) {
        let word = self.published.term_and_role.load(Ordering::Acquire);
        (word >> 1, word & 1 == 1)
    }

    /// The peer's role, term, leader, indices and storage size, as of the end of its
    /// task's last turn.
    pub fn status(&self) -> Status {
        let published = self.published.status.lock().map(|s| *s).ok().flatten();
        published.unwrap_or(Status {
            id: self.me,
            role: raft_core::Role::Follower,
            term: self.state().0,
            leader: None,
            commit_index: 0,
            applied_index: 0,
            last_log_index: 0,
            snapshot_index: 0,
            raft_state_size: self.raft_state_size(),
        })
    }

    /// Tells the peer that `data` captures the service's state through `index` (which the
    /// service has applied). The log up to `index` is discarded and the snapshot persisted
    /// with what remains, atomically; the call returns once the peer has taken it over,
    /// without waiting for the write. A snapshot older than the current one is ignored.
    /// Waits for room in the command queue rather than failing.
    pub async fn snapshot(&self, index: Index, data: Bytes) -> Result<(), RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Snapshot(index, data, tx))
            .await
            .map_err(|_| RaftError::Killed)?;
        rx.await.map_err(|_| RaftError::Killed)?
    }

    /// Bytes of persisted Raft state (term, vote and log, not the snapshot), as of the
    /// last write: what a service compares with its `maxraftstate`.
    pub fn raft_state_size(&self) -> u64 {
        self.published.raft_state_size.load(Ordering::Acquire)
    }

    /// Hands a request from another peer to this one and returns the response to send
    /// back (`None` if this peer is dead, overloaded or the message is invalid).
    /// Responses to this peer's own requests are consumed inside the runtime and never
    /// come here.
    pub async fn handle(&self, msg: Envelope) -> Option<Envelope> {
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.tx.try_send(Command::Step(msg, Some(tx))) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                tracing::debug!(peer = self.me, "command queue full; message dropped");
            }
            return None;
        }
        rx.await.ok().flatten()
    }

    /// Stops the peer. Idempotent. The task ends after the command it is working on;
    /// nothing it holds is written afterwards.
    pub fn kill(&self) {
        self.published.killed.store(true, Ordering::Release);
        // With a full queue the flag alone stops the task at its next command.
        let _ = self.tx.try_send(Command::Kill);
    }

    /// Waits until the peer's task has ended, after [`kill`](Self::kill) or on its own,
    /// including any write it had in flight: after this, its storage is no longer used
    /// and may be reopened.
    pub async fn stopped(&self) {
        loop {
            let ended = self.published.ended.notified();
            if self.published.stopped.load(Ordering::Acquire) {
                return;
            }
            ended.await;
        }
    }

    /// True once [`kill`](Self::kill) has been called (or the peer stopped on its own:
    /// a storage failure or a broken invariant).
    pub fn killed(&self) -> bool {
        self.published.killed.load(Ordering::Acquire)
    }
}

/// A write running on the blocking pool, and what must wait for it.
type Writing<S> = (
    tokio::task::JoinHandle<(S, Result<(), raft_storage::StorageError>)>,
    Unsent,
);

impl Unsent {
    /// True when it holds something to apply: what is applied after it must wait.
    fn holds_applies(&self) -> bool {
        self.restore.is_some() || !self.committed.is_empty()
    }
}

/// The part of a `Ready` that may happen only once its persistent part is durable.
struct Unsent {
    /// The last entry (or snapshot point) the write makes durable, to tell the core.
    durable: Option<(Index, raft_core::Term)>,
    messages: Vec<Envelope>,
    restore: Option<Snapshot>,
    committed: Vec<raft_core::Entry>,
}

struct Actor<S, T> {
    core: RaftCore<ChaCha8Rng>,
    /// `None` only while a write runs on the blocking pool.
    storage: Option<S>,
    /// The write in flight on the blocking pool, if any. While it runs the actor keeps
    /// ticking and stepping commands into the core; what they produce that must be
    /// persisted goes into the next `Ready`, written with one sync when this one is done
    /// (group commit), and the rest is handed over at once
    /// (`RaftCore::take_ready_while_writing`).
    writing: Option<Writing<S>>,
    transport: Arc<T>,
    apply_tx: mpsc::Sender<ApplyMsg>,
    /// Weak, so that the actor's own sender does not keep its channel open forever.
    tx: mpsc::WeakSender<Command>,
    rx: mpsc::Receiver<Command>,
    published: Arc<Published>,
    /// Response slots of requests stepped into the core, per sender, oldest first. The
    /// core answers every request with exactly one response, in order.
    replies: BTreeMap<NodeId, VecDeque<ReplyTx>>,
    /// Calls in flight per peer.
    calls: BTreeMap<NodeId, Arc<AtomicUsize>>,
    max_calls: usize,
    max_unapplied: u64,
    /// Told of status changes and log writes, if set; with the last status it was told.
    observer: Option<(Observer, Option<Observed>)>,
    /// Reads waiting for the core's answer, by the ctx they were given.
    reads: BTreeMap<u64, ReadTx>,
    /// The core reads leases (it is given the clock).
    lease_mode: bool,
    next_read: u64,
    /// Membership changes waiting to commit.
    conf: ConfWaiters,
}

/// The persistent part of a `Ready`, owned, so that it can move to a blocking thread.
struct Persist {
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    truncate_from: Option<Index>,
    entries: Vec<raft_core::Entry>,
}

impl Persist {
    fn batch(&self) -> WriteBatch<'_> {
        WriteBatch {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref(),
            truncate_from: self.truncate_from,
            entries: &self.entries,
        }
    }
}

impl<S: Storage, T: Transport> Actor<S, T> {
    async fn run(mut self, tick: std::time::Duration) {
        if let Err(e) = self.event_loop(tick).await {
            // Storage failed: a peer that cannot persist must not speak again.
            tracing::error!(peer = self.core.id(), error = %e, "storage failure; stopping");
            self.published.killed.store(true, Ordering::Release);
        }
        // A write still running finishes before the peer counts as stopped, so that a
        // restart never finds a half-written directory in use.
        if let Some((task, _)) = self.writing.take() {
            let _ = task.await;
        }
    }

    /// Runs until killed (`Ok`) or until storage fails.
    async fn event_loop(&mut self, tick: std::time::Duration) -> Result<(), RaftError> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            // Only a full channel is waited on: with room, the Ready taken below hands
            // over what is appliable, and entries that wait for a write to end are woken
            // by that write (waiting on room there would spin until it ends).
            let waiting_to_apply = self.core.has_unapplied()
                && self.apply_tx.capacity() == 0
                && !self.apply_tx.is_closed();
            let apply_tx = self.apply_tx.clone();
            let writing = self.writing.is_some();
            tokio::select! {
                // Time first: under any load a leader heartbeats and a follower whose
                // leader died times out. A tick is due at most once per period, so it
                // cannot starve the commands either.
                biased;
                _ = ticker.tick() => {
                    self.set_time();
                    self.core.tick();
                }
                done = written(&mut self.writing), if writing => {
                    let Some((_, unsent)) = self.writing.take() else {
                        continue;
                    };
                    let Ok((storage, result)) = done else {
                        // The write panicked: the storage is lost with it.
                        return Err(RaftError::Killed);
                    };
                    result?;
                    self.stored(storage);
                    if self.published.killed.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    self.send_and_apply(unsent).await;
                }
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    if !self.handle(cmd) {
                        return Ok(());
                    }
                    // Take some of what is already queued before doing the work, so that a
                    // burst of proposals becomes one write and one message per follower.
                    for _ in 1..MAX_COMMANDS_PER_TURN {
                        let Ok(cmd) = self.rx.try_recv() else { break };
                        if !self.handle(cmd) {
                            return Ok(());
                        }
                    }
                }
                // Room appeared in a full apply channel.
                permit = apply_tx.reserve(), if waiting_to_apply => drop(permit),
            }
            drop(apply_tx);
            // Killed while ticking or writing: nothing more is written or sent.
            if self.published.killed.load(Ordering::Acquire) {
                return Ok(());
            }
            let room = if self.apply_tx.is_closed() {
                usize::MAX
            } else {
                self.apply_tx.capacity().min(MAX_APPLY_PER_TURN)
            };
            if self.writing.is_none() {
                if self.core.has_ready() {
                    let ready = self.core.take_ready_bounded(room);
                    self.process(ready).await?;
                }
            } else if self.core.has_ready_while_writing() {
                // What needs no write to end goes now (entries committed and durable
                // here, read answers, a leader's replication requests), so that a
                // client's request does not wait for a write that holds other requests.
                // Entries to apply wait, though, behind what the write holds back.
                let room = if self
                    .writing
                    .as_ref()
                    .is_some_and(|(_, u)| u.holds_applies())
                {
                    0
                } else {
                    room
                };
                let ready = self.core.take_ready_while_writing(room);
                self.process(ready).await?;
            }
            self.conf.poll(&mut self.core);
            self.publish();
        }
    }

    /// Handles one command; false means stop.
    fn handle(&mut self, cmd: Command) -> bool {
        if self.published.killed.load(Ordering::Acquire) {
            return false;
        }
        self.set_time();
        match cmd {
            Command::Kill => return false,
            Command::Propose(data, reply) => {
                let unapplied = self.core.log().last_index() - self.core.applied_index();
                let result = if self.core.is_leader() && unapplied >= self.max_unapplied {
                    Err(RaftError::Busy("too many entries waiting to be applied"))
                } else {
                    self.core.propose(data).map_err(RaftError::from)
                };
                let _ = reply.send(result);
            }
            Command::ReadIndex(reply, touches) => {
                if let Some(index) = touches.and_then(|t| self.core.lease_read_for(t)) {
                    let _ = reply.send(Ok(index));
                    return true;
                }
                let ctx = self.next_read;
                self.next_read += 1;
                match self.core.read_index(ctx) {
                    Ok(()) => {
                        self.reads.insert(ctx, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Conf(req, reply) => self.conf.submit(&mut self.core, req, reply),
            Command::Membership(reply) => {
                let _ = reply.send(MembershipStatus {
                    membership: self.core.membership().clone(),
                    change_in_progress: self.core.change_in_progress(),
                });
            }
            Command::Progress(peer, reply) => {
                let matched = self.core.progress(peer).map(|p| p.matched());
                let leading = self.core.is_leader().then_some(self.core.commit_index());
                let _ = reply.send(leading.zip(matched));
            }
            Command::Snapshot(index, data, reply) => {
                let _ = reply.send(self.core.compact(index, data).map_err(RaftError::from));
            }
            Command::Step(env, reply) => {
                let from = env.from;
                // One-way messages (a forwarded read and its answer) get no response.
                let is_request = env.msg.expects_response();
                match self.core.step(from, env.msg) {
                    Ok(()) => {
                        if let (true, Some(reply)) = (is_request, reply) {
                            self.replies.entry(from).or_default().push_back(reply);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(peer = self.core.id(), error = %e, "refused message");
                        if let Some(reply) = reply {
                            let _ = reply.send(None);
                        }
                    }
                }
            }
        }
        true
    }

    /// Passes the lease clock to the core (lease mode only: ReadIndex needs no clock).
    fn set_time(&mut self) {
        if self.lease_mode {
            self.core.set_time(crate::clock::now_micros());
        }
    }

    /// Carries out one `Ready`: persist, then send, then apply. A storage that blocks
    /// writes on the blocking pool, and the rest waits in `writing` for it.
    async fn process(&mut self, mut ready: Ready) -> Result<(), RaftError> {
        // Entries this node already holds durable are applied now rather than after
        // the write, which may take a while; those the write makes durable wait for it.
        let now = ready.take_durable_committed(self.core.durable_index());
        // Read answers depend on nothing being persisted: hand them over at once. The
        // service answers a read once it has applied its index.
        for read in ready.read_states {
            if let Some(tx) = self.reads.remove(&read.ctx) {
                let _ = tx.send(Ok(read.index));
            }
        }
        for failed in ready.failed_reads {
            if let Some(tx) = self.reads.remove(&failed.ctx) {
                let _ = tx.send(Err(failed.reason.into()));
            }
        }
        // A leader's replication requests promise nothing about its own disk: they leave
        // now, and its write overlaps their round trip (thesis §10.2.1).
        for env in ready.early_messages {
            self.call(env);
        }
        let durable = ready
            .entries
            .last()
            .map(|e| (e.index, e.term))
            .or(ready.snapshot.as_ref().map(|s| (s.meta.index, s.meta.term)));
        let persist = Persist {
            hard_state: ready.hard_state,
            snapshot: ready.snapshot,
            truncate_from: ready.truncate_from,
            entries: ready.entries,
        };
        if let Some((observer, _)) = &self.observer {
            observe_write(observer, &persist, ready.restore.is_some());
        }
        let unsent = Unsent {
            durable,
            messages: ready.messages,
            restore: ready.restore,
            committed: ready.committed,
        };
        apply(&self.apply_tx, self.core.id(), None, now).await;
        if !persist.batch().is_empty() {
            // 1. Persist before anything that depends on it leaves the node.
            let Some(mut storage) = self.storage.take() else {
                return Err(RaftError::Killed);
            };
            if S::BLOCKING {
                let task = tokio::task::spawn_blocking(move || {
                    let result = storage.write(persist.batch());
                    (storage, result)
                });
                self.writing = Some((task, unsent));
                return Ok(());
            }
            let result = storage.write(persist.batch());
            self.stored(storage);
            result?;
        }
        self.send_and_apply(unsent).await;
        Ok(())
    }

    /// Takes the storage back after a write and publishes its new size.
    fn stored(&mut self, storage: S) {
        self.published
            .raft_state_size
            .store(storage.raft_state_size(), Ordering::Release);
        self.storage = Some(storage);
    }

    /// Steps 2 and 3 of a `Ready`, once its persistent part is durable.
    async fn send_and_apply(&mut self, unsent: Unsent) {
        if let Some((index, term)) = unsent.durable {
            self.core.persisted(index, term);
        }
        // 2. Send: responses answer pending requests; requests become calls.
        for env in unsent.messages {
            if env.msg.is_response() {
                let slot = self.replies.get_mut(&env.to).and_then(VecDeque::pop_front);
                if let Some(reply) = slot {
                    let _ = reply.send(Some(env));
                }
            } else {
                self.call(env);
            }
        }
        // 3. Apply.
        apply(
            &self.apply_tx,
            self.core.id(),
            unsent.restore,
            unsent.committed,
        )
        .await;
    }

    fn call(&mut self, env: Envelope) {
        let to = env.to;
        let in_flight = self.calls.entry(to).or_default().clone();
        if in_flight.load(Ordering::Acquire) >= self.max_calls {
            // The peer is not answering: more calls would only pile up. Raft resends.
            tracing::debug!(
                peer = self.core.id(),
                to,
                "too many calls in flight; dropped"
            );
            return;
        }
        in_flight.fetch_add(1, Ordering::AcqRel);
        let response = self.transport.call(to, env);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let resp = response.await;
            in_flight.fetch_sub(1, Ordering::AcqRel);
            if let (Some(resp), Some(tx)) = (resp, tx.upgrade()) {
                // A full queue drops the answer, as a network would.
                let _ = tx.try_send(Command::Step(resp, None));
            }
        });
    }

    fn publish(&mut self) {
        let word = (self.core.term() << 1) | u64::from(self.core.is_leader());
        self.published.term_and_role.store(word, Ordering::Release);
        let status = Status {
            id: self.core.id(),
            role: self.core.role(),
            term: self.core.term(),
            leader: self.core.leader(),
            commit_index: self.core.commit_index(),
            applied_index: self.core.applied_index(),
            last_log_index: self.core.log().last_index(),
            snapshot_index: self.core.log().snapshot().index,
            raft_state_size: self.published.raft_state_size.load(Ordering::Acquire),
        };
        // A poisoned lock only means a reader panicked; the value is still a plain copy.
        match self.published.status.lock() {
            Ok(mut slot) => *slot = Some(status),
            Err(poisoned) => *poisoned.into_inner() = Some(status),
        }
        if let Some((observer, last)) = &mut self.observer {
            let now = Observed::Status {
                role: self.core.role(),
                term: self.core.term(),
                commit: self.core.commit_index(),
                applied: self.core.applied_index(),
            };
            if last.as_ref() != Some(&now) {
                observer.tell(&now);
                *last = Some(now);
            }
        }
    }

    /// Tells the observer, if any, the log the peer starts from.
    fn observe_start(&self) {
        if let Some((observer, _)) = &self.observer {
            let log = self.core.log();
            let snapshot = log.snapshot();
            let terms = (snapshot.index + 1..=log.last_index())
                .map(|i| log.term(i).unwrap_or(0))
                .collect();
            observer.tell(&Observed::Restored { snapshot, terms });
        }
    }
}

/// Tells `observer` about a log write, if the write touches the log.
fn observe_write(observer: &Observer, persist: &Persist, installed: bool) {
    let snapshot = persist.snapshot.as_ref().map(|s| s.meta);
    if snapshot.is_none() && persist.truncate_from.is_none() && persist.entries.is_empty() {
        return;
    }
    observer.tell(&Observed::Persisted {
        truncate_from: persist.truncate_from,
        snapshot,
        installed: installed && snapshot.is_some(),
        entries: persist.entries.iter().map(|e| (e.index, e.term)).collect(),
    });
}

/// Hands the service a snapshot to restore, if any, then `committed`, in order. The
/// core handed over no more than the channel had room for.
async fn apply(
    apply_tx: &mpsc::Sender<ApplyMsg>,
    id: NodeId,
    restore: Option<Snapshot>,
    committed: Vec<raft_core::Entry>,
) {
    let restore = restore.map(|snap| ApplyMsg::Snapshot {
        index: snap.meta.index,
        term: snap.meta.term,
        data: snap.data,
    });
    let commands = committed.into_iter().map(|entry| {
        if entry.kind == EntryKind::Config {
            return ApplyMsg::Config {
                index: entry.index,
                term: entry.term,
                membership: raft_core::Membership::decode(&entry.data).unwrap_or_default(),
            };
        }
        // Commands are never empty (the core refuses them): an empty entry is the
        // leader's no-op, which the service must not try to decode.
        if entry.data.is_empty() {
            ApplyMsg::NoOp {
                index: entry.index,
                term: entry.term,
            }
        } else {
            ApplyMsg::Command {
                index: entry.index,
                term: entry.term,
                command: entry.data,
            }
        }
    });
    for msg in restore.into_iter().chain(commands) {
        deliver(apply_tx, id, msg).await;
    }
}

/// Hands `msg` to the service. The actor only hands over what the channel had room for,
/// so this waits only if someone else holding a sender took the room.
async fn deliver(apply_tx: &mpsc::Sender<ApplyMsg>, peer: NodeId, msg: ApplyMsg) {
    let msg = match apply_tx.try_send(msg) {
        Ok(()) => return,
        Err(mpsc::error::TrySendError::Full(msg)) => msg,
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::debug!(peer, "apply channel closed");
            return;
        }
    };
    if apply_tx.send(msg).await.is_err() {
        tracing::debug!(peer, "apply channel closed");
    }
}

/// Waits for the write in flight (the select branch that uses it runs only when there is
/// one). Borrows only that field, so that the other branches can use the rest.
async fn written<S>(
    writing: &mut Option<Writing<S>>,
) -> Result<(S, Result<(), raft_storage::StorageError>), tokio::task::JoinError> {
    match writing {
        Some((task, _)) => task.await,
        None => std::future::pending().await,
    }
}

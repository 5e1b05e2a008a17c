//! The node actor: one task owns the core; everything reaches it through a channel.

use crate::{ApplyMsg, Config, RaftError, Transport};
use raft_core::{Bytes, Envelope, Index, NodeId, RaftCore, Ready, Term};
use raft_storage::{Storage, WriteBatch};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

type ReplyTx = oneshot::Sender<Option<Envelope>>;

enum Command {
    Propose(Bytes, oneshot::Sender<Result<(Index, Term), RaftError>>),
    Snapshot(Index, Bytes, oneshot::Sender<Result<(), RaftError>>),
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
    killed: AtomicBool,
}

/// A handle to one Raft peer. Cloning it gives another handle to the same peer.
#[derive(Clone)]
pub struct Raft {
    me: NodeId,
    tx: mpsc::UnboundedSender<Command>,
    published: Arc<Published>,
}

impl Raft {
    /// Creates peer `me` of the cluster `peers` and starts it; returns at once.
    ///
    /// The peer resumes from what `storage` holds, reaches the others through
    /// `transport`, and sends committed commands on `apply_tx`. Must be called inside a
    /// tokio runtime. Fails with a clear error for an empty peer list, an id not in it,
    /// a duplicate peer, an unusable `config` or unreadable storage.
    pub fn new<S: Storage, T: Transport>(
        peers: &[NodeId],
        me: NodeId,
        storage: S,
        apply_tx: mpsc::UnboundedSender<ApplyMsg>,
        config: Config,
        transport: T,
    ) -> Result<Raft, RaftError> {
        let core_cfg = config.core_config()?;
        let restored = storage.restore()?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ me.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let core = RaftCore::new(me, peers, core_cfg, restored, rng)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let published = Arc::new(Published::default());
        published
            .raft_state_size
            .store(storage.raft_state_size(), Ordering::Release);
        let actor = Actor {
            core,
            storage,
            transport: Arc::new(transport),
            apply_tx,
            tx: tx.downgrade(),
            rx,
            published: published.clone(),
            replies: BTreeMap::new(),
        };
        actor.publish();
        tokio::spawn(actor.run(config.tick));
        Ok(Raft { me, tx, published })
    }

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Starts agreement on `command` and returns at once with the index and term it will
    /// have if it commits. There is no guarantee that it will: a leader can lose its
    /// office first. Fails with [`RaftError::NotLeader`] on a follower or candidate.
    pub async fn start(&self, command: Bytes) -> Result<(Index, Term), RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Propose(command, tx))
            .map_err(|_| RaftError::Killed)?;
        rx.await.map_err(|_| RaftError::Killed)?
    }

    /// The current term and whether this peer believes it is the leader.
    pub fn state(&self) -> (Term, bool) {
        let word = self.published.term_and_role.load(Ordering::Acquire);
        (word >> 1, word & 1 == 1)
    }

    /// Tells the peer that `data` captures the service's state through `index` (which the
    /// service has applied). The log up to `index` is discarded and the snapshot persisted
    /// with what remains, atomically; the call returns once the peer has taken it over,
    /// without waiting for the write. A snapshot older than the current one is ignored.
    pub async fn snapshot(&self, index: Index, data: Bytes) -> Result<(), RaftError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Snapshot(index, data, tx))
            .map_err(|_| RaftError::Killed)?;
        rx.await.map_err(|_| RaftError::Killed)?
    }

    /// Bytes of persisted Raft state (term, vote and log, not the snapshot), as of the
    /// last write: what a service compares with its `maxraftstate`.
    pub fn raft_state_size(&self) -> u64 {
        self.published.raft_state_size.load(Ordering::Acquire)
    }

    /// Hands a request from another peer to this one and returns the response to send
    /// back (`None` if this peer is dead or the message is invalid). Responses to this
    /// peer's own requests are consumed inside the runtime and never come here.
    pub async fn handle(&self, msg: Envelope) -> Option<Envelope> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Step(msg, Some(tx))).ok()?;
        rx.await.ok().flatten()
    }

    /// Stops the peer. Idempotent. The task ends after the command it is working on;
    /// nothing it holds is written afterwards.
    pub fn kill(&self) {
        self.published.killed.store(true, Ordering::Release);
        let _ = self.tx.send(Command::Kill);
    }

    /// True once [`kill`](Self::kill) has been called.
    pub fn killed(&self) -> bool {
        self.published.killed.load(Ordering::Acquire)
    }
}

struct Actor<S, T> {
    core: RaftCore<ChaCha8Rng>,
    storage: S,
    transport: Arc<T>,
    apply_tx: mpsc::UnboundedSender<ApplyMsg>,
    /// Weak, so that the actor's own sender does not keep its channel open forever.
    tx: mpsc::WeakUnboundedSender<Command>,
    rx: mpsc::UnboundedReceiver<Command>,
    published: Arc<Published>,
    /// Response slots of requests stepped into the core, per sender, oldest first. The
    /// core answers every request with exactly one response, in order.
    replies: BTreeMap<NodeId, VecDeque<ReplyTx>>,
}

impl<S: Storage, T: Transport> Actor<S, T> {
    async fn run(mut self, tick: std::time::Duration) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                biased;
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { return };
                    if !self.handle(cmd) {
                        return;
                    }
                    // Take everything already queued before doing the work, so that a
                    // burst of proposals becomes one write and one message per follower.
                    while let Ok(cmd) = self.rx.try_recv() {
                        if !self.handle(cmd) {
                            return;
                        }
                    }
                }
                _ = ticker.tick() => self.core.tick(),
            }
            if self.core.has_ready() {
                let ready = self.core.take_ready();
                if let Err(e) = self.process(ready) {
                    // Storage failed: a peer that cannot persist must not speak again.
                    tracing::error!(peer = self.core.id(), error = %e, "storage failure; stopping");
                    self.published.killed.store(true, Ordering::Release);
                    return;
                }
            }
            self.publish();
        }
    }

    /// Handles one command; false means stop.
    fn handle(&mut self, cmd: Command) -> bool {
        if self.published.killed.load(Ordering::Acquire) {
            return false;
        }
        match cmd {
            Command::Kill => return false,
            Command::Propose(data, reply) => {
                let _ = reply.send(self.core.propose(data).map_err(RaftError::from));
            }
            Command::Snapshot(index, data, reply) => {
                let _ = reply.send(self.core.compact(index, data).map_err(RaftError::from));
            }
            Command::Step(env, reply) => {
                let from = env.from;
                let is_request = !env.msg.is_response();
                match self.core.step(from, env.msg) {
                    Ok(()) => {
                        if let (true, Some(reply)) = (is_request, reply) {
                            self.replies.entry(from).or_default().push_back(reply);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(peer = self.core.id(), error = %e, "dropped message");
                        if let Some(reply) = reply {
                            let _ = reply.send(None);
                        }
                    }
                }
            }
        }
        true
    }

    fn process(&mut self, ready: Ready) -> Result<(), RaftError> {
        // 1. Persist before anything that depends on it leaves the node.
        let batch = WriteBatch {
            hard_state: ready.hard_state,
            snapshot: ready.snapshot.as_ref(),
            truncate_from: ready.truncate_from,
            entries: &ready.entries,
        };
        if !batch.is_empty() {
            self.storage.write(batch)?;
            self.published
                .raft_state_size
                .store(self.storage.raft_state_size(), Ordering::Release);
        }
        // 2. Send: responses answer pending requests; requests become calls.
        for env in ready.messages {
            if env.msg.is_response() {
                let slot = self.replies.get_mut(&env.to).and_then(VecDeque::pop_front);
                if let Some(reply) = slot {
                    let _ = reply.send(Some(env));
                }
            } else {
                self.call(env);
            }
        }
        // 3. Apply: a snapshot first, then the entries after it.
        if let Some(snap) = ready.restore {
            let msg = ApplyMsg::Snapshot {
                index: snap.meta.index,
                term: snap.meta.term,
                data: snap.data,
            };
            if self.apply_tx.send(msg).is_err() {
                tracing::debug!(peer = self.core.id(), "apply channel closed");
            }
        }
        for entry in ready.committed {
            let msg = ApplyMsg::Command {
                index: entry.index,
                term: entry.term,
                command: entry.data,
            };
            if self.apply_tx.send(msg).is_err() {
                tracing::debug!(peer = self.core.id(), "apply channel closed");
            }
        }
        Ok(())
    }

    fn call(&self, env: Envelope) {
        let to = env.to;
        let response = self.transport.call(to, env);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            if let Some(resp) = response.await {
                if let Some(tx) = tx.upgrade() {
                    let _ = tx.send(Command::Step(resp, None));
                }
            }
        });
    }

    fn publish(&self) {
        let word = (self.core.term() << 1) | u64::from(self.core.is_leader());
        self.published.term_and_role.store(word, Ordering::Release);
    }
}

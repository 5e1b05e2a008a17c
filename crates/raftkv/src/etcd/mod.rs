//! etcd's v3 API served through Raft: [`EtcdNode`] is one replica whose state machine is
//! etcd-api's revision-model [`Store`], and the [`EtcdBackend`] the gRPC services run on.
//!
//! - Writes: a follower forwards them to the leader ([`forward`]); the leader proposes the
//!   [`Command`] with [`Raft::start`] inside an [`codec::Entry`]
//!   naming its proposal; the apply task answers it when that entry is applied. A
//!   proposal whose place in the log went to another entry, or whose leader lost its
//!   leadership or term, is answered "no leader" (Unavailable: it may or may not take
//!   effect).
//! - Reads: linearizable ones ask [`Raft::read_index`] (a follower forwards it to the
//!   leader), wait until that index is applied, then read the local store; serializable
//!   ones read the local store at once.
//! - Watches: the apply task publishes each applied revision to a [`WatchHub`] under the
//!   lock that applies it, so every replica (follower included) feeds its watchers every
//!   revision once, in order; a snapshot installed over a running store publishes the
//!   revisions it skipped from its retained history (or closes the feeds when they are
//!   gone, so the watchers get etcd's "compacted").
//! - Leases: only the leader times them ([`LeaseClock`]); when one runs out it proposes a
//!   [`Command::LeaseExpire`], so every replica deletes the same keys at the same
//!   revision. A new leader times every lease afresh with its full TTL. Keep-alives
//!   reaching a follower are forwarded to the leader.
//! - Membership ([`members`]): etcd's MemberAdd/Remove/Promote become the runtime's
//!   membership changes on the leader; every member's addresses are in a replicated member
//!   table, so the peer transport and the forwarding follow the membership.
//! - Snapshots: the whole store and the member table, taken when the persisted Raft state reaches
//!   `max_log_size` (or every `snapshot_interval` entries), installed on restart and when
//!   the leader sends one.

mod apply;
pub mod codec;
pub mod forward;
pub mod members;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use etcd_api::backend::{EtcdBackend, MemberInfo, NodeIds, NodeStatus, ReadConsistency};
use etcd_api::lease_clock::LeaseClock;
use etcd_api::store::{Applied, Command, Store, StoreConfig};
use etcd_api::watch_hub::{WatchFeed, WatchHub};
use etcd_api::EtcdError;
use raft::{Index, NodeId, Raft, RaftError, Term, Transport};
use raft_storage::Storage;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::time::Instant;

/// Capacity of the channel from the Raft peer to the apply task.
const APPLY_QUEUE: usize = 1024;
/// How many revisions a watcher may fall behind before its feed is closed (it then
/// re-reads from the store's history).
const WATCH_QUEUE: usize = 1024;
/// How often a node that has not published its addresses tries again.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// The pause before asking again for a read index that could not be confirmed.
const READ_RETRY: Duration = Duration::from_millis(20);

/// Settings of one replica.
#[derive(Clone, Debug)]
pub struct EtcdNodeConfig {
    /// The Raft peer's settings (`max_log_size` and `snapshot_interval` decide snapshots).
    pub raft: raft::Config,
    /// The store's settings; every replica must use the same.
    pub store: StoreConfig,
    /// How long a request may wait for its commit or read index.
    pub op_timeout: Duration,
    /// How often the apply task checks leadership (failing proposals of a lost term)
    /// and expires due leases.
    pub tick: Duration,
    /// The cluster ID in response headers.
    pub cluster_id: u64,
    /// The members' addresses given at start (`--peers`, `--clients`, `--etcd-clients`),
    /// this node's own included (it publishes them): used for the members the replicated
    /// member table does not know.
    pub members: BTreeMap<NodeId, members::MemberAddrs>,
    /// Told every member's addresses whenever they change (the replicated table over the
    /// ones given at start): a server keeps its peer transport in step with it.
    pub on_addresses: Option<AddressSink>,
    /// How a follower reaches the leader with writes and keep-alives (`None`: it
    /// answers "not leader").
    pub forward: Option<forward::Forwarder>,
}

impl Default for EtcdNodeConfig {
    fn default() -> Self {
        EtcdNodeConfig {
            raft: raft::Config::default(),
            store: StoreConfig::default(),
            op_timeout: Duration::from_secs(2),
            tick: Duration::from_millis(10),
            cluster_id: 1,
            members: BTreeMap::new(),
            on_addresses: None,
            forward: None,
        }
    }
}

/// A callback told every member's addresses (node id to addresses) when they change.
#[derive(Clone)]
pub struct AddressSink(pub Arc<dyn Fn(&Addresses) + Send + Sync>);

/// Every member's addresses, by node id.
pub type Addresses = BTreeMap<NodeId, members::MemberAddrs>;

impl std::fmt::Debug for AddressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressSink")
    }
}

/// Counters of one replica, for tests and monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EtcdStats {
    /// The highest log index applied.
    pub last_applied: Index,
    /// Snapshots taken.
    pub snapshots_taken: u64,
    /// Snapshots installed (from the leader, or the node's own on restart).
    pub snapshots_installed: u64,
    /// Leases this node, as leader, proposed to expire.
    pub leases_expired: u64,
}

/// A proposal waiting for its entry.
struct Waiter {
    placed: Option<(Index, Term)>,
    tx: oneshot::Sender<Result<Applied, EtcdError>>,
}

/// What request handlers and the apply task share, under one lock: applying a command
/// and publishing it to watchers happen together, so a subscriber sees each revision
/// once (from the history or live).
struct State {
    store: Store,
    hub: WatchHub,
    waiters: BTreeMap<u64, Waiter>,
    next_seq: u64,
    /// While leading: the term and the lease deadlines.
    leases: Option<(Term, LeaseClock)>,
    /// Every member's addresses (replicated, in the snapshot).
    members: members::MemberTable,
    stats: EtcdStats,
}

impl State {
    /// Answers and removes every waiter for which `pick` gives an answer.
    fn answer(&mut self, mut pick: impl FnMut(u64, &Waiter) -> Option<Result<Applied, EtcdError>>) {
        let chosen: Vec<(u64, Result<Applied, EtcdError>)> = self
            .waiters
            .iter()
            .filter_map(|(seq, w)| pick(*seq, w).map(|r| (*seq, r)))
            .collect();
        for (seq, r) in chosen {
            if let Some(w) = self.waiters.remove(&seq) {
                let _ = w.tx.send(r);
            }
        }
    }

    /// The lease clock if this node leads in `term`, started afresh (every lease with
    /// its full TTL) when it has just become leader.
    fn clock(&mut self, term: Term, leader: bool) -> Option<&mut LeaseClock> {
        if !leader {
            self.leases = None;
            return None;
        }
        if self.leases.as_ref().map(|(t, _)| *t) != Some(term) {
            let mut clock = LeaseClock::new();
            clock.promote(
                self.store.leases().map(|(id, l)| (id, l.ttl)),
                Instant::now(),
            );
            self.leases = Some((term, clock));
        }
        self.leases.as_mut().map(|(_, c)| c)
    }
}

struct Inner {
    me: NodeId,
    raft: Raft,
    config: EtcdNodeConfig,
    incarnation: u64,
    state: Mutex<State>,
    /// The applied index, for linearizable reads waiting on it.
    applied: watch::Sender<Index>,
    killed: AtomicBool,
    stop: Notify,
    /// Held by the leader's membership requests: one at a time.
    member_changes: tokio::sync::Mutex<()>,
}

impl Inner {
    /// Tells the transport and the forwarder every member's addresses (after a change of
    /// the member table).
    fn addresses_changed(&self) {
        let all = members::effective(&self.lock().members, &self.config.members);
        if let Some(f) = &self.config.forward {
            f.set_addrs(
                all.iter()
                    .filter(|(id, _)| **id != self.me)
                    .filter_map(|(id, a)| Some((*id, a.client.clone()?)))
                    .collect(),
            );
        }
        if let Some(sink) = &self.config.on_addresses {
            (sink.0)(&all);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section completes its update or changes nothing, so a poisoned
        // lock holds a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One replica of the etcd state machine. Cloning gives another handle to it.
#[derive(Clone)]
pub struct EtcdNode {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EtcdNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdNode")
            .field("me", &self.inner.me)
            .finish()
    }
}

impl EtcdNode {
    /// Starts replica `me` of `peers` from `storage` (its snapshot first), reaching the
    /// other peers through `transport`. Must be called inside a tokio runtime.
    pub fn new<S: Storage, T: Transport>(
        peers: &[NodeId],
        me: NodeId,
        storage: S,
        config: EtcdNodeConfig,
        transport: T,
    ) -> Result<EtcdNode, RaftError> {
        Self::check(&config)?;
        let (apply_tx, apply_rx) = mpsc::channel(APPLY_QUEUE);
        let raft = Raft::new(peers, me, storage, apply_tx, config.raft.clone(), transport)?;
        Ok(Self::start(me, raft, config, apply_rx))
    }

    /// Starts replica `me` to join a running cluster ([`Raft::join`]): it is no member
    /// and never campaigns until a leader adds it (etcd's `member add --learner` on the
    /// cluster), unless `storage` holds a configuration (a restart). Must be called
    /// inside a tokio runtime.
    pub fn join<S: Storage, T: Transport>(
        me: NodeId,
        storage: S,
        config: EtcdNodeConfig,
        transport: T,
    ) -> Result<EtcdNode, RaftError> {
        Self::check(&config)?;
        let (apply_tx, apply_rx) = mpsc::channel(APPLY_QUEUE);
        let raft = Raft::join(me, storage, apply_tx, config.raft.clone(), transport)?;
        Ok(Self::start(me, raft, config, apply_rx))
    }

    fn check(config: &EtcdNodeConfig) -> Result<(), RaftError> {
        if config.op_timeout.is_zero() || config.tick.is_zero() {
            return Err(RaftError::InvalidConfig(
                "op_timeout and tick must be positive".into(),
            ));
        }
        Ok(())
    }

    fn start(
        me: NodeId,
        raft: Raft,
        config: EtcdNodeConfig,
        apply_rx: mpsc::Receiver<raft::ApplyMsg>,
    ) -> EtcdNode {
        let state = State {
            store: Store::new(config.store.clone()),
            hub: WatchHub::new(WATCH_QUEUE),
            waiters: BTreeMap::new(),
            next_seq: 1,
            leases: None,
            members: members::MemberTable::default(),
            stats: EtcdStats::default(),
        };
        let inner = Arc::new(Inner {
            me,
            raft,
            config,
            // Never 0 (0 marks entries nobody waits for).
            incarnation: rand::random::<u64>() | 1,
            state: Mutex::new(state),
            applied: watch::channel(0).0,
            killed: AtomicBool::new(false),
            stop: Notify::new(),
            member_changes: tokio::sync::Mutex::new(()),
        });
        inner.addresses_changed();
        tokio::spawn(apply::apply_loop(inner.clone(), apply_rx));
        let node = EtcdNode { inner };
        tokio::spawn(node.clone().publish_loop(PUBLISH_EVERY));
        node
    }

    /// The Raft peer: serve its `handle` to the other replicas.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.inner.me
    }

    /// The counters.
    pub fn stats(&self) -> EtcdStats {
        self.inner.lock().stats
    }

    /// Stops the replica and its Raft peer; waiting proposals are answered "stopped".
    /// Idempotent.
    pub fn kill(&self) {
        if self.inner.killed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.raft.kill();
        self.inner.stop.notify_one();
        self.inner
            .lock()
            .answer(|_, _| Some(Err(EtcdError::Stopped)));
    }

    /// Whether [`kill`](Self::kill) was called (or the replica stopped itself because a
    /// snapshot could not be loaded).
    pub fn killed(&self) -> bool {
        self.inner.killed.load(Ordering::Acquire)
    }

    /// The leader to forward to, when this node follows one it can reach.
    fn forward_target(&self) -> Option<(&forward::Forwarder, NodeId)> {
        let f = self.inner.config.forward.as_ref()?;
        if self.inner.raft.state().1 {
            return None;
        }
        let leader = self.inner.raft.status().leader?;
        (leader != self.inner.me && f.reaches(leader)).then_some((f, leader))
    }

    /// Proposes `command` through this node's Raft peer (which must lead).
    pub(crate) async fn propose_here(&self, command: Command) -> Result<Applied, EtcdError> {
        let inner = &*self.inner;
        if self.killed() {
            return Err(EtcdError::Stopped);
        }
        // Registered before proposing, so that the apply task cannot miss the entry.
        let (tx, rx) = oneshot::channel();
        let seq = {
            let mut st = inner.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.waiters.insert(seq, Waiter { placed: None, tx });
            seq
        };
        let _guard = WaiterGuard { inner, seq };
        let entry = codec::Entry {
            origin: inner.incarnation,
            seq,
            command,
        };
        let bytes = codec::encode(&entry).map_err(|_| EtcdError::RequestTooLarge)?;
        let (index, term) = inner.raft.start(bytes.into()).await.map_err(raft_error)?;
        if let Some(w) = inner.lock().waiters.get_mut(&seq) {
            w.placed = Some((index, term));
        }
        match tokio::time::timeout(inner.config.op_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Renews lease `id` on this node's clock (which must lead).
    pub(crate) fn keep_alive_here(&self, id: i64) -> Result<i64, EtcdError> {
        let (term, leader) = self.inner.raft.state();
        let mut st = self.inner.lock();
        let ttl = st.store.lease(id).ok_or(EtcdError::LeaseNotFound)?.ttl;
        let clock = st.clock(term, leader).ok_or(EtcdError::NotLeader)?;
        if !clock.contains(id) {
            // Its expiry is proposed already: too late to renew.
            return Err(EtcdError::LeaseNotFound);
        }
        clock.renew(id, ttl, Instant::now());
        Ok(ttl)
    }

    /// Lease `id`'s remaining seconds by this node's clock (`None` unless it leads).
    pub(crate) fn remaining_here(&self, id: i64) -> Option<i64> {
        let (term, leader) = self.inner.raft.state();
        let mut st = self.inner.lock();
        st.clock(term, leader)
            .and_then(|c| c.remaining(id, Instant::now()))
    }

    /// Waits until this node has applied everything committed before the call: a read
    /// index from the leader, retried (as etcd does) while leadership is in flux, until
    /// `op_timeout`.
    async fn linearize(&self) -> Result<(), EtcdError> {
        let inner = &self.inner;
        let work = async {
            let index = loop {
                match inner.raft.read_index().await {
                    Ok(index) => break index,
                    Err(
                        RaftError::Timeout
                        | RaftError::LeadershipLost
                        | RaftError::NotLeader { .. },
                    ) => tokio::time::sleep(READ_RETRY).await,
                    Err(e) => return Err(raft_error(e)),
                }
            };
            let mut applied = inner.applied.subscribe();
            applied
                .wait_for(|a| *a >= index)
                .await
                .map_err(|_| EtcdError::Stopped)?;
            Ok(())
        };
        match tokio::time::timeout(inner.config.op_timeout, work).await {
            Ok(result) => result,
            Err(_) if inner.raft.status().leader.is_none() => Err(EtcdError::NoLeader),
            Err(_) => Err(EtcdError::Timeout),
        }
    }
}

/// etcd's error for a failure of the Raft peer.
fn raft_error(e: RaftError) -> EtcdError {
    match e {
        RaftError::NotLeader { leader: Some(_) } => EtcdError::NotLeader,
        RaftError::NotLeader { leader: None } | RaftError::LeadershipLost => EtcdError::NoLeader,
        RaftError::Busy(_) => EtcdError::TooManyRequests,
        RaftError::Killed => EtcdError::Stopped,
        _ => EtcdError::Timeout,
    }
}

/// Removes a proposal's waiter however its handler ends.
struct WaiterGuard<'a> {
    inner: &'a Inner,
    seq: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.inner.lock().waiters.remove(&self.seq);
    }
}

impl EtcdBackend for EtcdNode {
    async fn propose(&self, command: Command) -> Result<Applied, EtcdError> {
        if let Some((f, leader)) = self.forward_target() {
            let reply = f
                .call(leader, &forward::ForwardRequest::Propose(command))
                .await;
            return forward::applied(reply);
        }
        self.propose_here(command).await
    }

    async fn read<R, F>(&self, consistency: ReadConsistency, f: F) -> Result<R, EtcdError>
    where
        F: FnOnce(&Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        if consistency == ReadConsistency::Linearizable {
            self.linearize().await?;
        }
        Ok(f(&self.inner.lock().store))
    }

    async fn watch(&self, start_revision: i64) -> Result<WatchFeed, EtcdError> {
        let mut st = self.inner.lock();
        let State { store, hub, .. } = &mut *st;
        hub.subscribe(store, start_revision)
    }

    async fn lease_keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        if let Some((f, leader)) = self.forward_target() {
            return match f
                .call(leader, &forward::ForwardRequest::KeepAlive(id))
                .await
            {
                forward::ForwardReply::Ttl(ttl) => Ok(ttl),
                forward::ForwardReply::Failed(e) => Err(e),
                _ => Err(EtcdError::NoLeader),
            };
        }
        self.keep_alive_here(id)
    }

    async fn lease_remaining(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        if let Some((f, leader)) = self.forward_target() {
            return match f
                .call(leader, &forward::ForwardRequest::Remaining(id))
                .await
            {
                forward::ForwardReply::Remaining(r) => Ok(r),
                forward::ForwardReply::Failed(e) => Err(e),
                _ => Err(EtcdError::NoLeader),
            };
        }
        Ok(self.remaining_here(id))
    }

    fn node_ids(&self) -> NodeIds {
        NodeIds {
            cluster_id: self.inner.config.cluster_id,
            member_id: self.inner.me,
            raft_term: self.inner.raft.state().0,
        }
    }

    async fn members(&self) -> Result<Vec<MemberInfo>, EtcdError> {
        Ok(self
            .member_views()
            .await?
            .into_iter()
            .map(MemberInfo::from)
            .collect())
    }

    async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(MemberInfo, Vec<MemberInfo>), EtcdError> {
        let r = self
            .member_op(members::MemberOp::Add {
                peer_urls,
                is_learner,
            })
            .await?;
        let added = r.added.ok_or(EtcdError::NoLeader)?;
        Ok((
            added.into(),
            r.members.into_iter().map(MemberInfo::from).collect(),
        ))
    }

    async fn member_remove(&self, id: u64) -> Result<Vec<MemberInfo>, EtcdError> {
        let r = self.member_op(members::MemberOp::Remove(id)).await?;
        Ok(r.members.into_iter().map(MemberInfo::from).collect())
    }

    async fn member_promote(&self, id: u64) -> Result<Vec<MemberInfo>, EtcdError> {
        let r = self.member_op(members::MemberOp::Promote(id)).await?;
        Ok(r.members.into_iter().map(MemberInfo::from).collect())
    }

    async fn status(&self) -> Result<NodeStatus, EtcdError> {
        let is_learner = match self.inner.raft.membership().await {
            Ok(m) => m.membership.learners.contains(&self.inner.me),
            Err(e) => return Err(raft_error(e)),
        };
        let rs = self.inner.raft.status();
        let st = self.inner.lock();
        Ok(NodeStatus {
            version: etcd_api::service::API_VERSION.into(),
            db_size: i64::try_from(st.store.approximate_size()).unwrap_or(i64::MAX),
            leader: rs.leader.unwrap_or(0),
            raft_index: rs.last_log_index,
            raft_term: rs.term,
            raft_applied_index: st.stats.last_applied,
            errors: Vec::new(),
            is_learner,
        })
    }
}

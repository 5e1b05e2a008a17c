//! The protocol state machine: Figure 2 of the extended Raft paper, driven by events.
//!
//! This module holds the state and the inputs; the rules and the [`Ready`] hand-over live in
//! one submodule per concern: [`election`], [`prevote`], [`check_quorum`] (and leader
//! stickiness), [`follower`] (receiving entries and snapshots), [`leader`] (sending them,
//! flow control, commit), [`reads`] (ReadIndex), [`lease`] (lease reads), [`ready`] (the
//! hand-over to the driver).

mod check_quorum;
mod conf_change;
mod election;
mod follower;
mod leader;
mod lease;
mod prevote;
mod reads;
mod ready;
mod transfer;

pub use lease::LeaseRead;

use crate::config::CoreConfig;
use crate::log::RaftLog;
use crate::membership::Membership;
use crate::message::{Envelope, Message};
use crate::progress::Progress;
use crate::read_only::ReadOnly;
#[cfg(doc)]
use crate::ready::Ready;
use crate::snapshot_conf;
use crate::tracker::ConfigTracker;
use crate::types::{
    Entry, EntryKind, HardState, Index, NodeId, RestoredState, Role, Snapshot, Term,
};
use crate::CoreError;
use bytes::Bytes;
use rand_core::RngCore;
use std::collections::{BTreeMap, BTreeSet};

/// One Raft peer's protocol logic. It does no I/O and reads no clock: the driver calls
/// [`tick`](RaftCore::tick), [`step`](RaftCore::step) and [`propose`](RaftCore::propose),
/// then carries out the [`Ready`] that [`take_ready`](RaftCore::take_ready) returns.
pub struct RaftCore<R: RngCore> {
    id: NodeId,
    peers: Vec<NodeId>,
    cfg: CoreConfig,
    rng: R,

    hard: HardState,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// The data of the snapshot the log starts after (empty when there is none).
    snapshot_data: Bytes,
    commit: Index,
    applied: Index,

    election_elapsed: u32,
    election_timeout: u32,
    heartbeat_elapsed: u32,
    /// Votes (or pre-votes) received in the current round.
    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    /// Check-quorum: the peers that answered this leader in the current window.
    recent_active: BTreeSet<NodeId>,

    // Output not yet handed to the driver.
    hard_dirty: bool,
    stable_last: Index,
    /// The log is durable through here, as far as the driver reported (only tracked for
    /// [`CoreConfig::leader_parallel_write`]): the leader's own vote toward a commit.
    durable: Index,
    pending_truncate: Option<Index>,
    pending_entries: Vec<Entry>,
    pending_snapshot: Option<Snapshot>,
    pending_restore: Option<Snapshot>,
    outbox: Vec<Envelope>,
    /// New entries not yet offered to the followers: proposals are sent once per
    /// [`Ready`], all together, rather than one message per proposal.
    broadcast_pending: bool,
    /// A follower waits to learn a commit index it was given as a read index: the next
    /// [`Ready`] tells it (with an empty AppendEntries if no entries go to it anyway), so
    /// that the read asked on its side does not wait for a heartbeat.
    commit_news: bool,
    /// A snapshot being received from the leader, chunk by chunk.
    incoming: Option<follower::IncomingSnapshot>,
    /// Reads in flight (ReadIndex).
    reads: ReadOnly,
    /// The configurations the log holds; the last one is in force.
    tracker: ConfigTracker,
    /// A leadership transfer under way (on the leader).
    transfer: Option<transfer::Transfer>,
    /// This node campaigns because its leader asked it to (TimeoutNow).
    transfer_campaign: bool,
    /// The driver's clock and the lease rules' state (lease mode only).
    lease: lease::LeaseState,
}

impl<R: RngCore> RaftCore<R> {
    /// Creates a core for peer `id` of the cluster `peers` (which must contain `id`),
    /// resuming from `restored`. All randomness comes from `rng`.
    ///
    /// `peers` are the voters of the bootstrap configuration: the one in force before
    /// any configuration entry. A restored snapshot's configuration, and configuration
    /// entries in the restored log, replace it.
    pub fn new(
        id: NodeId,
        peers: &[NodeId],
        cfg: CoreConfig,
        restored: RestoredState,
        rng: R,
    ) -> Result<Self, CoreError> {
        cfg.validate()?;
        if peers.is_empty() {
            return Err(CoreError::NoPeers);
        }
        let members: BTreeSet<NodeId> = peers.iter().copied().collect();
        if members.len() != peers.len() {
            return Err(CoreError::DuplicatePeer);
        }
        if !members.contains(&id) {
            return Err(CoreError::NotAMember(id));
        }
        Self::with_membership(id, Membership::with_voters(members), cfg, restored, rng)
    }

    /// Creates a core for a server joining a running cluster: until the leader's log or
    /// snapshot tells it its configuration (or `restored` holds one), it knows no
    /// members, never campaigns, and follows whichever leader contacts it.
    pub fn joining(
        id: NodeId,
        cfg: CoreConfig,
        restored: RestoredState,
        rng: R,
    ) -> Result<Self, CoreError> {
        cfg.validate()?;
        Self::with_membership(id, Membership::default(), cfg, restored, rng)
    }

    fn with_membership(
        id: NodeId,
        bootstrap: Membership,
        cfg: CoreConfig,
        restored: RestoredState,
        rng: R,
    ) -> Result<Self, CoreError> {
        let snapshot = restored.snapshot;
        let (snap_conf, service_data) = snapshot_conf::unwrap(&restored.snapshot_data);
        let mut tracker = ConfigTracker::new(snapshot.index, snap_conf.unwrap_or(bootstrap));
        for e in restored
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Config)
        {
            if let Some(m) = snapshot_conf::decode_membership(&e.data) {
                tracker.push(e.index, m);
            }
        }
        let log = RaftLog::new(snapshot, restored.entries)?;
        // A restarted service first gets its snapshot back, then only later entries.
        let pending_restore = (snapshot.index > 0).then(|| Snapshot {
            meta: snapshot,
            data: service_data,
        });
        let stable_last = log.last_index();
        let mut core = RaftCore {
            id,
            peers: tracker.current().members().into_iter().collect(),
            cfg,
            rng,
            hard: restored.hard_state,
            role: Role::Follower,
            leader: None,
            log,
            snapshot_data: restored.snapshot_data,
            commit: snapshot.index,
            applied: snapshot.index,
            election_elapsed: 0,
            election_timeout: 0,
            heartbeat_elapsed: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            recent_active: BTreeSet::new(),
            hard_dirty: false,
            stable_last,
            durable: stable_last,
            pending_truncate: None,
            pending_entries: Vec::new(),
            pending_snapshot: None,
            pending_restore,
            outbox: Vec::new(),
            broadcast_pending: false,
            commit_news: false,
            incoming: None,
            reads: ReadOnly::default(),
            tracker,
            transfer: None,
            transfer_campaign: false,
            lease: lease::LeaseState::default(),
        };
        core.reset_election_timer();
        Ok(core)
    }

    // ----- observation -------------------------------------------------------------

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// All members of the configuration in force (voters and learners; this node
    /// included while it is one), in ascending order.
    pub fn peers(&self) -> &[NodeId] {
        &self.peers
    }
    /// Current term.
    pub fn term(&self) -> Term {
        self.hard.term
    }
    /// Term and vote, as they will be persisted.
    pub fn hard_state(&self) -> HardState {
        self.hard
    }
    /// Current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// True when this peer believes it is the leader of its current term.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    /// The leader of the current term, when known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The log.
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    /// Highest index known to be committed.
    pub fn commit_index(&self) -> Index {
        self.commit
    }
    /// Highest index handed to the driver for applying.
    pub fn applied_index(&self) -> Index {
        self.applied
    }
    /// A leader's view of a follower's replication, for tests and metrics.
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }

    // ----- inputs --------------------------------------------------------------------

    /// One unit of logical time has passed.
    pub fn tick(&mut self) {
        self.reads_tick();
        match self.role {
            Role::Leader => {
                if !self.tick_check_quorum() {
                    return;
                }
                self.transfer_tick();
                self.heartbeat_elapsed += 1;
                if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                    self.heartbeat_elapsed = 0;
                    self.heartbeat();
                }
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.election_timeout {
                    if self.promotable() {
                        self.start_election();
                    } else {
                        // A learner or a removed server never campaigns; the count
                        // stops, still past the timeout (no leader heard recently).
                        self.election_elapsed = self.election_timeout;
                    }
                }
            }
        }
    }

    /// Asks the leader to append `data` to the log. Returns the index and term the entry
    /// will have if it commits, or [`CoreError::NotLeader`]. Empty `data` is refused with
    /// [`CoreError::EmptyCommand`]: an empty entry is the leader's no-op.
    pub fn propose(&mut self, data: Bytes) -> Result<(Index, Term), CoreError> {
        if self.role != Role::Leader {
            return Err(CoreError::NotLeader {
                leader: self.leader,
            });
        }
        if data.is_empty() {
            return Err(CoreError::EmptyCommand);
        }
        self.check_not_transferring()?;
        let entry = self.new_entry(data);
        let at = (entry.index, entry.term);
        self.append_local(entry);
        // Sent with the next Ready, together with every other proposal made before it:
        // one AppendEntries per follower, not one per proposal.
        self.broadcast_pending = true;
        self.maybe_commit();
        Ok(at)
    }

    /// The service has captured its state through `index` in `data`: the log up to
    /// `index` is discarded (its last term kept) and the snapshot is persisted in the next
    /// [`Ready`]. `index` must not exceed what was handed over for applying; a snapshot
    /// at or before the current one changes nothing.
    pub fn compact(&mut self, index: Index, data: Bytes) -> Result<(), CoreError> {
        if index > self.applied {
            return Err(CoreError::SnapshotBeyondApplied {
                index,
                applied: self.applied,
            });
        }
        if index <= self.log.snapshot().index {
            return Ok(());
        }
        // Applied entries are committed and held (or the snapshot point): the term is known.
        self.log.compact_to(index)?;
        self.pending_entries.retain(|e| e.index > index);
        self.stable_last = self.stable_last.max(index);
        self.tracker.compact(index);
        let data = self.wrap_snapshot(index, &data);
        self.snapshot_data = data.clone();
        self.pending_snapshot = Some(Snapshot {
            meta: self.log.snapshot(),
            data,
        });
        Ok(())
    }

    /// The snapshot the log starts after: its end and its bytes as persisted (the
    /// service's data wrapped with the configuration in force at its end; see
    /// `snapshot_conf`).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            meta: self.log.snapshot(),
            data: self.snapshot_data.clone(),
        }
    }

    /// A message arrived from `from`. Any node may send one: a leader of a configuration
    /// this node has not heard of yet must be followed, and votes or answers of
    /// non-members count for nothing. A message from this node itself, or one that fails
    /// [`Message::validate`] or contradicts what this node knows for certain (an
    /// acknowledgement of entries the leader never had, a rewrite of committed entries),
    /// is refused with an error and changes nothing.
    pub fn step(&mut self, from: NodeId, msg: Message) -> Result<(), CoreError> {
        if from == self.id {
            return Err(CoreError::UnknownPeer(from));
        }
        msg.validate()?;
        self.check_response_bounds(&msg)?;
        if self.ignores_vote_request(&msg) {
            return Ok(());
        }
        let term = msg.term();
        if term > self.hard.term && msg.raises_term() {
            let leader = matches!(
                msg,
                Message::AppendEntries { .. } | Message::ReadHeartbeat { .. }
            )
            .then_some(from);
            self.become_follower(term, leader);
        }
        self.note_active(from, &msg);
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => {
                self.on_request_vote(from, term, last_log_index, last_log_term);
                Ok(())
            }
            Message::RequestVoteResponse { term, granted } => {
                self.on_vote_response(from, term, granted);
                Ok(())
            }
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => {
                self.on_pre_vote(from, term, last_log_index, last_log_term);
                Ok(())
            }
            Message::PreVoteResponse { term, granted } => {
                self.on_pre_vote_response(from, term, granted);
                Ok(())
            }
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => self.on_append(
                from,
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            ),
            Message::AppendEntriesResponse {
                term,
                index,
                reject,
            } => {
                self.on_append_response(from, term, index, reject);
                Ok(())
            }
            Message::InstallSnapshot {
                term,
                meta,
                offset,
                data,
                done,
            } => {
                self.on_install_snapshot(from, term, meta, offset, data, done);
                Ok(())
            }
            Message::InstallSnapshotResponse {
                term,
                meta,
                offset,
                next_offset,
                installed,
            } => {
                self.on_install_snapshot_response(from, term, meta, offset, next_offset, installed);
                Ok(())
            }
            Message::ReadHeartbeat { term, ctx } => {
                self.on_read_heartbeat(from, term, ctx);
                Ok(())
            }
            Message::ReadHeartbeatResponse { term, ctx } => {
                self.on_read_heartbeat_response(from, term, ctx);
                Ok(())
            }
            Message::ReadIndex { ctx, .. } => {
                self.on_read_index(from, ctx);
                Ok(())
            }
            Message::ReadIndexResponse { ctx, index, .. } => {
                self.on_read_index_response(ctx, index);
                Ok(())
            }
            Message::TimeoutNow { term } => {
                self.on_timeout_now(from, term);
                Ok(())
            }
            Message::TransferVote {
                term,
                last_log_index,
                last_log_term,
            } => {
                self.on_request_vote(from, term, last_log_index, last_log_term);
                Ok(())
            }
        }
    }

    /// Refuses answers that name indices this leader never sent: accepting them would
    /// advance a match (and the commit index) past the end of the log.
    fn check_response_bounds(&self, msg: &Message) -> Result<(), CoreError> {
        if self.role != Role::Leader || msg.term() != self.hard.term {
            return Ok(());
        }
        let last = self.log.last_index();
        // Only acknowledgements: a rejection may answer a request of an earlier term
        // (the follower answers a stale request in its own, current term) and name an
        // index of that older log.
        let claimed = match msg {
            Message::AppendEntriesResponse {
                index,
                reject: None,
                ..
            } => *index,
            Message::InstallSnapshotResponse {
                meta,
                installed: true,
                ..
            } => meta.index,
            _ => return Ok(()),
        };
        if claimed > last {
            return Err(CoreError::MalformedMessage(format!(
                "answer for index {claimed} beyond the leader's last index {last}"
            )));
        }
        Ok(())
    }

    fn others(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .copied()
            .filter(|p| *p != self.id)
            .collect()
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        if let (
            Message::AppendEntries {
                prev_log_index,
                entries,
                leader_commit,
                ..
            },
            Some(pr),
        ) = (&msg, self.progress.get_mut(&to))
        {
            // A follower commits no further than the last entry the message vouches for.
            let last = entries.last().map_or(*prev_log_index, |e| e.index);
            pr.sent_append((*leader_commit).min(last));
        }
        self.outbox.push(Envelope {
            from: self.id,
            to,
            msg,
        });
    }
}

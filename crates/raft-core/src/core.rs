//! The protocol state machine: Figure 2 of the extended Raft paper, driven by events.

use crate::config::CoreConfig;
use crate::log::RaftLog;
use crate::message::{Envelope, Message, RejectHint};
use crate::progress::{Progress, ProgressState};
use crate::ready::Ready;
use crate::types::{
    Entry, HardState, Index, NodeId, RestoredState, Role, Snapshot, SnapshotMeta, Term,
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
    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,

    // Output not yet handed to the driver.
    hard_dirty: bool,
    stable_last: Index,
    pending_truncate: Option<Index>,
    pending_entries: Vec<Entry>,
    pending_snapshot: Option<Snapshot>,
    pending_restore: Option<Snapshot>,
    outbox: Vec<Envelope>,
    /// A snapshot being received from the leader, chunk by chunk.
    incoming: Option<(SnapshotMeta, Vec<u8>)>,
}

impl<R: RngCore> RaftCore<R> {
    /// Creates a core for peer `id` of the cluster `peers` (which must contain `id`),
    /// resuming from `restored`. All randomness comes from `rng`.
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
        let snapshot = restored.snapshot;
        let log = RaftLog::new(snapshot, restored.entries)?;
        // A restarted service first gets its snapshot back, then only later entries.
        let pending_restore = (snapshot.index > 0).then(|| Snapshot {
            meta: snapshot,
            data: restored.snapshot_data.clone(),
        });
        let stable_last = log.last_index();
        let mut core = RaftCore {
            id,
            peers: members.into_iter().collect(),
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
            hard_dirty: false,
            stable_last,
            pending_truncate: None,
            pending_entries: Vec::new(),
            pending_snapshot: None,
            pending_restore,
            outbox: Vec::new(),
            incoming: None,
        };
        core.reset_election_timer();
        Ok(core)
    }

    // ----- observation -------------------------------------------------------------

    /// This peer's id.
    pub fn id(&self) -> NodeId {
        self.id
    }
    /// All peers of the cluster, this one included, in ascending order.
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
        match self.role {
            Role::Leader => {
                self.heartbeat_elapsed += 1;
                if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
                    self.heartbeat_elapsed = 0;
                    self.heartbeat();
                }
            }
            Role::Follower | Role::Candidate => {
                self.election_elapsed += 1;
                if self.election_elapsed >= self.election_timeout {
                    self.campaign();
                }
            }
        }
    }

    /// Asks the leader to append `data` to the log. Returns the index and term the entry
    /// will have if it commits, or [`CoreError::NotLeader`].
    pub fn propose(&mut self, data: Bytes) -> Result<(Index, Term), CoreError> {
        if self.role != Role::Leader {
            return Err(CoreError::NotLeader {
                leader: self.leader,
            });
        }
        let entry = Entry {
            term: self.hard.term,
            index: self.log.last_index() + 1,
            data,
        };
        let at = (entry.index, entry.term);
        self.append_local(entry);
        // Replication starts at once; the driver's batching merges proposals that
        // arrive together into one message per follower.
        for peer in self.others() {
            self.send_append(peer, false);
        }
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
        self.log.compact_to(index);
        self.pending_entries.retain(|e| e.index > index);
        self.stable_last = self.stable_last.max(index);
        self.snapshot_data = data.clone();
        self.pending_snapshot = Some(Snapshot {
            meta: self.log.snapshot(),
            data,
        });
        Ok(())
    }

    /// The snapshot the log starts after: its end and its data.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            meta: self.log.snapshot(),
            data: self.snapshot_data.clone(),
        }
    }

    /// A message arrived from `from`.
    pub fn step(&mut self, from: NodeId, msg: Message) -> Result<(), CoreError> {
        if from == self.id || !self.peers.contains(&from) {
            return Err(CoreError::UnknownPeer(from));
        }
        let term = msg.term();
        if term > self.hard.term {
            let leader = matches!(msg, Message::AppendEntries { .. }).then_some(from);
            self.become_follower(term, leader);
        }
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_request_vote(from, term, last_log_index, last_log_term),
            Message::RequestVoteResponse { term, granted } => {
                self.on_vote_response(from, term, granted)
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
            } => self.on_append_response(from, term, index, reject),
            Message::InstallSnapshot {
                term,
                meta,
                offset,
                data,
                done,
            } => self.on_install_snapshot(from, term, meta, offset, data, done),
            Message::InstallSnapshotResponse {
                term,
                meta,
                next_offset,
                installed,
            } => self.on_install_snapshot_response(from, term, meta, next_offset, installed),
        }
        Ok(())
    }

    /// True when [`take_ready`](Self::take_ready) would return work.
    pub fn has_ready(&self) -> bool {
        self.hard_dirty
            || self.pending_truncate.is_some()
            || !self.pending_entries.is_empty()
            || !self.outbox.is_empty()
            || self.pending_snapshot.is_some()
            || self.pending_restore.is_some()
            || self.applied < self.commit
    }

    /// Hands over everything to persist, send and apply. See [`Ready`] for the order the
    /// driver must follow.
    pub fn take_ready(&mut self) -> Ready {
        let hard_state = if self.hard_dirty {
            self.hard_dirty = false;
            Some(self.hard)
        } else {
            None
        };
        let entries = std::mem::take(&mut self.pending_entries);
        self.stable_last = self.log.last_index();
        let restore = self.pending_restore.take();
        let committed = self.log.slice(self.applied + 1, self.commit).to_vec();
        self.applied = self.applied.max(committed.last().map_or(0, |e| e.index));
        Ready {
            hard_state,
            truncate_from: self.pending_truncate.take(),
            entries,
            snapshot: self.pending_snapshot.take(),
            messages: std::mem::take(&mut self.outbox),
            restore,
            committed,
        }
    }

    // ----- elections -------------------------------------------------------------------

    fn others(&self) -> Vec<NodeId> {
        self.peers
            .iter()
            .copied()
            .filter(|p| *p != self.id)
            .collect()
    }

    fn quorum(&self) -> usize {
        self.peers.len() / 2 + 1
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let span = u64::from(self.cfg.election_timeout_max - self.cfg.election_timeout_min) + 1;
        self.election_timeout = self.cfg.election_timeout_min + (self.rng.next_u64() % span) as u32;
    }

    fn set_hard(&mut self, term: Term, vote: Option<NodeId>) {
        if self.hard.term != term || self.hard.vote != vote {
            self.hard = HardState { term, vote };
            self.hard_dirty = true;
        }
    }

    /// Steps down to follower, adopting `term` if it is newer. The election timer keeps
    /// running: Figure 2 resets it only when a vote is granted or the current leader is
    /// heard from. Resetting it on every higher term would let a candidate with a stale
    /// log, which can never win, keep the up-to-date peers from ever campaigning.
    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.hard.term {
            self.set_hard(term, None);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
    }

    fn campaign(&mut self) {
        let term = self.hard.term + 1;
        self.set_hard(term, Some(self.id));
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.reset_election_timer();
        if self.quorum() == 1 {
            self.become_leader();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.others() {
            self.send(
                peer,
                Message::RequestVote {
                    term,
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.heartbeat_elapsed = 0;
        self.votes.clear();
        let next = self.log.last_index() + 1;
        self.progress = self
            .others()
            .into_iter()
            .map(|p| (p, Progress::new(next)))
            .collect();
        // No no-op entry: the k-th command of an undisturbed cluster lands at index k.
        // Announce leadership at once so that other candidates stand down.
        self.heartbeat();
    }

    fn on_request_vote(&mut self, from: NodeId, term: Term, last_index: Index, last_term: Term) {
        let can_vote = self.hard.vote.is_none() || self.hard.vote == Some(from);
        #[cfg(feature = "bug-double-vote")]
        let can_vote = can_vote || self.role == Role::Follower;
        let up_to_date = self.log.is_up_to_date(last_index, last_term);
        #[cfg(feature = "bug-no-election-restriction")]
        let up_to_date = {
            let _ = up_to_date;
            true
        };
        let granted = term == self.hard.term && can_vote && up_to_date;
        if granted {
            #[cfg(not(feature = "bug-forget-vote"))]
            self.set_hard(term, Some(from));
            #[cfg(feature = "bug-forget-vote")]
            {
                self.hard.vote = Some(from);
            }
            // Figure 2: granting a vote resets the election timer.
            self.reset_election_timer();
        }
        self.send(
            from,
            Message::RequestVoteResponse {
                term: self.hard.term,
                granted,
            },
        );
    }

    fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::Candidate || term != self.hard.term {
            return;
        }
        self.votes.insert(from, granted);
        let yes = self.votes.values().filter(|g| **g).count();
        if yes >= self.quorum() {
            self.become_leader();
        }
    }

    // ----- replication: follower side --------------------------------------------------

    fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        if term < self.hard.term {
            let index = prev_index;
            self.send(
                from,
                Message::AppendEntriesResponse {
                    term: self.hard.term,
                    index,
                    reject: Some(self.reject_hint(prev_index)),
                },
            );
            return;
        }
        // A valid leader for our term: a candidate stands down, everyone resets its timer.
        if self.role != Role::Follower {
            self.become_follower(term, Some(from));
        }
        self.leader = Some(from);
        self.election_elapsed = 0;

        // Entries at or before our snapshot are committed, so they match by definition.
        let snap = self.log.snapshot();
        let (prev_index, prev_term, entries) = if prev_index < snap.index {
            let skip = (snap.index - prev_index) as usize;
            let rest = entries.into_iter().skip(skip).collect::<Vec<_>>();
            (snap.index, snap.term, rest)
        } else {
            (prev_index, prev_term, entries)
        };

        if self.log.term(prev_index) != Some(prev_term) {
            self.send(
                from,
                Message::AppendEntriesResponse {
                    term: self.hard.term,
                    index: prev_index,
                    reject: Some(self.reject_hint(prev_index)),
                },
            );
            return;
        }

        let last_new = prev_index + entries.len() as Index;
        for entry in entries {
            match self.log.term(entry.index) {
                Some(t) if t == entry.term => {
                    #[cfg(feature = "bug-truncate-on-stale-append")]
                    if entry.index == last_new && last_new < self.log.last_index() {
                        self.truncate_local(entry.index + 1);
                    }
                }
                Some(_) => {
                    // Only a conflicting suffix is removed, never entries that agree, so a
                    // delayed or duplicated AppendEntries cannot delete anything.
                    self.truncate_local(entry.index);
                    self.append_local(entry);
                }
                None => self.append_local(entry),
            }
        }
        let commit = leader_commit.min(last_new);
        if commit > self.commit {
            self.commit = commit;
        }
        self.send(
            from,
            Message::AppendEntriesResponse {
                term: self.hard.term,
                index: last_new,
                reject: None,
            },
        );
    }

    fn reject_hint(&self, prev_index: Index) -> RejectHint {
        let last_index = self.log.last_index();
        match self.log.term(prev_index) {
            Some(t) if prev_index <= last_index => RejectHint {
                conflict_term: Some(t),
                first_index_of_term: self.log.first_index_of_term_before(prev_index),
                last_index,
            },
            _ => RejectHint {
                conflict_term: None,
                first_index_of_term: 0,
                last_index,
            },
        }
    }

    fn append_local(&mut self, entry: Entry) {
        self.pending_entries.push(entry.clone());
        self.log.push(entry);
    }

    fn truncate_local(&mut self, index: Index) {
        debug_assert!(index > self.commit, "truncating committed entries");
        self.log.truncate_from(index);
        self.pending_entries.retain(|e| e.index < index);
        if index <= self.stable_last {
            self.stable_last = index - 1;
            self.pending_truncate = Some(self.pending_truncate.map_or(index, |t| t.min(index)));
        }
    }

    // ----- replication: leader side ----------------------------------------------------

    fn heartbeat(&mut self) {
        for peer in self.others() {
            let Some(pr) = self.progress.get_mut(&peer) else {
                continue;
            };
            // Any AppendEntries resets the follower's election timer, so a follower that
            // was just sent one, with the current commit index, needs no heartbeat.
            let sent_recently = pr.sent_since_heartbeat && pr.commit_sent >= self.commit;
            match pr.state {
                ProgressState::Probe | ProgressState::Snapshot { .. } => {
                    // The outstanding probe or chunk may have been lost: send it again.
                    pr.probe_sent = false;
                    self.send_append(peer, true);
                }
                ProgressState::Replicate => {
                    let stalled = !pr.inflight.is_empty() && !pr.acked_since_heartbeat;
                    pr.acked_since_heartbeat = false;
                    if stalled {
                        // Nothing acknowledged for a whole heartbeat interval: assume the
                        // stream broke, and probe from what is known to match.
                        let next = pr.matched + 1;
                        pr.become_probe(next);
                        self.send_append(peer, true);
                    } else if !sent_recently {
                        let at = if pr.inflight.is_empty() {
                            pr.next - 1
                        } else {
                            pr.matched
                        };
                        if at < self.log.snapshot().index {
                            // What the follower needs is compacted away: send the snapshot.
                            let index = self.log.snapshot().index;
                            pr.become_snapshot(index);
                            self.send_append(peer, true);
                        } else {
                            self.send_heartbeat(peer, at);
                        }
                    }
                }
            }
            // What the heartbeat itself sent does not count for the next one.
            if let Some(pr) = self.progress.get_mut(&peer) {
                pr.sent_since_heartbeat = false;
            }
        }
    }

    fn send_heartbeat(&mut self, peer: NodeId, prev_index: Index) {
        let Some(prev_term) = self.log.term(prev_index) else {
            return;
        };
        let msg = Message::AppendEntries {
            term: self.hard.term,
            prev_log_index: prev_index,
            prev_log_term: prev_term,
            entries: Vec::new(),
            leader_commit: self.commit,
        };
        self.send(peer, msg);
    }

    /// Sends what `peer` is missing, as far as flow control allows. With `allow_empty`, a
    /// message goes out even when there is nothing new (a heartbeat or probe).
    fn send_append(&mut self, peer: NodeId, allow_empty: bool) {
        loop {
            let Some(pr) = self.progress.get(&peer) else {
                return;
            };
            let next = pr.next;
            match pr.state {
                ProgressState::Snapshot { .. } => {
                    self.send_snapshot_chunk(peer);
                    return;
                }
                ProgressState::Probe if pr.probe_sent => return,
                ProgressState::Replicate
                    if pr.inflight.len() >= self.cfg.max_inflight_msgs
                        || pr.inflight_bytes() >= self.cfg.max_inflight_bytes =>
                {
                    return
                }
                _ => {}
            }
            let has_new = next <= self.log.last_index();
            if !has_new && !allow_empty {
                return;
            }
            let prev_index = next - 1;
            let Some(prev_term) = self.log.term(prev_index) else {
                // The entries this follower needs were compacted: send the snapshot.
                let index = self.log.snapshot().index;
                if let Some(pr) = self.progress.get_mut(&peer) {
                    pr.become_snapshot(index);
                }
                self.send_snapshot_chunk(peer);
                return;
            };
            let entries = self.log.slice_bytes(next, self.cfg.max_msg_bytes).to_vec();
            let last = prev_index + entries.len() as Index;
            let bytes: usize = entries.iter().map(Entry::size).sum();
            let Some(pr) = self.progress.get_mut(&peer) else {
                return;
            };
            match pr.state {
                ProgressState::Probe | ProgressState::Snapshot { .. } => pr.probe_sent = true,
                ProgressState::Replicate => {
                    if !entries.is_empty() {
                        pr.inflight.push_back((last, bytes));
                        pr.next = last + 1;
                    }
                }
            }
            let streaming = pr.state == ProgressState::Replicate && !entries.is_empty();
            let msg = Message::AppendEntries {
                term: self.hard.term,
                prev_log_index: prev_index,
                prev_log_term: prev_term,
                entries,
                leader_commit: self.commit,
            };
            self.send(peer, msg);
            // While streaming, keep going until the follower has everything or the
            // in-flight window is full.
            if !streaming || last >= self.log.last_index() {
                return;
            }
        }
    }

    fn on_append_response(
        &mut self,
        from: NodeId,
        term: Term,
        index: Index,
        reject: Option<RejectHint>,
    ) {
        if self.role != Role::Leader || term != self.hard.term {
            return;
        }
        let last_index = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        match reject {
            None => {
                let advanced = pr.ack(index);
                if pr.state != ProgressState::Replicate {
                    pr.become_replicate();
                }
                if advanced {
                    self.maybe_commit();
                }
                self.send_append(from, false);
            }
            Some(hint) => {
                // A rejection of anything already known to match is stale: ignore it, as
                // any rejection while a snapshot is on its way.
                if index < pr.matched || matches!(pr.state, ProgressState::Snapshot { .. }) {
                    return;
                }
                if pr.state == ProgressState::Probe && index + 1 != pr.next {
                    return;
                }
                let next = match hint.conflict_term {
                    None => hint.last_index + 1,
                    Some(t) => match self.log.last_index_of_term(t) {
                        Some(i) => i + 1,
                        None => hint.first_index_of_term,
                    },
                };
                // Never step back past a known match or forward past what was rejected.
                let next = next.min(index).min(last_index + 1).max(pr.matched + 1);
                let Some(pr) = self.progress.get_mut(&from) else {
                    return;
                };
                pr.acked_since_heartbeat = true;
                pr.become_probe(next);
                self.send_append(from, true);
            }
        }
    }

    fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let meta = self.log.snapshot();
        let len = self.snapshot_data.len() as u64;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        let offset = match pr.state {
            // A newer snapshot replaces the one being sent: start it from the beginning.
            ProgressState::Snapshot { index, offset } if index == meta.index => offset.min(len),
            _ => {
                pr.become_snapshot(meta.index);
                0
            }
        };
        if pr.probe_sent {
            return;
        }
        pr.probe_sent = true;
        let end = (offset + self.cfg.snapshot_chunk_bytes as u64).min(len);
        let data = self.snapshot_data.slice(offset as usize..end as usize);
        let msg = Message::InstallSnapshot {
            term: self.hard.term,
            meta,
            offset,
            data,
            done: end == len,
        };
        self.send(peer, msg);
    }

    fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        next_offset: u64,
        installed: bool,
    ) {
        if self.role != Role::Leader || term != self.hard.term {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.acked_since_heartbeat = true;
        if installed {
            let advanced = pr.ack(meta.index);
            if matches!(pr.state, ProgressState::Snapshot { .. }) {
                pr.become_replicate();
            }
            if advanced {
                self.maybe_commit();
            }
            self.send_append(from, false);
            return;
        }
        match pr.state {
            ProgressState::Snapshot { index, .. } if index == meta.index => {
                // Resume wherever the follower says it is.
                pr.state = ProgressState::Snapshot {
                    index,
                    offset: next_offset,
                };
                pr.probe_sent = false;
                self.send_snapshot_chunk(from);
            }
            _ => {}
        }
    }

    fn on_install_snapshot(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        let reply = |core: &mut Self, next_offset: u64, installed: bool| {
            let term = core.hard.term;
            core.send(
                from,
                Message::InstallSnapshotResponse {
                    term,
                    meta,
                    next_offset,
                    installed,
                },
            );
        };
        if term < self.hard.term {
            reply(self, 0, false);
            return;
        }
        if self.role != Role::Follower {
            self.become_follower(term, Some(from));
        }
        self.leader = Some(from);
        self.election_elapsed = 0;

        // Everything in a snapshot at or before our commit index is already here: a stale
        // or duplicated snapshot must never roll the service back.
        #[cfg(not(feature = "bug-install-stale-snapshot"))]
        if meta.index <= self.commit {
            self.incoming = None;
            reply(self, offset + data.len() as u64, true);
            return;
        }
        let expected = match &self.incoming {
            Some((m, buf)) if *m == meta => buf.len() as u64,
            _ => 0,
        };
        if offset != expected {
            // A lost or reordered chunk: tell the leader where to resume.
            reply(self, expected, false);
            return;
        }
        let buf = match &mut self.incoming {
            Some((m, buf)) if *m == meta => buf,
            _ => &mut self.incoming.insert((meta, Vec::new())).1,
        };
        buf.extend_from_slice(&data);
        let received = buf.len() as u64;
        if !done {
            reply(self, received, false);
            return;
        }
        let data = match self.incoming.take() {
            Some((_, buf)) => Bytes::from(buf),
            None => Bytes::new(),
        };
        self.install_snapshot(Snapshot { meta, data });
        reply(self, received, true);
    }

    /// Replaces the log's prefix (or all of it) with a snapshot from the leader, and
    /// arranges for it to be persisted and handed to the service.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.meta;
        let kept_suffix = self.log.term(meta.index) == Some(meta.term);
        self.log.install(meta);
        if kept_suffix {
            self.pending_entries.retain(|e| e.index > meta.index);
        } else {
            // Nothing of the old log survives, in memory or in storage.
            self.pending_entries.clear();
            self.pending_truncate = Some(meta.index + 1);
        }
        self.stable_last = self.stable_last.max(meta.index).min(self.log.last_index());
        self.snapshot_data = snapshot.data.clone();
        self.commit = self.commit.max(meta.index);
        if meta.index > self.applied {
            self.applied = meta.index;
            self.pending_restore = Some(snapshot.clone());
        }
        self.pending_snapshot = Some(snapshot);
    }

    fn maybe_commit(&mut self) {
        let mut matched: Vec<Index> = self.progress.values().map(|p| p.matched).collect();
        matched.push(self.log.last_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matched[self.quorum() - 1];
        if candidate <= self.commit {
            return;
        }
        // Figure 8: only an entry of the leader's own term is committed by counting
        // replicas; earlier entries commit with it.
        #[cfg(not(feature = "bug-commit-old-term"))]
        if self.log.term(candidate) != Some(self.hard.term) {
            return;
        }
        self.commit = candidate;
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        if let (Message::AppendEntries { leader_commit, .. }, Some(pr)) =
            (&msg, self.progress.get_mut(&to))
        {
            pr.sent_since_heartbeat = true;
            pr.commit_sent = pr.commit_sent.max(*leader_commit);
        }
        self.outbox.push(Envelope {
            from: self.id,
            to,
            msg,
        });
    }
}

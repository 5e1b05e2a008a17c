//! Membership changes in the core (thesis chapter 4): proposing configuration entries,
//! their effect on append (and their undoing on truncation), the quorums every decision
//! counts with, and what a leader does once a change commits.
//!
//! A configuration entry ([`EntryKind::Config`]) holds the whole new [`Membership`]
//! (postcard). It is in force on a node from the moment the entry is in its log, leader
//! and followers alike, committed or not; a truncation falls back to the previous one.

use super::RaftCore;
use crate::membership::{ConfChange, Membership};
use crate::progress::Progress;
use crate::quorum::{JointConfig, VoteResult};
use crate::snapshot_conf;
use crate::types::{Entry, EntryKind, Index, NodeId, Role, Term};
use crate::CoreError;
use bytes::Bytes;
use rand_core::RngCore;
use std::collections::BTreeSet;

impl<R: RngCore> RaftCore<R> {
    /// The configuration in force on this node: the last one its log holds, committed or
    /// not.
    pub fn membership(&self) -> &Membership {
        self.tracker.current()
    }

    /// Index of the entry that set the configuration in force (the snapshot's index, or 0
    /// for the bootstrap configuration, when no entry after them did).
    pub fn membership_index(&self) -> Index {
        self.tracker.current_index()
    }

    /// True while a change is not finished: the configuration in force is not committed,
    /// or it is joint (the leader still has to leave it).
    pub fn change_in_progress(&self) -> bool {
        self.tracker.current_index() > self.commit || self.tracker.current().is_joint()
    }

    /// Asks the leader to make one configuration step (see [`ConfChange`]). Returns the
    /// index and term of the configuration entry, in force on the leader at once.
    ///
    /// One change at a time (the fix to the single-server bug, thesis §4.1 and its
    /// errata): refused with [`CoreError::ChangeInProgress`] while the configuration in
    /// force is not committed or is joint (the leader leaves a joint configuration on its
    /// own once it commits), and with [`CoreError::NotReady`] until an entry of the
    /// leader's own term is committed (a no-op is appended for that if needed; retry).
    pub fn propose_conf_change(&mut self, change: &ConfChange) -> Result<(Index, Term), CoreError> {
        self.check_can_propose()?;
        if self.change_in_progress() {
            return Err(CoreError::ChangeInProgress);
        }
        if self.log.term(self.commit) != Some(self.hard.term) {
            if self.log.last_term() != self.hard.term {
                self.append_empty();
            }
            return Err(CoreError::NotReady);
        }
        let next = self.tracker.current().apply(change)?;
        next.validate()?;
        Ok(self.append_conf(&next))
    }

    /// Moves the voters to `voters`: one single-server step when they differ by one voter,
    /// otherwise a joint configuration that the leader leaves on its own once it commits.
    /// The same rules as [`propose_conf_change`](Self::propose_conf_change) apply.
    pub fn propose_voters(
        &mut self,
        voters: &BTreeSet<NodeId>,
    ) -> Result<(Index, Term), CoreError> {
        self.check_can_propose()?;
        if self.change_in_progress() {
            return Err(CoreError::ChangeInProgress);
        }
        let steps = self.tracker.current().plan(voters)?;
        match steps.first() {
            Some(step) => self.propose_conf_change(step),
            // Already so: the configuration in force is committed.
            None => {
                let index = self.tracker.current_index();
                Ok((index, self.log.term(index).unwrap_or(0)))
            }
        }
    }

    /// Appends a configuration entry on the leader: in force at once.
    fn append_conf(&mut self, next: &Membership) -> (Index, Term) {
        // Stamped like every entry a leader creates (lease mode reads the stamps).
        let entry = Entry {
            kind: EntryKind::Config,
            ..self.new_entry(snapshot_conf::encode_membership(next))
        };
        let at = (entry.index, entry.term);
        self.append_local(entry);
        self.broadcast_pending = true;
        self.maybe_commit();
        at
    }

    /// Appends the leader's empty no-op entry, so that an entry of its term commits.
    fn append_empty(&mut self) {
        let entry = self.new_entry(Bytes::new());
        self.append_local(entry);
        self.broadcast_pending = true;
        self.maybe_commit();
    }

    /// An entry was appended to the log: a configuration entry takes effect now.
    pub(super) fn conf_on_append(&mut self, entry: &Entry) {
        if entry.kind != EntryKind::Config {
            return;
        }
        // Planted bug: a configuration takes effect only once committed (see
        // `bug_conf_on_commit`), not on append.
        #[cfg(raft_bug = "config-on-commit")]
        if entry.index > self.commit {
            return;
        }
        match snapshot_conf::decode_membership(&entry.data) {
            Some(m) => {
                self.tracker.push(entry.index, m);
                self.conf_changed();
            }
            // Only a broken leader writes one; the entry stays a no-op for the core.
            None => crate::invariant!(
                false,
                "node {} got an unreadable configuration entry at {}",
                self.id,
                entry.index
            ),
        }
    }

    /// Planted bug `config-on-commit`: the commit index moves from `from` to `to`; the
    /// configuration entries it passes take effect only now.
    #[cfg(raft_bug = "config-on-commit")]
    pub(super) fn bug_conf_on_commit(&mut self, from: Index, to: Index) {
        for index in from + 1..=to {
            let Some(entry) = self.log.entry(index) else {
                continue;
            };
            if entry.kind != EntryKind::Config {
                continue;
            }
            if let Some(m) = snapshot_conf::decode_membership(&entry.data) {
                self.tracker.push(index, m);
                self.conf_changed();
            }
        }
    }

    /// Entries from `index` on were removed: configurations they set are undone.
    pub(super) fn conf_on_truncate(&mut self, index: Index) {
        if self.tracker.truncate_from(index) {
            self.conf_changed();
        }
    }

    /// The configuration in force changed: the peer list, the leader's progress table and
    /// an election in progress follow it.
    pub(super) fn conf_changed(&mut self) {
        let members = self.tracker.current().members();
        self.peers = members.iter().copied().collect();
        if self.role == Role::Leader {
            let next = self.log.last_index() + 1;
            self.progress.retain(|id, _| members.contains(id));
            for &id in &members {
                if id != self.id {
                    self.progress
                        .entry(id)
                        .or_insert_with(|| Progress::new(next));
                }
            }
        }
        if matches!(self.role, Role::Candidate | Role::PreCandidate) {
            if !self.promotable() {
                let term = self.hard.term;
                self.become_follower(term, None);
            } else if self.poll() == VoteResult::Won {
                // The new configuration may already be satisfied by the votes received.
                match self.role {
                    Role::Candidate => self.become_leader(),
                    _ => self.campaign(),
                }
            }
        }
    }

    /// The latest round of read confirmations a quorum of the configuration in force
    /// acknowledged (both majorities while joint).
    pub(super) fn confirmed_read_round(&self) -> u64 {
        self.tracker
            .current()
            .quorum()
            .committed_index(|id| Some(self.reads.acked_round(self.id, id)))
    }

    /// A snapshot through `index` was installed from the leader: its configuration is the
    /// new base. Returns the service's part of its bytes.
    pub(super) fn conf_on_install(
        &mut self,
        index: Index,
        bytes: &Bytes,
        kept_suffix: bool,
    ) -> Bytes {
        let (conf, data) = snapshot_conf::unwrap(bytes);
        let conf = conf.unwrap_or_else(|| self.tracker.at(index).clone());
        self.tracker.install(index, conf, kept_suffix);
        self.conf_changed();
        data
    }

    /// Refuses a proposal unless this node leads and is not handing over leadership.
    fn check_can_propose(&self) -> Result<(), CoreError> {
        if self.role != Role::Leader {
            return Err(CoreError::NotLeader {
                leader: self.leader,
            });
        }
        self.check_not_transferring()
    }

    /// The snapshot bytes to persist and send for a snapshot through `index`.
    pub(super) fn wrap_snapshot(&self, index: Index, data: &Bytes) -> Bytes {
        snapshot_conf::wrap(self.tracker.at(index), data)
    }

    /// True when this node may campaign: it votes in the configuration in force, or it
    /// voted in the one before and the configuration that removed it is not known to be
    /// committed. Thesis §4.2.2: such a server may be needed to commit its own removal
    /// (the others may lack the entry, and it refuses them its vote for that), so it
    /// still campaigns, without counting its own vote. Without this, a leader that
    /// appended its own removal and lost leadership before it committed left a cluster
    /// in which nobody could be elected.
    pub(super) fn promotable(&self) -> bool {
        let current = self.tracker.current();
        if current.is_voter(self.id) {
            return true;
        }
        let at = self.tracker.current_index();
        at > self.commit && at > 0 && self.tracker.at(at - 1).is_voter(self.id)
    }

    /// The outcome of the current (pre-)vote, counted in the configuration in force
    /// (both majorities while joint).
    pub(super) fn poll(&self) -> VoteResult {
        let quorum = self.decision_quorum();
        // Planted bug: the learners' votes count as if they were voters.
        #[cfg(raft_bug = "learner-votes")]
        let quorum = {
            let m = self.tracker.current();
            let all = m.voters.iter().chain(&m.learners).copied();
            let incoming = crate::quorum::MajorityConfig::new(all);
            match quorum.outgoing() {
                Some(out) => JointConfig::joint(incoming, out.clone()),
                None => JointConfig::simple(incoming),
            }
        };
        quorum.vote_result(|id| self.votes.get(&id).copied())
    }

    /// The quorums that elections and commits count with: those of the configuration in
    /// force (both majorities while joint).
    fn decision_quorum(&self) -> JointConfig {
        let quorum = self.tracker.current().quorum();
        // Planted bug: while joint, only the incoming voters' majority is asked.
        #[cfg(raft_bug = "joint-new-majority-only")]
        let quorum = JointConfig::simple(quorum.incoming().clone());
        quorum
    }

    /// Check-quorum: true when the voters that answered in this window (and the leader
    /// itself) make a quorum of the configuration in force.
    pub(super) fn quorum_active(&self) -> bool {
        self.tracker
            .current()
            .quorum()
            .vote_result(|id| Some(id == self.id || self.recent_active.contains(&id)))
            == VoteResult::Won
    }

    /// The highest index a quorum of the configuration in force holds (the leader counts
    /// itself only if it votes in it).
    pub(super) fn quorum_matched(&self) -> Index {
        let last = self.own_match();
        let matched = |id| {
            if id == self.id {
                Some(last)
            } else {
                self.progress.get(&id).map(Progress::matched)
            }
        };
        // A build with the planted bug asks the quorum it plants (`decision_quorum`),
        // so that the bug is defined in one place; the correct build asks the
        // configuration directly, which allocates nothing.
        #[cfg(raft_bug = "joint-new-majority-only")]
        return self.decision_quorum().committed_index(matched);
        #[cfg(not(raft_bug = "joint-new-majority-only"))]
        self.tracker.current().committed_index(matched)
    }

    /// A new leader finds a configuration change unfinished (its entry uncommitted, or a
    /// joint configuration not left): it appends a no-op, whose commit commits the change
    /// too and lets the leader leave a joint configuration. Without it the change would
    /// wait for the next client command, and no other change could start.
    pub(super) fn conf_on_become_leader(&mut self) {
        if self.change_in_progress() {
            self.append_empty();
        }
    }

    /// The commit index moved on the leader. Once the configuration in force is
    /// committed: a leader that is no longer a voter steps down (thesis §4.2.2: it led
    /// the cluster until then without counting itself), and a joint configuration is
    /// left with the next entry.
    pub(super) fn conf_on_commit(&mut self) {
        if self.role != Role::Leader || self.tracker.current_index() > self.commit {
            return;
        }
        let current = self.tracker.current();
        if !current.is_voter(self.id) {
            let term = self.hard.term;
            self.become_follower(term, None);
        } else if let Ok(next) = current.apply(&ConfChange::LeaveJoint) {
            self.append_conf(&next);
        }
    }
}

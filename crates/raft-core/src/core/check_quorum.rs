//! Check-quorum and leader stickiness (thesis §6.2 and §4.2.3).
//!
//! A leader that has heard no answer from a majority within an election timeout steps
//! down: a leader stuck in a minority stops accepting proposals instead of holding on to
//! them until the partition heals. Conversely, a node that heard from a leader within
//! the minimum election timeout ignores requests for votes: a node that cannot see the
//! leader (a removed server, one half of a flaky link) cannot depose a healthy one.

use super::RaftCore;
use crate::message::Message;
use crate::types::{NodeId, Role};
use rand_core::RngCore;

impl<R: RngCore> RaftCore<R> {
    /// True when this node heard from the leader of its current term within the
    /// minimum election timeout; a leader has always heard from itself.
    pub(super) fn heard_from_leader_recently(&self) -> bool {
        match self.leader {
            None => false,
            Some(l) if l == self.id => true,
            Some(_) => self.election_elapsed < self.cfg.election_timeout_min,
        }
    }

    /// Leader stickiness: with check-quorum, a request for a (pre-)vote in a newer term
    /// is dropped unanswered while this node heard from a leader recently; it does not
    /// even adopt the term.
    pub(super) fn ignores_vote_request(&self, msg: &Message) -> bool {
        if !self.cfg.check_quorum || !self.heard_from_leader_recently() {
            return false;
        }
        match msg {
            Message::RequestVote { term, .. }
            | Message::PreVote { term, .. }
            | Message::TransferVote { term, .. } => {
                *term > self.hard.term && !self.is_leadership_transfer(msg)
            }
            _ => false,
        }
    }

    /// Leadership transfer: a vote requested on the current leader's behalf
    /// ([`Message::TransferVote`]) is not ignored by sticky followers.
    fn is_leadership_transfer(&self, msg: &Message) -> bool {
        matches!(msg, Message::TransferVote { .. })
    }

    /// Notes that `from` answered this leader in its current term.
    pub(super) fn note_active(&mut self, from: NodeId, msg: &Message) {
        if self.role == Role::Leader && msg.is_response() && msg.term() == self.hard.term {
            self.recent_active.insert(from);
        }
    }

    /// Counts a leader's tick; at the end of each window of `election_timeout_min` ticks
    /// the leader steps down unless a majority (itself included) answered within it.
    /// Returns false when it stepped down.
    pub(super) fn tick_check_quorum(&mut self) -> bool {
        self.election_elapsed += 1;
        if self.election_elapsed < self.cfg.election_timeout_min {
            return true;
        }
        self.election_elapsed = 0;
        let active = self.quorum_active();
        self.recent_active.clear();
        #[cfg(raft_bug = "ignore-check-quorum")]
        let active = true;
        if !self.cfg.check_quorum || active {
            return true;
        }
        let term = self.hard.term;
        self.become_follower(term, None);
        // A fresh timeout: the deposed leader waits like any follower before asking.
        self.reset_election_timer();
        false
    }
}

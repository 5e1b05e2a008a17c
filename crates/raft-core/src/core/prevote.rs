//! Pre-vote (thesis §9.6): before campaigning, a node whose election timer fired asks
//! the others whether they would vote for it, without raising its term. Only when a
//! majority says yes does it campaign, so a node that cannot win (cut off from the
//! majority, or with a stale log) never forces the cluster into a new term.

use super::RaftCore;
use crate::message::Message;
use crate::quorum::VoteResult;
use crate::types::{Index, NodeId, Role, Term};
use rand_core::RngCore;

impl<R: RngCore> RaftCore<R> {
    /// The election timer fired: with pre-vote, ask first; without, campaign at once.
    pub(super) fn start_election(&mut self) {
        if !self.cfg.pre_vote {
            self.campaign();
            return;
        }
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id, true);
        // A round that gets no majority is retried when the timer fires again.
        self.reset_election_timer();
        if self.poll() == VoteResult::Won {
            self.campaign();
            return;
        }
        let term = self.hard.term + 1;
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.others() {
            self.send(
                peer,
                Message::PreVote {
                    term,
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    /// Would this node vote for `from` in `term`? It answers without changing its term,
    /// its vote or its timer: a pre-vote promises nothing.
    pub(super) fn on_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
    ) {
        // Thesis §9.6: refused while this node believes a leader is alive, i.e. it heard
        // from one within the minimum election timeout (a leader counts itself).
        let granted = term > self.hard.term
            && !self.heard_from_leader_recently()
            && self.log.is_up_to_date(last_index, last_term);
        #[cfg(raft_bug = "pre-vote-raises-term")]
        if term > self.hard.term {
            self.become_follower(term, None);
        }
        let term = if granted { term } else { self.hard.term };
        self.send(from, Message::PreVoteResponse { term, granted });
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::PreCandidate {
            return;
        }
        // A grant names the term this round asks for; a refusal the voter's term, which
        // `step` has already adopted if it was newer (and then this node is a follower).
        if granted && term != self.hard.term + 1 {
            return;
        }
        self.votes.insert(from, granted);
        let result = self.poll();
        if result == VoteResult::Won {
            self.campaign();
        } else if result == VoteResult::Lost {
            // This round cannot succeed: wait as a follower for a leader or the next
            // timeout (the timer keeps running from the start of the round).
            let term = self.hard.term;
            self.become_follower(term, None);
        }
    }
}

//! Elections: timers, campaigns, votes (§5.2 and the election restriction of §5.4.1).

use super::RaftCore;
use crate::message::Message;
use crate::progress::Progress;
use crate::quorum::VoteResult;
use crate::types::{HardState, Index, NodeId, Role, Term};
use rand_core::RngCore;
use std::collections::BTreeMap;

impl<R: RngCore> RaftCore<R> {
    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let span = u64::from(self.cfg.election_timeout_max - self.cfg.election_timeout_min) + 1;
        self.election_timeout = self.cfg.election_timeout_min + (self.rng.next_u64() % span) as u32;
    }

    pub(super) fn set_hard(&mut self, term: Term, vote: Option<NodeId>) {
        if self.hard.term != term || self.hard.vote != vote {
            self.hard = HardState { term, vote };
            self.hard_dirty = true;
        }
    }

    /// Steps down to follower, adopting `term` if it is newer. The election timer keeps
    /// running: Figure 2 resets it only when a vote is granted or the current leader is
    /// heard from. Resetting it on every higher term would let a candidate with a stale
    /// log, which can never win, keep the up-to-date peers from ever campaigning.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        // A leader's reads can no longer be confirmed; a follower's forwarded reads went
        // to a leader of an older term. Either way they fail, explicitly.
        if self.role == Role::Leader || term > self.hard.term {
            self.fail_reads();
        }
        if term > self.hard.term {
            self.set_hard(term, None);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.transfer = None;
        self.votes.clear();
        self.progress.clear();
        self.recent_active.clear();
        self.broadcast_pending = false;
        self.commit_news = false;
    }

    pub(super) fn campaign(&mut self) {
        self.fail_reads();
        let term = self.hard.term + 1;
        self.set_hard(term, Some(self.id));
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.reset_election_timer();
        if self.poll() == VoteResult::Won {
            self.become_leader();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let request = self.vote_request(term, last_log_index, last_log_term);
        for peer in self.others() {
            self.send(peer, request.clone());
        }
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.heartbeat_elapsed = 0;
        // From here on the election timer counts check-quorum windows.
        self.election_elapsed = 0;
        self.recent_active.clear();
        self.votes.clear();
        let next = self.log.last_index() + 1;
        self.progress = self
            .others()
            .into_iter()
            .map(|p| (p, Progress::new(next)))
            .collect::<BTreeMap<_, _>>();
        // No no-op entry: the k-th command of an undisturbed cluster lands at index k.
        // (Unless a configuration change is unfinished: see `conf_on_become_leader`.)
        self.conf_on_become_leader();
        // Announce leadership at once so that other candidates stand down.
        self.heartbeat();
    }

    pub(super) fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.hard.vote.is_none() || self.hard.vote == Some(from);
        #[cfg(raft_bug = "double-vote")]
        let can_vote = can_vote || self.role == Role::Follower;
        let up_to_date = self.log.is_up_to_date(last_index, last_term);
        #[cfg(raft_bug = "no-election-restriction")]
        let up_to_date = {
            let _ = up_to_date;
            true
        };
        let granted = term == self.hard.term && can_vote && up_to_date;
        if granted {
            #[cfg(not(raft_bug = "forget-vote"))]
            self.set_hard(term, Some(from));
            #[cfg(raft_bug = "forget-vote")]
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

    pub(super) fn on_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::Candidate || term != self.hard.term {
            return;
        }
        self.votes.insert(from, granted);
        if self.poll() == VoteResult::Won {
            self.become_leader();
        }
    }
}

//! Leadership transfer (thesis §3.10): the leader stops accepting proposals, brings the
//! target's log up to date, and sends it `TimeoutNow`; the target campaigns at once, with
//! no pre-vote, and voters answer it despite leader stickiness. Within about one round
//! trip the target leads (its log is at least as up to date as anyone's). If it has not
//! within an election timeout, the leader gives up and accepts proposals again.

use super::RaftCore;
use crate::membership::MembershipError;
use crate::message::Message;
use crate::types::{Index, NodeId, Role, Term};
use crate::CoreError;
use rand_core::RngCore;

/// A transfer under way on the leader.
pub(super) struct Transfer {
    target: NodeId,
    /// Ticks since it began.
    elapsed: u32,
    /// TimeoutNow has been sent.
    sent: bool,
}

impl<R: RngCore> RaftCore<R> {
    /// Hands leadership to `target`, a voter: proposals are refused with
    /// [`CoreError::TransferInProgress`] until `target` leads (this node then follows it)
    /// or `election_timeout_max` ticks pass (this node leads on). A transfer to another
    /// target replaces the one under way; one to this node itself does nothing.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), CoreError> {
        if self.role != Role::Leader {
            return Err(CoreError::NotLeader {
                leader: self.leader,
            });
        }
        if target == self.id {
            self.transfer = None;
            return Ok(());
        }
        if !self.membership().is_voter(target) {
            return Err(MembershipError::Unknown(target).into());
        }
        if self.transfer.as_ref().is_some_and(|t| t.target == target) {
            return Ok(());
        }
        self.transfer = Some(Transfer {
            target,
            elapsed: 0,
            sent: false,
        });
        self.transfer_on_progress(target);
        if self.transfer.as_ref().is_some_and(|t| !t.sent) {
            // Not up to date yet: send what it misses now, TimeoutNow once it has it.
            self.send_append(target, true);
        }
        Ok(())
    }

    /// The target of the leadership transfer under way, if any.
    pub fn transferring_to(&self) -> Option<NodeId> {
        self.transfer.as_ref().map(|t| t.target)
    }

    pub(super) fn check_not_transferring(&self) -> Result<(), CoreError> {
        match &self.transfer {
            Some(t) => Err(CoreError::TransferInProgress(t.target)),
            None => Ok(()),
        }
    }

    /// The leader's tick: a transfer not done within an election timeout is abandoned.
    pub(super) fn transfer_tick(&mut self) {
        if let Some(t) = self.transfer.as_mut() {
            t.elapsed += 1;
            if t.elapsed >= self.cfg.election_timeout_max {
                self.transfer = None;
            }
        }
    }

    /// `peer` acknowledged entries: if it is the transfer's target and now holds the
    /// whole log, it is told to campaign.
    pub(super) fn transfer_on_progress(&mut self, peer: NodeId) {
        let last: Index = self.log.last_index();
        let matched = self.progress.get(&peer).map(|p| p.matched());
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        if t.target != peer || t.sent || matched != Some(last) {
            return;
        }
        t.sent = true;
        let term = self.hard.term;
        self.send(peer, Message::TimeoutNow { term });
    }

    /// The leader asks this node to campaign now: it does, skipping pre-vote, if it is a
    /// voter still in that leader's term.
    pub(super) fn on_timeout_now(&mut self, from: NodeId, term: Term) {
        if term != self.hard.term || self.leader != Some(from) || !self.promotable() {
            return;
        }
        self.transfer_campaign = true;
        self.campaign();
        self.transfer_campaign = false;
    }

    /// The vote request of a campaign: a [`Message::TransferVote`] when the leader asked
    /// for it.
    pub(super) fn vote_request(
        &self,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    ) -> Message {
        if self.transfer_campaign {
            Message::TransferVote {
                term,
                last_log_index,
                last_log_term,
            }
        } else {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            }
        }
    }
}

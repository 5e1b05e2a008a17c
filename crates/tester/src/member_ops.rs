//! Membership operations as a test drives them: one attempt on whichever peer leads,
//! whether an error means "try again", and whether the operation has taken effect.
//!
//! Under crashes and message loss an attempt can fail after its change committed
//! (`ChangeAbandoned`, a lost answer, a killed leader), so a driver never trusts the
//! error alone: before each attempt it asks the leader whether the goal is already
//! reached ([`achieved`]). The classic suite's membership scenarios and the key/value
//! harness both drive their changes through here.

use raft::{Membership, MembershipError, MembershipStatus, NodeId, Raft, RaftError};
use std::collections::BTreeSet;
use std::time::Duration;

/// One membership operation, to be carried out on the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOp {
    /// Add this server as a learner.
    AddLearner(NodeId),
    /// Add this server as a learner, wait (up to the duration) for it to catch up, and
    /// promote it ([`Raft::add_voter`]).
    AddVoter(NodeId, Duration),
    /// Move the voters to exactly this set (one step, or joint consensus).
    Voters(BTreeSet<NodeId>),
    /// Remove this voter or learner.
    Remove(NodeId),
    /// Hand leadership to this voter.
    Transfer(NodeId),
}

impl MemberOp {
    /// [`MemberOp::Voters`] from any list of ids.
    pub fn voters(ids: impl IntoIterator<Item = NodeId>) -> MemberOp {
        MemberOp::Voters(ids.into_iter().collect())
    }
}

/// One attempt of `op` on `raft` (which should lead); the configuration it committed
/// (after a transfer: the one in force on `raft`).
pub async fn attempt(raft: &Raft, op: &MemberOp) -> Result<Membership, RaftError> {
    match op {
        MemberOp::AddLearner(id) => raft.add_learner(*id).await,
        MemberOp::AddVoter(id, catch_up) => raft.add_voter(*id, *catch_up).await,
        MemberOp::Voters(v) => raft.change_membership(v.iter().copied()).await,
        MemberOp::Remove(id) => raft.remove_server(*id).await,
        MemberOp::Transfer(id) => {
            raft.transfer_leader(*id).await?;
            Ok(raft.membership().await?.membership)
        }
    }
}

/// True when `e` says "not now" (no leader, leadership lost, a change or transfer in
/// flight, a learner not caught up yet, a killed peer, an overloaded one, or a goal
/// perhaps already reached by an earlier attempt), rather than that the operation is
/// wrong; a driver checks [`achieved`] and tries again.
pub fn retryable(e: &RaftError) -> bool {
    matches!(
        e,
        RaftError::NotLeader { .. }
            | RaftError::Killed
            | RaftError::ChangeInProgress
            | RaftError::ChangeAbandoned
            | RaftError::TransferFailed(_)
            | RaftError::CatchUpTimeout(_)
            | RaftError::Busy(_)
            | RaftError::Membership(MembershipError::InJoint | MembershipError::Duplicate(_))
    )
}

/// Whether `op`'s goal holds, as seen by peer `leader` (which believes it leads) in its
/// `status`: only a committed configuration counts (no change in flight), so an answer
/// of `true` can never be undone.
pub fn achieved(leader: NodeId, status: &MembershipStatus, op: &MemberOp) -> bool {
    let settled = !status.change_in_progress;
    let m = &status.membership;
    match op {
        MemberOp::Transfer(id) => leader == *id,
        MemberOp::AddLearner(id) => settled && m.contains(*id),
        MemberOp::AddVoter(id, _) => settled && m.voters.contains(id),
        MemberOp::Voters(v) => settled && &m.voters == v,
        MemberOp::Remove(id) => settled && !m.contains(*id),
    }
}

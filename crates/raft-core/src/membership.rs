//! Cluster configurations and the changes between them.
//!
//! A [`Membership`] is who is in the cluster: the voters, the learners (who receive the
//! log but count toward no quorum) and, while a joint change is in flight, the outgoing
//! voters. A [`ConfChange`] is one step from one configuration to the next. This module
//! only decides which steps are allowed and what they lead to; carrying configurations in
//! log entries, and when they take effect, is the core's business.
//!
//! The rules (Ongaro's thesis, chapter 4):
//! - a single-server change adds or removes one voter, so that the old and the new
//!   majorities always overlap;
//! - any other change goes through a joint configuration, in which every decision needs
//!   a majority of the outgoing and of the incoming voters, and then leaves it;
//! - no step starts from a joint configuration except leaving it, and no configuration
//!   ever has no voters.

use crate::quorum::{majority_committed, JointConfig, MajorityConfig};
use crate::types::{Index, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Who is in the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters (while joint: the incoming voters).
    pub voters: BTreeSet<NodeId>,
    /// Members that receive the log and vote in nothing.
    pub learners: BTreeSet<NodeId>,
    /// While a joint change is in flight: the voters of the configuration being left.
    pub outgoing: Option<BTreeSet<NodeId>>,
}

/// One step from a configuration to the next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// Add a member that receives the log but does not vote.
    AddLearner(NodeId),
    /// Make one server a voter (a learner is promoted; a new server is added): a
    /// single-server change.
    AddVoter(NodeId),
    /// Remove one member, voter or learner: a single-server change.
    Remove(NodeId),
    /// Enter the joint configuration that moves the voters to exactly this set; learners
    /// that become voters are promoted, voters that leave are dropped when it is left.
    EnterJoint(BTreeSet<NodeId>),
    /// Leave the joint configuration: the incoming voters alone decide.
    LeaveJoint,
}

/// Why a change cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// A joint change is in flight; only leaving it is allowed.
    #[error("a joint configuration change is in flight; it must be left first")]
    InJoint,
    /// Leaving a joint configuration that is not joint.
    #[error("the configuration is not joint")]
    NotJoint,
    /// The id is already a member in the role the change asks for.
    #[error("node {0} is already a member in that role")]
    Duplicate(NodeId),
    /// The id is not a member.
    #[error("node {0} is not a member")]
    Unknown(NodeId),
    /// The change would leave the cluster with no voters.
    #[error("the change would leave no voters")]
    NoVoters,
}

impl Membership {
    /// A configuration of these voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            ..Membership::default()
        }
    }

    /// The data of a configuration entry setting this configuration.
    pub fn encode(&self) -> bytes::Bytes {
        crate::snapshot_conf::encode_membership(self)
    }

    /// Reads the data of a configuration entry ([`EntryKind::Config`](crate::EntryKind)):
    /// postcard of the whole configuration. `None` when it is not a valid one.
    pub fn decode(data: &[u8]) -> Option<Membership> {
        crate::snapshot_conf::decode_membership(data)
    }

    /// True while a joint change is in flight.
    pub fn is_joint(&self) -> bool {
        self.outgoing.is_some()
    }

    /// The quorum arithmetic of this configuration.
    pub fn quorum(&self) -> JointConfig {
        let incoming = MajorityConfig::new(self.voters.iter().copied());
        match &self.outgoing {
            Some(out) => JointConfig::joint(incoming, MajorityConfig::new(out.iter().copied())),
            None => JointConfig::simple(incoming),
        }
    }

    /// The highest index committed in this configuration, where `matched` tells what
    /// each voter has reached: what [`quorum`](Self::quorum)`().committed_index` gives,
    /// without building the quorum (the leader asks after every acknowledgement).
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> Option<Index>) -> Index {
        let incoming = majority_committed(&self.voters, &matched);
        match &self.outgoing {
            Some(out) => incoming.min(majority_committed(out, &matched)),
            None => incoming,
        }
    }

    /// True when `id` votes, in either half of a joint configuration.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.as_ref().is_some_and(|o| o.contains(&id))
    }

    /// True when `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every member (voters of both halves and learners), each once, ascending: the
    /// nodes a leader replicates to.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut all = self.quorum().ids();
        all.extend(self.learners.iter().copied());
        all
    }

    /// Checks that the configuration is one the protocol can run: at least one voter, and
    /// no node both a learner and a voter. (Any `u64` is a node id, 0 included: the
    /// runtime numbers peers from 0.)
    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        if let Some(&id) = self.learners.iter().find(|&&id| self.is_voter(id)) {
            return Err(MembershipError::Duplicate(id));
        }
        Ok(())
    }

    /// The configuration `change` leads to from this one, or why it is not allowed.
    pub fn apply(&self, change: &ConfChange) -> Result<Membership, MembershipError> {
        if self.is_joint() && *change != ConfChange::LeaveJoint {
            return Err(MembershipError::InJoint);
        }
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(id) => {
                if self.contains(*id) {
                    return Err(MembershipError::Duplicate(*id));
                }
                next.learners.insert(*id);
            }
            ConfChange::AddVoter(id) => {
                if self.voters.contains(id) {
                    return Err(MembershipError::Duplicate(*id));
                }
                next.learners.remove(id);
                next.voters.insert(*id);
            }
            ConfChange::Remove(id) => {
                if !self.contains(*id) {
                    return Err(MembershipError::Unknown(*id));
                }
                next.learners.remove(id);
                next.voters.remove(id);
                if next.voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
            }
            ConfChange::EnterJoint(voters) => {
                if voters.is_empty() {
                    return Err(MembershipError::NoVoters);
                }
                next.outgoing = Some(self.voters.clone());
                next.learners.retain(|id| !voters.contains(id));
                next.voters = voters.clone();
            }
            ConfChange::LeaveJoint => {
                if !self.is_joint() {
                    return Err(MembershipError::NotJoint);
                }
                next.outgoing = None;
            }
        }
        Ok(next)
    }

    /// The steps that move this configuration's voters to `target`: one single-server
    /// change when they differ by exactly one voter, otherwise entering and then leaving
    /// a joint configuration. Empty when the voters already are `target`.
    pub fn plan(&self, target: &BTreeSet<NodeId>) -> Result<Vec<ConfChange>, MembershipError> {
        if self.is_joint() {
            return Err(MembershipError::InJoint);
        }
        if target.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        let added: Vec<NodeId> = target.difference(&self.voters).copied().collect();
        let removed: Vec<NodeId> = self.voters.difference(target).copied().collect();
        Ok(match (added.as_slice(), removed.as_slice()) {
            ([], []) => vec![],
            ([id], []) => vec![ConfChange::AddVoter(*id)],
            ([], [id]) => vec![ConfChange::Remove(*id)],
            _ => vec![
                ConfChange::EnterJoint(target.clone()),
                ConfChange::LeaveJoint,
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::VoteResult;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_learner_is_added_then_promoted() {
        let c = Membership::with_voters([1, 2, 3]);
        let c = c.apply(&ConfChange::AddLearner(4)).unwrap();
        assert!(c.contains(4) && !c.is_voter(4));
        let c = c.apply(&ConfChange::AddVoter(4)).unwrap();
        assert!(c.is_voter(4) && c.learners.is_empty());
        c.validate().unwrap();
    }

    #[test]
    fn bad_changes_are_refused_with_their_reason() {
        let c = Membership::with_voters([1]);
        assert_eq!(
            c.apply(&ConfChange::AddVoter(1)),
            Err(MembershipError::Duplicate(1))
        );
        assert_eq!(
            c.apply(&ConfChange::AddLearner(1)),
            Err(MembershipError::Duplicate(1))
        );
        assert_eq!(
            c.apply(&ConfChange::Remove(7)),
            Err(MembershipError::Unknown(7))
        );
        assert_eq!(
            c.apply(&ConfChange::Remove(1)),
            Err(MembershipError::NoVoters)
        );
        assert_eq!(
            c.apply(&ConfChange::LeaveJoint),
            Err(MembershipError::NotJoint)
        );
        assert_eq!(
            c.apply(&ConfChange::EnterJoint(BTreeSet::new())),
            Err(MembershipError::NoVoters)
        );
        let joint = c.apply(&ConfChange::EnterJoint(set(&[2, 3]))).unwrap();
        assert_eq!(
            joint.apply(&ConfChange::AddVoter(4)),
            Err(MembershipError::InJoint)
        );
        assert_eq!(joint.plan(&set(&[5])), Err(MembershipError::InJoint));
    }

    #[test]
    fn a_joint_change_needs_both_majorities_until_it_is_left() {
        let old = Membership::with_voters([1, 2, 3]);
        let steps = old.plan(&set(&[3, 4, 5])).unwrap();
        assert_eq!(steps.len(), 2);
        let joint = old.apply(&steps[0]).unwrap();
        assert!(joint.is_joint());
        assert_eq!(joint.members(), set(&[1, 2, 3, 4, 5]));
        // 3, 4 and 5 are a majority of the new voters but only one of the old ones.
        let yes = set(&[3, 4, 5]);
        assert_eq!(
            joint.quorum().vote_result(|id| Some(yes.contains(&id))),
            VoteResult::Lost
        );
        let new = joint.apply(&steps[1]).unwrap();
        assert_eq!(new, Membership::with_voters([3, 4, 5]));
        assert_eq!(
            new.quorum().vote_result(|id| Some(yes.contains(&id))),
            VoteResult::Won
        );
    }

    #[test]
    fn one_voter_of_difference_is_a_single_step() {
        let c = Membership::with_voters([1, 2, 3]);
        assert_eq!(
            c.plan(&set(&[1, 2, 3, 4])).unwrap(),
            vec![ConfChange::AddVoter(4)]
        );
        assert_eq!(c.plan(&set(&[1, 2])).unwrap(), vec![ConfChange::Remove(3)]);
        assert_eq!(c.plan(&set(&[1, 2, 3])).unwrap(), vec![]);
        // Replacing one voter changes two: it goes through joint consensus.
        assert!(matches!(
            c.plan(&set(&[1, 2, 4])).unwrap()[0],
            ConfChange::EnterJoint(_)
        ));
    }

    #[test]
    fn joint_promotes_learners_and_validate_catches_overlap() {
        let c = Membership {
            voters: set(&[1, 2]),
            learners: set(&[3]),
            outgoing: None,
        };
        let joint = c.apply(&ConfChange::EnterJoint(set(&[2, 3]))).unwrap();
        assert!(joint.learners.is_empty());
        joint.validate().unwrap();
        let bad = Membership {
            voters: set(&[1]),
            learners: set(&[1]),
            outgoing: None,
        };
        assert_eq!(bad.validate(), Err(MembershipError::Duplicate(1)));
    }

    /// From every configuration over four nodes, every allowed single-server change
    /// keeps some voter common to any majority of the old and of the new voters: the
    /// property that makes one-at-a-time changes safe without joint consensus.
    #[test]
    fn single_server_changes_keep_old_and_new_majorities_overlapping() {
        for mask in 1u32..16 {
            let voters: Vec<NodeId> = (1..=4).filter(|i| mask & (1 << (i - 1)) != 0).collect();
            let old = Membership::with_voters(voters.iter().copied());
            for id in 1..=5 {
                for change in [ConfChange::AddVoter(id), ConfChange::Remove(id)] {
                    let Ok(new) = old.apply(&change) else {
                        continue;
                    };
                    for q1 in 0u32..32 {
                        for q2 in 0u32..32 {
                            let wins = |c: &Membership, q: u32| {
                                c.quorum().vote_result(|n| Some(q & (1 << (n - 1)) != 0))
                                    == VoteResult::Won
                            };
                            if wins(&old, q1) && wins(&new, q2) {
                                assert_ne!(q1 & q2, 0, "{old:?} -> {new:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

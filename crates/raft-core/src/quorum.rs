//! Quorum arithmetic: which sets of nodes decide, for a simple majority and for a joint
//! configuration (the old and the new voters while a membership change is in flight).
//!
//! Kept apart from everything else, as etcd's `quorum` package is, because it is the one
//! place where "a majority" is defined: elections, commits and read confirmations all ask
//! it, so that a joint configuration changes every one of them at once. The functions
//! take what each voter has reached as a lookup, so the caller's progress table stays the
//! single source of truth.

use crate::types::{Index, NodeId};
use std::collections::BTreeSet;

/// The outcome of a vote (or of any yes/no poll of the voters) so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: the missing answers could still go either way.
    Pending,
    /// A quorum said yes.
    Won,
    /// A quorum can no longer say yes, whatever the missing answers are.
    Lost,
}

/// Voter sets up to this size are ranked on the stack: the leader asks for the committed
/// index after every acknowledgement, and clusters are this small.
const STACK_VOTERS: usize = 16;

/// The highest index that a majority of `voters` have reached (see
/// [`MajorityConfig::committed_index`]), from the voter set itself, so that the leader's
/// commit check builds no configuration and, for up to 16 voters, allocates nothing.
pub fn majority_committed(
    voters: &BTreeSet<NodeId>,
    matched: impl Fn(NodeId) -> Option<Index>,
) -> Index {
    let n = voters.len();
    if n == 0 {
        return Index::MAX;
    }
    let reached = voters.iter().map(|&id| matched(id).unwrap_or(0));
    let mut stack = [0 as Index; STACK_VOTERS];
    let mut heap = Vec::new();
    let reached: &mut [Index] = if n <= STACK_VOTERS {
        for (slot, r) in stack.iter_mut().zip(reached) {
            *slot = r;
        }
        &mut stack[..n]
    } else {
        heap.extend(reached);
        &mut heap
    };
    reached.sort_unstable_by(|a, b| b.cmp(a));
    // Sorted from highest to lowest, the first `n/2 + 1` voters (a majority) have all
    // reached the entry at position n/2.
    reached[n / 2]
}

/// A set of voters deciding by simple majority.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MajorityConfig {
    voters: BTreeSet<NodeId>,
}

impl MajorityConfig {
    /// The configuration of these voters (duplicates collapse).
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        MajorityConfig {
            voters: voters.into_iter().collect(),
        }
    }

    /// The voters, in ascending order.
    pub fn voters(&self) -> &BTreeSet<NodeId> {
        &self.voters
    }

    /// True when `id` is one of the voters.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// The highest index that a majority of the voters have reached, where `matched`
    /// tells what each voter has reached (`None`: nothing known, counted as 0).
    ///
    /// An empty configuration commits everything (`Index::MAX`), so that in a joint
    /// configuration an empty half never holds the other back; a real configuration is
    /// never empty (the configuration checks refuse it).
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> Option<Index>) -> Index {
        majority_committed(&self.voters, matched)
    }

    /// The result of a poll where `vote` tells each voter's answer (`None`: not yet).
    ///
    /// An empty configuration wins every vote, for the same reason as above.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Won;
        }
        let (mut yes, mut missing) = (0, 0);
        for &id in &self.voters {
            match vote(id) {
                Some(true) => yes += 1,
                Some(false) => {}
                None => missing += 1,
            }
        }
        let quorum = self.voters.len() / 2 + 1;
        if yes >= quorum {
            VoteResult::Won
        } else if yes + missing >= quorum {
            VoteResult::Pending
        } else {
            VoteResult::Lost
        }
    }
}

/// The voters of a cluster: one majority configuration, or two while a joint change is
/// in flight (the incoming and the outgoing voters), where every decision needs a
/// majority of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointConfig {
    incoming: MajorityConfig,
    outgoing: Option<MajorityConfig>,
}

impl JointConfig {
    /// A configuration that is not joint.
    pub fn simple(voters: MajorityConfig) -> Self {
        JointConfig {
            incoming: voters,
            outgoing: None,
        }
    }

    /// A joint configuration: decisions need majorities of both `incoming` and
    /// `outgoing`.
    pub fn joint(incoming: MajorityConfig, outgoing: MajorityConfig) -> Self {
        JointConfig {
            incoming,
            outgoing: Some(outgoing),
        }
    }

    /// The incoming (or only) voters.
    pub fn incoming(&self) -> &MajorityConfig {
        &self.incoming
    }

    /// The outgoing voters while joint.
    pub fn outgoing(&self) -> Option<&MajorityConfig> {
        self.outgoing.as_ref()
    }

    /// True while a joint change is in flight.
    pub fn is_joint(&self) -> bool {
        self.outgoing.is_some()
    }

    /// Every voter of either half, each once, in ascending order.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        let mut ids = self.incoming.voters.clone();
        if let Some(out) = &self.outgoing {
            ids.extend(out.voters.iter().copied());
        }
        ids
    }

    /// True when `id` votes in either half.
    pub fn contains(&self, id: NodeId) -> bool {
        self.incoming.contains(id) || self.outgoing.as_ref().is_some_and(|o| o.contains(id))
    }

    /// The highest index committed by both halves: the smaller of the two majorities'.
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> Option<Index>) -> Index {
        let incoming = self.incoming.committed_index(&matched);
        match &self.outgoing {
            Some(out) => incoming.min(out.committed_index(&matched)),
            None => incoming,
        }
    }

    /// Won when both halves won, lost when either lost, pending otherwise.
    pub fn vote_result(&self, vote: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let incoming = self.incoming.vote_result(&vote);
        let outgoing = match &self.outgoing {
            Some(out) => out.vote_result(&vote),
            None => VoteResult::Won,
        };
        match (incoming, outgoing) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

/// True when `count` of `voters` voters make a majority.
#[cfg(test)]
pub(crate) fn has_majority(voters: usize, count: usize) -> bool {
    count > voters / 2
}

/// The highest index that a majority of `matched` (one entry per voter) have reached.
#[cfg(test)]
pub(crate) fn committed_index(mut matched: Vec<Index>) -> Index {
    if matched.is_empty() {
        return 0;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    matched[matched.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities() {
        assert!(has_majority(1, 1));
        assert!(!has_majority(3, 1));
        assert!(has_majority(3, 2));
        assert!(!has_majority(4, 2));
        assert!(has_majority(5, 3));
    }

    #[test]
    fn committed_is_the_majority_median() {
        assert_eq!(committed_index(vec![5]), 5);
        assert_eq!(committed_index(vec![5, 3, 1]), 3);
        assert_eq!(committed_index(vec![5, 4, 3, 1]), 3);
        assert_eq!(committed_index(vec![9, 9, 1, 1, 1]), 1);
        assert_eq!(committed_index(vec![9, 9, 7, 1, 1]), 7);
    }

    /// Voter sets of every size from 1 to 40 (past the stack buffer's 16), reached
    /// indices from a fixed pseudo-random sequence: the committed index is the highest
    /// index a majority reached, by brute force.
    #[test]
    fn committed_by_any_number_of_voters_agrees_with_the_definition() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 1..=40u64 {
            for _ in 0..50 {
                let reached: Vec<Index> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % 8
                    })
                    .collect();
                let voters: BTreeSet<NodeId> = (1..=n).collect();
                let got = majority_committed(&voters, |id| Some(reached[(id - 1) as usize]));
                let want = (0..8)
                    .rev()
                    .find(|&i| reached.iter().filter(|&&r| r >= i).count() * 2 > n as usize)
                    .unwrap_or(0);
                assert_eq!(got, want, "{reached:?}");
            }
        }
    }

    /// `Membership::committed_index` (what the leader's commit check calls) is the
    /// committed index of the membership's quorum, simple and joint.
    #[test]
    fn membership_committed_index_is_its_quorums() {
        use crate::membership::Membership;
        let reached = [7, 3, 9, 1, 5, 2];
        let matched = |id: NodeId| reached.get(id as usize - 1).copied();
        for a in subsets(6).filter(|&m| m != 0) {
            for b in subsets(6) {
                let set = |m: u32| {
                    (0..6u64)
                        .filter(|i| m & (1 << i) != 0)
                        .map(|i| i + 1)
                        .collect()
                };
                let membership = Membership {
                    voters: set(a),
                    learners: BTreeSet::new(),
                    outgoing: (b != 0).then(|| set(b)),
                };
                assert_eq!(
                    membership.committed_index(matched),
                    membership.quorum().committed_index(matched),
                    "{membership:?}"
                );
            }
        }
    }

    /// Every subset of `ids`, as a bit mask over their positions.
    fn subsets(n: usize) -> impl Iterator<Item = u32> {
        0..(1u32 << n)
    }

    fn config_of(mask: u32) -> MajorityConfig {
        MajorityConfig::new((0..5).filter(|i| mask & (1 << i) != 0).map(|i| i + 1))
    }

    /// The definition, by brute force: index `i` is committed by a configuration when
    /// the voters that reached it are a majority of it.
    fn commits(config: &MajorityConfig, reached: &[Index; 5], i: Index) -> bool {
        let yes = config
            .voters()
            .iter()
            .filter(|&&id| reached[(id - 1) as usize] >= i)
            .count();
        config.voters().is_empty() || yes * 2 > config.voters().len()
    }

    /// Every pair of configurations over five nodes and every assignment of reached
    /// indices 0..=3: the joint committed index is the highest index both halves'
    /// majorities have reached, and never more.
    #[test]
    fn joint_commit_agrees_with_the_definition_exhaustively() {
        let mut checked = 0;
        for a in subsets(5).filter(|&m| m != 0) {
            for b in subsets(5) {
                let joint = if b == 0 {
                    JointConfig::simple(config_of(a))
                } else {
                    JointConfig::joint(config_of(a), config_of(b))
                };
                for code in 0..4u32.pow(5) {
                    let mut reached = [0; 5];
                    for (k, r) in reached.iter_mut().enumerate() {
                        *r = u64::from((code / 4u32.pow(k as u32)) % 4);
                    }
                    let got = joint.committed_index(|id| Some(reached[(id - 1) as usize]));
                    let halves: Vec<&MajorityConfig> = std::iter::once(joint.incoming())
                        .chain(joint.outgoing())
                        .collect();
                    let want = (0..=3)
                        .rev()
                        .find(|&i| halves.iter().all(|h| commits(h, &reached, i)))
                        .unwrap_or(0);
                    assert_eq!(got, want, "{joint:?} {reached:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 31 * 32 * 1024);
    }

    /// Every pair of configurations over five nodes and every assignment of votes
    /// (yes / no / not yet): the joint result is Won exactly when both halves have a
    /// yes-majority, Lost exactly when some half can no longer reach one.
    #[test]
    fn joint_vote_agrees_with_the_definition_exhaustively() {
        for a in subsets(5).filter(|&m| m != 0) {
            for b in subsets(5) {
                let joint = if b == 0 {
                    JointConfig::simple(config_of(a))
                } else {
                    JointConfig::joint(config_of(a), config_of(b))
                };
                for code in 0..3u32.pow(5) {
                    let vote = |id: NodeId| match (code / 3u32.pow((id - 1) as u32)) % 3 {
                        0 => None,
                        1 => Some(true),
                        _ => Some(false),
                    };
                    let halves: Vec<&MajorityConfig> = std::iter::once(joint.incoming())
                        .chain(joint.outgoing())
                        .collect();
                    let majority = |h: &MajorityConfig, count: &dyn Fn(NodeId) -> bool| {
                        h.voters().is_empty()
                            || h.voters().iter().filter(|&&id| count(id)).count() * 2
                                > h.voters().len()
                    };
                    let won = halves
                        .iter()
                        .all(|h| majority(h, &|id| vote(id) == Some(true)));
                    let could_win = halves
                        .iter()
                        .all(|h| majority(h, &|id| vote(id) != Some(false)));
                    let want = if won {
                        VoteResult::Won
                    } else if could_win {
                        VoteResult::Pending
                    } else {
                        VoteResult::Lost
                    };
                    assert_eq!(joint.vote_result(vote), want, "{joint:?} code {code}");
                }
            }
        }
    }

    /// The property joint consensus rests on: while joint, any two quorums intersect
    /// in the old configuration and in the new one, so two disjoint groups can never
    /// both decide.
    #[test]
    fn two_joint_quorums_always_share_a_voter_of_each_half() {
        for a in subsets(5).filter(|&m| m != 0) {
            for b in subsets(5).filter(|&m| m != 0) {
                let joint = JointConfig::joint(config_of(a), config_of(b));
                let wins = |set: u32| {
                    joint.vote_result(|id| Some(set & (1 << (id - 1)) != 0)) == VoteResult::Won
                };
                for q1 in subsets(5).filter(|&q| wins(q)) {
                    for q2 in subsets(5).filter(|&q| wins(q)) {
                        assert!(q1 & q2 & a != 0 && q1 & q2 & b != 0, "{a:b} {b:b}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_ids_of_a_joint_configuration_are_both_halves() {
        let joint = JointConfig::joint(MajorityConfig::new([1, 2, 3]), MajorityConfig::new([3, 4]));
        assert_eq!(
            joint.ids().into_iter().collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert!(joint.is_joint() && joint.contains(4) && !joint.contains(5));
    }
}

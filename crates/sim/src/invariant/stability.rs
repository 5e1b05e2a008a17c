//! Invariants of a calm cluster, for pre-vote and check-quorum: neither is a safety
//! property of Figure 2, so the safety invariants cannot see them broken.

use super::{id, Invariant, InvariantKind, Observation};
use crate::config::SimConfig;
use crate::world::World;
use raft_core::{Role, Term};
use std::collections::BTreeSet;

/// Every term a node holds was first reached by a campaign: some node stood as a
/// candidate (or, alone, became leader) in it. Terms spread only by messages from nodes
/// already in them; so a node whose term rises without anybody having campaigned (a
/// pre-vote, which asks about a term nobody holds, adopted as if it were a vote request)
/// breaks it.
#[derive(Default)]
pub(super) struct TermOrigin {
    campaigned: BTreeSet<Term>,
}

impl Invariant for TermOrigin {
    fn name(&self) -> &'static str {
        InvariantKind::TermOrigin.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let node = match *obs {
            Observation::Stepped { node }
            | Observation::Ticked { node }
            | Observation::Delivered { node, .. } => node,
            _ => return Ok(()),
        };
        let Some(core) = world.nodes[node].core() else {
            return Ok(());
        };
        let term = core.term();
        if matches!(core.role(), Role::Candidate | Role::Leader) {
            self.campaigned.insert(term);
        }
        if term > 0 && !self.campaigned.contains(&term) {
            return Err(format!(
                "n{} ({:?}) is in term {term}, in which no node has campaigned (highest \
                 campaigned: {:?})",
                id(node),
                core.role(),
                self.campaigned.last()
            ));
        }
        Ok(())
    }
}

/// One node's view of its own leadership, in its own ticks.
#[derive(Clone, Default)]
struct Leading {
    term: Term,
    /// The node's tick count when each peer (by index) last answered in `term`; the
    /// start of the term for a peer not heard from since.
    heard: Vec<u64>,
    /// The index that set the configuration in force, and the tick it took effect: a
    /// quorum of a new configuration is given its own windows to answer.
    conf: (raft_core::Index, u64),
}

/// With check-quorum on, a leader that has heard no answer of its term from a majority
/// for more than two windows of `election_timeout_min` of its own ticks is no longer
/// leader (the core checks at the end of each window, so a contact early in one window
/// keeps it until the end of the next).
pub(super) struct QuorumContact {
    enabled: bool,
    window: u64,
    ticks: Vec<u64>,
    leading: Vec<Option<Leading>>,
}

impl QuorumContact {
    pub(super) fn new(cfg: &SimConfig, nodes: usize) -> Self {
        QuorumContact {
            enabled: cfg.core.check_quorum,
            window: u64::from(cfg.core.election_timeout_min),
            ticks: vec![0; nodes],
            leading: vec![None; nodes],
        }
    }

    /// Starts or ends tracking `node`'s leadership to match its core.
    fn sync(&mut self, world: &World, node: usize) {
        let core = world.nodes[node].core().filter(|c| c.is_leader());
        match core {
            None => self.leading[node] = None,
            Some(c) => {
                if self.leading[node].as_ref().map(|l| l.term) != Some(c.term()) {
                    self.leading[node] = Some(Leading {
                        term: c.term(),
                        heard: vec![self.ticks[node]; world.nodes.len()],
                        conf: (c.membership_index(), self.ticks[node]),
                    });
                }
                if let Some(l) = self.leading[node].as_mut() {
                    if l.conf.0 != c.membership_index() {
                        l.conf = (c.membership_index(), self.ticks[node]);
                    }
                }
            }
        }
    }
}

impl Invariant for QuorumContact {
    fn name(&self) -> &'static str {
        InvariantKind::QuorumContact.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        match *obs {
            Observation::Delivered {
                node,
                from,
                term,
                response,
            } => {
                self.sync(world, node);
                let now = self.ticks[node];
                if let Some(l) = self.leading[node].as_mut() {
                    if response && term == l.term {
                        l.heard[from] = now;
                    }
                }
                Ok(())
            }
            Observation::Stepped { node } => {
                self.sync(world, node);
                Ok(())
            }
            Observation::Crashed { node, .. } | Observation::Restarted { node } => {
                self.leading[node] = None;
                Ok(())
            }
            Observation::Ticked { node } => {
                self.ticks[node] += 1;
                self.sync(world, node);
                let now = self.ticks[node];
                let Some(l) = &self.leading[node] else {
                    return Ok(());
                };
                // The most recent contact a quorum of the leader's configuration (the
                // leader itself included when it votes) shares: in each half while
                // joint, the contact a majority of its voters shares.
                let Some(conf) = world.nodes[node].core().map(|c| c.membership()) else {
                    return Ok(());
                };
                let shared = |voters: &std::collections::BTreeSet<raft_core::NodeId>| {
                    let mut heard: Vec<u64> = voters
                        .iter()
                        .map(|&v| v as usize - 1)
                        .map(|i| if i == node { now } else { l.heard[i] })
                        .collect();
                    heard.sort_unstable_by(|a, b| b.cmp(a));
                    heard.get(heard.len() / 2).copied().unwrap_or(now)
                };
                let majority_contact = conf
                    .outgoing
                    .iter()
                    .map(shared)
                    .fold(shared(&conf.voters), u64::min)
                    .max(l.conf.1);
                if now - majority_contact > 2 * self.window {
                    return Err(format!(
                        "n{} still leads term {} {} of its ticks after a majority last \
                         answered (check-quorum window {} ticks)",
                        id(node),
                        l.term,
                        now - majority_contact,
                        self.window
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

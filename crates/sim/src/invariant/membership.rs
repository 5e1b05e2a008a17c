//! Invariants of membership changes (docs/TESTING.md, docs/MEMBERSHIP.md): every
//! decision is made by a quorum of the configuration the deciding node really holds,
//! and no two leaders can decide at once.
//!
//! The quorum arithmetic here is the simulator's own (a majority of the voters, and of
//! the outgoing voters while joint), not raft-core's: a planted bug in the core's
//! counting must not change what the invariants count.

use super::{id, Invariant, InvariantKind, Observation};
use crate::world::World;
use raft_core::{EntryKind, Index, Membership, Message, NodeId, Term};
use std::collections::{BTreeMap, BTreeSet};

/// True when the nodes for which `yes` holds are a quorum of `m`: a majority of its
/// voters and, while joint, of its outgoing voters. A configuration without voters (a
/// joining node's) has no quorum.
pub(crate) fn is_quorum(m: &Membership, yes: impl Fn(NodeId) -> bool) -> bool {
    let majority =
        |set: &BTreeSet<NodeId>| set.iter().filter(|&&id| yes(id)).count() * 2 > set.len();
    majority(&m.voters) && m.outgoing.as_ref().is_none_or(majority)
}

/// The ids for which `yes` holds, as `{1,2}`.
fn ids_where(world: &World, yes: impl Fn(NodeId) -> bool) -> String {
    let v: Vec<String> = world
        .nodes
        .iter()
        .filter(|n| yes(n.id))
        .map(|n| n.id.to_string())
        .collect();
    format!("{{{}}}", v.join(","))
}

/// The configuration a node uses is the one its log holds: the last configuration
/// entry of its log or, when none follows its snapshot, the snapshot's configuration
/// (the bootstrap one for an initial voter that has neither, none for a spare node). A
/// configuration takes effect on append and is undone by truncation (thesis §4.1).
pub(super) struct ConfigInLog {
    /// Per node: (snapshot index, last index, last term) of the log last checked, whose
    /// entries after the configuration in force hold no configuration.
    checked: Vec<Option<(Index, Index, Term)>>,
}

impl ConfigInLog {
    pub(super) fn new(nodes: usize) -> Self {
        ConfigInLog {
            checked: vec![None; nodes],
        }
    }
}

impl Invariant for ConfigInLog {
    fn name(&self) -> &'static str {
        InvariantKind::ConfigInLog.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let node = match *obs {
            Observation::Stepped { node } => node,
            Observation::Crashed { node, .. } | Observation::Restarted { node } => {
                self.checked[node] = None;
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Some(core) = world.nodes[node].core() else {
            return Ok(());
        };
        let log = core.log();
        let snap = log.snapshot().index;
        let key = (snap, log.last_index(), log.last_term());
        if self.checked[node] == Some(key) {
            return Ok(());
        }
        let (at, conf) = (core.membership_index(), core.membership());
        let held = if at > snap {
            log.entry(at)
                .filter(|e| e.kind == EntryKind::Config)
                .and_then(|e| Membership::decode(&e.data))
        } else if at == snap {
            let (in_snapshot, _) = raft_core::split_snapshot(&core.snapshot().data);
            Some(in_snapshot.unwrap_or_else(|| world.bootstrap_of(node)))
        } else {
            None
        };
        if held.as_ref() != Some(conf) {
            return Err(format!(
                "n{} uses configuration {} set at {at}, but its log {} there",
                id(node),
                crate::world::show_membership(conf),
                match &held {
                    Some(m) => format!("holds {}", crate::world::show_membership(m)),
                    None => "holds no configuration".to_string(),
                }
            ));
        }
        // Only what was appended since the last check needs reading, when the log
        // extends the one checked (same entry at its old end: log matching).
        let from = match self.checked[node] {
            Some((_, last, term)) if last >= snap && log.term(last) == Some(term) => last.max(at),
            _ => at.max(snap),
        };
        for index in from + 1..=log.last_index() {
            if log
                .entry(index)
                .is_some_and(|e| e.kind == EntryKind::Config)
            {
                return Err(format!(
                    "n{} holds a configuration entry at {index} but uses the configuration set at {at} ({})",
                    id(node),
                    crate::world::show_membership(conf)
                ));
            }
        }
        self.checked[node] = Some(key);
        Ok(())
    }
}

/// A node becomes leader only with the votes of a quorum of the configuration it uses
/// (both majorities while joint; learners and non-members count for nothing). Votes are
/// the grants it was sent in its term.
#[derive(Default)]
pub(super) struct ElectionQuorum {
    grants: BTreeMap<(Term, NodeId), BTreeSet<NodeId>>,
    checked: BTreeMap<NodeId, Term>,
}

impl Invariant for ElectionQuorum {
    fn name(&self) -> &'static str {
        InvariantKind::ElectionQuorum.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Sent { env, .. } => {
                if let Message::RequestVoteResponse {
                    term,
                    granted: true,
                } = env.msg
                {
                    self.grants
                        .entry((term, env.to))
                        .or_default()
                        .insert(env.from);
                }
                Ok(())
            }
            Observation::Stepped { node } => {
                let Some(core) = world.nodes[node].core().filter(|c| c.is_leader()) else {
                    return Ok(());
                };
                let (me, term) = (core.id(), core.term());
                if self.checked.insert(me, term) == Some(term) {
                    return Ok(());
                }
                let none = BTreeSet::new();
                let votes = self.grants.get(&(term, me)).unwrap_or(&none);
                let yes = |id: NodeId| id == me || votes.contains(&id);
                // Grants of old terms are kept: a stale candidate may still win with a
                // delayed grant after a later term's leader was elected.
                if is_quorum(core.membership(), yes) {
                    return Ok(());
                }
                Err(format!(
                    "n{me} became leader of term {term} with the votes of {} (itself included), not a quorum of its configuration {}",
                    ids_where(world, yes),
                    crate::world::show_membership(core.membership())
                ))
            }
            _ => Ok(()),
        }
    }
}

/// An entry first commits only when a quorum of the committing leader's configuration
/// holds it on disk (both majorities while joint; learners do not count).
pub(super) struct CommitQuorum;

impl Invariant for CommitQuorum {
    fn name(&self) -> &'static str {
        InvariantKind::CommitQuorum.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let Observation::Committed {
            node,
            index,
            entry: Some(entry),
            recorded: crate::world::Recorded::New,
        } = *obs
        else {
            return Ok(());
        };
        let Some(core) = world.nodes[node].core().filter(|c| c.is_leader()) else {
            return Ok(());
        };
        let holds = |id: NodeId| {
            world.nodes[id as usize - 1]
                .storage
                .holds(index, entry.term)
        };
        if is_quorum(core.membership(), holds) {
            return Ok(());
        }
        // A commit is recorded once the leader's write is synced; meanwhile (with the
        // leader's parallel write) the leader may have appended the next configuration
        // after the entry: the commit was counted in the one before it.
        let at = core.membership_index();
        if at > index && is_quorum(&previous_config(world, node, at), holds) {
            return Ok(());
        }
        Err(format!(
            "n{}, leader of term {}, committed {index}@{} held on disk by {} only, not a quorum of its configuration {}",
            id(node),
            core.term(),
            entry.term,
            ids_where(world, holds),
            crate::world::show_membership(core.membership())
        ))
    }
}

/// No two leaders can decide at once: at most one leader has a quorum of its own
/// configuration in its own term (the nodes that could accept its entries and count
/// toward a commit). Two that had would hold disjoint quorums (a node is in one term),
/// which the overlap of successive configurations (single-server steps, joint
/// consensus) rules out whatever configurations the leaders use.
pub(super) struct QuorumOverlap;

impl Invariant for QuorumOverlap {
    fn name(&self) -> &'static str {
        InvariantKind::QuorumOverlap.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        if !matches!(obs, Observation::Stepped { .. }) {
            return Ok(());
        }
        let leaders = world.nodes.iter().filter(|n| n.is_leader()).count();
        if leaders < 2 {
            return Ok(());
        }
        let term_of = |id: NodeId| {
            let n = &world.nodes[id as usize - 1];
            n.core().map_or(n.storage.hard_state().term, |c| c.term())
        };
        let deciding: Vec<(NodeId, Term, &Membership)> = world
            .nodes
            .iter()
            .filter_map(|n| n.core().filter(|c| c.is_leader()))
            .filter(|c| is_quorum(c.membership(), |id| term_of(id) == c.term()))
            .map(|c| (c.id(), c.term(), c.membership()))
            .collect();
        if let [(a, ta, ca), (b, tb, cb), ..] = deciding[..] {
            return Err(format!(
                "n{a} (leader of term {ta}, {}: {} in its term) and n{b} (leader of term {tb}, {}: {} in its term) could both commit",
                crate::world::show_membership(ca),
                ids_where(world, |id| term_of(id) == ta),
                crate::world::show_membership(cb),
                ids_where(world, |id| term_of(id) == tb),
            ));
        }
        Ok(())
    }
}

/// The configuration `node`'s log held before the configuration entry at `at`.
fn previous_config(world: &World, node: usize, at: Index) -> Membership {
    let Some(core) = world.nodes[node].core() else {
        return Membership::default();
    };
    let log = core.log();
    let snap = log.snapshot().index;
    (snap + 1..at)
        .rev()
        .filter_map(|i| log.entry(i))
        .find(|e| e.kind == EntryKind::Config)
        .and_then(|e| Membership::decode(&e.data))
        .unwrap_or_else(|| {
            raft_core::split_snapshot(&core.snapshot().data)
                .0
                .unwrap_or_else(|| world.bootstrap_of(node))
        })
}

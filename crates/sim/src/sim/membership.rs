//! Membership events (docs/TESTING.md): with `workload.membership_per_tick` set, clients
//! ask a node (the leader, usually) to add a learner, promote one, add an empty voter,
//! remove a voter or a learner, replace a voter by single-server steps (add the new
//! one, then remove the old one once the first step is done), move the voters to an
//! arbitrary set by joint consensus (disjoint sets included), or hand leadership over.
//! The cluster has spare nodes that start outside the configuration, empty, knowing no
//! members; removed nodes stay up, keep ticking and may campaign: they must disturb
//! nothing the invariants can see.

use super::{Phase, Simulator};
use crate::event::Event;
use crate::invariant::Violation;
use crate::trace::{MembershipOp, TraceKind};
use crate::world::Core;
use raft_core::{ConfChange, CoreError, EntryKind, Index, Membership, NodeId, RaftCore, Term};
use rand::Rng;
use std::collections::BTreeSet;

impl Simulator {
    /// A fresh core for `node` from `restored`: an initial voter starts from the bootstrap
    /// configuration, a spare node from none (it learns its configuration from the log
    /// or a snapshot it is sent).
    pub(super) fn new_core(
        &self,
        node: usize,
        restored: raft_core::RestoredState,
    ) -> Result<Core, CoreError> {
        let id = node as NodeId + 1;
        if self.peers.contains(&id) {
            RaftCore::new(
                id,
                &self.peers,
                self.cfg.core_config(),
                restored,
                self.rng.clone(),
            )
        } else {
            RaftCore::joining(id, self.cfg.core_config(), restored, self.rng.clone())
        }
    }

    pub(super) fn schedule_membership(&mut self) {
        self.schedule_at_rate(self.cfg.workload.membership_per_tick, Event::Membership);
    }

    /// A client asks a node for a membership change or a leadership transfer.
    pub(super) fn membership_event(&mut self) -> Result<(), Violation> {
        if self.phase != Phase::Chaos {
            return Ok(());
        }
        self.schedule_membership();
        let node = self.client_target();
        let Some(current) = self.world.nodes[node]
            .core()
            .map(|c| c.membership().clone())
        else {
            return Ok(());
        };
        self.flush_before_input(node)?;
        self.set_clock(node);
        let op = match self.replace_pending.take() {
            // The second step of a replacement, once the first is done.
            Some(old) if current.voters.len() > 1 && current.voters.contains(&old) => {
                MembershipOp::Change(ConfChange::Remove(old))
            }
            _ => self.draw_op(&current),
        };
        let outcome = match self.world.nodes[node].core.as_mut() {
            Some(core) => ask(core, &op),
            None => return Ok(()),
        };
        if outcome.is_ok() {
            match &op {
                MembershipOp::Transfer(_) => self.stats.counts.transfers += 1,
                _ => self.stats.counts.conf_changes += 1,
            }
        }
        self.record(TraceKind::Membership {
            node: node as NodeId + 1,
            op,
            outcome,
        });
        self.after_input(node)
    }

    /// Draws the event to ask for, given the configuration in force at the node asked.
    fn draw_op(&mut self, current: &Membership) -> MembershipOp {
        let all: Vec<NodeId> = (1..=self.world.nodes.len() as NodeId).collect();
        let outside: Vec<NodeId> = all
            .iter()
            .copied()
            .filter(|id| !current.contains(*id))
            .collect();
        let voters: Vec<NodeId> = current.voters.iter().copied().collect();
        let learners: Vec<NodeId> = current.learners.iter().copied().collect();
        let pick = |rng: &mut crate::rng::SharedRng, v: &[NodeId]| v[rng.gen_range(0..v.len())];
        for _ in 0..8 {
            match self.rng.gen_range(0..8) {
                0 | 1 if !outside.is_empty() => {
                    return MembershipOp::Change(ConfChange::AddLearner(pick(
                        &mut self.rng,
                        &outside,
                    )))
                }
                2 if !learners.is_empty() => {
                    return MembershipOp::Change(ConfChange::AddVoter(pick(
                        &mut self.rng,
                        &learners,
                    )))
                }
                3 if !outside.is_empty() => {
                    // An empty server made a voter at once (no learner stage).
                    return MembershipOp::Change(ConfChange::AddVoter(pick(
                        &mut self.rng,
                        &outside,
                    )));
                }
                4 if voters.len() > 1 || !learners.is_empty() => {
                    let v = if voters.len() > 1 { &voters } else { &learners };
                    return MembershipOp::Change(ConfChange::Remove(pick(&mut self.rng, v)));
                }
                5 if !voters.is_empty() && (!outside.is_empty() || !learners.is_empty()) => {
                    // Replace a voter: add the newcomer now, remove the old one next time.
                    let pool = if learners.is_empty() {
                        &outside
                    } else {
                        &learners
                    };
                    let new = pick(&mut self.rng, pool);
                    self.replace_pending = Some(pick(&mut self.rng, &voters));
                    return MembershipOp::Change(ConfChange::AddVoter(new));
                }
                6 => {
                    // Any non-empty set of nodes, disjoint from the current one or not.
                    let mask = self.rng.gen_range(1..(1u64 << all.len()));
                    let target: BTreeSet<NodeId> = all
                        .iter()
                        .copied()
                        .filter(|id| mask & (1 << (id - 1)) != 0)
                        .collect();
                    return MembershipOp::Voters(target);
                }
                7 => return MembershipOp::Transfer(pick(&mut self.rng, &all)),
                _ => {}
            }
        }
        MembershipOp::Transfer(pick(&mut self.rng, &all))
    }

    /// True when every member of the leader `leader`'s configuration (and the leader)
    /// has applied `index`: the end of the liveness check. Nodes outside the final
    /// configuration (spare or removed) are not waited for.
    pub(super) fn members_applied(&self, leader: usize, index: Index) -> bool {
        let Some(conf) = self.world.nodes[leader].core().map(|c| c.membership()) else {
            return false;
        };
        self.world
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i == leader || conf.contains(n.id))
            .all(|(_, n)| n.applied >= index)
    }
}

/// Asks `core` for `op`.
fn ask(core: &mut Core, op: &MembershipOp) -> Result<Option<(Index, Term)>, String> {
    let result = match op {
        MembershipOp::Change(c) => core.propose_conf_change(c).map(Some),
        MembershipOp::Voters(v) => core.propose_voters(v).map(Some),
        MembershipOp::Transfer(id) => core.transfer_leader(*id).map(|()| None),
    };
    result.map_err(|e| e.to_string())
}

/// True for the entries the simulated service applies as client commands (not the
/// core's configuration entries).
pub(super) fn is_command(entry: &raft_core::Entry) -> bool {
    entry.kind == EntryKind::Command
}

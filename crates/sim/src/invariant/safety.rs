//! The safety invariants of Figure 3 of the extended paper (and the durability and
//! persistence contracts the driver relies on), one checker each.

use super::{id, Invariant, InvariantKind, Observation};
use crate::world::{decode_snapshot, Recorded, World};
use raft_core::{Index, Snapshot, Term};
use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;

/// At most one leader per term.
#[derive(Default)]
pub(super) struct ElectionSafety {
    leaders: BTreeMap<Term, usize>,
}

impl Invariant for ElectionSafety {
    fn name(&self) -> &'static str {
        InvariantKind::ElectionSafety.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        if let Observation::Crashed {
            node,
            rolled_back: Some(_),
        } = *obs
        {
            // A leader whose vote for itself was in the unsynced batch the crash lost (a
            // single voter wins before its write is synced) never led as far as anyone
            // could see: the batch's messages never left.
            let disk_term = world.nodes[node].storage.hard_state().term;
            self.leaders.retain(|t, n| *n != node || *t <= disk_term);
            return Ok(());
        }
        let Observation::Stepped { node } = *obs else {
            return Ok(());
        };
        let Some(core) = world.nodes[node].core() else {
            return Ok(());
        };
        if !core.is_leader() {
            return Ok(());
        }
        match self.leaders.entry(core.term()) {
            MapEntry::Vacant(v) => {
                v.insert(node);
                Ok(())
            }
            MapEntry::Occupied(o) if *o.get() == node => Ok(()),
            MapEntry::Occupied(o) => Err(format!(
                "n{} and n{} were both leaders of term {}",
                id(*o.get()),
                id(node),
                core.term()
            )),
        }
    }
}

/// A leader's log only grows while it leads.
pub(super) struct LeaderAppendOnly {
    /// Per node, while it leads: (term, last index, term of last entry) at the last step.
    pub(super) state: Vec<Option<(Term, Index, Term)>>,
}

impl Invariant for LeaderAppendOnly {
    fn name(&self) -> &'static str {
        InvariantKind::LeaderAppendOnly.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Persisted {
                node,
                truncate_from: Some(from),
                ..
            } => {
                let core = world.nodes[node].core();
                if let (Some((term, _, _)), Some(core)) = (self.state[node], core) {
                    if core.is_leader() && core.term() == term {
                        return Err(format!(
                            "n{}, leader of term {term}, truncated its own log from index {from}",
                            id(node)
                        ));
                    }
                }
                Ok(())
            }
            Observation::Stepped { node } => {
                let Some(core) = world.nodes[node].core().filter(|c| c.is_leader()) else {
                    self.state[node] = None;
                    return Ok(());
                };
                let (term, log) = (core.term(), core.log());
                if let Some((t, last, last_term)) = self.state[node] {
                    if t == term {
                        if log.last_index() < last {
                            return Err(format!(
                                "n{}, leader of term {term}, shrank its log from {last} to {}",
                                id(node),
                                log.last_index()
                            ));
                        }
                        if last >= log.snapshot().index && log.term(last) != Some(last_term) {
                            return Err(format!(
                                "n{}, leader of term {term}, changed its entry {last} from term {last_term} to {:?}",
                                id(node),
                                log.term(last)
                            ));
                        }
                    }
                }
                self.state[node] = Some((term, log.last_index(), log.last_term()));
                Ok(())
            }
            Observation::Crashed { node, .. } => {
                self.state[node] = None;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Log matching, checked incrementally: every (index, term) pair ever persisted names one
/// command and one predecessor term. By induction on the index, two logs that share an
/// (index, term) pair are then identical up to it.
#[derive(Default)]
pub(super) struct LogMatching {
    /// Per index: (term, command, term of the previous entry) for each term seen there.
    seen: Vec<Vec<(Term, bytes::Bytes, Term, usize)>>,
}

impl Invariant for LogMatching {
    fn name(&self) -> &'static str {
        InvariantKind::LogMatching.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let Observation::Persisted { node, entries, .. } = *obs else {
            return Ok(());
        };
        let storage = &world.nodes[node].storage;
        for e in entries {
            let prev = storage.term(e.index - 1).unwrap_or(Term::MAX);
            let i = e.index as usize;
            if self.seen.len() <= i {
                self.seen.resize_with(i + 1, Vec::new);
            }
            let slot = &mut self.seen[i];
            match slot.iter().find(|(t, ..)| *t == e.term) {
                Some((_, data, p, first)) => {
                    if *data != e.data || *p != prev {
                        return Err(format!(
                            "n{} holds entry {}@{} = {:?} after term {prev}, but n{} held {}@{} = {:?} after term {p}",
                            id(node),
                            e.index,
                            e.term,
                            e.data,
                            id(*first),
                            e.index,
                            e.term,
                            data
                        ));
                    }
                }
                None => slot.push((e.term, e.data.clone(), prev, node)),
            }
        }
        Ok(())
    }
}

/// Every leader holds every entry committed in an earlier term.
pub(super) struct LeaderCompleteness {
    /// Per node: the term in which it was last checked as a new leader.
    pub(super) checked: Vec<Option<Term>>,
}

impl Invariant for LeaderCompleteness {
    fn name(&self) -> &'static str {
        InvariantKind::LeaderCompleteness.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Stepped { node } => {
                let Some(core) = world.nodes[node].core().filter(|c| c.is_leader()) else {
                    return Ok(());
                };
                let term = core.term();
                if self.checked[node] == Some(term) {
                    return Ok(());
                }
                self.checked[node] = Some(term);
                // Entries a snapshot covers are checked when the snapshot is persisted.
                let compacted = core.log().snapshot().index;
                for (i, c) in world.ledger.iter() {
                    if i > compacted && c.commit_term < term && core.log().term(i) != Some(c.term) {
                        return Err(format!(
                            "n{} became leader of term {term} without entry {i}@{}, committed in term {}; its log ends at {}@{}",
                            id(node),
                            c.term,
                            c.commit_term,
                            core.log().last_index(),
                            core.log().last_term()
                        ));
                    }
                }
                Ok(())
            }
            Observation::Committed {
                index,
                recorded: Recorded::New,
                ..
            } => {
                let Some(c) = world.ledger.get(index) else {
                    return Ok(());
                };
                for n in &world.nodes {
                    let Some(core) = n.core().filter(|c| c.is_leader()) else {
                        continue;
                    };
                    if core.term() > c.commit_term
                        && index > core.log().snapshot().index
                        && core.log().term(index) != Some(c.term)
                    {
                        return Err(format!(
                            "entry {index}@{} committed in term {} is missing from n{}, leader of later term {}",
                            c.term,
                            c.commit_term,
                            n.id,
                            core.term()
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Commits and applies agree with the ledger; applies are in order since each restart.
pub(super) struct StateMachineSafety {
    pub(super) applied: Vec<Index>,
}

impl Invariant for StateMachineSafety {
    fn name(&self) -> &'static str {
        InvariantKind::StateMachineSafety.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Committed {
                node,
                index,
                entry,
                recorded,
            } => match (entry, recorded) {
                (None, _) => Err(format!(
                    "n{} commit index covers {index} but its log does not reach it",
                    id(node)
                )),
                (Some(e), Recorded::Conflict(c)) => Err(format!(
                    "n{} committed {}@{} = {:?} at index {index}, where {}@{} = {:?} was committed before",
                    id(node),
                    e.index,
                    e.term,
                    e.data,
                    index,
                    c.term,
                    c.data
                )),
                _ => Ok(()),
            },
            Observation::Applied { node, entry } => {
                let prev = self.applied[node];
                if entry.index != prev + 1 {
                    return Err(format!(
                        "n{} applied index {} right after {prev} (since its last start)",
                        id(node),
                        entry.index
                    ));
                }
                self.applied[node] = entry.index;
                match world.ledger.get(entry.index) {
                    None => Err(format!(
                        "n{} applied {}@{} which no node committed",
                        id(node),
                        entry.index,
                        entry.term
                    )),
                    Some(c) if c.term != entry.term || c.data != entry.data => Err(format!(
                        "n{} applied {}@{} = {:?} but {}@{} = {:?} is the committed entry there",
                        id(node),
                        entry.index,
                        entry.term,
                        entry.data,
                        entry.index,
                        c.term,
                        c.data
                    )),
                    Some(_) => Ok(()),
                }
            }
            Observation::Restored { node, snapshot } => {
                let at = snapshot.meta.index;
                if at <= self.applied[node] {
                    return Err(format!(
                        "n{} loaded a snapshot through {at}, rolling its state machine back from {}",
                        id(node),
                        self.applied[node]
                    ));
                }
                self.applied[node] = at;
                check_snapshot(world, node, snapshot, "loaded")
            }
            Observation::Persisted {
                node,
                snapshot: Some(snapshot),
                ..
            } => check_snapshot(world, node, snapshot, "persisted"),
            Observation::Crashed { node, .. } | Observation::Restarted { node } => {
                self.applied[node] = 0;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A snapshot must hold exactly the state of the committed prefix it claims to cover.
fn check_snapshot(world: &World, node: usize, s: &Snapshot, what: &str) -> Result<(), String> {
    let at = s.meta.index;
    // Persisted snapshots carry the configuration around the service's bytes.
    let (_, data) = raft_core::split_snapshot(&s.data);
    let Some((index, digest)) = decode_snapshot(&data) else {
        return Err(format!(
            "n{} {what} a snapshot through {at} whose data is not a state: {:?}",
            id(node),
            s.data
        ));
    };
    if index != at {
        return Err(format!(
            "n{} {what} a snapshot labelled through {at} holding the state through {index}",
            id(node)
        ));
    }
    match (world.ledger.get(at), world.ledger.digest(at)) {
        (Some(c), Some(d)) if c.term == s.meta.term && d == digest => Ok(()),
        (Some(c), Some(_)) if c.term != s.meta.term => Err(format!(
            "n{} {what} a snapshot through {at}@{} but {at}@{} is the committed entry there",
            id(node),
            s.meta.term,
            c.term
        )),
        (Some(_), Some(_)) => Err(format!(
            "n{} {what} a snapshot through {at} whose state differs from the committed entries 1..={at}",
            id(node)
        )),
        _ => Err(format!(
            "n{} {what} a snapshot through {at}, beyond what is known committed ({})",
            id(node),
            world.ledger.max_index()
        )),
    }
}

/// The commit index of a node that stays up never decreases.
pub(super) struct CommitMonotonic {
    pub(super) last: Vec<Index>,
}

impl Invariant for CommitMonotonic {
    fn name(&self) -> &'static str {
        InvariantKind::CommitMonotonic.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Stepped { node } => {
                let Some(core) = world.nodes[node].core() else {
                    return Ok(());
                };
                let c = core.commit_index();
                if c < self.last[node] {
                    return Err(format!(
                        "n{} commit index went back from {} to {c} without a crash",
                        id(node),
                        self.last[node]
                    ));
                }
                self.last[node] = c;
                Ok(())
            }
            Observation::Crashed { node, .. } | Observation::Restarted { node } => {
                self.last[node] = 0;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Acknowledged entries stay on a majority of disks.
#[derive(Default)]
pub(super) struct Durability {
    acked: BTreeMap<Index, Term>,
}

impl Durability {
    /// The entry is safe while the nodes whose disks lack it are no quorum of the last
    /// committed configuration (with a fixed membership: while a majority of disks hold
    /// it). That configuration, and not the one in force on some node, is the one every
    /// later configuration's quorums overlap with; nodes outside it (spare or removed)
    /// count for nothing.
    fn check(world: &World, index: Index, term: Term) -> Result<(), String> {
        let conf = world.committed_config();
        let lacks =
            |id: raft_core::NodeId| !world.nodes[id as usize - 1].storage.holds(index, term);
        if !super::membership::is_quorum(conf, lacks) {
            return Ok(());
        }
        let holders: Vec<String> = world
            .nodes
            .iter()
            .filter(|n| n.storage.holds(index, term))
            .map(|n| format!("n{}", n.id))
            .collect();
        Err(format!(
            "only [{}] hold it on disk; the others are a quorum of the committed configuration {}",
            holders.join(","),
            crate::world::show_membership(conf)
        ))
    }

    fn recheck(&self, world: &World, from: Index, why: &str) -> Result<(), String> {
        for (&i, &t) in self.acked.range(from..) {
            if let Err(e) = Self::check(world, i, t) {
                return Err(format!(
                    "entry {i}@{t}, acknowledged to a client, is lost after {why}: {e}"
                ));
            }
        }
        Ok(())
    }
}

impl Invariant for Durability {
    fn name(&self) -> &'static str {
        InvariantKind::Durability.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Acked { node, index, term } => {
                if let Err(e) = Self::check(world, index, term) {
                    return Err(format!("n{} acknowledged {index}@{term}: {e}", id(node)));
                }
                self.acked.insert(index, term);
                Ok(())
            }
            Observation::Persisted {
                node,
                truncate_from,
                snapshot,
                ..
            } if truncate_from.is_some() || snapshot.is_some() => {
                let from = match (truncate_from, snapshot) {
                    (Some(t), Some(s)) => t.min(s.meta.index + 1),
                    (Some(t), None) => t,
                    (None, Some(s)) => s.meta.index + 1,
                    (None, None) => return Ok(()),
                };
                self.recheck(
                    world,
                    from,
                    &format!("n{} rewrote its log from {from}", id(node)),
                )
            }
            Observation::Crashed {
                node,
                rolled_back: Some(from),
            } => self.recheck(
                world,
                from.max(1),
                &format!("n{} crashed and lost its unsynced batch", id(node)),
            ),
            _ => Ok(()),
        }
    }
}

/// What the core acts on is what it persisted.
pub(super) struct PersistedState;

impl Invariant for PersistedState {
    fn name(&self) -> &'static str {
        InvariantKind::PersistedState.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let Observation::Stepped { node } = *obs else {
            return Ok(());
        };
        let n = &world.nodes[node];
        let Some(core) = n.core() else {
            return Ok(());
        };
        let (mem, disk) = (core.hard_state(), n.storage.hard_state());
        if mem != disk {
            return Err(format!(
                "n{} acts on term {} vote {:?} but its disk holds term {} vote {:?}: a crash now forgets it",
                id(node),
                mem.term,
                mem.vote,
                disk.term,
                disk.vote
            ));
        }
        let log = core.log();
        if log.snapshot() != n.storage.snapshot_meta() {
            return Err(format!(
                "n{} log starts after {:?} in memory but after {:?} on disk",
                id(node),
                log.snapshot(),
                n.storage.snapshot_meta()
            ));
        }
        if log.last_index() != n.storage.last_index() || log.last_term() != n.storage.last_term() {
            return Err(format!(
                "n{} log ends at {}@{} in memory but {}@{} on disk",
                id(node),
                log.last_index(),
                log.last_term(),
                n.storage.last_index(),
                n.storage.last_term()
            ));
        }
        Ok(())
    }
}

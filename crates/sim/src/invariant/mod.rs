//! The safety invariants, checked after every step.
//!
//! The simulator reports what happens as [`Observation`]s; every enabled [`Invariant`]
//! sees each one, together with the whole [`World`], and may object. To add an
//! invariant, implement the trait (typically a few lines of state and a `match` on the
//! observations it cares about) and list it in [`InvariantKind`]; to add an event that
//! invariants must know about, add an `Observation` variant (existing invariants ignore
//! it with their `_ => Ok(())` arm).

mod flow;

use crate::config::{Micros, SimConfig};
use crate::world::{decode_snapshot, Recorded, World};
use raft_core::{Entry, Envelope, HardState, Index, Snapshot, Term};
use std::collections::btree_map::Entry as MapEntry;
use std::collections::BTreeMap;
use std::fmt;

/// Something that happened, as the invariants see it. Node numbers are indices
/// (node id minus one).
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    /// A node wrote one batch to its storage (the storage already reflects it).
    Persisted {
        /// Node index.
        node: usize,
        /// Term and vote written, if any.
        hard_state: Option<HardState>,
        /// Snapshot written, if any.
        snapshot: Option<&'a Snapshot>,
        /// Truncation point, if any.
        truncate_from: Option<Index>,
        /// Entries appended.
        entries: &'a [Entry],
    },
    /// A node's commit index now covers `index`; `entry` is what its log holds there.
    Committed {
        /// Node index.
        node: usize,
        /// The index.
        index: Index,
        /// The node's entry at that index (`None` if its log does not reach it).
        entry: Option<&'a Entry>,
        /// What the ledger made of it.
        recorded: &'a Recorded,
    },
    /// A node handled one input and its `Ready` was persisted: its state is final for
    /// this step.
    Stepped {
        /// Node index.
        node: usize,
    },
    /// A node applied an entry to its state machine.
    Applied {
        /// Node index.
        node: usize,
        /// The entry.
        entry: &'a Entry,
    },
    /// A node's state machine loaded a snapshot in place of its state.
    Restored {
        /// Node index.
        node: usize,
        /// The snapshot.
        snapshot: &'a Snapshot,
    },
    /// A client was told that its command committed.
    Acked {
        /// Node index that answered.
        node: usize,
        /// Index of the command's entry.
        index: Index,
        /// Term of the command's entry.
        term: Term,
    },
    /// A node sent a message; `disturbed` when a fault struck it (dropped, duplicated,
    /// delayed or reordered).
    Sent {
        /// Node index of the sender.
        node: usize,
        /// The message.
        env: &'a Envelope,
        /// Whether a fault struck it.
        disturbed: bool,
    },
    /// A message was lost at delivery: its link was down or its receiver was.
    Lost {
        /// The message.
        env: &'a Envelope,
    },
    /// A node crashed.
    Crashed {
        /// Node index.
        node: usize,
        /// Lowest log index changed by losing an unsynced batch (0: only the hard state).
        rolled_back: Option<Index>,
    },
    /// A node restarted from its storage.
    Restarted {
        /// Node index.
        node: usize,
    },
}

/// A safety property checked against every observation.
pub trait Invariant {
    /// Short name, used in reports and in `disabled_invariants`.
    fn name(&self) -> &'static str;
    /// Checks `obs` against the world (already updated); `Err` explains the violation.
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String>;
}

/// A broken invariant, with where and when it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Name of the invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
    /// Step at which it was seen.
    pub step: u64,
    /// Virtual time at which it was seen.
    pub time_us: Micros,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at step {} ({}.{:06}s): {}",
            self.invariant,
            self.step,
            self.time_us / 1_000_000,
            self.time_us % 1_000_000,
            self.detail
        )
    }
}

/// The built-in invariants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvariantKind {
    /// At most one leader per term, ever.
    ElectionSafety,
    /// A leader never removes or changes its own entries.
    LeaderAppendOnly,
    /// Two logs with an entry of the same index and term are identical up to it.
    LogMatching,
    /// A committed entry is in the log of every leader of a later term.
    LeaderCompleteness,
    /// No two nodes commit or apply different entries at one index; each node applies
    /// in order, without gaps or repeats, since its last restart.
    StateMachineSafety,
    /// A node's commit index never moves back while it stays up.
    CommitMonotonic,
    /// An entry acknowledged to a client stays on a majority of disks, whatever crashes.
    Durability,
    /// After each `Ready` is persisted, the core's term, vote and log equal what is on
    /// disk: anything it acts on survives a crash.
    PersistedState,
    /// A leader never has more messages in flight to a follower than its window allows.
    FlowWindow,
    /// One snapshot transfer sends a small multiple of the snapshot's size in chunks,
    /// plus what faults on its link account for.
    SnapshotTraffic,
}

impl InvariantKind {
    /// Every built-in invariant.
    pub const ALL: [InvariantKind; 10] = [
        InvariantKind::ElectionSafety,
        InvariantKind::LeaderAppendOnly,
        InvariantKind::LogMatching,
        InvariantKind::LeaderCompleteness,
        InvariantKind::StateMachineSafety,
        InvariantKind::CommitMonotonic,
        InvariantKind::Durability,
        InvariantKind::PersistedState,
        InvariantKind::FlowWindow,
        InvariantKind::SnapshotTraffic,
    ];

    /// The invariant's name.
    pub fn name(self) -> &'static str {
        match self {
            InvariantKind::ElectionSafety => "election-safety",
            InvariantKind::LeaderAppendOnly => "leader-append-only",
            InvariantKind::LogMatching => "log-matching",
            InvariantKind::LeaderCompleteness => "leader-completeness",
            InvariantKind::StateMachineSafety => "state-machine-safety",
            InvariantKind::CommitMonotonic => "commit-monotonic",
            InvariantKind::Durability => "durability",
            InvariantKind::PersistedState => "persisted-state",
            InvariantKind::FlowWindow => "flow-window",
            InvariantKind::SnapshotTraffic => "snapshot-traffic",
        }
    }

    /// The kind with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A fresh checker of this invariant for a cluster of `nodes` run with `cfg`.
    pub fn build(self, cfg: &SimConfig, nodes: usize) -> Box<dyn Invariant> {
        match self {
            InvariantKind::ElectionSafety => Box::new(ElectionSafety::default()),
            InvariantKind::LeaderAppendOnly => Box::new(LeaderAppendOnly {
                state: vec![None; nodes],
            }),
            InvariantKind::LogMatching => Box::new(LogMatching::default()),
            InvariantKind::LeaderCompleteness => Box::new(LeaderCompleteness {
                checked: vec![None; nodes],
            }),
            InvariantKind::StateMachineSafety => Box::new(StateMachineSafety {
                applied: vec![0; nodes],
            }),
            InvariantKind::CommitMonotonic => Box::new(CommitMonotonic {
                last: vec![0; nodes],
            }),
            InvariantKind::Durability => Box::new(Durability::default()),
            InvariantKind::PersistedState => Box::new(PersistedState),
            InvariantKind::FlowWindow => Box::new(flow::FlowWindow::new(cfg)),
            InvariantKind::SnapshotTraffic => Box::new(flow::SnapshotTraffic::new(cfg, nodes)),
        }
    }
}

/// Runs every enabled invariant against each observation.
pub struct Checker {
    invariants: Vec<Box<dyn Invariant>>,
}

impl Checker {
    /// The built-in invariants that `cfg` does not disable, for a cluster of `nodes`.
    pub fn new(cfg: &SimConfig, nodes: usize) -> Self {
        Checker {
            invariants: InvariantKind::ALL
                .into_iter()
                .filter(|k| cfg.checks(*k))
                .map(|k| k.build(cfg, nodes))
                .collect(),
        }
    }

    /// Adds an invariant of the caller's own.
    pub fn add(&mut self, inv: Box<dyn Invariant>) {
        self.invariants.push(inv);
    }

    /// Adds an invariant of the caller's own in front of the others, so that it sees every
    /// observation, also one that breaks a later invariant (for an observer that records
    /// and never objects).
    pub fn add_first(&mut self, inv: Box<dyn Invariant>) {
        self.invariants.insert(0, inv);
    }

    /// Names of the invariants checked.
    pub fn names(&self) -> Vec<&'static str> {
        self.invariants.iter().map(|i| i.name()).collect()
    }

    /// Shows `obs` to every invariant; the first objection is returned.
    #[inline]
    pub fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), Violation> {
        for inv in &mut self.invariants {
            if let Err(detail) = inv.observe(world, obs) {
                return Err(Violation {
                    invariant: inv.name(),
                    detail,
                    step: world.step,
                    time_us: world.now,
                });
            }
        }
        Ok(())
    }
}

fn id(node: usize) -> u64 {
    node as u64 + 1
}

/// At most one leader per term.
#[derive(Default)]
struct ElectionSafety {
    leaders: BTreeMap<Term, usize>,
}

impl Invariant for ElectionSafety {
    fn name(&self) -> &'static str {
        InvariantKind::ElectionSafety.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
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
struct LeaderAppendOnly {
    /// Per node, while it leads: (term, last index, term of last entry) at the last step.
    state: Vec<Option<(Term, Index, Term)>>,
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
struct LogMatching {
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
struct LeaderCompleteness {
    /// Per node: the term in which it was last checked as a new leader.
    checked: Vec<Option<Term>>,
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
struct StateMachineSafety {
    applied: Vec<Index>,
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
    let Some((index, digest)) = decode_snapshot(&s.data) else {
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
struct CommitMonotonic {
    last: Vec<Index>,
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
struct Durability {
    acked: BTreeMap<Index, Term>,
}

impl Durability {
    fn recheck(&self, world: &World, from: Index, why: &str) -> Result<(), String> {
        for (&i, &t) in self.acked.range(from..) {
            let h = world.holders(i, t);
            if h < world.quorum() {
                return Err(format!(
                    "entry {i}@{t}, acknowledged to a client, is now on {h} disk(s) (a majority is {}) after {why}",
                    world.quorum()
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
                let h = world.holders(index, term);
                if h < world.quorum() {
                    return Err(format!(
                        "n{} acknowledged {index}@{term} while only {h} disk(s) hold it (a majority is {})",
                        id(node),
                        world.quorum()
                    ));
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
struct PersistedState;

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

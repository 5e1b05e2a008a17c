//! The safety invariants, checked after every step.
//!
//! The simulator reports what happens as [`Observation`]s; every enabled [`Invariant`]
//! sees each one, together with the whole [`World`], and may object. To add an
//! invariant, implement the trait (typically a few lines of state and a `match` on the
//! observations it cares about) and list it in [`InvariantKind`]; to add an event that
//! invariants must know about, add an `Observation` variant (existing invariants ignore
//! it with their `_ => Ok(())` arm).

mod flow;
mod membership;
mod reads;
mod safety;
mod stability;

use safety::{
    CommitMonotonic, Durability, ElectionSafety, LeaderAppendOnly, LeaderCompleteness, LogMatching,
    PersistedState, StateMachineSafety,
};

use crate::config::{Micros, SimConfig};
use crate::world::{ReadKey, Recorded, World};
use raft_core::{Entry, Envelope, HardState, Index, Snapshot, Term};
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
    /// A node's core counted one tick (its state is as the tick left it; its `Ready` is
    /// handled next).
    Ticked {
        /// Node index.
        node: usize,
    },
    /// A node's core stepped a message (its state is as the message left it; its
    /// `Ready` is handled next).
    Delivered {
        /// Node index of the receiver.
        node: usize,
        /// Node index of the sender.
        from: usize,
        /// The message's term.
        term: Term,
        /// Whether the message answers a request.
        response: bool,
    },
    /// A client asked `node` for a linearizable read, identified by `ctx`.
    ReadStarted {
        /// Node index.
        node: usize,
        /// The read's id.
        ctx: u64,
        /// The key it reads, or `None` for the whole state machine.
        key: Option<ReadKey>,
    },
    /// `node` answered read `ctx` from its state machine at index `applied`.
    ReadAnswered {
        /// Node index.
        node: usize,
        /// The read's id.
        ctx: u64,
        /// The applied index the answer reflects.
        applied: Index,
    },
    /// Read `ctx` will not be answered (refused, failed, or its node crashed).
    ReadFailed {
        /// The read's id.
        ctx: u64,
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
    /// Every term a node holds was first reached by some node's campaign (a pre-vote
    /// raises no term).
    TermOrigin,
    /// With check-quorum, a leader that no majority answered for two windows of
    /// `election_timeout_min` of its ticks has stepped down.
    QuorumContact,
    /// A read reflects every write committed before it began and nothing uncommitted
    /// when it was answered.
    LinearizableRead,
    /// The configuration a node uses is the last one its log (or snapshot) holds.
    ConfigInLog,
    /// A leader was elected by a quorum of its configuration (learners do not count).
    ElectionQuorum,
    /// An entry first commits on a quorum of the committing leader's configuration.
    CommitQuorum,
    /// At most one leader at a time has a quorum of its configuration in its term.
    QuorumOverlap,
}

impl InvariantKind {
    /// Every built-in invariant.
    pub const ALL: [InvariantKind; 17] = [
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
        InvariantKind::TermOrigin,
        InvariantKind::QuorumContact,
        InvariantKind::LinearizableRead,
        InvariantKind::ConfigInLog,
        InvariantKind::ElectionQuorum,
        InvariantKind::CommitQuorum,
        InvariantKind::QuorumOverlap,
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
            InvariantKind::TermOrigin => "term-origin",
            InvariantKind::QuorumContact => "quorum-contact",
            InvariantKind::LinearizableRead => "linearizable-read",
            InvariantKind::ConfigInLog => "config-in-log",
            InvariantKind::ElectionQuorum => "election-quorum",
            InvariantKind::CommitQuorum => "commit-quorum",
            InvariantKind::QuorumOverlap => "quorum-overlap",
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
            InvariantKind::TermOrigin => Box::new(stability::TermOrigin::default()),
            InvariantKind::QuorumContact => Box::new(stability::QuorumContact::new(cfg, nodes)),
            InvariantKind::LinearizableRead => Box::new(reads::LinearizableRead::default()),
            InvariantKind::ConfigInLog => Box::new(membership::ConfigInLog::new(nodes)),
            InvariantKind::ElectionQuorum => Box::new(membership::ElectionQuorum::default()),
            InvariantKind::CommitQuorum => Box::new(membership::CommitQuorum),
            InvariantKind::QuorumOverlap => Box::new(membership::QuorumOverlap),
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

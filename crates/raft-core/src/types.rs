//! The basic vocabulary of the protocol: ids, terms, indices, log entries and the
//! state that must survive a crash.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Identifies one peer of the cluster. Any `u64` may be used; the runtime uses the
/// peer's position in its peer list.
pub type NodeId = u64;
/// A Raft term (Figure 2: "latest term server has seen").
pub type Term = u64;
/// A log index. The first entry of a log has index 1; index 0 means "before the log".
pub type Index = u64;

/// What an entry's `data` holds, and so who reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// A command for the service (empty data: the leader's no-op), applied by the service.
    #[default]
    Command,
    /// A cluster configuration, read by the core itself; the service is only told of it.
    Config,
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log, starting at 1.
    pub index: Index,
    /// Whose entry it is: the service's command or the core's configuration.
    pub kind: EntryKind,
    /// The creating leader's clock when it appended the entry, in the driver's time unit
    /// (0 when the driver gives the core no clock). Lease reads use it; nothing else does.
    pub timestamp: u64,
    /// The command (or configuration). The core never looks inside a command.
    pub data: Bytes,
}

impl Entry {
    /// Bytes an entry costs beyond its data in [`Entry::size`]: the size limits' estimate
    /// of its header (term, index, kind, timestamp).
    pub const OVERHEAD: usize = 24;

    /// A command entry with no timestamp: the common case, and what tests build.
    pub fn new(term: Term, index: Index, data: impl Into<Bytes>) -> Self {
        Entry {
            term,
            index,
            kind: EntryKind::Command,
            timestamp: 0,
            data: data.into(),
        }
    }

    /// Bytes this entry adds to a message or to storage, used for size limits.
    pub fn size(&self) -> usize {
        self.data.len() + Self::OVERHEAD
    }
}

/// The part of Figure 2's persistent state that is not the log: current term and vote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term this server has seen.
    pub term: Term,
    /// The candidate voted for in `term`, if any.
    pub vote: Option<NodeId>,
}

/// Where a snapshot ends: the last log entry it replaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Index of the last entry the snapshot covers (0 when there is none).
    pub index: Index,
    /// Term of that entry.
    pub term: Term,
}

/// A snapshot of the service's state through `meta.index`, as opaque bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last log entry the snapshot replaces.
    pub meta: SnapshotMeta,
    /// The service's state, as the service encoded it.
    pub data: Bytes,
}

/// Everything a node's storage returns on restart: the state the core resumes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// Term and vote.
    pub hard_state: HardState,
    /// Where the persisted snapshot ends (default: no snapshot).
    pub snapshot: SnapshotMeta,
    /// The persisted snapshot's data (empty when there is none).
    pub snapshot_data: Bytes,
    /// The entries after the snapshot, contiguous and in order.
    pub entries: Vec<Entry>,
}

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader, votes, and starts an election when it hears nothing.
    Follower,
    /// Asks for votes in its own term.
    Candidate,
    /// Replicates its log to everyone else.
    Leader,
    /// Asks whether it could win an election (pre-vote), still in its old term: it
    /// campaigns only when a majority answers yes. (Last, so that the encoding of the
    /// other roles is unchanged.)
    PreCandidate,
}

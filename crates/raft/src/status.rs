//! A snapshot of a peer's state for operators (`raftkv status`, metrics).

use raft_core::{Index, NodeId, Role, Term};

/// What a peer reports about itself: [`Raft::status`](crate::Raft::status).
///
/// Published by the peer's task after every turn of its event loop, so it is at most one
/// turn old; fields are read together (never a torn mix of two turns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The peer's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in this term, if any.
    pub leader: Option<NodeId>,
    /// Highest log index known to be committed.
    pub commit_index: Index,
    /// Highest index handed to the service's apply channel.
    pub applied_index: Index,
    /// Index of the last entry in its log.
    pub last_log_index: Index,
    /// Last index covered by its snapshot (0: none).
    pub snapshot_index: Index,
    /// Bytes of persisted Raft state (term, vote and log; not the snapshot).
    pub raft_state_size: u64,
}

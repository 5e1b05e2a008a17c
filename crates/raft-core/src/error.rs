//! The core's errors.

use crate::types::{Index, NodeId};

/// What can go wrong when creating or driving a [`RaftCore`](crate::RaftCore).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The configuration is unusable; the text says why.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The peer list is empty.
    #[error("the peer list is empty")]
    NoPeers,
    /// The peer list names one peer twice.
    #[error("the peer list names a peer twice")]
    DuplicatePeer,
    /// This node is not in its own peer list.
    #[error("node {0} is not in the peer list")]
    NotAMember(NodeId),
    /// A message came from a node that is not a peer (or from this node itself).
    #[error("message from unknown peer {0}")]
    UnknownPeer(NodeId),
    /// Only the leader accepts proposals; `leader` is a hint, if one is known.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader of the current term, when known.
        leader: Option<NodeId>,
    },
    /// A command must not be empty: an empty entry is the leader's no-op (see
    /// [`Ready::committed`](crate::Ready::committed)).
    #[error("empty command: empty entries are reserved for the leader's no-op")]
    EmptyCommand,
    /// The service asked to snapshot past what it has been given to apply.
    #[error("cannot snapshot at index {index}: only {applied} has been applied")]
    SnapshotBeyondApplied {
        /// The requested snapshot index.
        index: Index,
        /// The highest index handed over for applying.
        applied: Index,
    },
    /// A message is malformed: a field out of range, entries that do not follow their
    /// `prev_log_index`, terms that go backwards. It is dropped; nothing changed.
    #[error("malformed message: {0}")]
    MalformedMessage(String),
    /// An AppendEntries would overwrite a committed entry with a different one. Only a
    /// broken peer (or a safety bug elsewhere) can send it; the message is refused and the
    /// log left intact.
    #[error("refused to overwrite committed entry {index} (commit index {commit})")]
    ConflictsWithCommitted {
        /// The first entry that differs.
        index: Index,
        /// This node's commit index.
        commit: Index,
    },
    /// A configuration change is not finished (not committed yet, or joint): one change
    /// at a time.
    #[error("a configuration change is in progress")]
    ChangeInProgress,
    /// The leader has not committed an entry of its own term yet, so it may not change
    /// the configuration (the single-server change rule); it appended one: retry soon.
    #[error("the leader has not committed an entry of its term yet; retry")]
    NotReady,
    /// The leader is handing over leadership and accepts no proposal until the transfer
    /// ends (it completes, or is abandoned after an election timeout).
    #[error("leadership transfer to node {0} in progress")]
    TransferInProgress(NodeId),
    /// The configuration change is not allowed from the configuration in force.
    #[error(transparent)]
    Membership(#[from] crate::membership::MembershipError),
    /// The log refused a change.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// Restored entries are not contiguous.
    #[error("corrupt log: expected index {expected}, found {found}")]
    CorruptLog {
        /// The index that should have come next.
        expected: Index,
        /// The index that did.
        found: Index,
    },
}

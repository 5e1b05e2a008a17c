//! # raft
//!
//! The Raft runtime. Each peer is one tokio task (an actor) that owns a
//! [`raft_core::RaftCore`], turns ticks into time, moves messages through a
//! [`Transport`], persists through a [`Storage`](raft_storage::Storage), and delivers
//! committed commands to the service on its apply channel, in order, exactly once per
//! incarnation (a restarted peer re-delivers from its snapshot, or from index 1).
//!
//! The service-facing API is the classic one:
//!
//! - [`Raft::new`] creates a peer from its peers, its own id, a storage, an apply channel,
//!   a [`Config`] and a transport, and returns at once;
//! - [`Raft::start`] starts agreement on a command and returns at once with its index and
//!   term, or [`RaftError::NotLeader`];
//! - [`Raft::state`] returns `(term, is_leader)`; [`Raft::status`] says more (role,
//!   leader, commit and applied index, log and snapshot index, storage size) for operators;
//! - [`Raft::read_index`] returns, on a leader or (forwarded) on a follower, a read index:
//!   once the service has applied it, a read of its state is linearizable, with nothing
//!   written to the log;
//! - [`Raft::kill`] stops the peer;
//! - [`Raft::snapshot`] tells the peer that the service's state through an index is
//!   captured in a snapshot, so the log before it can be discarded;
//!   [`Raft::raft_state_size`] says how large the persisted log has grown.
//!
//! Every queue is bounded: a peer answers [`RaftError::Busy`] rather than grow without limit
//! (see [`Config::command_queue`] and [`Config::max_unapplied_entries`]); the apply channel
//! is the service's, with the capacity it chose, and the peer hands over only what fits. A
//! [`Storage`](raft_storage::Storage) that blocks on disk I/O is written on tokio's blocking
//! pool, and what arrives while a write is in flight goes into the next single write.
//!
//! Nothing in this crate names a particular network: the tester plugs in the simulated
//! `labrpc` network; a deployed server would plug in a real (e.g. TCP) one.
#![warn(missing_docs)]

mod clock;
mod config;
mod membership;
mod node;
mod observe;
mod status;
mod transport;

pub use config::{Config, ReadMode};
pub use membership::MembershipStatus;
pub use node::Raft;
pub use observe::{Observed, Observer};
pub use raft_core::{
    Bytes, ConfChange, Envelope, Index, Membership, MembershipError, Message, NodeId, Role,
    SnapshotMeta, Term,
};
pub use status::Status;
pub use transport::Transport;

/// What the peer delivers on its apply channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyMsg {
    /// A committed command, to apply to the service's state.
    Command {
        /// Its log index.
        index: Index,
        /// The term it was proposed in.
        term: Term,
        /// The command as the service passed it to [`Raft::start`].
        command: Bytes,
    },
    /// An entry the leader appended, with no command, so that an entry of its term is
    /// committed before it serves reads (ReadIndex). The service has nothing to apply; it
    /// only counts `index` as applied. It is never a command a service passed to
    /// [`Raft::start`] (which refuses empty commands).
    NoOp {
        /// Its log index.
        index: Index,
        /// The leader's term.
        term: Term,
    },
    /// A committed configuration entry (a membership change): nothing for the service
    /// to apply, but it holds its index, so the service counts it as applied. The
    /// configuration took effect in the protocol when it was appended; this only says it
    /// is now committed.
    Config {
        /// Its log index.
        index: Index,
        /// The term it was proposed in.
        term: Term,
        /// The configuration it sets.
        membership: raft_core::Membership,
    },
    /// A snapshot the service must load in place of its current state: received from the
    /// leader, or the persisted one when a peer restarts. Commands that follow continue
    /// from `index + 1`.
    Snapshot {
        /// The last log index the snapshot covers.
        index: Index,
        /// The term of that entry.
        term: Term,
        /// The service's state, as it passed it to [`Raft::snapshot`].
        data: Bytes,
    },
}

/// Errors of the public API.
#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    /// This peer is not the leader; `leader` is a hint when one is known.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The current leader, when known.
        leader: Option<NodeId>,
    },
    /// The peer has been killed.
    #[error("the peer has been killed")]
    Killed,
    /// A read was given up because the leader that was serving it lost its leadership
    /// (or, for a read forwarded from a follower, the follower changed term). Retry.
    #[error("leadership lost before the read was confirmed")]
    LeadershipLost,
    /// A read was not confirmed within an election timeout: the leader cannot reach a
    /// majority, or a forwarded read or its answer was lost. Retry.
    #[error("the read was not confirmed in time")]
    Timeout,
    /// Commands must not be empty (an empty entry is the leader's no-op).
    #[error("empty command")]
    EmptyCommand,
    /// The peer is overloaded: its command queue is full, or (on a leader) too many
    /// entries wait to be applied. Nothing was proposed; try again later.
    #[error("the peer is overloaded ({0}); try again later")]
    Busy(&'static str),
    /// The configuration is unusable; the text says why.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The peer list, or this peer's place in it, is invalid.
    #[error("invalid peers: {0}")]
    InvalidPeers(String),
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] raft_storage::StorageError),
    /// The service asked to snapshot past what it has applied.
    #[error("cannot snapshot at index {index}: only {applied} has been applied")]
    SnapshotBeyondApplied {
        /// The requested index.
        index: Index,
        /// The highest index delivered on the apply channel.
        applied: Index,
    },
    /// A membership change is already in flight (not committed yet, or joint): one
    /// change at a time. Retry once it is done.
    #[error("a membership change is already in progress")]
    ChangeInProgress,
    /// The membership change is not allowed: an unknown or duplicate id, an empty voter
    /// set, removing the last voter.
    #[error(transparent)]
    Membership(raft_core::MembershipError),
    /// The peer stopped leading before the membership change committed: the change may
    /// still commit under the next leader, or be dropped. Look before retrying.
    #[error("leadership lost before the membership change committed")]
    ChangeAbandoned,
    /// A leadership transfer to this peer did not complete within an election timeout:
    /// the old leader leads on.
    #[error("leadership transfer to {0} did not complete")]
    TransferFailed(NodeId),
    /// A learner to promote did not catch up with the leader in the time given: it was
    /// left a learner.
    #[error("server {0} did not catch up in time")]
    CatchUpTimeout(NodeId),
    /// The protocol core refused.
    #[error(transparent)]
    Core(raft_core::CoreError),
}

impl From<raft_core::ReadFailure> for RaftError {
    fn from(f: raft_core::ReadFailure) -> Self {
        match f {
            raft_core::ReadFailure::LeadershipLost => RaftError::LeadershipLost,
            raft_core::ReadFailure::NotLeader => RaftError::NotLeader { leader: None },
            raft_core::ReadFailure::TimedOut => RaftError::Timeout,
        }
    }
}

impl From<raft_core::CoreError> for RaftError {
    fn from(e: raft_core::CoreError) -> Self {
        use raft_core::CoreError as C;
        match e {
            C::NotLeader { leader } => RaftError::NotLeader { leader },
            C::InvalidConfig(s) => RaftError::InvalidConfig(s),
            C::NoPeers => RaftError::InvalidPeers("the peer list is empty".into()),
            C::DuplicatePeer => RaftError::InvalidPeers("a peer is listed twice".into()),
            C::NotAMember(id) => {
                RaftError::InvalidPeers(format!("this peer's id {id} is not in the peer list"))
            }
            C::SnapshotBeyondApplied { index, applied } => {
                RaftError::SnapshotBeyondApplied { index, applied }
            }
            C::EmptyCommand => RaftError::EmptyCommand,
            C::ChangeInProgress => RaftError::ChangeInProgress,
            C::Membership(e) => RaftError::Membership(e),
            C::TransferInProgress(_) => RaftError::Busy("leadership transfer in progress"),
            other => RaftError::Core(other),
        }
    }
}

//! The errors of the etcd API, with the gRPC status codes and messages etcd's clients expect.

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

/// An error of an etcd API operation. The messages are etcd's own (its clients compare
/// them), and [`EtcdError::to_status`] gives the gRPC code etcd uses for each.
///
/// Errors that the store returns are deterministic: every replica applying the same
/// command to the same state returns the same error, which is why they are serializable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum EtcdError {
    /// The requested revision is older than the oldest one still kept.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted {
        /// The compaction revision: the oldest revision still readable.
        compact_revision: i64,
    },
    /// The requested revision is newer than the store's revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// The lease does not exist (never granted, revoked or expired).
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A lease with the requested ID exists already.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// The requested lease TTL is larger than etcd's maximum.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// A request without a key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// A request whose encoded size is over the server's limit.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A transaction with more operations than the server allows.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A transaction that writes one key twice in one branch.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A feature of the API this server does not offer.
    #[error("{0}")]
    Unimplemented(String),
    /// The cluster has no leader at the moment.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The request must be served by the leader and this node is not the leader.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// The server is overloaded.
    #[error("etcdserver: too many requests")]
    TooManyRequests,
    /// The request did not complete in time; it may still take effect.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// The server is shutting down.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// No member has the given ID.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// A member already has one of the given peer URLs.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// The given peer URLs cannot be used.
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    /// Promotion of a member that is not a learner.
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    /// Promotion of a learner that has not caught up with the leader.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// A membership change the server refuses; the text says why (etcd's code for
    /// refused re-configurations, FailedPrecondition).
    #[error("{0}")]
    MemberChangeRefused(String),
}

impl EtcdError {
    /// The gRPC code etcd answers this error with.
    pub fn code(&self) -> Code {
        match self {
            EtcdError::Compacted { .. } | EtcdError::FutureRevision => Code::OutOfRange,
            EtcdError::LeaseNotFound | EtcdError::MemberNotFound => Code::NotFound,
            EtcdError::LeaseExists
            | EtcdError::NotLeader
            | EtcdError::PeerUrlExists
            | EtcdError::MemberNotLearner
            | EtcdError::LearnerNotReady
            | EtcdError::MemberChangeRefused(_) => Code::FailedPrecondition,
            EtcdError::LeaseTtlTooLarge => Code::OutOfRange,
            EtcdError::EmptyKey
            | EtcdError::RequestTooLarge
            | EtcdError::TooManyOps
            | EtcdError::DuplicateKey
            | EtcdError::MemberBadUrls => Code::InvalidArgument,
            EtcdError::Unimplemented(_) => Code::Unimplemented,
            EtcdError::NoLeader | EtcdError::Timeout | EtcdError::Stopped => Code::Unavailable,
            EtcdError::TooManyRequests => Code::ResourceExhausted,
        }
    }

    /// The gRPC status carrying this error, as etcd sends it.
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

impl From<EtcdError> for Status {
    fn from(e: EtcdError) -> Status {
        e.to_status()
    }
}

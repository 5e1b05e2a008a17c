//! What can go wrong opening, writing or recovering a data directory.

use crate::format::Identity;
use raft_storage::StorageError;
use std::path::PathBuf;

/// Errors of the WAL and of [`WalStorage`](crate::WalStorage).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O error, with the file it concerns.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The directory belongs to another node or cluster.
    #[error("{path} belongs to cluster {} node {}, not cluster {} node {}",
        found.cluster_id, found.node_id, expected.cluster_id, expected.node_id)]
    WrongIdentity {
        /// The file whose header says so.
        path: PathBuf,
        /// Who this storage was opened for.
        expected: Identity,
        /// Who the file belongs to.
        found: Identity,
    },
    /// The file was written in a format version this build does not read.
    #[error("{path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// Damaged data that cannot be a torn final write: refusing is the only safe answer,
    /// since dropping it could lose acknowledged entries.
    #[error("corrupt data in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the damaged record or header.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The data directory is inconsistent as a whole (missing segment, missing snapshot).
    #[error("inconsistent data directory {dir}: {reason}")]
    Inconsistent {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A write that cannot be applied to the stored log (e.g. it would leave a gap).
    #[error("invalid write: {0}")]
    InvalidWrite(String),
    /// An earlier sync failed. After a failed fsync the kernel may have dropped the dirty
    /// pages, so nothing written since can be trusted: the WAL refuses all further work
    /// until it is reopened (and recovered) from disk.
    #[error("the WAL failed earlier ({0}); reopen it to recover")]
    Failed(String),
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> WalError {
        let path = path.into();
        move |source| WalError::Io { path, source }
    }
}

impl From<WalError> for StorageError {
    fn from(e: WalError) -> Self {
        match e {
            WalError::Io { path, source } => StorageError::Io(std::io::Error::new(
                source.kind(),
                format!("{}: {source}", path.display()),
            )),
            WalError::InvalidWrite(s) => StorageError::InvalidWrite(s),
            other => StorageError::Corrupt(other.to_string()),
        }
    }
}

//! # raft-storage
//!
//! How a Raft node makes its state durable. The runtime hands every [`raft_core::Ready`]'s
//! persistent part to a [`Storage`] as one [`WriteBatch`] — new term and vote, a suffix
//! truncation, appended entries — and restarts from [`Storage::restore`]. Nothing is ever
//! rewritten whole: each change costs in proportion to its own size.
//!
//! [`MemStorage`] keeps everything in memory. It is the "persister" of the tests: the
//! tester copies it with [`MemStorage::deep_copy`] when it crashes a node, so that a
//! zombie instance's late writes land in an orphan and the restarted node sees exactly
//! what had been written at the moment of the crash.
#![warn(missing_docs)]

mod mem;

pub use mem::MemStorage;

use raft_core::{Entry, HardState, Index, RestoredState, Snapshot};

/// One atomic unit of persistent change, applied in field order: hard state, snapshot,
/// truncation, appended entries.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteBatch<'a> {
    /// New term and vote, if they changed.
    pub hard_state: Option<HardState>,
    /// A new snapshot. It replaces the stored one; stored entries after its last index are
    /// kept if the stored log holds that index with the snapshot's term, and otherwise
    /// every stored entry is dropped.
    pub snapshot: Option<&'a Snapshot>,
    /// Remove entries at this index and after.
    pub truncate_from: Option<Index>,
    /// Entries to append after the truncation, contiguous and in order.
    pub entries: &'a [Entry],
}

impl WriteBatch<'_> {
    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
    }
}

/// What can go wrong while persisting or restoring.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error from the underlying medium.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The stored data is inconsistent; the text says how.
    #[error("corrupt storage: {0}")]
    Corrupt(String),
    /// The batch cannot be applied to the stored log (e.g. it would leave a gap).
    #[error("invalid write: {0}")]
    InvalidWrite(String),
}

/// Durable state of one Raft node.
///
/// `write` must be durable when it returns: the runtime sends votes and acknowledgements
/// that promise it right after.
///
/// Where `write` runs is part of the contract: with [`BLOCKING`](Storage::BLOCKING) false
/// (in-memory storage) it runs inline on the node's async task, which keeps virtual-time
/// runs deterministic; a storage that waits for a disk (fsync) sets it true, and the
/// runtime then moves each write to tokio's blocking pool, so that no async worker thread
/// of the runtime ever waits for the disk.
pub trait Storage: Send + 'static {
    /// True when `write` may block on I/O (see the trait's documentation).
    const BLOCKING: bool = false;
    /// The state to resume from: hard state, snapshot point, entries after it.
    fn restore(&self) -> Result<RestoredState, StorageError>;
    /// Applies one batch atomically and durably.
    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError>;
    /// Size in bytes of the persisted Raft state (hard state and log, not the snapshot),
    /// so that a service can decide when to snapshot.
    fn raft_state_size(&self) -> u64;
    /// Size in bytes of the persisted snapshot's data.
    fn snapshot_size(&self) -> u64;
}

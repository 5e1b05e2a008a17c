//! # raft-wal
//!
//! Durable storage for a Raft node: [`WalStorage`] implements [`raft_storage::Storage`]
//! over a segmented write-ahead log and snapshot files in one directory.
//!
//! - **Format** ([`format`]): segments with a header (magic, format version, cluster and
//!   node id); records framed with length, type, a header CRC-32C and a record CRC-32C over
//!   type, length and payload, and an end marker. docs/STORAGE.md has the byte layout.
//! - **Fast path** ([`Wal`]): segments are preallocated (zero-filled) and synced once when
//!   created, so appends overwrite allocated blocks and need only `fdatasync`; one
//!   `fdatasync` per batch, shared among concurrent callers (group commit).
//! - **Snapshots**: a snapshot file is written under a temporary name, synced, renamed and
//!   the directory synced; only then does a WAL record name it. Older snapshot files and
//!   segments go only after that record is durable.
//! - **Recovery**: every CRC is checked; a torn final write is discarded (and logged), a
//!   damaged record with data after it is refused with the file and offset.
//! - **Memory**: one index item per entries record; entries are read back from disk.
#![warn(missing_docs)]

mod entries;
mod error;
pub mod format;
pub mod fs;
mod index;
pub mod inspect;
pub mod recovery;
mod snapshot;
mod storage;
mod wal;

pub use error::WalError;
pub use format::Identity;
pub use snapshot::snapshot_name;
pub use storage::{WalOptions, WalStorage};
pub use wal::{segment_name, Appended, LogOptions, Preallocate, Wal};

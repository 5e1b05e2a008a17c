//! Where a test peer's durable state lives: the classic "persister" in memory, or a
//! `raft-wal` data directory on disk.
//!
//! - **Memory** ([`MemStorage`]): a crash keeps a deep copy of the peer's storage, so that
//!   the dead instance's late writes land in an orphan; a restart resumes from the copy.
//! - **Disk** ([`WalStorage`] in a per-peer temporary directory): a crash kills the peer
//!   and closes its storage (a write in flight finishes first; any later write of the
//!   dead instance fails, which stops it); a restart opens the same directory again and
//!   resumes from what recovery finds there, as a restarted process would.
//!
//! The mode comes from `RAFT_TEST_STORAGE` (`memory`, the default, or `disk`), or from
//! [`run_on`](crate::run_on), which fixes it for one run whatever the environment says.
//!
//! **Where disk writes run.** In virtual time a disk peer writes inline, on the runtime's
//! one thread ([`DiskStorage<false>`]), so that a run stays a deterministic function of
//! its seed. With `WalStorage`'s own `BLOCKING = true` the runtime would move each write
//! to tokio's blocking pool: the paused clock does not advance while a blocking task runs
//! (tokio inhibits auto-advance), but the moment a write completes relative to the other
//! tasks' work at the same virtual instant depends on the wall clock, so two runs of one
//! seed interleave (and draw the network's random numbers) differently. In real time
//! ([`Mode::RealTime`]) the disk peers use the blocking pool ([`DiskStorage<true>`]),
//! exactly as a deployment runs.

use crate::runner::Mode;
use raft_core::RestoredState;
use raft_storage::{MemStorage, Storage, StorageError, WriteBatch};
use raft_wal::{LogOptions, Preallocate, WalOptions, WalStorage};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tempfile::TempDir;

/// The cluster id written into the test peers' segment headers.
const TEST_CLUSTER_ID: u64 = 0x7e57;

/// Segment size of the test peers' logs: small, so that the tests roll segments and
/// delete old ones after snapshots.
const TEST_SEGMENT_SIZE: u64 = 64 << 10;

/// Where the peers of a test cluster keep their durable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageMode {
    /// [`MemStorage`]; a crash keeps a deep copy.
    Memory,
    /// [`WalStorage`] in a temporary directory per peer; a restart reopens it.
    Disk,
}

tokio::task_local! {
    /// The storage mode [`run_on`](crate::run_on) fixed for the current run.
    static STORAGE: StorageMode;
}

impl StorageMode {
    /// `RAFT_TEST_STORAGE=disk` gives [`Disk`](Self::Disk); anything else (or nothing)
    /// gives [`Memory`](Self::Memory).
    pub fn from_env() -> Self {
        match std::env::var("RAFT_TEST_STORAGE") {
            Ok(v) if v.trim().eq_ignore_ascii_case("disk") => StorageMode::Disk,
            _ => StorageMode::Memory,
        }
    }

    /// The mode of the current run: the one [`scope`](Self::scope) set, else the
    /// environment's.
    pub fn current() -> Self {
        STORAGE
            .try_with(|m| *m)
            .unwrap_or_else(|_| Self::from_env())
    }

    /// Runs `fut` with `self` as the [`current`](Self::current) mode.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        STORAGE.scope(self, fut).await
    }

    /// A short name for the per-test lines.
    pub fn name(self) -> &'static str {
        match self {
            StorageMode::Memory => "memory",
            StorageMode::Disk => "disk",
        }
    }
}

/// One peer's storage slot on disk: the harness closes it at a crash, and the instance
/// that held it finds it empty from then on.
type Slot = Arc<Mutex<Option<WalStorage>>>;

fn lock(slot: &Slot) -> MutexGuard<'_, Option<WalStorage>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// A [`WalStorage`] the harness can take away from a killed peer. `BLOCKING` chooses
/// where the runtime runs its writes: inline (`false`, for deterministic virtual time)
/// or on tokio's blocking pool (`true`, as `WalStorage` itself declares).
pub struct DiskStorage<const BLOCKING: bool> {
    slot: Slot,
}

impl<const BLOCKING: bool> DiskStorage<BLOCKING> {
    fn closed() -> StorageError {
        StorageError::Io(std::io::Error::other(
            "the peer crashed: the tester closed its storage",
        ))
    }
}

impl<const BLOCKING: bool> Storage for DiskStorage<BLOCKING> {
    const BLOCKING: bool = BLOCKING;

    fn restore(&self) -> Result<RestoredState, StorageError> {
        lock(&self.slot)
            .as_ref()
            .ok_or_else(Self::closed)?
            .restore()
    }

    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        lock(&self.slot)
            .as_mut()
            .ok_or_else(Self::closed)?
            .write(batch)
    }

    fn raft_state_size(&self) -> u64 {
        lock(&self.slot)
            .as_ref()
            .map_or(0, Storage::raft_state_size)
    }

    fn snapshot_size(&self) -> u64 {
        lock(&self.slot).as_ref().map_or(0, Storage::snapshot_size)
    }
}

/// The storage handed to a (re)started peer. Pass it to `Raft::new` (or a service built
/// on it) with [`with_peer_storage!`](crate::with_peer_storage), which expands to one
/// call per variant.
pub enum PeerStorage {
    /// In memory.
    Memory(MemStorage),
    /// On disk, written inline (virtual time).
    DiskInline(DiskStorage<false>),
    /// On disk, written on tokio's blocking pool (real time).
    DiskBlocking(DiskStorage<true>),
}

/// Evaluates `$body` with `$s` bound to the concrete storage inside a
/// [`PeerStorage`](crate::PeerStorage): `with_peer_storage!(st, |s| Raft::new(.., s, ..))`.
#[macro_export]
macro_rules! with_peer_storage {
    ($storage:expr, |$s:ident| $body:expr) => {
        match $storage {
            $crate::PeerStorage::Memory($s) => $body,
            $crate::PeerStorage::DiskInline($s) => $body,
            $crate::PeerStorage::DiskBlocking($s) => $body,
        }
    };
}

/// The durable state of every peer of a test cluster, in memory or on disk.
pub struct Persisters {
    mode: StorageMode,
    /// Disk writes on the blocking pool (real time) rather than inline (virtual time).
    blocking: bool,
    mem: Vec<MemStorage>,
    disk: Vec<Slot>,
    /// Sizes of each disk peer's state as of its last crash, for size checks on a peer
    /// that is down.
    last_sizes: Vec<(u64, u64)>,
    /// Removed (with every peer's directory) when the cluster goes. Declared last so that
    /// the slots are closed first.
    root: Option<TempDir>,
}

impl Persisters {
    /// Empty storage for `n` peers, in `mode`; disk peers write inline in virtual time
    /// and on the blocking pool in real time. Panics if no temporary directory can be
    /// created (the test cannot run).
    pub fn new(mode: StorageMode, n: usize, time: Mode) -> Self {
        let root = match mode {
            StorageMode::Memory => None,
            StorageMode::Disk => match tempfile::Builder::new().prefix("raft-test-").tempdir() {
                Ok(dir) => Some(dir),
                Err(e) => panic!("cannot create a temporary directory for disk storage: {e}"),
            },
        };
        Persisters {
            mode,
            blocking: time == Mode::RealTime,
            mem: (0..n).map(|_| MemStorage::new()).collect(),
            disk: (0..n).map(|_| Slot::default()).collect(),
            last_sizes: vec![(0, 0); n],
            root,
        }
    }

    /// The mode.
    pub fn mode(&self) -> StorageMode {
        self.mode
    }

    /// Peer `i`'s data directory (disk mode).
    pub fn dir(&self, i: usize) -> Option<PathBuf> {
        self.root
            .as_ref()
            .map(|r| r.path().join(format!("peer-{i}")))
    }

    /// Peer `i` crashed (call after killing it): in memory, keep a copy of what it
    /// wrote; on disk, close its storage once a write in flight has finished.
    pub fn crash(&mut self, i: usize) {
        match self.mode {
            StorageMode::Memory => self.mem[i] = self.mem[i].deep_copy(),
            StorageMode::Disk => {
                let closed = lock(&self.disk[i]).take();
                if let Some(wal) = closed {
                    self.last_sizes[i] = (wal.raft_state_size(), wal.snapshot_size());
                }
            }
        }
    }

    /// The storage for a new instance of peer `i`: a copy of the crashed one's, or its
    /// directory opened again (which runs recovery). Panics if recovery fails: the disk
    /// holds something the storage cannot read back, which is a bug.
    pub fn open(&mut self, i: usize) -> PeerStorage {
        self.crash(i);
        match self.mode {
            StorageMode::Memory => PeerStorage::Memory(self.mem[i].clone()),
            StorageMode::Disk => {
                let Some(dir) = self.dir(i) else {
                    panic!("disk mode without a directory");
                };
                let opts = WalOptions {
                    log: LogOptions {
                        segment_size: TEST_SEGMENT_SIZE,
                        group_commit: true,
                        preallocate: Preallocate::Inline,
                    },
                    ..WalOptions::new(TEST_CLUSTER_ID, i as u64)
                };
                let wal = match WalStorage::open(&dir, opts) {
                    Ok(wal) => wal,
                    Err(e) => panic!("cannot reopen peer {i}'s data directory: {e}"),
                };
                let slot: Slot = Arc::new(Mutex::new(Some(wal)));
                self.disk[i] = slot.clone();
                if self.blocking {
                    PeerStorage::DiskBlocking(DiskStorage { slot })
                } else {
                    PeerStorage::DiskInline(DiskStorage { slot })
                }
            }
        }
    }

    /// Peer `i`'s persisted Raft-state size in bytes (as of its crash, if it is down).
    pub fn raft_state_size(&self, i: usize) -> u64 {
        match self.mode {
            StorageMode::Memory => self.mem[i].raft_state_size(),
            StorageMode::Disk => lock(&self.disk[i])
                .as_ref()
                .map_or(self.last_sizes[i].0, Storage::raft_state_size),
        }
    }

    /// Peer `i`'s persisted snapshot size in bytes (as of its crash, if it is down).
    pub fn snapshot_size(&self, i: usize) -> u64 {
        match self.mode {
            StorageMode::Memory => self.mem[i].snapshot_size(),
            StorageMode::Disk => lock(&self.disk[i])
                .as_ref()
                .map_or(self.last_sizes[i].1, Storage::snapshot_size),
        }
    }
}

impl Drop for Persisters {
    fn drop(&mut self) {
        // Close every file before the directory goes.
        for slot in &self.disk {
            drop(lock(slot).take());
        }
    }
}

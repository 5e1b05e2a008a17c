//! The same storage conformance suite against `MemStorage` and `WalStorage` (on a real
//! directory and on the in-memory fault file system).

mod common;

use common::conformance::{run_all, Harness};
use common::faultfs::FaultFs;
use raft_storage::MemStorage;
use raft_wal::{LogOptions, Preallocate, WalOptions, WalStorage};
use std::path::PathBuf;
use std::sync::Arc;

struct Mem;

impl Harness for Mem {
    type S = MemStorage;
    fn fresh(&mut self) -> MemStorage {
        MemStorage::new()
    }
    fn reopen(&mut self, s: MemStorage) -> MemStorage {
        s
    }
}

/// Small segments, so that the suite crosses segment boundaries and deletes segments.
fn opts() -> WalOptions {
    WalOptions {
        log: LogOptions {
            segment_size: 4096,
            group_commit: true,
            preallocate: Preallocate::Inline,
        },
        ..WalOptions::new(7, 1)
    }
}

struct Disk {
    root: tempfile::TempDir,
    n: u32,
    current: PathBuf,
}

impl Harness for Disk {
    type S = WalStorage;
    fn fresh(&mut self) -> WalStorage {
        self.n += 1;
        self.current = self.root.path().join(format!("d{}", self.n));
        WalStorage::open(&self.current, opts()).expect("open")
    }
    fn reopen(&mut self, s: WalStorage) -> WalStorage {
        drop(s);
        WalStorage::open(&self.current, opts()).expect("reopen")
    }
}

struct InMemoryFs {
    fs: FaultFs,
    n: u32,
}

impl InMemoryFs {
    fn dir(&self) -> PathBuf {
        PathBuf::from(format!("/data/{}", self.n))
    }
}

impl Harness for InMemoryFs {
    type S = WalStorage;
    fn fresh(&mut self) -> WalStorage {
        self.n += 1;
        WalStorage::open_with(Arc::new(self.fs.clone()), &self.dir(), opts()).expect("open")
    }
    fn reopen(&mut self, s: WalStorage) -> WalStorage {
        drop(s);
        WalStorage::open_with(Arc::new(self.fs.clone()), &self.dir(), opts()).expect("reopen")
    }
}

#[test]
fn mem_storage_conforms() {
    run_all(&mut Mem);
}

#[test]
fn wal_storage_on_disk_conforms() {
    run_all(&mut Disk {
        root: tempfile::tempdir().expect("tempdir"),
        n: 0,
        current: PathBuf::new(),
    });
}

#[test]
fn wal_storage_on_fault_fs_conforms() {
    run_all(&mut InMemoryFs {
        fs: FaultFs::new(),
        n: 0,
    });
}

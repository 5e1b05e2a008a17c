//! An in-memory file system that remembers what was synced, to simulate crashes.
//!
//! Every file keeps its live bytes and its synced bytes; every write not yet synced is
//! queued in global order. Names (create, rename, remove) become durable only at
//! `sync_dir`. An operation budget makes the "process" die at an exact operation: that
//! operation and every later one fails. [`FaultFs::crash`] then builds the file system a
//! restarted process would see: synced data, plus (depending on the [`CrashMode`]) a
//! prefix of the unsynced writes, the last of which may be torn at any byte.

use raft_wal::fs::{FileSystem, WalFile};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Data {
    live: Vec<u8>,
    synced: Vec<u8>,
}

type Node = Arc<Mutex<Data>>;

#[derive(Default)]
struct Shared {
    live: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<PathBuf, Node>,
    /// Unsynced writes in the order they were made.
    pending: Vec<(Node, u64, Vec<u8>)>,
    /// Operations left before the simulated process death; `None` = unlimited.
    budget: Option<u64>,
    ops: u64,
}

/// What survives a crash of the unsynced writes.
#[derive(Clone, Copy, Debug)]
pub enum CrashMode {
    /// None of them.
    DropUnsynced,
    /// The first `keep` of them whole, then `tear_at` bytes of the next one.
    Tear { keep: usize, tear_at: usize },
}

/// The fault-injecting file system. Clones share one state.
#[derive(Clone, Default)]
pub struct FaultFs(Arc<Mutex<Shared>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn dead() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

fn write_into(buf: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let end = offset as usize + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset as usize..end].copy_from_slice(data);
}

impl FaultFs {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process dies at its `n`-th file operation from now (0 = the next one).
    pub fn die_after(&self, n: u64) {
        lock(&self.0).budget = Some(n);
    }

    /// File operations made so far.
    pub fn ops(&self) -> u64 {
        lock(&self.0).ops
    }

    /// Unsynced writes queued now.
    pub fn pending(&self) -> usize {
        lock(&self.0).pending.len()
    }

    fn tick(&self) -> io::Result<()> {
        let mut s = lock(&self.0);
        s.ops += 1;
        match &mut s.budget {
            Some(0) => Err(dead()),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The file system after a crash now, as a fresh instance.
    pub fn crash(&self, mode: CrashMode) -> FaultFs {
        let s = lock(&self.0);
        let mut contents: BTreeMap<*const Mutex<Data>, Vec<u8>> = BTreeMap::new();
        for node in s.durable.values() {
            contents.insert(Arc::as_ptr(node), lock(node).synced.clone());
        }
        if let CrashMode::Tear { keep, tear_at } = mode {
            for (i, (node, offset, data)) in s.pending.iter().enumerate().take(keep + 1) {
                let Some(buf) = contents.get_mut(&Arc::as_ptr(node)) else {
                    continue;
                };
                let n = if i < keep {
                    data.len()
                } else {
                    tear_at.min(data.len())
                };
                write_into(buf, *offset, &data[..n]);
            }
        }
        let mut fresh = Shared::default();
        for (path, node) in &s.durable {
            let bytes = contents.remove(&Arc::as_ptr(node)).unwrap_or_default();
            let n = Arc::new(Mutex::new(Data {
                live: bytes.clone(),
                synced: bytes,
            }));
            fresh.live.insert(path.clone(), n.clone());
            fresh.durable.insert(path.clone(), n);
        }
        FaultFs(Arc::new(Mutex::new(fresh)))
    }

    /// Flips bit `bit` of byte `offset` of a file, as if it rotted on disk.
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) {
        let s = lock(&self.0);
        if let Some(node) = s.live.get(path) {
            let mut d = lock(node);
            if offset < d.live.len() {
                d.live[offset] ^= 1 << bit;
                d.synced = d.live.clone();
            }
        }
    }

    /// Live bytes of a file.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let s = lock(&self.0);
        s.live.get(path).map(|n| lock(n).live.clone())
    }

    /// Paths of all files.
    pub fn paths(&self) -> Vec<PathBuf> {
        lock(&self.0).live.keys().cloned().collect()
    }
}

struct FaultFile {
    fs: FaultFs,
    node: Node,
}

impl WalFile for FaultFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.fs.tick()?;
        write_into(&mut lock(&self.node).live, offset, buf);
        lock(&self.fs.0)
            .pending
            .push((self.node.clone(), offset, buf.to_vec()));
        Ok(())
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let d = lock(&self.node);
        let from = offset as usize;
        let src = d
            .live
            .get(from..from + buf.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.node).live.len() as u64)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.tick()?;
        let mut s = lock(&self.fs.0);
        s.pending.retain(|(n, _, _)| !Arc::ptr_eq(n, &self.node));
        let mut d = lock(&self.node);
        d.synced = d.live.clone();
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = lock(&self.0);
        Ok(s.live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        self.tick()?;
        let node: Node = Arc::default();
        lock(&self.0).live.insert(path.to_owned(), node.clone());
        Ok(Arc::new(FaultFile {
            fs: self.clone(),
            node,
        }))
    }
    fn open(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let node = lock(&self.0)
            .live
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        Ok(Arc::new(FaultFile {
            fs: self.clone(),
            node,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.tick()?;
        let mut s = lock(&self.0);
        let node = s
            .live
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        s.live.insert(to.to_owned(), node);
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.tick()?;
        lock(&self.0)
            .live
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.tick()?;
        let mut s = lock(&self.0);
        s.durable = s.live.clone();
        Ok(())
    }
}

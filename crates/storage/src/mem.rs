//! The in-memory storage used by the tests.

use crate::{Storage, StorageError, WriteBatch};
use raft_core::{Bytes, Entry, HardState, RestoredState, SnapshotMeta};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes the hard state occupies in [`Storage::raft_state_size`].
const HARD_STATE_SIZE: u64 = 17;

#[derive(Clone, Debug, Default)]
struct Inner {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    snapshot_data: Bytes,
    entries: Vec<Entry>,
    entry_bytes: u64,
}

/// In-memory storage. Clones share one state (the node writes, the tester reads sizes);
/// [`deep_copy`](MemStorage::deep_copy) makes an independent one.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<Inner>>,
}

impl MemStorage {
    /// Empty storage: term 0, no vote, no log.
    pub fn new() -> Self {
        Self::default()
    }

    /// An independent copy of the current state (the classic "copy the persister").
    pub fn deep_copy(&self) -> Self {
        MemStorage {
            inner: Arc::new(Mutex::new(self.lock().clone())),
        }
    }

    /// The persisted term and vote.
    pub fn hard_state(&self) -> HardState {
        self.lock().hard_state
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the data consistent (every
        // mutation below is completed before anything can panic), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemStorage {
    fn restore(&self) -> Result<RestoredState, StorageError> {
        let inner = self.lock();
        Ok(RestoredState {
            hard_state: inner.hard_state,
            snapshot: inner.snapshot,
            snapshot_data: inner.snapshot_data.clone(),
            entries: inner.entries.clone(),
        })
    }

    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        self.lock().apply(batch)
    }

    fn raft_state_size(&self) -> u64 {
        HARD_STATE_SIZE + self.lock().entry_bytes
    }

    fn snapshot_size(&self) -> u64 {
        self.lock().snapshot_data.len() as u64
    }
}

impl Inner {
    /// Applies a batch in place; checks it completely before changing anything, so that
    /// a rejected batch leaves the state untouched.
    fn apply(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        // Where the log starts, and how many entries survive the snapshot and truncation.
        let (base, surviving) = match batch.snapshot {
            Some(snap) if self.holds(snap.meta) => (
                snap.meta.index,
                self.entries.len() - (snap.meta.index - self.snapshot.index) as usize,
            ),
            Some(snap) => (snap.meta.index, 0),
            None => (self.snapshot.index, self.entries.len()),
        };
        let keep = match batch.truncate_from {
            Some(from) => (from.saturating_sub(base + 1) as usize).min(surviving),
            None => surviving,
        };
        if let Some(first) = batch.entries.first() {
            let expected = base + keep as u64 + 1;
            if first.index != expected {
                return Err(StorageError::InvalidWrite(format!(
                    "append at index {} but the log continues at {}",
                    first.index, expected
                )));
            }
        }

        if let Some(hs) = batch.hard_state {
            self.hard_state = hs;
        }
        if let Some(snap) = batch.snapshot {
            let dropped = self.entries.len() - surviving;
            let removed: u64 = self.entries.drain(..dropped).map(|e| e.size() as u64).sum();
            self.entry_bytes -= removed;
            self.snapshot = snap.meta;
            self.snapshot_data = snap.data.clone();
        }
        let removed: u64 = self.entries[keep..].iter().map(|e| e.size() as u64).sum();
        self.entries.truncate(keep);
        let added: u64 = batch.entries.iter().map(|e| e.size() as u64).sum();
        self.entries.extend_from_slice(batch.entries);
        self.entry_bytes = self.entry_bytes - removed + added;
        Ok(())
    }

    /// Whether the stored log holds the entry a snapshot ends with.
    fn holds(&self, meta: SnapshotMeta) -> bool {
        meta.index > self.snapshot.index
            && self
                .entries
                .get((meta.index - self.snapshot.index - 1) as usize)
                .is_some_and(|e| e.term == meta.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::Bytes;

    fn e(index: u64, term: u64) -> Entry {
        Entry::new(term, index, Bytes::from_static(b"abc"))
    }

    #[test]
    fn append_truncate_restore() {
        let mut s = MemStorage::new();
        let hs = HardState {
            term: 2,
            vote: Some(1),
        };
        s.write(WriteBatch {
            hard_state: Some(hs),
            truncate_from: None,
            entries: &[e(1, 1), e(2, 1), e(3, 2)],
            ..Default::default()
        })
        .expect("write");
        s.write(WriteBatch {
            hard_state: None,
            truncate_from: Some(2),
            entries: &[e(2, 2)],
            ..Default::default()
        })
        .expect("write");
        let r = s.restore().expect("restore");
        assert_eq!(r.hard_state, hs);
        assert_eq!(r.entries, vec![e(1, 1), e(2, 2)]);
        assert_eq!(
            s.raft_state_size(),
            HARD_STATE_SIZE + 2 * e(1, 1).size() as u64
        );
    }

    #[test]
    fn rejects_gaps() {
        let mut s = MemStorage::new();
        let err = s.write(WriteBatch {
            entries: &[e(2, 1)],
            ..Default::default()
        });
        assert!(matches!(err, Err(StorageError::InvalidWrite(_))));
        assert!(s.is_empty());
    }

    #[test]
    fn snapshot_keeps_agreeing_suffix_or_drops_all() {
        use raft_core::Snapshot;
        let mut s = MemStorage::new();
        s.write(WriteBatch {
            entries: &[e(1, 1), e(2, 1), e(3, 2)],
            ..Default::default()
        })
        .expect("write");
        let snap = Snapshot {
            meta: SnapshotMeta { index: 2, term: 1 },
            data: Bytes::from_static(b"state"),
        };
        s.write(WriteBatch {
            snapshot: Some(&snap),
            ..Default::default()
        })
        .expect("write");
        let r = s.restore().expect("restore");
        assert_eq!(r.snapshot, snap.meta);
        assert_eq!(r.snapshot_data, snap.data);
        assert_eq!(r.entries, vec![e(3, 2)]);
        assert_eq!(s.raft_state_size(), HARD_STATE_SIZE + e(3, 2).size() as u64);
        assert_eq!(s.snapshot_size(), 5);
        // A snapshot whose last entry disagrees with the stored log replaces all of it.
        let other = Snapshot {
            meta: SnapshotMeta { index: 3, term: 9 },
            data: Bytes::new(),
        };
        s.write(WriteBatch {
            snapshot: Some(&other),
            entries: &[e(4, 9)],
            ..Default::default()
        })
        .expect("write");
        assert_eq!(s.restore().expect("restore").entries, vec![e(4, 9)]);
    }

    #[test]
    fn deep_copy_is_independent() {
        let mut s = MemStorage::new();
        let copy = s.deep_copy();
        s.write(WriteBatch {
            entries: &[e(1, 1)],
            ..Default::default()
        })
        .expect("write");
        assert_eq!(copy.len(), 0);
        assert_eq!(s.len(), 1);
        let shared = s.clone();
        assert_eq!(shared.len(), 1);
    }
}

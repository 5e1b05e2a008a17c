//! A node's simulated disk: hard state, snapshot and log, written one batch per `Ready`.

use raft_core::{Entry, HardState, Index, RestoredState, Snapshot, SnapshotMeta, Term};

/// What it takes to undo the most recent batch.
#[derive(Clone, Debug)]
enum Undo {
    /// A batch without a snapshot: restore the hard state, drop what was appended and
    /// put back what was truncated.
    Log {
        hard_state: HardState,
        truncated: Vec<Entry>,
        appended: usize,
    },
    /// A batch with a snapshot: the whole previous state.
    Full {
        hard_state: HardState,
        snapshot: Snapshot,
        entries: Vec<Entry>,
    },
}

/// The persisted state of one node. Conceptually a list of batches, one per `Ready`
/// (hard state, then snapshot, then truncation, then appended entries), of which only the
/// last may be *issued but not yet synced*: the driver sends a batch's messages only once
/// it is synced, and it finishes one `Ready` before starting the next. So the
/// materialised state plus an undo record of the last batch is the whole model.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    hard_state: HardState,
    snapshot: Snapshot,
    /// Entries after `snapshot.meta.index`.
    entries: Vec<Entry>,
    last: Option<(Undo, bool)>,
    batches: u64,
}

impl Storage {
    /// Writes one batch (not yet synced), as raft-core's `Ready` prescribes: hard state,
    /// then the snapshot (stored entries survive it only if the log holds its last entry
    /// with the same term), then the truncation, then the appended entries, which must
    /// continue the log without a gap. An error leaves the storage in an unspecified state
    /// (the simulator stops at it).
    pub fn write(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<(), String> {
        let undo = match snapshot {
            Some(_) => Undo::Full {
                hard_state: self.hard_state,
                snapshot: self.snapshot.clone(),
                entries: self.entries.clone(),
            },
            None => Undo::Log {
                hard_state: self.hard_state,
                truncated: Vec::new(),
                appended: entries.len(),
            },
        };
        let truncated = self.apply(hard_state, snapshot, truncate_from, entries)?;
        let undo = match undo {
            Undo::Log {
                hard_state,
                appended,
                ..
            } => Undo::Log {
                hard_state,
                truncated,
                appended,
            },
            full => full,
        };
        self.last = Some((undo, false));
        self.batches += 1;
        Ok(())
    }

    fn apply(
        &mut self,
        hard_state: Option<HardState>,
        snapshot: Option<&Snapshot>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<Vec<Entry>, String> {
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        if let Some(s) = snapshot {
            let keep = self.term(s.meta.index) == Some(s.meta.term)
                && s.meta.index >= self.snapshot.meta.index;
            if keep {
                let n = (s.meta.index - self.snapshot.meta.index) as usize;
                self.entries.drain(..n.min(self.entries.len()));
            } else {
                self.entries.clear();
            }
            self.snapshot = s.clone();
        }
        let mut truncated = Vec::new();
        if let Some(from) = truncate_from {
            if from == 0 {
                return Err("Ready asks to truncate from index 0".into());
            }
            let base = self.snapshot.meta.index;
            let keep = from.saturating_sub(base + 1) as usize;
            if keep < self.entries.len() {
                truncated = self.entries.split_off(keep);
            }
        }
        for e in entries {
            let expected = self.last_index() + 1;
            if e.index != expected {
                return Err(format!(
                    "Ready appends index {} where the persisted log expects {} (truncate_from {:?}, snapshot {:?})",
                    e.index,
                    expected,
                    truncate_from,
                    snapshot.map(|s| s.meta)
                ));
            }
            self.entries.push(e.clone());
        }
        Ok(truncated)
    }

    /// The last batch is durable (its messages are about to be sent).
    pub fn sync(&mut self) {
        if let Some((_, synced)) = self.last.as_mut() {
            *synced = true;
        }
    }

    /// True when the last batch was written but not synced.
    pub fn has_unsynced(&self) -> bool {
        self.last.as_ref().is_some_and(|(_, synced)| !synced)
    }

    /// A crash. With `lose_unsynced`, an unsynced last batch is rolled back; the lowest
    /// log index whose content may have changed is returned (`Some(0)` when only the
    /// hard state changed). Everything left is durable afterwards.
    pub fn crash(&mut self, lose_unsynced: bool) -> Option<Index> {
        let (undo, synced) = self.last.take()?;
        if synced || !lose_unsynced {
            return None;
        }
        self.batches -= 1;
        match undo {
            Undo::Log {
                hard_state,
                truncated,
                appended,
            } => {
                self.hard_state = hard_state;
                let keep = self.entries.len() - appended.min(self.entries.len());
                self.entries.truncate(keep);
                let first_truncated = truncated.first().map(|e| e.index);
                self.entries.extend(truncated);
                let first_appended =
                    (appended > 0).then_some(self.snapshot.meta.index + keep as Index + 1);
                Some(match (first_appended, first_truncated) {
                    (Some(a), Some(t)) => a.min(t),
                    (Some(a), None) => a,
                    (None, Some(t)) => t,
                    (None, None) => 0,
                })
            }
            Undo::Full {
                hard_state,
                snapshot,
                entries,
            } => {
                self.hard_state = hard_state;
                let from = snapshot.meta.index + 1;
                self.snapshot = snapshot;
                self.entries = entries;
                Some(from)
            }
        }
    }

    /// The state a restarting core resumes from.
    pub fn restored(&self) -> RestoredState {
        RestoredState {
            hard_state: self.hard_state,
            snapshot: self.snapshot.meta,
            snapshot_data: self.snapshot.data.clone(),
            entries: self.entries.clone(),
        }
    }

    /// Persisted term and vote.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The persisted snapshot (index 0 when there is none).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Where the persisted snapshot ends.
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot.meta
    }

    /// Index of the last persisted entry (the snapshot's when the log is empty).
    pub fn last_index(&self) -> Index {
        self.snapshot.meta.index + self.entries.len() as Index
    }

    /// Term of the last persisted entry (the snapshot's when the log is empty).
    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.meta.term, |e| e.term)
    }

    /// The persisted entry at `index`, if it is held (not compacted, not beyond the end).
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let base = self.snapshot.meta.index;
        if index <= base {
            return None;
        }
        self.entries.get((index - base - 1) as usize)
    }

    /// Term of the entry at `index`: the snapshot's at its last index (0 at index 0),
    /// `None` when compacted or beyond the end.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// True when the storage holds the entry `index`@`term`, or a snapshot covering it.
    pub fn holds(&self, index: Index, term: Term) -> bool {
        index <= self.snapshot.meta.index || self.term(index) == Some(term)
    }

    /// Number of batches written so far (rolled-back ones excluded).
    pub fn batches(&self) -> u64 {
        self.batches
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn e(index: Index, term: Term) -> Entry {
        Entry::new(term, index, Bytes::new())
    }

    fn snap(index: Index, term: Term) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta { index, term },
            data: Bytes::from_static(b"state"),
        }
    }

    #[test]
    fn rollback_restores_previous_batch() {
        let mut s = Storage::default();
        s.write(
            Some(HardState {
                term: 1,
                vote: None,
            }),
            None,
            None,
            &[e(1, 1), e(2, 1)],
        )
        .expect("write");
        s.sync();
        s.write(
            Some(HardState {
                term: 2,
                vote: Some(3),
            }),
            None,
            Some(2),
            &[e(2, 2), e(3, 2)],
        )
        .expect("write");
        assert_eq!(s.crash(true), Some(2));
        assert_eq!(s.last_index(), 2);
        assert_eq!(s.term(2), Some(1));
        assert_eq!(s.hard_state().term, 1);
        // A synced batch survives.
        s.write(None, None, None, &[e(3, 1)]).expect("write");
        s.sync();
        assert_eq!(s.crash(true), None);
        assert_eq!(s.last_index(), 3);
    }

    #[test]
    fn snapshot_keeps_matching_suffix_only() {
        let mut s = Storage::default();
        s.write(None, None, None, &[e(1, 1), e(2, 1), e(3, 2)])
            .expect("write");
        s.write(None, Some(&snap(2, 1)), None, &[]).expect("write");
        assert_eq!(s.last_index(), 3);
        assert_eq!(s.term(2), Some(1));
        assert_eq!(s.entry(2), None);
        assert!(s.holds(1, 7));
        // A snapshot that disagrees with the log replaces all of it.
        s.write(None, Some(&snap(5, 3)), None, &[e(6, 3)])
            .expect("write");
        assert_eq!(s.last_index(), 6);
        assert_eq!(s.term(3), None);
        assert_eq!(s.crash(true), Some(3));
        assert_eq!(s.last_index(), 3);
        assert_eq!(s.snapshot_meta().index, 2);
    }

    #[test]
    fn rejects_gaps() {
        let mut s = Storage::default();
        assert!(s.write(None, None, None, &[e(2, 1)]).is_err());
    }
}

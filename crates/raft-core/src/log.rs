//! The in-memory view of the replicated log: entries after an optional snapshot point.

use crate::types::{Entry, Index, SnapshotMeta, Term};

/// A change the log refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Compaction to an index whose term the log does not know.
    #[error("cannot compact to index {index}: the log holds {first}..={last}")]
    UnknownTerm {
        /// The requested index.
        index: Index,
        /// The first index held.
        first: Index,
        /// The last index held.
        last: Index,
    },
    /// Installing a snapshot older than the current one.
    #[error("snapshot at {index} is older than the current one at {current}")]
    StaleSnapshot {
        /// The offered snapshot's index.
        index: Index,
        /// The current snapshot's index.
        current: Index,
    },
}

/// The log as the core sees it. Entries before `snapshot.index` have been compacted away;
/// only the index and term of the last compacted entry are kept, which is all the
/// consistency check of AppendEntries needs.
#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    snapshot: SnapshotMeta,
    entries: Vec<Entry>,
}

impl RaftLog {
    /// A log that starts after `snapshot` and holds `entries`, which must be contiguous
    /// and start at `snapshot.index + 1`.
    pub fn new(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Result<Self, crate::CoreError> {
        for (offset, e) in entries.iter().enumerate() {
            if e.index != snapshot.index + 1 + offset as Index {
                return Err(crate::CoreError::CorruptLog {
                    expected: snapshot.index + 1 + offset as Index,
                    found: e.index,
                });
            }
        }
        Ok(RaftLog { snapshot, entries })
    }

    /// The snapshot point: the last compacted entry (index 0 when nothing is compacted).
    pub fn snapshot(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// Index of the first entry still held in memory.
    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// Index of the last entry (the snapshot index when the log is empty).
    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as Index
    }

    /// Term of the last entry (the snapshot term when the log is empty).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// Term of the entry at `index`: `Some(0)` for index 0, the snapshot term at the
    /// snapshot point, `None` when the index is compacted away or beyond the end.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if it is held in memory.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot.index {
            return None;
        }
        self.entries.get((index - self.snapshot.index - 1) as usize)
    }

    /// Entries from `from` (inclusive) to `to` (inclusive), cut to the log's bounds.
    pub fn slice(&self, from: Index, to: Index) -> &[Entry] {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return &[];
        }
        let base = self.snapshot.index + 1;
        &self.entries[(from - base) as usize..=(to - base) as usize]
    }

    /// Entries from `from` on, at least one if there is one, then as many more as fit in
    /// `max_bytes`.
    pub fn slice_bytes(&self, from: Index, max_bytes: usize) -> &[Entry] {
        let all = self.slice(from, self.last_index());
        let mut bytes = 0;
        let mut n = 0;
        for e in all {
            bytes += e.size();
            if n > 0 && bytes > max_bytes {
                break;
            }
            n += 1;
        }
        &all[..n]
    }

    /// The last index that holds an entry of `term`, if any.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        // Terms never decrease along the log, so a binary search finds the boundary.
        let pos = self.entries.partition_point(|e| e.term <= term);
        if pos > 0 && self.entries[pos - 1].term == term {
            return Some(self.entries[pos - 1].index);
        }
        if pos == 0 && self.snapshot.term == term && self.snapshot.index > 0 {
            return Some(self.snapshot.index);
        }
        None
    }

    /// The first index that holds an entry of `term`, searching back from `index`.
    pub fn first_index_of_term_before(&self, index: Index) -> Index {
        let Some(term) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// Appends one entry, which must follow the last one. Anything else is a bug in the
    /// caller: the node stops rather than keep a log with a gap or an overlap.
    pub(crate) fn push(&mut self, entry: Entry) {
        crate::invariant!(
            entry.index == self.last_index() + 1,
            "appending entry {} to a log that ends at {}",
            entry.index,
            self.last_index()
        );
        self.entries.push(entry);
    }

    /// Removes every entry at `index` and after.
    pub(crate) fn truncate_from(&mut self, index: Index) {
        if index <= self.snapshot.index {
            self.entries.clear();
            return;
        }
        let keep = (index - self.snapshot.index - 1) as usize;
        self.entries.truncate(keep);
    }

    /// Discards entries through `index`, remembering its term. `index` must be the
    /// snapshot point or an entry the log holds: a term it does not know cannot be kept.
    pub(crate) fn compact_to(&mut self, index: Index) -> Result<(), LogError> {
        let Some(term) = self.term(index) else {
            return Err(LogError::UnknownTerm {
                index,
                first: self.first_index(),
                last: self.last_index(),
            });
        };
        if index == self.snapshot.index {
            return Ok(());
        }
        let n = (index - self.snapshot.index) as usize;
        self.entries.drain(..n);
        self.snapshot = SnapshotMeta { index, term };
        Ok(())
    }

    /// Makes `snapshot` the new start of the log: entries after it are kept if the log
    /// holds the snapshot's last entry with the same term (they agree with it), otherwise
    /// the whole log is discarded. A snapshot older than the current one is refused: it
    /// would bring back entries that were compacted away.
    pub(crate) fn install(&mut self, snapshot: SnapshotMeta) -> Result<(), LogError> {
        if snapshot.index < self.snapshot.index {
            return Err(LogError::StaleSnapshot {
                index: snapshot.index,
                current: self.snapshot.index,
            });
        }
        if self.term(snapshot.index) == Some(snapshot.term) {
            self.compact_to(snapshot.index)?;
        } else {
            self.entries.clear();
        }
        self.snapshot = snapshot;
        Ok(())
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as
    /// this one (§5.4.1): a later last term wins; with equal terms, the longer log.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn e(index: Index, term: Term) -> Entry {
        Entry::new(term, index, Bytes::new())
    }

    #[test]
    fn terms_and_bounds() {
        let log = RaftLog::new(SnapshotMeta::default(), vec![e(1, 1), e(2, 1), e(3, 2)])
            .expect("valid log");
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(4), None);
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.first_index_of_term_before(2), 1);
        assert_eq!(log.slice(2, 9).len(), 2);
    }

    #[test]
    fn rejects_gaps() {
        assert!(RaftLog::new(SnapshotMeta::default(), vec![e(1, 1), e(3, 1)]).is_err());
    }

    #[test]
    fn compaction_needs_a_known_term_and_install_refuses_older_snapshots() {
        let mut log = RaftLog::new(SnapshotMeta::default(), vec![e(1, 1), e(2, 1), e(3, 2)])
            .expect("valid log");
        assert!(log.compact_to(9).is_err(), "beyond the end");
        log.compact_to(2).expect("held");
        assert!(log.compact_to(1).is_err(), "compacted away");
        assert_eq!(log.compact_to(2), Ok(()), "the snapshot point itself");
        assert!(log.install(SnapshotMeta { index: 1, term: 1 }).is_err());
        assert_eq!(log.first_index(), 3);
    }

    #[test]
    #[should_panic(expected = "invariant broken")]
    fn push_refuses_a_gap_in_every_build() {
        let mut log = RaftLog::new(SnapshotMeta::default(), vec![e(1, 1)]).expect("valid log");
        log.push(e(3, 1));
    }

    #[test]
    fn up_to_date_rule() {
        let log = RaftLog::new(SnapshotMeta::default(), vec![e(1, 1), e(2, 2)]).expect("valid");
        assert!(log.is_up_to_date(1, 3));
        assert!(log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(1, 2));
        assert!(!log.is_up_to_date(5, 1));
    }
}

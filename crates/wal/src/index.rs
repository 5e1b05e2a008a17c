//! Where each live log entry is on disk: one run per entries record, not one item per
//! entry, so memory grows with the number of writes, not with their size.

use raft_core::{Index, Term};
use std::collections::VecDeque;

/// Live entries `first..=last`, all of term `term`, in the record at `offset` of segment
/// `seq`, whose first entry has index `record_first` (a run can be a clipped record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub first: Index,
    pub last: Index,
    pub term: Term,
    pub record_first: Index,
    pub seq: u64,
    pub offset: u64,
    /// Sum of `Entry::size()` over `first..=last`.
    pub bytes: u64,
}

/// Sizes (`Entry::size()`) of every entry of a run's record, read back from disk when a
/// run is clipped.
pub(crate) type SizesOf<'a, E> = dyn FnMut(&Run) -> Result<Vec<u64>, E> + 'a;

/// The live log as runs, contiguous and ascending.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogIndex {
    runs: VecDeque<Run>,
    bytes: u64,
}

impl LogIndex {
    pub fn runs(&self) -> impl Iterator<Item = &Run> {
        self.runs.iter()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn first(&self) -> Option<Index> {
        self.runs.front().map(|r| r.first)
    }

    pub fn last(&self) -> Option<Index> {
        self.runs.back().map(|r| r.last)
    }

    /// Oldest segment holding a live entry (runs are in log order, and the log is only
    /// ever appended to the newest segment, so the first run is in the oldest).
    pub fn oldest_seq(&self) -> Option<u64> {
        self.runs.front().map(|r| r.seq)
    }

    pub fn term_at(&self, index: Index) -> Option<Term> {
        let i = self.runs.partition_point(|r| r.last < index);
        self.runs
            .get(i)
            .filter(|r| r.first <= index)
            .map(|r| r.term)
    }

    /// Appends a run; it must continue the log (any start is accepted on an empty one).
    pub fn push(&mut self, run: Run) -> Result<(), String> {
        if let Some(last) = self.last() {
            if run.first != last + 1 {
                return Err(format!(
                    "entries start at {} but the log ends at {last}",
                    run.first
                ));
            }
        }
        self.bytes += run.bytes;
        self.runs.push_back(run);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.runs.clear();
        self.bytes = 0;
    }

    /// Removes entries at `index` and after.
    pub fn truncate_from<E>(&mut self, index: Index, sizes: &mut SizesOf<'_, E>) -> Result<(), E> {
        while self.runs.back().is_some_and(|r| r.first >= index) {
            if let Some(r) = self.runs.pop_back() {
                self.bytes -= r.bytes;
            }
        }
        if let Some(r) = self.runs.back_mut() {
            if r.last >= index {
                let s = sizes(r)?;
                let keep: u64 = (r.first..index).map(|i| size_at(&s, r, i)).sum();
                self.bytes = self.bytes - r.bytes + keep;
                r.bytes = keep;
                r.last = index - 1;
            }
        }
        Ok(())
    }

    /// Removes entries at `index` and before.
    pub fn compact_to<E>(&mut self, index: Index, sizes: &mut SizesOf<'_, E>) -> Result<(), E> {
        while self.runs.front().is_some_and(|r| r.last <= index) {
            if let Some(r) = self.runs.pop_front() {
                self.bytes -= r.bytes;
            }
        }
        if let Some(r) = self.runs.front_mut() {
            if r.first <= index {
                let s = sizes(r)?;
                let keep: u64 = (index + 1..=r.last).map(|i| size_at(&s, r, i)).sum();
                self.bytes = self.bytes - r.bytes + keep;
                r.bytes = keep;
                r.first = index + 1;
            }
        }
        Ok(())
    }
}

fn size_at(sizes: &[u64], run: &Run, index: Index) -> u64 {
    usize::try_from(index - run.record_first)
        .ok()
        .and_then(|i| sizes.get(i))
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: Index, last: Index, term: Term) -> Run {
        Run {
            first,
            last,
            term,
            record_first: first,
            seq: first,
            offset: 0,
            bytes: (last - first + 1) * 10,
        }
    }

    #[test]
    fn clip_both_ends_and_look_up_terms() {
        let mut ix = LogIndex::default();
        ix.push(run(1, 5, 1)).expect("push");
        ix.push(run(6, 9, 2)).expect("push");
        assert!(ix.push(run(11, 12, 2)).is_err());
        assert_eq!(ix.term_at(5), Some(1));
        assert_eq!(ix.term_at(6), Some(2));
        assert_eq!(ix.term_at(10), None);
        let mut sizes = |r: &Run| Ok::<_, ()>(vec![10; (r.last - r.record_first + 1) as usize]);
        ix.truncate_from(8, &mut sizes).expect("sizes");
        assert_eq!((ix.last(), ix.bytes()), (Some(7), 70));
        ix.compact_to(3, &mut sizes).expect("sizes");
        assert_eq!((ix.first(), ix.bytes()), (Some(4), 40));
        ix.truncate_from(1, &mut sizes).expect("sizes");
        assert_eq!((ix.first(), ix.bytes()), (None, 0));
    }
}

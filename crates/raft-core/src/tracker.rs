//! Which configuration is in force, and which ones the log holds.
//!
//! A configuration takes effect on a node as soon as its entry is appended (thesis §4.1),
//! committed or not; so when a conflicting suffix is truncated, the node must fall back to
//! the last configuration the remaining log holds. The tracker keeps every configuration
//! entry after the snapshot, plus the configuration in force at the snapshot's last index
//! (the base), so that falling back and compacting are both a matter of cutting a list.

use crate::membership::Membership;
use crate::types::Index;

/// The configurations a node's log holds, oldest first; the last one is in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConfigTracker {
    /// `(index of the entry that set it, configuration)`; the first is the base (at the
    /// snapshot's index, or 0 for the bootstrap configuration) and is never removed by a
    /// truncation (a snapshot is committed).
    history: Vec<(Index, Membership)>,
}

impl ConfigTracker {
    /// A tracker whose base is `membership`, in force from `index` on.
    pub(crate) fn new(index: Index, membership: Membership) -> Self {
        ConfigTracker {
            history: vec![(index, membership)],
        }
    }

    /// The configuration in force: the last one appended.
    pub(crate) fn current(&self) -> &Membership {
        // The base is never removed, so the list is never empty.
        &self.history[self.history.len() - 1].1
    }

    /// Index of the entry that set the configuration in force (the base's index for the
    /// base).
    pub(crate) fn current_index(&self) -> Index {
        self.history[self.history.len() - 1].0
    }

    /// The configuration in force at `index`: the last one set at or before it.
    pub(crate) fn at(&self, index: Index) -> &Membership {
        self.history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.history[0].1, |(_, m)| m)
    }

    /// A configuration entry at `index` was appended: it is in force from now on.
    pub(crate) fn push(&mut self, index: Index, membership: Membership) {
        let base = self.history_base();
        self.history.retain(|(i, _)| *i < index || *i == base);
        self.history.push((index, membership));
    }

    /// Entries from `index` on were removed: configurations they set are forgotten, and
    /// the last one before them is in force again. Returns true when that changed the
    /// configuration in force.
    pub(crate) fn truncate_from(&mut self, index: Index) -> bool {
        let before = self.history.len();
        let base = self.history_base();
        self.history.retain(|(i, _)| *i < index || *i == base);
        self.history.len() != before
    }

    /// The log was compacted through `index`: the configuration in force there becomes
    /// the base, and older ones are dropped.
    pub(crate) fn compact(&mut self, index: Index) {
        let base = self.at(index).clone();
        self.history.retain(|(i, _)| *i > index);
        self.history.insert(0, (index, base));
    }

    /// A snapshot replaced the log through `index`, carrying `membership`; configuration
    /// entries after `index` that the log kept stay in force after it.
    pub(crate) fn install(&mut self, index: Index, membership: Membership, kept_suffix: bool) {
        if kept_suffix {
            self.history.retain(|(i, _)| *i > index);
        } else {
            self.history.clear();
        }
        self.history.insert(0, (index, membership));
    }

    fn history_base(&self) -> Index {
        self.history[0].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ids: &[u64]) -> Membership {
        Membership::with_voters(ids.iter().copied())
    }

    #[test]
    fn truncation_falls_back_to_the_previous_configuration() {
        let mut t = ConfigTracker::new(0, m(&[1, 2, 3]));
        t.push(5, m(&[1, 2, 3, 4]));
        t.push(9, m(&[1, 2, 3, 4, 5]));
        assert_eq!(t.current(), &m(&[1, 2, 3, 4, 5]));
        assert!(t.truncate_from(7));
        assert_eq!((t.current_index(), t.current()), (5, &m(&[1, 2, 3, 4])));
        assert!(!t.truncate_from(6));
        assert!(t.truncate_from(1));
        assert_eq!((t.current_index(), t.current()), (0, &m(&[1, 2, 3])));
    }

    #[test]
    fn compaction_keeps_the_configuration_in_force_at_the_snapshot() {
        let mut t = ConfigTracker::new(0, m(&[1]));
        t.push(3, m(&[1, 2]));
        t.push(8, m(&[1, 2, 3]));
        t.compact(5);
        assert_eq!(t.at(5), &m(&[1, 2]));
        assert_eq!(t.at(8), &m(&[1, 2, 3]));
        // The base survives any truncation after the snapshot.
        t.truncate_from(6);
        assert_eq!((t.current_index(), t.current()), (5, &m(&[1, 2])));
        t.install(10, m(&[4]), false);
        assert_eq!((t.current_index(), t.current()), (10, &m(&[4])));
    }
}

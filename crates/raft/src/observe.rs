//! Watching a peer: an optional callback told what the peer is (role, term, commit and
//! applied index) whenever that changes, and every write to its log.
//!
//! Meant for drawing and debugging (the tester's timeline). The callback runs on the
//! peer's task, synchronously, between two turns of its event loop: it must be quick and
//! must not call back into the peer. It changes nothing the peer does. Without one (the
//! default) a peer pays one branch per turn.

use raft_core::{Index, Role, SnapshotMeta, Term};
use std::fmt;
use std::sync::Arc;

/// What a peer reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// The peer's state after a turn in which it changed (and once when it starts).
    Status {
        /// Follower, candidate or leader.
        role: Role,
        /// Current term.
        term: Term,
        /// Commit index.
        commit: Index,
        /// The last index handed to the apply channel.
        applied: Index,
    },
    /// The peer starts from this log (what its storage restored).
    Restored {
        /// The snapshot the log starts after.
        snapshot: SnapshotMeta,
        /// Terms of the entries after it, in index order.
        terms: Vec<Term>,
    },
    /// A write to the log, as handed to storage (before it is durable).
    Persisted {
        /// Entries from this index on were removed first.
        truncate_from: Option<Index>,
        /// A snapshot written: taken by the service, or installed from a leader.
        snapshot: Option<SnapshotMeta>,
        /// True when the snapshot came from a leader.
        installed: bool,
        /// Index and term of each entry appended.
        entries: Vec<(Index, Term)>,
    },
}

/// The callback, as [`Config::observer`](crate::Config::observer) holds it. Two
/// observers are equal when they are the same callback.
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(&Observed) + Send + Sync>);

impl Observer {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&Observed) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(f))
    }

    /// Tells the callback.
    pub(crate) fn tell(&self, what: &Observed) {
        (self.0)(what);
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer(..)")
    }
}

impl PartialEq for Observer {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Observer {}

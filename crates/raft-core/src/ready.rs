//! The batch of work the core hands its driver.

use crate::message::Envelope;
use crate::read_only::{FailedRead, ReadState};
use crate::types::{Entry, HardState, Index, Snapshot};

/// Everything the core asks its driver to do, in the order it must be done:
///
/// 1. **Persist** `hard_state` (if any), then `snapshot` (if any: it replaces the stored
///    snapshot; stored entries are kept after it only if the stored log holds the
///    snapshot's last index with the same term, otherwise all are dropped), then remove
///    entries from `truncate_from` on (if any), then append `entries`. All of it is one
///    atomic write, durable before step 2.
/// 2. **Send** `messages` (`early_messages` may go before step 1, see below). Votes and acknowledgements in them promise that step 1 is
///    durable; sending them earlier breaks Raft's safety after a crash.
/// 3. **Apply**: first `restore` (if any), a snapshot the service must load in place of
///    its state, then `committed`, in order.
/// 4. **Answer reads**: each of `read_states` once the service has applied its index
///    (they need nothing persisted, so the order relative to steps 1-3 does not matter
///    for safety); each of `failed_reads` is given up, never answered.
///
/// A driver that follows this order, one `Ready` at a time, is correct. A driver that
/// writes on another thread may, while a write runs, also carry out the `Ready`s of
/// [`take_ready_while_writing`](crate::RaftCore::take_ready_while_writing) (nothing to
/// persist in them), provided it applies nothing of theirs before the entries and
/// snapshot the write in flight holds back for applying.
///
/// With [`CoreConfig::leader_parallel_write`](crate::CoreConfig) a leader's replication
/// requests come in `early_messages`, which may be sent before (or while) step 1 runs:
/// the leader's disk write then overlaps the round trip to its followers. The driver
/// reports each finished write with [`persisted`](crate::RaftCore::persisted), and the
/// leader counts its own copy only from then on. Without that setting `early_messages`
/// is always empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// New term and vote to persist, when they changed.
    pub hard_state: Option<HardState>,
    /// Persisted entries at this index and after must be removed before `entries` are
    /// appended.
    pub truncate_from: Option<Index>,
    /// New entries to append to storage, contiguous and in order.
    pub entries: Vec<Entry>,
    /// A snapshot to persist with the log compaction it implies.
    pub snapshot: Option<Snapshot>,
    /// Messages that may be sent at once, before the above is durable (a leader's
    /// replication requests, with `leader_parallel_write` only).
    pub early_messages: Vec<Envelope>,
    /// Messages to send, once the above is durable.
    pub messages: Vec<Envelope>,
    /// A snapshot the service must load before applying `committed` (one received from
    /// the leader, or the persisted one on restart).
    pub restore: Option<Snapshot>,
    /// Entries newly committed, to apply in order. An entry with empty `data` is a no-op
    /// the leader appended to commit an entry of its term before serving reads; services
    /// skip it (their commands are never empty: [`propose`](crate::RaftCore::propose)
    /// refuses empty data).
    pub committed: Vec<Entry>,
    /// Reads confirmed by the leader (ReadIndex): answer each once `index` is applied.
    pub read_states: Vec<ReadState>,
    /// Reads given up: leadership was lost, the leader refused, or time ran out.
    pub failed_reads: Vec<FailedRead>,
}

impl Ready {
    /// Takes out of `committed` the entries the driver may apply before this `Ready`'s
    /// write ends: those at or below `durable` (what the node reported durable through
    /// [`persisted`](crate::RaftCore::persisted) before taking this `Ready`). The rest
    /// stay, to apply after the write; behind a snapshot to restore, everything stays.
    pub fn take_durable_committed(&mut self, durable: Index) -> Vec<Entry> {
        if self.restore.is_some() {
            return Vec::new();
        }
        let later = self
            .committed
            .split_off(self.committed.partition_point(|e| e.index <= durable));
        std::mem::replace(&mut self.committed, later)
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.snapshot.is_none()
            && self.restore.is_none()
            && self.early_messages.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.read_states.is_empty()
            && self.failed_reads.is_empty()
    }
}

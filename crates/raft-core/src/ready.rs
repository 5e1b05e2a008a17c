//! The batch of work the core hands its driver.

use crate::message::Envelope;
use crate::types::{Entry, HardState, Index};

/// Everything the core asks its driver to do, in the order it must be done:
///
/// 1. **Persist** `hard_state` (if any), then remove entries from `truncate_from` on (if
///    any), then append `entries`. This must be durable before step 2.
/// 2. **Send** `messages`. Votes and acknowledgements in them promise that step 1 is
///    durable; sending them earlier breaks Raft's safety after a crash.
/// 3. **Apply** `committed`, in order, to the state machine.
///
/// A driver that follows this order, one `Ready` at a time, is correct.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// New term and vote to persist, when they changed.
    pub hard_state: Option<HardState>,
    /// Persisted entries at this index and after must be removed before `entries` are
    /// appended.
    pub truncate_from: Option<Index>,
    /// New entries to append to storage, contiguous and in order.
    pub entries: Vec<Entry>,
    /// Messages to send, once the above is durable.
    pub messages: Vec<Envelope>,
    /// Entries newly committed, to apply in order.
    pub committed: Vec<Entry>,
}

impl Ready {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.truncate_from.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
    }
}

//! What a leader knows about each follower, and the flow control built on it.

use crate::types::Index;
use std::collections::VecDeque;

/// How a leader is sending to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// The leader does not know where the follower's log matches: one message at a time,
    /// each waiting for its answer (or the next heartbeat) before the next is sent.
    Probe,
    /// The follower is in step: new entries stream to it without waiting for replies,
    /// within the in-flight limits.
    Replicate,
    /// The follower needs entries the leader has compacted: the leader's snapshot goes to
    /// it chunk by chunk, one chunk in flight.
    Snapshot {
        /// The snapshot being sent (a newer one restarts the transfer).
        index: Index,
        /// Offset of the next chunk to send.
        offset: u64,
    },
}

/// Replication progress of one follower (Figure 2's `nextIndex` and `matchIndex`, plus
/// flow control).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be replicated on the follower.
    pub matched: Index,
    /// Index of the next entry to send.
    pub next: Index,
    /// Probing or streaming.
    pub state: ProgressState,
    /// In `Probe`: a probe is outstanding; cleared by its answer or by a heartbeat tick.
    pub probe_sent: bool,
    /// In `Replicate`: last index and payload bytes of each message in flight, oldest first.
    pub inflight: VecDeque<(Index, usize)>,
    /// Whether any acknowledgement arrived since the last heartbeat tick.
    pub acked_since_heartbeat: bool,
    /// Whether any AppendEntries went to the follower since the last heartbeat tick; if
    /// so, it has heard from the leader recently enough and the heartbeat is skipped.
    pub sent_since_heartbeat: bool,
    /// The highest commit index sent to the follower.
    pub commit_sent: Index,
}

impl Progress {
    /// A follower about which nothing is known yet; replication starts at `next`.
    pub fn new(next: Index) -> Self {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            acked_since_heartbeat: false,
            sent_since_heartbeat: false,
            commit_sent: 0,
        }
    }

    /// Starts probing again from `next`, forgetting anything in flight.
    pub fn become_probe(&mut self, next: Index) {
        self.state = ProgressState::Probe;
        self.next = next.max(self.matched + 1);
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Starts sending the snapshot that ends at `index`, from its first byte.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot { index, offset: 0 };
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Starts streaming after `matched`.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.next.max(self.matched + 1);
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Bytes of entries in flight.
    pub fn inflight_bytes(&self) -> usize {
        self.inflight.iter().map(|(_, b)| b).sum()
    }

    /// Records an acknowledgement up to `index`; returns true if it taught us a new match.
    pub fn ack(&mut self, index: Index) -> bool {
        // Only an answer that retires something in flight (or teaches a new match) shows
        // the stream is alive. The answer to a heartbeat sent at `matched` does neither;
        // counting it would keep a lost message from ever being resent.
        let inflight_before = self.inflight.len();
        while self
            .inflight
            .front()
            .is_some_and(|(last, _)| *last <= index)
        {
            self.inflight.pop_front();
        }
        if self.inflight.len() < inflight_before || index > self.matched {
            self.acked_since_heartbeat = true;
        }
        if index > self.matched {
            self.matched = index;
            self.next = self.next.max(index + 1);
            return true;
        }
        false
    }
}

//! What a leader knows about each follower, and the flow control built on it.
//!
//! Every change of a follower's replication state goes through a method of [`Progress`]
//! (as in etcd's tracker), so that the rules of flow control live in one place: how many
//! messages may be in flight, when a lost message is sent again, which answers are stale.

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
    /// The follower needs entries the leader has compacted: the leader's snapshot streams
    /// to it chunk by chunk, within the same in-flight limits as entries.
    Snapshot {
        /// The snapshot being sent (a newer one restarts the transfer).
        index: Index,
        /// Bytes the follower has confirmed it holds: every chunk before this offset.
        acked: u64,
        /// Offset of the next chunk to send.
        sent: u64,
    },
}

/// What a heartbeat tick asks the leader to do for one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeartbeatAction {
    /// Send what flow control allows, even if it carries nothing new (a probe, or a
    /// snapshot chunk sent again).
    Resend,
    /// Only an empty AppendEntries, if the follower has not heard from us recently.
    Heartbeat,
    /// A copy of the first unconfirmed snapshot chunk (see [`Progress::resend_chunk`]).
    ResendChunk,
    /// Nothing: the follower is receiving a stream that is alive.
    Nothing,
}

/// What an answer to a snapshot chunk means for the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkReply {
    /// The answer does not concern an outstanding chunk (duplicated, delayed, or from an
    /// earlier round): ignore it.
    Stale,
    /// The follower took the chunk: send more, as the window allows.
    Accepted,
    /// The follower expects an earlier chunk (one was lost): the transfer restarts from
    /// there, one chunk at a time until the follower takes one again.
    Rewound,
}

/// Replication progress of one follower (Figure 2's `nextIndex` and `matchIndex`, plus
/// flow control).
#[derive(Clone, Debug)]
pub struct Progress {
    matched: Index,
    next: Index,
    state: ProgressState,
    /// Probe: a probe is outstanding. Snapshot: the transfer was rewound after a loss (or
    /// silence), so one chunk at a time is sent until the follower takes one.
    paused: bool,
    /// Messages in flight, oldest first: (last index of the message's entries, or end
    /// offset of a snapshot chunk; payload bytes).
    inflight: VecDeque<(u64, usize)>,
    /// An answer that shows progress (or a rejection) arrived since the last heartbeat tick.
    heard_since_heartbeat: bool,
    /// Heartbeat ticks in a row at which a snapshot transfer had sent and heard nothing.
    silent_ticks: u8,
    /// An AppendEntries or a snapshot chunk went out since the last heartbeat tick; if it
    /// was an AppendEntries with the current commit index, the follower needs no heartbeat.
    sent_since_heartbeat: bool,
    /// The highest commit index sent to the follower.
    commit_sent: Index,
    /// The highest read index the follower was given: it needs a commit index this high.
    commit_wanted: Index,
}

impl Progress {
    /// A follower about which nothing is known yet; replication starts at `next`.
    pub fn new(next: Index) -> Self {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            heard_since_heartbeat: false,
            silent_ticks: 0,
            sent_since_heartbeat: false,
            commit_sent: 0,
            commit_wanted: 0,
        }
    }

    /// Highest index known to be replicated on the follower.
    pub fn matched(&self) -> Index {
        self.matched
    }

    /// Index of the next entry to send.
    pub fn next(&self) -> Index {
        self.next
    }

    /// Probing, streaming entries, or sending a snapshot.
    pub fn state(&self) -> ProgressState {
        self.state
    }

    /// Messages (entries or snapshot chunks) sent and not yet answered.
    pub fn inflight_count(&self) -> usize {
        self.inflight.len()
    }

    /// Payload bytes of the messages in flight.
    pub fn inflight_bytes(&self) -> usize {
        self.inflight.iter().map(|(_, b)| b).sum()
    }

    /// True when flow control lets one more message carrying payload go to the follower.
    pub fn can_send(&self, max_msgs: usize, max_bytes: usize) -> bool {
        match self.state {
            ProgressState::Probe => !self.paused,
            ProgressState::Replicate => {
                self.inflight.len() < max_msgs && self.inflight_bytes() < max_bytes
            }
            // A rewound transfer sends one chunk and waits for its answer.
            ProgressState::Snapshot { .. } => {
                let window = if self.paused { 1 } else { max_msgs };
                self.inflight.len() < window && self.inflight_bytes() < max_bytes
            }
        }
    }

    // ----- transitions ---------------------------------------------------------------

    /// Starts probing again from `next`, forgetting anything in flight.
    pub(crate) fn become_probe(&mut self, next: Index) {
        self.state = ProgressState::Probe;
        self.next = next.max(self.matched + 1);
        self.paused = false;
        self.inflight.clear();
    }

    /// Starts sending the snapshot that ends at `index`, from its first byte.
    pub(crate) fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot {
            index,
            acked: 0,
            sent: 0,
        };
        self.paused = false;
        self.silent_ticks = 0;
        self.inflight.clear();
    }

    /// Starts streaming after `matched`.
    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.next.max(self.matched + 1);
        self.paused = false;
        self.inflight.clear();
    }

    // ----- entries -------------------------------------------------------------------

    /// Records that an AppendEntries went out from which the follower learns that
    /// `commit` is committed.
    pub(crate) fn sent_append(&mut self, commit: Index) {
        self.sent_since_heartbeat = true;
        self.commit_sent = self.commit_sent.max(commit);
    }

    /// Records that the follower was given `index` as a read index.
    pub(crate) fn want_commit(&mut self, index: Index) {
        self.commit_wanted = self.commit_wanted.max(index);
    }

    /// True when the follower waits for a commit index it was not sent yet, and nothing
    /// sent to it is unacknowledged: an empty AppendEntries naming the last entry it
    /// acknowledged tells it, and cannot be refused. (With messages in flight it is
    /// asked again when they are answered.)
    pub(crate) fn needs_commit(&self) -> bool {
        self.state == ProgressState::Replicate
            && self.inflight.is_empty()
            && self.commit_sent < self.commit_wanted
    }

    /// Records that entries through `last` (`bytes` of payload, possibly none) were sent.
    pub(crate) fn sent_entries(&mut self, last: Index, bytes: usize) {
        match self.state {
            ProgressState::Probe => self.paused = true,
            ProgressState::Replicate => {
                if last >= self.next {
                    self.inflight.push_back((last, bytes));
                    self.next = last + 1;
                }
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// The follower holds everything through `index`; returns true if that is a new match.
    pub(crate) fn on_append_accepted(&mut self, index: Index) -> bool {
        // Only an answer that retires something in flight (or teaches a new match) shows
        // the stream is alive. The answer to a heartbeat sent at `matched` does neither;
        // counting it would keep a lost message from ever being resent.
        let inflight_before = self.inflight.len();
        // While a snapshot is sent, the window holds chunks, keyed by byte offsets: a late
        // answer to an AppendEntries (a log index) must not retire them. (It did: the
        // window emptied with the transfer unfinished, every chunk answer then looked
        // stale, and nothing was ever sent to that follower again.)
        let entries_in_flight = !matches!(self.state, ProgressState::Snapshot { .. });
        while entries_in_flight
            && self
                .inflight
                .front()
                .is_some_and(|(last, _)| *last <= index)
        {
            self.inflight.pop_front();
        }
        if self.inflight.len() < inflight_before || index > self.matched {
            self.heard_since_heartbeat = true;
        }
        let advanced = index > self.matched;
        if advanced {
            self.matched = index;
            self.next = self.next.max(index.saturating_add(1));
        }
        match self.state {
            ProgressState::Probe => self.become_replicate(),
            // A follower that has caught up past the snapshot no longer needs it.
            ProgressState::Snapshot { index, .. } if self.matched >= index => {
                self.become_replicate()
            }
            _ => {}
        }
        advanced
    }

    /// The follower refused an AppendEntries whose `prev_log_index` was `rejected`; the
    /// hint says the follower's log may match from `hinted_next` on. Returns true when the
    /// leader should probe again (false: the rejection is stale).
    pub(crate) fn on_append_rejected(&mut self, rejected: Index, hinted_next: Index) -> bool {
        // A rejection of anything already known to match is stale, as is any rejection
        // while a snapshot is on its way, or, while probing, one that does not answer the
        // outstanding probe.
        if rejected < self.matched || matches!(self.state, ProgressState::Snapshot { .. }) {
            return false;
        }
        if self.state == ProgressState::Probe && rejected.checked_add(1) != Some(self.next) {
            return false;
        }
        // Never step back past a known match, nor forward past what was rejected.
        let next = hinted_next.min(rejected).max(self.matched + 1);
        self.heard_since_heartbeat = true;
        self.become_probe(next);
        true
    }

    // ----- snapshots -----------------------------------------------------------------

    /// The next chunk to send of a snapshot of `len` bytes in chunks of `chunk` bytes:
    /// `(offset, end)`, or `None` when flow control or the transfer's end forbids one.
    pub(crate) fn next_chunk(
        &self,
        len: u64,
        chunk: u64,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Option<(u64, u64)> {
        let ProgressState::Snapshot { sent, .. } = self.state else {
            return None;
        };
        // An empty snapshot still takes one (empty, final) chunk.
        let nothing_left = sent >= len && !(len == 0 && self.inflight.is_empty() && sent == 0);
        if nothing_left || !self.can_send(max_msgs, max_bytes) {
            return None;
        }
        Some((sent, sent.saturating_add(chunk).min(len)))
    }

    /// Records that the chunk `[offset, end)` went out.
    pub(crate) fn sent_chunk(&mut self, offset: u64, end: u64) {
        if let ProgressState::Snapshot { sent, .. } = &mut self.state {
            *sent = end;
            self.inflight.push_back((end, (end - offset) as usize));
            self.sent_since_heartbeat = true;
        }
    }

    /// Forgets what was sent since the last heartbeat tick (called after the tick's own
    /// sends, which must not count as recent traffic at the next tick).
    pub(crate) fn forget_sends(&mut self) {
        self.sent_since_heartbeat = false;
    }

    /// The first unconfirmed chunk, `(offset, end)`, to send again after a silent
    /// heartbeat interval. The copy is not counted in flight: its original still is.
    pub(crate) fn resend_chunk(&self, len: u64, chunk: u64) -> Option<(u64, u64)> {
        match self.state {
            ProgressState::Snapshot { acked, .. } if !self.inflight.is_empty() => {
                Some((acked, acked.saturating_add(chunk).min(len)))
            }
            _ => None,
        }
    }

    /// The follower answered the chunk at `offset` of the snapshot ending at `index`,
    /// saying it expects `next_offset` next. `len` is the snapshot's size.
    pub(crate) fn on_chunk_reply(
        &mut self,
        index: Index,
        offset: u64,
        next_offset: u64,
        len: u64,
    ) -> ChunkReply {
        let ProgressState::Snapshot {
            index: sending,
            acked,
            sent,
        } = &mut self.state
        else {
            return ChunkReply::Stale;
        };
        // Only an answer to a chunk now in flight counts: they start at `acked` and at the
        // end of each chunk in flight but the last. Anything else is a duplicate or an
        // answer from before a rewind, and acting on it would start a second stream.
        let outstanding = *sending == index
            && !self.inflight.is_empty()
            && (offset == *acked || self.inflight.iter().any(|(end, _)| *end == offset))
            && offset < *sent;
        if !outstanding {
            return ChunkReply::Stale;
        }
        self.heard_since_heartbeat = true;
        if next_offset > offset {
            // Taken: everything before `next_offset` is on the follower (it may hold more
            // than was sent in this round, from before a rewind: skip ahead then).
            *acked = next_offset.min(len);
            *sent = (*sent).max(*acked);
            let acked = *acked;
            while self.inflight.front().is_some_and(|(end, _)| *end <= acked) {
                self.inflight.pop_front();
            }
            self.paused = false;
            return ChunkReply::Accepted;
        }
        // Refused: the follower expects `next_offset`, not this chunk (one was lost, or the
        // follower restarted). While a rewound transfer waits for its single chunk, the
        // answers to the rest of the old window are stale; so one loss rewinds once.
        if self.paused && offset != *acked {
            return ChunkReply::Stale;
        }
        *acked = next_offset;
        *sent = next_offset;
        self.inflight.clear();
        self.paused = true;
        ChunkReply::Rewound
    }

    // ----- time ----------------------------------------------------------------------

    /// A heartbeat interval has passed; says what to send. `commit` is the leader's
    /// commit index.
    pub(crate) fn on_heartbeat_tick(&mut self, commit: Index) -> HeartbeatAction {
        let heard = std::mem::take(&mut self.heard_since_heartbeat);
        let sent = std::mem::take(&mut self.sent_since_heartbeat);
        let sent_recently = sent && self.commit_sent >= commit;
        match self.state {
            ProgressState::Probe => {
                // The outstanding probe may have been lost: send it again.
                self.paused = false;
                HeartbeatAction::Resend
            }
            ProgressState::Snapshot { .. } => {
                if heard || sent || self.inflight.is_empty() {
                    self.silent_ticks = 0;
                } else {
                    self.silent_ticks = self.silent_ticks.saturating_add(1);
                }
                // A transfer streams in bursts, one window per round trip, so one interval
                // without traffic is normal when the round trip is longer than the
                // heartbeat. Two in a row mean the first unconfirmed chunk may be lost:
                // send a copy of it alone. The rest of the window stays counted as in
                // flight (it may only be slow); a loss shows up as a refusal that rewinds.
                if self.silent_ticks >= 2 {
                    self.silent_ticks = 0;
                    HeartbeatAction::ResendChunk
                } else {
                    HeartbeatAction::Nothing
                }
            }
            ProgressState::Replicate => {
                if !self.inflight.is_empty() && !heard {
                    // Nothing acknowledged for a whole heartbeat interval: assume the
                    // stream broke, and probe from what is known to match.
                    let next = self.matched + 1;
                    self.become_probe(next);
                    HeartbeatAction::Resend
                } else if sent_recently {
                    // Any AppendEntries resets the follower's election timer, so one that
                    // was just sent, with the current commit index, makes a heartbeat
                    // unnecessary.
                    HeartbeatAction::Nothing
                } else {
                    HeartbeatAction::Heartbeat
                }
            }
        }
    }

    /// The index a heartbeat to this follower should name as `prev_log_index`: one known
    /// to match when messages are in flight (so that its answer is not mistaken for an
    /// acknowledgement of them), otherwise the last one sent.
    pub(crate) fn heartbeat_index(&self) -> Index {
        if self.inflight.is_empty() {
            self.next - 1
        } else {
            self.matched
        }
    }
}

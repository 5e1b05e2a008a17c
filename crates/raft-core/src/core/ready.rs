//! Handing work to the driver: the whole [`Ready`], or, while the driver's previous
//! write is still running, the part of one that needs nothing persisted.
//!
//! A driver that writes on another thread keeps stepping messages and proposals into the
//! core while a write runs. What they produce mostly waits for the next write (new
//! entries, votes, acknowledgements), but some of it does not have to: entries already
//! committed and durable here can be applied, reads confirmed can be answered, and a
//! leader's replication requests can leave. Holding those back until the write ends
//! puts one more disk write on the path of every client request; handing them over at
//! once ([`take_ready_while_writing`](RaftCore::take_ready_while_writing)) takes it off.

use super::RaftCore;
use crate::ready::Ready;
use crate::types::{Index, Role, Term};
use rand_core::RngCore;

impl<R: RngCore> RaftCore<R> {
    /// True when [`take_ready`](Self::take_ready) would return work.
    pub fn has_ready(&self) -> bool {
        self.hard_dirty
            || self.pending_truncate.is_some()
            || !self.pending_entries.is_empty()
            || !self.outbox.is_empty()
            || self.broadcast_pending
            || self.commit_news
            || self.pending_snapshot.is_some()
            || self.pending_restore.is_some()
            || self.applied < self.commit
            || self.reads.has_output()
            || (self.reads.round_wanted() && self.role == Role::Leader)
    }

    /// Hands over everything to persist, send and apply. See [`Ready`] for the order the
    /// driver must follow.
    pub fn take_ready(&mut self) -> Ready {
        self.take_ready_bounded(usize::MAX)
    }

    /// Like [`take_ready`](Self::take_ready), but hands over at most `max_apply` things to
    /// apply (a snapshot to restore counts as one). The rest stays committed in the core
    /// and comes with a later `Ready`: a driver whose service applies slowly bounds what
    /// it buffers, while persisting and sending go on.
    pub fn take_ready_bounded(&mut self, max_apply: usize) -> Ready {
        self.start_sending();
        let hard_state = if self.hard_dirty {
            self.hard_dirty = false;
            Some(self.hard)
        } else {
            None
        };
        // The next batch is likely as large as this one: reserve for it at once rather
        // than growing from empty one doubling at a time.
        let next = Vec::with_capacity(self.pending_entries.len());
        let entries = std::mem::replace(&mut self.pending_entries, next);
        self.stable_last = self.log.last_index();
        let mut room = max_apply;
        let restore = if room > 0 {
            self.pending_restore.take()
        } else {
            None
        };
        room -= usize::from(restore.is_some());
        let committed = if self.pending_restore.is_some() {
            Vec::new()
        } else {
            self.take_committed(self.commit, room)
        };
        let mut messages = std::mem::take(&mut self.outbox);
        // A Ready that changes term or vote sends nothing early: its messages may speak
        // for that change.
        let early_messages = if self.cfg.leader_parallel_write && hard_state.is_none() {
            let (early, late) = messages
                .into_iter()
                .partition(|m| m.msg.may_precede_persist());
            messages = late;
            early
        } else {
            Vec::new()
        };
        Ready {
            hard_state,
            truncate_from: self.pending_truncate.take(),
            entries,
            snapshot: self.pending_snapshot.take(),
            early_messages,
            messages,
            restore,
            committed,
            read_states: std::mem::take(&mut self.reads.confirmed),
            failed_reads: std::mem::take(&mut self.reads.failed),
        }
    }

    /// True when [`take_ready_while_writing`](Self::take_ready_while_writing) would
    /// return work.
    pub fn has_ready_while_writing(&self) -> bool {
        let leader_sends = self.role == Role::Leader
            && (self.reads.round_wanted() || self.broadcast_pending || self.commit_news);
        self.applied < self.appliable_while_writing()
            || self.reads.has_output()
            || (self.may_send_early()
                && (leader_sends || self.outbox.iter().any(|m| m.msg.may_precede_persist())))
    }

    /// The part of a [`Ready`] that needs no write to end first, for a driver whose
    /// previous write is still running: entries committed *and* reported durable here
    /// through [`persisted`](Self::persisted) (at most `max_apply`), reads confirmed or
    /// given up, and with [`CoreConfig::leader_parallel_write`](crate::CoreConfig) a
    /// leader's replication requests (in `early_messages`). Everything else (term, vote,
    /// entries, snapshot, the other messages, a snapshot to restore and what is committed
    /// after it) stays in the core for the next [`take_ready`](Self::take_ready), which
    /// the driver takes once its write is durable.
    ///
    /// Applying only what is durable here keeps the promise a service relies on when it
    /// answers a client: what it applied survives this node's crash too (a leader
    /// without `leader_parallel_write`, or alone, counts its own entries toward a commit
    /// before they are written).
    pub fn take_ready_while_writing(&mut self, max_apply: usize) -> Ready {
        let may_send_early = self.may_send_early();
        if may_send_early {
            self.start_sending();
        }
        let committed = self.take_committed(self.appliable_while_writing(), max_apply);
        let early_messages = if may_send_early {
            let (early, late) = std::mem::take(&mut self.outbox)
                .into_iter()
                .partition(|m| m.msg.may_precede_persist());
            self.outbox = late;
            early
        } else {
            Vec::new()
        };
        Ready {
            early_messages,
            committed,
            read_states: std::mem::take(&mut self.reads.confirmed),
            failed_reads: std::mem::take(&mut self.reads.failed),
            ..Ready::default()
        }
    }

    /// A leader's replication requests may leave before a write only with
    /// `leader_parallel_write`, and not while a new term or vote waits to be persisted.
    fn may_send_early(&self) -> bool {
        self.cfg.leader_parallel_write && !self.hard_dirty
    }

    /// Queues the replication requests and read heartbeats proposals and reads asked for,
    /// and tells followers given a read index that it is committed.
    fn start_sending(&mut self) {
        let entries = std::mem::take(&mut self.broadcast_pending);
        let commit_news = std::mem::take(&mut self.commit_news);
        if (entries || commit_news) && self.role == Role::Leader {
            for peer in self.others() {
                // New entries carry the commit index; without them an empty message does.
                let tell =
                    commit_news && self.progress.get(&peer).is_some_and(|p| p.needs_commit());
                self.send_append(peer, tell);
            }
        }
        self.start_read_round();
    }

    /// How far entries may be applied while a write runs: committed, durable here, and
    /// not behind a snapshot that waits to be persisted or restored.
    fn appliable_while_writing(&self) -> Index {
        if self.pending_restore.is_some() || self.pending_snapshot.is_some() {
            return self.applied;
        }
        self.commit.min(self.durable).max(self.applied)
    }

    /// The entries after the applied index up to `last`, at most `room` of them, marked
    /// as handed over.
    fn take_committed(&mut self, last: Index, room: usize) -> Vec<crate::types::Entry> {
        if room == 0 || last <= self.applied {
            return Vec::new();
        }
        let room = u64::try_from(room).unwrap_or(u64::MAX);
        let last = last.min(self.applied.saturating_add(room));
        let committed = self.log.slice(self.applied + 1, last).to_vec();
        self.applied = self.applied.max(committed.last().map_or(0, |e| e.index));
        committed
    }

    /// The driver made the write that ends with entry `index` of `term` durable (for a
    /// write with no entries: its snapshot's last index and term). With
    /// [`CoreConfig::leader_parallel_write`](crate::CoreConfig) the leader counts its own
    /// log toward a commit only up to here; in any case
    /// [`take_ready_while_writing`](Self::take_ready_while_writing) applies no further. A
    /// report about entries since replaced (truncated, or another term at that index) is
    /// ignored.
    pub fn persisted(&mut self, index: Index, term: Term) {
        if index <= self.durable || self.log.term(index) != Some(term) {
            return;
        }
        // Log matching: the same index and term mean the same entries up to there.
        self.durable = index;
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// How far the driver reported the log durable through
    /// [`persisted`](Self::persisted) (from restart: all of it).
    pub fn durable_index(&self) -> Index {
        self.durable
    }

    /// True when committed entries (or a snapshot to restore) wait to be handed over.
    pub fn has_unapplied(&self) -> bool {
        self.pending_restore.is_some() || self.applied < self.commit
    }
}

//! The follower's side of replication: the AppendEntries consistency check, conflict-only
//! truncation, and receiving a snapshot chunk by chunk.

use super::RaftCore;
use crate::message::{Message, RejectHint};
use crate::types::{Entry, EntryKind, Index, NodeId, Role, Snapshot, SnapshotMeta, Term};
use crate::CoreError;
use bytes::Bytes;
use rand_core::RngCore;

/// A snapshot being received. It belongs to one sender in one term: chunks from another
/// leader (or the same leader in another term) never extend it, because two replicas
/// need not encode the same state with the same bytes.
pub(super) struct IncomingSnapshot {
    term: Term,
    from: NodeId,
    meta: SnapshotMeta,
    buf: Vec<u8>,
}

impl<R: RngCore> RaftCore<R> {
    /// Hears from the leader of `term`: a candidate stands down, everyone resets its timer.
    pub(super) fn heard_from_leader(&mut self, from: NodeId, term: Term) {
        if self.role != Role::Follower {
            self.become_follower(term, Some(from));
        }
        self.leader = Some(from);
        self.election_elapsed = 0;
    }

    pub(super) fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) -> Result<(), CoreError> {
        if term < self.hard.term {
            self.reject_append(from, prev_index);
            return Ok(());
        }
        self.heard_from_leader(from, term);

        // Entries at or before our snapshot are committed, so they match by definition.
        let snap = self.log.snapshot();
        let (prev_index, prev_term, entries) = if prev_index < snap.index {
            let skip = (snap.index - prev_index) as usize;
            let rest = entries.into_iter().skip(skip).collect::<Vec<_>>();
            (snap.index, snap.term, rest)
        } else {
            (prev_index, prev_term, entries)
        };

        if self.log.term(prev_index) != Some(prev_term) {
            self.reject_append(from, prev_index);
            return Ok(());
        }

        // Only a conflicting suffix is removed, never entries that agree, so a delayed or
        // duplicated AppendEntries cannot delete anything. A conflict at or below the
        // commit index means the sender broke Raft's safety: refuse it before touching
        // the log.
        let first_new = entries
            .iter()
            .position(|e| self.log.term(e.index) != Some(e.term));
        if let Some(pos) = first_new {
            let index = entries[pos].index;
            if index <= self.log.last_index() && index <= self.commit {
                return Err(CoreError::ConflictsWithCommitted {
                    index,
                    commit: self.commit,
                });
            }
        }
        let last_new = prev_index + entries.len() as Index;
        #[cfg(raft_bug = "truncate-on-stale-append")]
        if first_new.is_none() && last_new < self.log.last_index() && !entries.is_empty() {
            self.truncate_local(last_new + 1);
        }
        for entry in entries.into_iter().skip(first_new.unwrap_or(usize::MAX)) {
            if entry.index <= self.log.last_index() {
                self.truncate_local(entry.index);
            }
            self.append_local(entry);
        }
        let commit = leader_commit.min(last_new);
        if commit > self.commit {
            #[cfg(raft_bug = "config-on-commit")]
            self.bug_conf_on_commit(self.commit, commit);
            self.commit = commit;
        }
        self.send(
            from,
            Message::AppendEntriesResponse {
                term: self.hard.term,
                index: last_new,
                reject: None,
            },
        );
        Ok(())
    }

    /// Refuses an AppendEntries whose `prev_log_index` was `prev_index`, with the hint that
    /// lets the leader skip back a whole term.
    fn reject_append(&mut self, to: NodeId, prev_index: Index) {
        let reject = Some(self.reject_hint(prev_index));
        let term = self.hard.term;
        self.send(
            to,
            Message::AppendEntriesResponse {
                term,
                index: prev_index,
                reject,
            },
        );
    }

    fn reject_hint(&self, prev_index: Index) -> RejectHint {
        let last_index = self.log.last_index();
        match self.log.term(prev_index) {
            Some(t) if prev_index <= last_index => RejectHint {
                conflict_term: Some(t),
                first_index_of_term: self.log.first_index_of_term_before(prev_index),
                last_index,
            },
            _ => RejectHint {
                conflict_term: None,
                first_index_of_term: 0,
                last_index,
            },
        }
    }

    pub(super) fn append_local(&mut self, entry: Entry) {
        // A configuration entry takes effect on append; the others move straight into
        // the log (one reference-count bump less per entry on the hot path).
        let conf = (entry.kind == EntryKind::Config).then(|| entry.clone());
        self.pending_entries.push(entry.clone());
        self.log.push(entry);
        if let Some(conf) = conf {
            self.conf_on_append(&conf);
        }
    }

    fn truncate_local(&mut self, index: Index) {
        crate::invariant!(
            index > self.commit,
            "node {} truncating its log from {} at or below its commit index {}",
            self.id,
            index,
            self.commit
        );
        self.log.truncate_from(index);
        self.durable = self.durable.min(index - 1);
        self.conf_on_truncate(index);
        self.pending_entries.retain(|e| e.index < index);
        if index <= self.stable_last {
            self.stable_last = index - 1;
            self.pending_truncate = Some(self.pending_truncate.map_or(index, |t| t.min(index)));
        }
    }

    pub(super) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        offset: u64,
        data: Bytes,
        done: bool,
    ) {
        let reply = |core: &mut Self, next_offset: u64, installed: bool| {
            let term = core.hard.term;
            core.send(
                from,
                Message::InstallSnapshotResponse {
                    term,
                    meta,
                    offset,
                    next_offset,
                    installed,
                },
            );
        };
        if term < self.hard.term {
            reply(self, 0, false);
            return;
        }
        self.heard_from_leader(from, term);

        // Everything in a snapshot at or before our commit index is already here: a stale
        // or duplicated snapshot must never roll the service back.
        #[cfg(not(raft_bug = "install-stale-snapshot"))]
        if meta.index <= self.commit {
            // A delayed chunk of an older transfer must not cut short a newer one under way.
            if self
                .incoming
                .as_ref()
                .is_some_and(|inc| inc.meta.index <= self.commit)
            {
                self.incoming = None;
            }
            reply(self, offset + data.len() as u64, true);
            return;
        }
        // A chunk at offset 0 starts the snapshot afresh (the paper's rule), unless it
        // repeats the start of the transfer under way from the same leader in the same
        // term (a duplicate or a resend: same bytes, and restarting would only throw the
        // rest away). Any other chunk extends the transfer only if it comes from the same
        // leader, in the same term, for the same snapshot, at exactly the offset reached.
        let same =
            |inc: &IncomingSnapshot| inc.term == term && inc.from == from && inc.meta == meta;
        let repeat = self
            .incoming
            .as_ref()
            .is_some_and(|inc| same(inc) && inc.buf.len() >= data.len() && !inc.buf.is_empty());
        if offset == 0 && !repeat {
            self.incoming = Some(IncomingSnapshot {
                term,
                from,
                meta,
                buf: Vec::new(),
            });
        }
        let expected = match &self.incoming {
            Some(inc) if same(inc) => inc.buf.len() as u64,
            _ => 0,
        };
        if offset != expected {
            // A lost or reordered chunk, or one of another transfer: say where to resume.
            reply(self, expected, false);
            return;
        }
        let Some(inc) = self.incoming.as_mut() else {
            reply(self, 0, false);
            return;
        };
        inc.buf.extend_from_slice(&data);
        let received = inc.buf.len() as u64;
        if !done {
            reply(self, received, false);
            return;
        }
        let data = self
            .incoming
            .take()
            .map_or_else(Bytes::new, |inc| Bytes::from(inc.buf));
        self.install_snapshot(Snapshot { meta, data });
        reply(self, received, true);
    }

    /// Replaces the log's prefix (or all of it) with a snapshot from the leader, and
    /// arranges for it to be persisted and handed to the service.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.meta;
        let kept_suffix = self.log.term(meta.index) == Some(meta.term);
        if let Err(e) = self.log.install(meta) {
            // The caller checked the snapshot is newer than the commit index, which is at
            // least the current snapshot's: an older one here is a bug.
            crate::invariant!(false, "node {} installing snapshot: {e}", self.id);
        }
        if kept_suffix {
            self.pending_entries.retain(|e| e.index > meta.index);
        } else {
            // Nothing of the old log survives, in memory or in storage.
            self.pending_entries.clear();
            self.pending_truncate = Some(meta.index + 1);
            self.durable = self.durable.min(meta.index);
        }
        self.stable_last = self.stable_last.max(meta.index).min(self.log.last_index());
        self.snapshot_data = snapshot.data.clone();
        self.commit = self.commit.max(meta.index);
        let service_data = self.conf_on_install(meta.index, &snapshot.data, kept_suffix);
        if meta.index > self.applied {
            self.applied = meta.index;
            self.pending_restore = Some(Snapshot {
                meta,
                data: service_data,
            });
        }
        self.pending_snapshot = Some(snapshot);
    }
}

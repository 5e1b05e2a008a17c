//! The leader's side of replication: heartbeats, sending entries and snapshot chunks
//! within each follower's flow-control window, handling answers, and the commit rule.
//! Every decision about one follower's window is a [`Progress`](crate::Progress) method.

use super::RaftCore;
use crate::message::{Message, RejectHint};
use crate::progress::{ChunkReply, HeartbeatAction, Progress, ProgressState};
use crate::types::{Entry, Index, NodeId, Role, SnapshotMeta, Term};
use rand_core::RngCore;

impl<R: RngCore> RaftCore<R> {
    pub(super) fn heartbeat(&mut self) {
        // Reads still waiting get a fresh round: the last one's messages may be lost.
        self.reads.retry_round();
        let commit = self.commit;
        let snapshot_index = self.log.snapshot().index;
        for peer in self.others() {
            let Some(pr) = self.progress.get_mut(&peer) else {
                continue;
            };
            match pr.on_heartbeat_tick(commit) {
                HeartbeatAction::Nothing => {}
                HeartbeatAction::Resend => self.send_append(peer, true),
                HeartbeatAction::ResendChunk => self.resend_snapshot_chunk(peer),
                HeartbeatAction::Heartbeat => {
                    let at = pr.heartbeat_index();
                    if at < snapshot_index {
                        // What the follower needs is compacted away: send the snapshot.
                        pr.become_snapshot(snapshot_index);
                        self.send_append(peer, true);
                    } else {
                        self.send_heartbeat(peer, at);
                    }
                }
            }
            // What the heartbeat itself sent does not count for the next one: otherwise
            // every other heartbeat would be skipped.
            if let Some(pr) = self.progress.get_mut(&peer) {
                pr.forget_sends();
            }
        }
    }

    fn send_heartbeat(&mut self, peer: NodeId, prev_index: Index) {
        let Some(prev_term) = self.log.term(prev_index) else {
            return;
        };
        let msg = Message::AppendEntries {
            term: self.hard.term,
            prev_log_index: prev_index,
            prev_log_term: prev_term,
            entries: Vec::new(),
            leader_commit: self.commit,
        };
        self.send(peer, msg);
    }

    /// Sends what `peer` is missing, as far as flow control allows. With `allow_empty`, a
    /// message goes out even when there is nothing new (a heartbeat or probe).
    pub(super) fn send_append(&mut self, peer: NodeId, allow_empty: bool) {
        let (max_msgs, max_bytes) = (self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes);
        loop {
            let Some(pr) = self.progress.get(&peer) else {
                return;
            };
            if matches!(pr.state(), ProgressState::Snapshot { .. }) {
                self.send_snapshot_chunks(peer);
                return;
            }
            if !pr.can_send(max_msgs, max_bytes) {
                return;
            }
            let next = pr.next();
            let has_new = next <= self.log.last_index();
            if !has_new && !allow_empty {
                return;
            }
            let prev_index = next - 1;
            let Some(prev_term) = self.log.term(prev_index) else {
                // The entries this follower needs were compacted: send the snapshot.
                let index = self.log.snapshot().index;
                if let Some(pr) = self.progress.get_mut(&peer) {
                    pr.become_snapshot(index);
                }
                self.send_snapshot_chunks(peer);
                return;
            };
            let entries = self.log.slice_bytes(next, self.cfg.max_msg_bytes).to_vec();
            let last = prev_index + entries.len() as Index;
            let bytes: usize = entries.iter().map(Entry::size).sum();
            let Some(pr) = self.progress.get_mut(&peer) else {
                return;
            };
            pr.sent_entries(last, bytes);
            let streaming = pr.state() == ProgressState::Replicate && !entries.is_empty();
            let msg = Message::AppendEntries {
                term: self.hard.term,
                prev_log_index: prev_index,
                prev_log_term: prev_term,
                entries,
                leader_commit: self.commit,
            };
            self.send(peer, msg);
            // While streaming, keep going until the follower has everything or the
            // in-flight window is full.
            if !streaming || last >= self.log.last_index() {
                return;
            }
        }
    }

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        term: Term,
        index: Index,
        reject: Option<RejectHint>,
    ) {
        if self.role != Role::Leader || term != self.hard.term {
            return;
        }
        let last_index = self.log.last_index();
        let hinted_next = match reject {
            None => None,
            Some(hint) => Some(match hint.conflict_term {
                None => hint.last_index.saturating_add(1),
                Some(t) => match self.log.last_index_of_term(t) {
                    Some(i) => i + 1,
                    None => hint.first_index_of_term,
                },
            }),
        };
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        match hinted_next {
            None => {
                if pr.on_append_accepted(index) {
                    self.maybe_commit();
                }
                self.send_append(from, false);
                if self.progress.get(&from).is_some_and(Progress::needs_commit) {
                    self.commit_news = true;
                }
                self.transfer_on_progress(from);
            }
            Some(next) => {
                if pr.on_append_rejected(index, next.min(last_index + 1)) {
                    self.send_append(from, true);
                }
            }
        }
    }

    /// Sends the next chunks of the leader's snapshot to `peer`, as many as its window
    /// allows.
    fn send_snapshot_chunks(&mut self, peer: NodeId) {
        let meta = self.log.snapshot();
        let len = self.snapshot_data.len() as u64;
        let chunk = self.cfg.snapshot_chunk_bytes as u64;
        let (max_msgs, max_bytes) = (self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes);
        loop {
            let Some(pr) = self.progress.get_mut(&peer) else {
                return;
            };
            match pr.state() {
                // A newer snapshot replaces the one being sent: start it from the beginning.
                ProgressState::Snapshot { index, .. } if index == meta.index => {}
                _ => pr.become_snapshot(meta.index),
            }
            let Some((offset, end)) = pr.next_chunk(len, chunk, max_msgs, max_bytes) else {
                return;
            };
            pr.sent_chunk(offset, end);
            let data = self.snapshot_data.slice(offset as usize..end as usize);
            let msg = Message::InstallSnapshot {
                term: self.hard.term,
                meta,
                offset,
                data,
                done: end == len,
            };
            self.send(peer, msg);
        }
    }

    /// Sends a copy of the first chunk `peer` has not confirmed, after a silent interval.
    fn resend_snapshot_chunk(&mut self, peer: NodeId) {
        let meta = self.log.snapshot();
        let len = self.snapshot_data.len() as u64;
        let Some(pr) = self.progress.get(&peer) else {
            return;
        };
        if !matches!(pr.state(), ProgressState::Snapshot { index, .. } if index == meta.index) {
            // The leader compacted again since the transfer began: the old snapshot's
            // offsets mean nothing for the new one, which starts from its first byte.
            self.send_snapshot_chunks(peer);
            return;
        }
        let Some((offset, end)) = pr.resend_chunk(len, self.cfg.snapshot_chunk_bytes as u64) else {
            return;
        };
        let msg = Message::InstallSnapshot {
            term: self.hard.term,
            meta,
            offset,
            data: self.snapshot_data.slice(offset as usize..end as usize),
            done: end == len,
        };
        self.send(peer, msg);
    }

    pub(super) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        offset: u64,
        next_offset: u64,
        installed: bool,
    ) {
        if self.role != Role::Leader || term != self.hard.term {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if installed {
            if pr.on_append_accepted(meta.index) {
                self.maybe_commit();
            }
            self.send_append(from, false);
            return;
        }
        let len = self.snapshot_data.len() as u64;
        match pr.on_chunk_reply(meta.index, offset, next_offset, len) {
            ChunkReply::Stale => {}
            ChunkReply::Accepted | ChunkReply::Rewound => self.send_snapshot_chunks(from),
        }
    }

    /// What the leader's own log counts toward a commit: all of it, or with
    /// `leader_parallel_write` only what its driver reported durable.
    pub(super) fn own_match(&self) -> Index {
        #[cfg(not(raft_bug = "leader-counts-unpersisted"))]
        if self.cfg.leader_parallel_write {
            return self.durable.min(self.log.last_index());
        }
        self.log.last_index()
    }

    pub(super) fn maybe_commit(&mut self) {
        let candidate = self.quorum_matched();
        if candidate <= self.commit {
            return;
        }
        // Figure 8: only an entry of the leader's own term is committed by counting
        // replicas; earlier entries commit with it.
        #[cfg(not(raft_bug = "commit-old-term"))]
        if self.log.term(candidate) != Some(self.hard.term) {
            return;
        }
        // Lease mode: not past a deposed leader's entries while its lease may still run.
        if !self.lease_allows_commit() {
            return;
        }
        #[cfg(raft_bug = "config-on-commit")]
        self.bug_conf_on_commit(self.commit, candidate);
        self.commit = candidate;
        self.reads_on_commit();
        self.conf_on_commit();
    }
}

//! Linearizable reads without the log (ReadIndex, §6.4 of the thesis): the leader's
//! rules, forwarding from followers, and the lazy no-op. The bookkeeping is in
//! [`read_only`](crate::read_only).

use super::RaftCore;
use crate::message::Message;
use crate::read_only::{FailedRead, Origin, PendingRead, ReadFailure, ReadState};
use crate::types::{Index, NodeId, Role, Term};
use crate::CoreError;
use bytes::Bytes;
use rand_core::RngCore;

impl<R: RngCore> RaftCore<R> {
    /// Asks for a linearizable read, identified by `ctx`: any value the caller chooses,
    /// unique among this node's reads, including those of its earlier incarnations whose
    /// answers may still be on the network (a late answer to a forwarded read of a
    /// previous life with the same `ctx` would be taken for this one).
    ///
    /// On the leader, the read is confirmed by the next round of
    /// [`Message::ReadHeartbeat`] acknowledged by a majority, after an entry of the
    /// leader's term has committed (the leader appends an empty no-op entry for that, only
    /// if it has none of its term yet). On a follower that knows its leader, the read is
    /// forwarded to it with [`Message::ReadIndex`]. Either way the outcome comes in a later
    /// [`Ready`](crate::Ready): a [`ReadState`] `(ctx, index)` — answer once the service has
    /// applied `index` — or a [`FailedRead`] (leadership lost, refused, or no answer
    /// within `election_timeout_max` ticks). Fails at once with
    /// [`CoreError::NotLeader`] when no leader is known.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), CoreError> {
        if self.role == Role::Leader {
            self.accept_read(Origin::Local, ctx);
            return Ok(());
        }
        match self.leader {
            Some(leader) if leader != self.id && self.role == Role::Follower => {
                self.reads.forward(ctx, self.read_timeout());
                let term = self.hard.term;
                self.send(leader, Message::ReadIndex { term, ctx });
                Ok(())
            }
            _ => Err(CoreError::NotLeader { leader: None }),
        }
    }

    /// Reads the leader has accepted and not yet confirmed or failed.
    pub fn pending_reads(&self) -> usize {
        self.reads.pending_len()
    }

    fn read_timeout(&self) -> u64 {
        u64::from(self.cfg.election_timeout_max)
    }

    /// True when the commit index is at an entry of the current term: by leader
    /// completeness it then covers every entry committed in earlier terms.
    pub(super) fn term_committed(&self) -> bool {
        self.log.term(self.commit) == Some(self.hard.term)
    }

    fn accept_read(&mut self, origin: Origin, ctx: u64) {
        if let Some(index) = self.own_lease_index() {
            self.answer_read(origin, ctx, index);
            return;
        }
        self.renew_lease();
        // Lazily, and once per term: any entry of this term (a no-op or a client's
        // command) will do, so none is added while one is on its way.
        if !self.term_committed() && self.log.last_term() != self.hard.term {
            self.append_noop();
        }
        let index = self.term_committed().then_some(self.commit);
        #[cfg(raft_bug = "read-before-noop")]
        let index = index.or(Some(self.commit));
        self.reads.push(origin, ctx, index, self.read_timeout());
        self.release_reads();
    }

    pub(super) fn append_noop(&mut self) {
        let entry = self.new_entry(Bytes::new());
        self.append_local(entry);
        self.broadcast_pending = true;
        self.maybe_commit();
    }

    /// Answers the reads confirmed by a majority's acknowledgements.
    pub(super) fn release_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let confirmed = self.confirmed_read_round();
        #[cfg(raft_bug = "read-without-heartbeat")]
        let confirmed = {
            let _ = confirmed;
            u64::MAX
        };
        for (read, index) in self.reads.release(confirmed) {
            self.answer_read(read.origin, read.ctx, index);
        }
    }

    fn answer_read(&mut self, origin: Origin, ctx: u64, index: Index) {
        match origin {
            Origin::Local => self.reads.confirmed.push(ReadState { ctx, index }),
            Origin::Peer(peer) => {
                let term = self.hard.term;
                self.send(
                    peer,
                    Message::ReadIndexResponse {
                        term,
                        ctx,
                        index: Some(index),
                    },
                );
                // Its client waits until it applied through `index`: tell it at once
                // that `index` is committed rather than at the next heartbeat.
                if let Some(pr) = self.progress.get_mut(&peer) {
                    pr.want_commit(index);
                    self.commit_news |= pr.needs_commit();
                }
            }
        }
    }

    /// The commit index moved: once it reaches an entry of this term, reads waiting for
    /// it get their read index.
    pub(super) fn reads_on_commit(&mut self) {
        if self.role == Role::Leader && self.term_committed() {
            self.reads.set_missing_index(self.commit);
            self.release_reads();
        }
    }

    /// Every read in flight fails: this node stops leading, or changes term.
    pub(super) fn fail_reads(&mut self) {
        for read in self.reads.lose_all() {
            self.fail_read(read, ReadFailure::LeadershipLost);
        }
    }

    fn fail_read(&mut self, read: PendingRead, reason: ReadFailure) {
        match read.origin {
            Origin::Local => self.reads.failed.push(FailedRead {
                ctx: read.ctx,
                reason,
            }),
            Origin::Peer(peer) => {
                let term = self.hard.term;
                self.send(
                    peer,
                    Message::ReadIndexResponse {
                        term,
                        ctx: read.ctx,
                        index: None,
                    },
                );
            }
        }
    }

    /// One tick: reads past their deadline fail.
    pub(super) fn reads_tick(&mut self) {
        for read in self.reads.tick() {
            self.fail_read(read, ReadFailure::TimedOut);
        }
    }

    /// Starts a round of read heartbeats if reads wait for one: called once per `Ready`,
    /// so every read asked for since the last round shares this one.
    pub(super) fn start_read_round(&mut self) {
        if self.role != Role::Leader || !self.reads.round_wanted() {
            return;
        }
        let ctx = self.reads.start_round();
        let term = self.hard.term;
        for peer in self.others() {
            self.send(peer, Message::ReadHeartbeat { term, ctx });
        }
        // Alone, the leader is its own majority.
        self.release_reads();
    }

    pub(super) fn on_read_heartbeat(&mut self, from: NodeId, term: Term, ctx: u64) {
        // A heartbeat of an older term is answered in this node's term, which may be the
        // term of a newer leader: echoing its round would let that leader count it as an
        // acknowledgement of its own round with the same number (a leader restarted into a
        // new term numbers its rounds from 1 again). Round 0 confirms nothing.
        let ctx = if term == self.hard.term {
            self.heard_from_leader(from, term);
            ctx
        } else {
            0
        };
        let term = self.hard.term;
        self.send(from, Message::ReadHeartbeatResponse { term, ctx });
    }

    pub(super) fn on_read_heartbeat_response(&mut self, from: NodeId, term: Term, ctx: u64) {
        if self.role != Role::Leader || term != self.hard.term {
            return;
        }
        self.reads.ack(from, ctx);
        self.release_reads();
    }

    pub(super) fn on_read_index(&mut self, from: NodeId, ctx: u64) {
        // A server outside the configuration (removed, perhaps without knowing it yet)
        // will never receive the entries up to the read index: refuse at once rather than
        // leave its client waiting for a state machine that cannot catch up.
        if self.role == Role::Leader && self.membership().contains(from) {
            self.accept_read(Origin::Peer(from), ctx);
            return;
        }
        let term = self.hard.term;
        self.send(
            from,
            Message::ReadIndexResponse {
                term,
                ctx,
                index: None,
            },
        );
    }

    pub(super) fn on_read_index_response(&mut self, ctx: u64, index: Option<Index>) {
        self.reads.answered(ctx, index);
    }
}

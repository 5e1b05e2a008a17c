//! Read-only requests served without writing the log: the bookkeeping of ReadIndex
//! (§6.4 of Ongaro's thesis). The rules that drive it live in `core/reads.rs`.
//!
//! A leader serves a read in four steps: (1) it needs an entry of its own term committed
//! (leader completeness then guarantees its commit index covers every write committed
//! before it took office); (2) it records its commit index as the read index; (3) it
//! confirms, with a round of [`Message::ReadHeartbeat`](crate::Message::ReadHeartbeat)
//! acknowledged by a majority, that no newer leader existed when the read arrived; (4) the
//! service answers once it has applied the read index.
//!
//! Rounds are numbered. Every read waits for the first round started after it was asked
//! for; a round starts at most once per [`Ready`](crate::Ready), so all reads asked for
//! in between share one round of messages. A peer's answer echoes the round number it
//! answers, and an answer to round `s` also confirms every round before `s` (it was sent
//! after they all began).

use crate::types::{Index, NodeId};
use std::collections::{BTreeMap, VecDeque};

/// A read the leader confirmed: the service may answer it once it has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's identifier of the read, as passed to
    /// [`RaftCore::read_index`](crate::RaftCore::read_index).
    pub ctx: u64,
    /// The read index: every write committed before the read was asked for is at or
    /// before it.
    pub index: Index,
}

/// Why a read was given up. A failed read was never answered: the caller may retry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// This node stopped being leader (or, for a forwarded read, changed term or campaign)
    /// before the read was confirmed.
    LeadershipLost,
    /// The node the read was forwarded to is not the leader.
    NotLeader,
    /// No confirmation within an election timeout (`election_timeout_max` ticks): the
    /// leader cannot reach a majority, or the forwarded request or its answer was lost.
    TimedOut,
}

/// A read that will not be answered, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedRead {
    /// The caller's identifier of the read.
    pub ctx: u64,
    /// Why.
    pub reason: ReadFailure,
}

/// Who asked for a read the leader is serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// This node's own caller.
    Local,
    /// A follower that forwarded it.
    Peer(NodeId),
}

/// A read the leader has accepted but not yet confirmed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRead {
    pub(crate) origin: Origin,
    pub(crate) ctx: u64,
    /// The round that must be acknowledged by a majority.
    round: u64,
    /// The read index, once an entry of the leader's term is committed.
    index: Option<Index>,
    /// The tick at which the read is given up.
    deadline: u64,
}

/// A leader's (or a forwarding follower's) reads in flight.
#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    /// Ticks seen, for deadlines.
    now: u64,
    /// The last round started. Never reset, so an echo from an earlier term can never
    /// pass for a new round (answers of another term are ignored anyway).
    round: u64,
    /// Reads wait for a round that has not started yet.
    round_wanted: bool,
    /// Highest round each peer acknowledged in the current term.
    acks: BTreeMap<NodeId, u64>,
    /// Reads on the leader, in the order asked (so rounds never decrease along it).
    pending: VecDeque<PendingRead>,
    /// Reads this follower forwarded to the leader: ctx -> deadline.
    forwarded: BTreeMap<u64, u64>,
    /// Output for the next Ready.
    pub(crate) confirmed: Vec<ReadState>,
    pub(crate) failed: Vec<FailedRead>,
}

impl ReadOnly {
    /// One tick passed; returns the reads whose deadline passed (forwarded ones are
    /// failed directly into the output).
    pub(crate) fn tick(&mut self) -> Vec<PendingRead> {
        self.now += 1;
        let now = self.now;
        let expired: Vec<u64> = self
            .forwarded
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(c, _)| *c)
            .collect();
        for ctx in expired {
            self.forwarded.remove(&ctx);
            self.failed.push(FailedRead {
                ctx,
                reason: ReadFailure::TimedOut,
            });
        }
        let (gone, kept): (VecDeque<_>, VecDeque<_>) =
            self.pending.drain(..).partition(|r| r.deadline <= now);
        self.pending = kept;
        gone.into_iter().collect()
    }

    /// The leader accepts a read; it waits for the next round to start.
    pub(crate) fn push(&mut self, origin: Origin, ctx: u64, index: Option<Index>, timeout: u64) {
        self.round_wanted = true;
        self.pending.push_back(PendingRead {
            origin,
            ctx,
            round: self.round + 1,
            index,
            deadline: self.now + timeout,
        });
    }

    /// A follower forwarded a read to its leader.
    pub(crate) fn forward(&mut self, ctx: u64, timeout: u64) {
        self.forwarded.insert(ctx, self.now + timeout);
    }

    /// The leader answered a forwarded read (`None`: it refused). An answer for a read
    /// not forwarded, or already answered (a duplicate), is ignored.
    pub(crate) fn answered(&mut self, ctx: u64, index: Option<Index>) {
        if self.forwarded.remove(&ctx).is_none() {
            return;
        }
        match index {
            Some(index) => self.confirmed.push(ReadState { ctx, index }),
            None => self.failed.push(FailedRead {
                ctx,
                reason: ReadFailure::NotLeader,
            }),
        }
    }

    /// True when some read waits for a round to be started.
    pub(crate) fn round_wanted(&self) -> bool {
        self.round_wanted
    }

    /// Asks for another round when reads wait for confirmation (the previous round's
    /// messages may have been lost).
    pub(crate) fn retry_round(&mut self) {
        if !self.pending.is_empty() {
            self.round_wanted = true;
        }
    }

    /// Starts a round; returns its number, to be sent to every peer.
    pub(crate) fn start_round(&mut self) -> u64 {
        self.round_wanted = false;
        self.round += 1;
        self.round
    }

    /// `peer` acknowledged round `round` in the current term.
    pub(crate) fn ack(&mut self, peer: NodeId, round: u64) {
        let a = self.acks.entry(peer).or_default();
        *a = (*a).max(round);
    }

    /// The highest round acknowledged by a majority of `peers` (this node, `me`, counts as
    /// having acknowledged every round it started).
    #[cfg(test)]
    pub(crate) fn confirmed_round(&self, me: NodeId, peers: &[NodeId]) -> u64 {
        let acked: Vec<u64> = peers
            .iter()
            .map(|p| {
                if *p == me {
                    self.round
                } else {
                    self.acks.get(p).copied().unwrap_or(0)
                }
            })
            .collect();
        crate::quorum::committed_index(acked)
    }

    /// The last round `peer` acknowledged (the leader's own, `me`, is the current one).
    pub(crate) fn acked_round(&self, me: NodeId, peer: NodeId) -> u64 {
        if peer == me {
            self.round
        } else {
            self.acks.get(&peer).copied().unwrap_or(0)
        }
    }

    /// An entry of the leader's term is committed at `commit`: reads without a read index
    /// take it.
    pub(crate) fn set_missing_index(&mut self, commit: Index) {
        for r in self.pending.iter_mut().filter(|r| r.index.is_none()) {
            r.index = Some(commit);
        }
    }

    /// Removes and returns the reads confirmed by round `confirmed` that have a read
    /// index, oldest first.
    pub(crate) fn release(&mut self, confirmed: u64) -> Vec<(PendingRead, Index)> {
        let mut out = Vec::new();
        while let Some(r) = self.pending.front().copied() {
            let Some(index) = r.index.filter(|_| r.round <= confirmed) else {
                break;
            };
            self.pending.pop_front();
            out.push((r, index));
        }
        out
    }

    /// Leadership (or the term) is lost: every read in flight is handed back — the leader's
    /// to be failed by the caller, the forwarded ones failed here — and the
    /// acknowledgements forgotten.
    pub(crate) fn lose_all(&mut self) -> Vec<PendingRead> {
        self.acks.clear();
        self.round_wanted = false;
        for ctx in std::mem::take(&mut self.forwarded).into_keys() {
            self.failed.push(FailedRead {
                ctx,
                reason: ReadFailure::LeadershipLost,
            });
        }
        self.pending.drain(..).collect()
    }

    /// True when confirmed or failed reads wait to be handed over.
    pub(crate) fn has_output(&self) -> bool {
        !self.confirmed.is_empty() || !self.failed.is_empty()
    }

    /// Reads the leader has accepted and not yet answered.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_confirms_only_reads_asked_before_it() {
        let mut ro = ReadOnly::default();
        ro.push(Origin::Local, 1, Some(5), 100);
        let r1 = ro.start_round();
        ro.push(Origin::Local, 2, Some(6), 100);
        ro.ack(2, r1);
        let done = ro.release(ro.confirmed_round(1, &[1, 2, 3]));
        assert_eq!(done.len(), 1);
        assert_eq!((done[0].0.ctx, done[0].1), (1, 5));
        // Read 2 waits for round 2, which has not even started.
        assert!(ro.release(ro.confirmed_round(1, &[1, 2, 3])).is_empty());
        let r2 = ro.start_round();
        ro.ack(3, r2);
        assert_eq!(ro.release(ro.confirmed_round(1, &[1, 2, 3])).len(), 1);
    }

    #[test]
    fn no_index_no_answer_and_expiry() {
        let mut ro = ReadOnly::default();
        ro.push(Origin::Peer(2), 9, None, 2);
        let r = ro.start_round();
        ro.ack(2, r);
        assert!(ro.release(ro.confirmed_round(1, &[1, 2, 3])).is_empty());
        ro.set_missing_index(4);
        assert_eq!(ro.release(ro.confirmed_round(1, &[1, 2, 3]))[0].1, 4);
        ro.push(Origin::Local, 10, Some(4), 2);
        assert!(ro.tick().is_empty());
        assert_eq!(ro.tick().len(), 1);
        assert_eq!(ro.pending_len(), 0);
    }

    #[test]
    fn forwarded_reads_are_answered_once() {
        let mut ro = ReadOnly::default();
        ro.forward(3, 10);
        ro.answered(3, Some(7));
        ro.answered(3, Some(7));
        ro.answered(4, Some(7));
        assert_eq!(ro.confirmed, vec![ReadState { ctx: 3, index: 7 }]);
        ro.forward(5, 10);
        assert!(ro.lose_all().is_empty());
        assert_eq!(ro.failed[0].reason, ReadFailure::LeadershipLost);
    }
}

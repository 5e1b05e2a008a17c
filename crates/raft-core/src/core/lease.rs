//! Lease reads, LeaseGuard style ("the log is the lease"; Davis, Demirbas et al.,
//! SIGMOD 2026): the rules that read the driver's clock.
//!
//! - The leader stamps every entry it creates with its clock.
//! - Committing an entry of its own term gives the leader a lease until the entry's
//!   timestamp + `duration`. Its clock may be `uncertainty` off true time in either
//!   direction, and so may the clock of whoever comes next, so it serves lease reads only
//!   while `now < timestamp + duration - uncertainty` (true time is then before
//!   `timestamp + duration`).
//! - A new leader accepts and replicates writes at once but does not advance its commit
//!   index past entries of earlier terms until `now > max timestamp of those entries +
//!   duration + uncertainty` (true time is then after every earlier lease's end): no
//!   write of its term becomes visible while a deposed leader may still serve reads.
//! - Meanwhile it may serve *inherited* lease reads, answered at its commit index, for
//!   keys that no entry of the limbo range (entries of earlier terms after its commit
//!   index, committed or not) touches: the service decides that per key.
//!
//! No extra messages and no change to voting: the lease travels in the entries.

use super::RaftCore;
use crate::config::ReadMode;
use crate::types::{Entry, EntryKind, Index, Role, Term};
use rand_core::RngCore;

/// What a leader may answer at once under its lease (see [`RaftCore::lease_read`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRead {
    /// The read index: answer once the service has applied it.
    pub index: Index,
    /// `Some((first, last))` for an inherited lease: the limbo range, entries of earlier
    /// terms after the commit index. Only a read of a key none of these entries touches
    /// may be answered at `index`; the others must go through
    /// [`read_index`](RaftCore::read_index). `None`: the leader's own lease covers every key.
    pub limbo: Option<(Index, Index)>,
}

/// The clock and the new leader's deferral, computed once per term.
#[derive(Debug, Default)]
pub(super) struct LeaseState {
    /// The driver's last clock reading.
    now: u64,
    /// For the term it was computed in (as leader): the last index of an earlier term
    /// and the clock reading after which commit may pass it.
    inherited: Option<Inherited>,
}

#[derive(Clone, Copy, Debug)]
struct Inherited {
    term: Term,
    last_prior: Index,
    /// `None` when no earlier term left an entry (a first leader): nothing to wait for.
    commit_after: Option<u64>,
}

impl<R: RngCore> RaftCore<R> {
    /// The driver's clock reading, in the unit of [`ReadMode::Lease`]'s fields. Only lease
    /// reads use it; the core never reads a clock itself. Call it before
    /// [`tick`](Self::tick), [`propose`](Self::propose) and reads (the runtime and the
    /// simulator do it before every input). A new leader whose deferred commit has now
    /// expired commits at once.
    pub fn set_time(&mut self, now: u64) {
        self.lease.now = now;
        if self.role == Role::Leader && self.lease_params().is_some() {
            self.compute_inherited();
            if self.commit < self.log.last_index() {
                self.maybe_commit();
            }
        }
    }

    /// The last clock reading passed to [`set_time`](Self::set_time).
    pub fn now(&self) -> u64 {
        self.lease.now
    }

    /// The timestamp for an entry this leader creates: its clock in lease mode, 0 otherwise.
    pub(super) fn stamp(&self) -> u64 {
        match self.cfg.read_mode {
            ReadMode::Lease { .. } => self.lease.now,
            ReadMode::ReadIndex => 0,
        }
    }

    /// A new command or no-op entry of this leader's term, stamped.
    pub(super) fn new_entry(&self, data: bytes::Bytes) -> Entry {
        let mut e = Entry::new(self.hard.term, self.log.last_index() + 1, data);
        e.timestamp = self.stamp();
        e
    }

    /// `(duration, uncertainty)` in lease mode.
    fn lease_params(&self) -> Option<(u64, u64)> {
        match self.cfg.read_mode {
            ReadMode::Lease {
                duration,
                uncertainty,
                ..
            } => {
                #[cfg(raft_bug = "lease-ignores-uncertainty")]
                let uncertainty = {
                    let _ = uncertainty;
                    0
                };
                Some((duration, uncertainty))
            }
            ReadMode::ReadIndex => None,
        }
    }

    /// Once per term, as leader: where the entries of earlier terms end, and when every
    /// lease they may have granted has expired. In lease mode the driver calls
    /// [`set_time`](Self::set_time) before every input, so this runs before the new leader
    /// first tries to commit (the commit gate computes it otherwise).
    fn compute_inherited(&mut self) {
        let Some((duration, uncertainty)) = self.lease_params() else {
            return;
        };
        let term = self.hard.term;
        if self.role != Role::Leader || self.lease.inherited.is_some_and(|i| i.term == term) {
            return;
        }
        // A leader never truncates its log, so its earlier terms' entries stay as they are.
        let mut last_prior = self.log.last_index();
        while last_prior > self.log.snapshot().index && self.log.term(last_prior) == Some(term) {
            last_prior -= 1;
        }
        let first = self.log.snapshot().index + 1;
        let held = self.log.slice(first, last_prior);
        let mut max_ts = held.iter().map(|e| e.timestamp).max().unwrap_or(0);
        if self.log.snapshot().index > 0 {
            // Compacted entries' timestamps are gone. Entries are created in log order in
            // true time, and a timestamp is within `uncertainty` of its creation time, so
            // theirs are at most the first held entry's + 2 * uncertainty (or, with none
            // held, this clock's reading now + 2 * uncertainty).
            let base = held.first().map_or(self.lease.now, |e| e.timestamp);
            max_ts = max_ts.max(base.saturating_add(2 * uncertainty));
        }
        let commit_after =
            (last_prior > 0).then(|| max_ts.saturating_add(duration).saturating_add(uncertainty));
        self.lease.inherited = Some(Inherited {
            term,
            last_prior,
            commit_after,
        });
    }

    /// The commit gate: false while advancing the commit index would pass entries of an
    /// earlier term whose leader may still hold a lease (any advance does: a leader only
    /// commits by counting replicas of an entry of its own term, after all of those).
    pub(super) fn lease_allows_commit(&mut self) -> bool {
        if self.lease_params().is_none() {
            return true;
        }
        #[cfg(raft_bug = "no-deferred-commit")]
        return true;
        #[allow(unreachable_code)]
        {
            self.compute_inherited();
            // Even with every earlier entry known committed (no limbo), the deposed
            // leader may still serve reads under the lease of its last entry: no entry of
            // this term may become visible before that lease ends.
            match self.lease.inherited {
                Some(i) if i.term == self.hard.term => {
                    i.commit_after.is_none_or(|after| self.lease.now > after)
                }
                _ => true,
            }
        }
    }

    /// The limbo range of a leader in lease mode: entries of earlier terms after its commit
    /// index, `(first, last)`, or `None` when there are none (or this is not known yet:
    /// the driver has not called [`set_time`](Self::set_time) since this node became leader).
    pub fn limbo(&self) -> Option<(Index, Index)> {
        let i = self.lease.inherited?;
        (self.role == Role::Leader && i.term == self.hard.term && self.commit < i.last_prior)
            .then_some((self.commit + 1, i.last_prior))
    }

    /// The entries of the [`limbo`](Self::limbo) range, for a service that must find out
    /// which keys they touch (empty when there is no limbo range).
    pub fn limbo_entries(&self) -> &[Entry] {
        match self.limbo() {
            Some((first, last)) => self.log.slice(first, last),
            None => &[],
        }
    }

    /// What the leader may answer at once, under its clock reading (see
    /// [`set_time`](Self::set_time)): `None` when it holds no valid lease (not leader, not
    /// in lease mode, the lease expired, or no lease-granting entry is committed); then
    /// reads go through [`read_index`](Self::read_index).
    ///
    /// The lease comes from the entry at the commit index: of this leader's term, its own
    /// lease (every key); of an earlier term, the lease it inherits from that entry's
    /// leader (keys outside the limbo range only).
    pub fn lease_read(&self) -> Option<LeaseRead> {
        let (duration, uncertainty) = self.lease_params()?;
        if self.role != Role::Leader {
            return None;
        }
        let entry = self.log.entry(self.commit)?;
        let end = entry
            .timestamp
            .saturating_add(duration)
            .saturating_sub(uncertainty);
        if self.lease.now >= end {
            return None;
        }
        if entry.term == self.hard.term {
            return Some(LeaseRead {
                index: self.commit,
                limbo: None,
            });
        }
        // Inherited: only once the limbo range is known.
        let i = self.lease.inherited.filter(|i| i.term == self.hard.term)?;
        Some(LeaseRead {
            index: self.commit,
            limbo: (self.commit < i.last_prior).then_some((self.commit + 1, i.last_prior)),
        })
    }

    /// The index at which the leader may answer at once a read that depends only on what
    /// `touches` names (a key, a range), under its own lease or an inherited one; `None`
    /// when no lease covers it (then the read goes through
    /// [`read_index`](Self::read_index)). `touches` gets the payload of every command in
    /// the [`limbo`](Self::limbo) range: one that touches what the read depends on may
    /// still commit or vanish, so the read cannot be answered from before it.
    pub fn lease_read_for(&self, touches: impl Fn(&[u8]) -> bool) -> Option<Index> {
        let lease = self.lease_read()?;
        // The planted bug skips the check: an inherited read of a key in limbo.
        let touched = !cfg!(raft_bug = "inherited-read-in-limbo")
            && self
                .limbo_entries()
                .iter()
                .any(|e| e.kind == EntryKind::Command && !e.data.is_empty() && touches(&e.data));
        (!touched).then_some(lease.index)
    }

    /// The read index under this leader's own lease, for a read of any key.
    pub(super) fn own_lease_index(&self) -> Option<Index> {
        // An inherited lease with an empty limbo range covers every key too: the deposed
        // leader cannot commit anything this leader's commit index does not cover.
        self.lease_read()
            .filter(|l| l.limbo.is_none())
            .map(|l| l.index)
    }

    /// In lease mode, a read that found no valid lease appends a no-op to renew it, unless
    /// an entry of this term is already on its way to commit.
    pub(super) fn renew_lease(&mut self) {
        if self.lease_params().is_some()
            && self.term_committed()
            && self.log.last_index() == self.commit
        {
            self.append_noop();
        }
    }
}

//! The apply task: applies committed entries and snapshots to the store, answers the
//! proposals, feeds the watchers, takes snapshots, and on schedule checks leadership and
//! expires the leases that ran out.

use std::sync::Arc;

use etcd_api::store::{Command, CommandOutput, Store};
use etcd_api::watch_hub::WatchHub;
use etcd_api::EtcdError;
use raft::{ApplyMsg, Index};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::codec::{self, Entry, Record};
use super::{EtcdNode, Inner, State, WATCH_QUEUE};

/// At most this many apply messages between two snapshot decisions.
const APPLY_BATCH: usize = 256;

/// Runs until the node is killed or its Raft peer goes away.
pub(super) async fn apply_loop(inner: Arc<Inner>, mut rx: mpsc::Receiver<ApplyMsg>) {
    let mut last_snapshot: Index = 0;
    let every = inner.config.tick;
    let mut next_tick = Instant::now() + every;
    loop {
        // Driven by time, not by an idle channel: a busy apply channel cannot delay it.
        let now = Instant::now();
        if now >= next_tick {
            tick(&inner).await;
            next_tick = now + every;
        }
        tokio::select! {
            biased;
            _ = inner.stop.notified() => break,
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let mut ok = apply_one(&inner, msg);
                let mut n = 1;
                while ok && n < APPLY_BATCH {
                    let Ok(msg) = rx.try_recv() else { break };
                    ok = apply_one(&inner, msg);
                    n += 1;
                }
                if !ok {
                    // The state could not be loaded: this replica must not go on.
                    EtcdNode { inner: inner.clone() }.kill();
                    break;
                }
                let applied = inner.lock().stats.last_applied;
                inner.applied.send_replace(applied);
                maybe_snapshot(&inner, &mut last_snapshot).await;
            }
            _ = tokio::time::sleep_until(next_tick) => {}
        }
    }
    inner.lock().answer(|_, _| Some(Err(EtcdError::Stopped)));
}

/// Applies one message; false if a snapshot could not be decoded.
fn apply_one(inner: &Inner, msg: ApplyMsg) -> bool {
    match msg {
        ApplyMsg::Command { index, command, .. } => {
            let mut st = inner.lock();
            if index <= st.stats.last_applied {
                return true;
            }
            st.stats.last_applied = index;
            match codec::decode_record(&command) {
                Ok(Record::Command(entry)) => apply_entry(inner, &mut st, index, entry),
                Ok(Record::Member(change)) => {
                    let changed = st.members.apply(&change);
                    lost_places(&mut st, index);
                    if changed {
                        drop(st);
                        inner.addresses_changed();
                    }
                }
                Err(e) => {
                    // Every replica skips it alike, so the stores stay equal.
                    tracing::error!(node = inner.me, index, error = %e, "undecodable entry skipped");
                    lost_places(&mut st, index);
                }
            }
            true
        }
        // A configuration entry (the core applies it itself): the members it no longer
        // holds leave the member table; nothing for the store, but the index is taken.
        ApplyMsg::Config {
            index, membership, ..
        } => {
            let mut st = inner.lock();
            if index > st.stats.last_applied {
                st.stats.last_applied = index;
                lost_places(&mut st, index);
                if st.members.apply_config(&membership) {
                    drop(st);
                    inner.addresses_changed();
                }
            }
            true
        }
        // The leader's no-op: nothing for the store, but the index is taken.
        ApplyMsg::NoOp { index, .. } => {
            let mut st = inner.lock();
            if index > st.stats.last_applied {
                st.stats.last_applied = index;
                lost_places(&mut st, index);
            }
            true
        }
        ApplyMsg::Snapshot { index, data, .. } => {
            let mut st = inner.lock();
            if index <= st.stats.last_applied {
                return true;
            }
            match codec::decode_snapshot(&data) {
                Ok((store, members)) => {
                    install(&mut st, store);
                    st.members = members;
                    st.stats.last_applied = index;
                    st.stats.snapshots_installed += 1;
                    // A proposal placed at or before the snapshot may or may not be in it.
                    st.answer(|_, w| {
                        w.placed
                            .is_some_and(|(i, _)| i <= index)
                            .then_some(Err(EtcdError::NoLeader))
                    });
                    drop(st);
                    inner.addresses_changed();
                    true
                }
                Err(e) => {
                    tracing::error!(node = inner.me, index, error = %e, "cannot load snapshot; stopping");
                    false
                }
            }
        }
    }
}

/// Applies one decoded entry: the store, its watchers, the lease clock, its proposal.
fn apply_entry(inner: &Inner, st: &mut State, index: Index, entry: Entry) {
    let applied = st.store.apply(&entry.command);
    if let Some(group) = &applied.events {
        st.hub.publish(group);
    }
    if let Some((_, clock)) = st.leases.as_mut() {
        match (&entry.command, &applied.output) {
            (_, Ok(CommandOutput::LeaseGrant { id, ttl })) => {
                clock.renew(*id, *ttl, Instant::now())
            }
            (Command::LeaseRevoke { id } | Command::LeaseExpire { id }, _) => clock.remove(*id),
            _ => {}
        }
    }
    if entry.origin == inner.incarnation {
        if let Some(w) = st.waiters.remove(&entry.seq) {
            let _ = w.tx.send(Ok(applied));
        }
    }
    lost_places(st, index);
}

/// Answers "no leader" to the proposals placed at or before `index` that are still
/// waiting: another entry took their place.
fn lost_places(st: &mut State, index: Index) {
    st.answer(|_, w| {
        w.placed
            .is_some_and(|(i, _)| i <= index)
            .then_some(Err(EtcdError::NoLeader))
    });
}

/// Replaces the store with a snapshot's, feeding the watchers the revisions in between
/// from the snapshot's history, or closing their feeds when it no longer has them (they
/// re-subscribe and get etcd's "compacted").
fn install(st: &mut State, store: Store) {
    let from = st.store.revision() + 1;
    match store.history_from(from) {
        Ok(groups) => {
            for g in groups.iter().filter(|g| g.revision >= from) {
                st.hub.publish(g);
            }
        }
        Err(_) => st.hub = WatchHub::new(WATCH_QUEUE),
    }
    st.store = store;
    // A leader does not install snapshots, but if it did its deadlines would be stale.
    st.leases = None;
}

/// Fails the proposals of a lost term or leadership, and (on the leader) proposes the
/// expiry of every lease that ran out.
async fn tick(inner: &Inner) {
    let (term, leader) = inner.raft.state();
    let due = {
        let mut st = inner.lock();
        st.answer(|_, w| {
            w.placed
                .is_some_and(|(_, t)| !leader || t != term)
                .then_some(Err(EtcdError::NoLeader))
        });
        match st.clock(term, leader) {
            Some(clock) => {
                let due = clock.expired(Instant::now());
                for id in &due {
                    clock.remove(*id);
                }
                due
            }
            None => Vec::new(),
        }
    };
    for id in due {
        let entry = Entry {
            origin: 0,
            seq: 0,
            command: Command::LeaseExpire { id },
        };
        let proposed = match codec::encode(&entry) {
            Ok(bytes) => inner.raft.start(bytes.into()).await.is_ok(),
            Err(_) => false,
        };
        let mut st = inner.lock();
        if proposed {
            st.stats.leases_expired += 1;
        } else if let Some(clock) = st.clock(term, leader) {
            // Not proposed (busy, or no longer leader): try again at the next tick.
            clock.renew(id, 0, Instant::now());
        }
    }
}

/// Snapshots when the persisted Raft state has reached `max_log_size`, or every
/// `snapshot_interval` entries.
async fn maybe_snapshot(inner: &Inner, last_snapshot: &mut Index) {
    let applied = inner.lock().stats.last_applied;
    let size = inner.raft.raft_state_size();
    if !inner
        .config
        .raft
        .snapshot_due(size, applied, *last_snapshot)
    {
        return;
    }
    // The index and the store are read together: the snapshot covers exactly `index`.
    let (index, data) = {
        let st = inner.lock();
        (
            st.stats.last_applied,
            codec::encode_snapshot(&st.store, &st.members),
        )
    };
    let data = match data {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(node = inner.me, error = %e, "cannot encode snapshot");
            return;
        }
    };
    match inner.raft.snapshot(index, data.into()).await {
        Ok(()) => {
            *last_snapshot = index;
            inner.lock().stats.snapshots_taken += 1;
        }
        Err(e) => tracing::debug!(node = inner.me, error = %e, "snapshot refused"),
    }
}

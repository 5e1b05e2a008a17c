//! Log compaction and InstallSnapshot, rule by rule.

use bytes::Bytes;
use raft_core::{
    CoreConfig, CoreError, Entry, HardState, Message, RaftCore, RestoredState, Role, Snapshot,
    SnapshotMeta,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

type Core = RaftCore<ChaCha8Rng>;

fn entry(index: u64, term: u64) -> Entry {
    Entry::new(term, index, Bytes::from(format!("{index}@{term}")))
}

fn cfg(chunk: usize) -> CoreConfig {
    CoreConfig {
        snapshot_chunk_bytes: chunk,
        // Classic elections (one RequestVote round): snapshots are under test here.
        pre_vote: false,
        check_quorum: false,
        ..CoreConfig::default()
    }
}

fn follower(log: Vec<Entry>) -> Core {
    let restored = RestoredState {
        hard_state: HardState {
            term: 2,
            vote: None,
        },
        entries: log,
        ..Default::default()
    };
    RaftCore::new(
        2,
        &[1, 2, 3],
        cfg(4),
        restored,
        ChaCha8Rng::seed_from_u64(2),
    )
    .expect("core")
}

/// A leader of term 3 whose log 1..=10 is committed and compacted through 8.
fn compacted_leader() -> Core {
    let log = (1..=10).map(|i| entry(i, 1)).collect();
    let restored = RestoredState {
        hard_state: HardState {
            term: 2,
            vote: None,
        },
        entries: log,
        ..Default::default()
    };
    let mut c = RaftCore::new(
        1,
        &[1, 2, 3],
        cfg(4),
        restored,
        ChaCha8Rng::seed_from_u64(1),
    )
    .expect("core");
    while c.role() == Role::Follower {
        c.tick();
    }
    c.take_ready();
    c.step(
        2,
        Message::RequestVoteResponse {
            term: 3,
            granted: true,
        },
    )
    .expect("step");
    assert!(c.is_leader());
    c.take_ready();
    // Follower 3 confirms everything, which commits entry 11 below, and with it 1..=10.
    let (index, _) = c.propose(Bytes::from_static(b"11")).expect("leader");
    c.step(
        3,
        Message::AppendEntriesResponse {
            term: 3,
            index,
            reject: None,
        },
    )
    .expect("step");
    c.take_ready();
    c.compact(8, Bytes::from_static(b"SNAPSHOT-THROUGH-8"))
        .expect("compact");
    c
}

fn chunk(data: &'static [u8], offset: u64, done: bool) -> Message {
    Message::InstallSnapshot {
        term: 3,
        meta: SnapshotMeta { index: 8, term: 1 },
        offset,
        data: Bytes::from_static(data),
        done,
    }
}

fn only_response(c: &mut Core) -> Message {
    let ready = c.take_ready();
    assert_eq!(ready.messages.len(), 1, "{:?}", ready.messages);
    ready.messages[0].msg.clone()
}

#[test]
fn compaction_discards_prefix_keeps_term_and_persists_snapshot() {
    let mut c = compacted_leader();
    assert_eq!(c.log().first_index(), 9);
    assert_eq!(c.log().term(8), Some(1));
    assert_eq!(c.log().term(7), None);
    let ready = c.take_ready();
    let snap = ready.snapshot.expect("snapshot to persist");
    assert_eq!(snap.meta, SnapshotMeta { index: 8, term: 1 });
    assert!(
        ready.restore.is_none(),
        "the service already has its own snapshot"
    );
    // A stale snapshot changes nothing; one past what was applied is refused.
    c.compact(5, Bytes::new()).expect("stale is fine");
    assert!(c.take_ready().snapshot.is_none());
    assert!(matches!(
        c.compact(99, Bytes::new()),
        Err(CoreError::SnapshotBeyondApplied { .. })
    ));
}

#[test]
fn leader_sends_snapshot_in_chunks_to_a_follower_behind_it() {
    let mut c = compacted_leader();
    c.take_ready();
    // Follower 2 is far behind: it rejects with an empty log.
    let hint = raft_core::RejectHint {
        conflict_term: None,
        first_index_of_term: 0,
        last_index: 0,
    };
    c.step(
        2,
        Message::AppendEntriesResponse {
            term: 3,
            index: 10,
            reject: Some(hint),
        },
    )
    .expect("step");
    // Chunks stream within the in-flight window (64 messages by default): answer each
    // in order, and the next ones follow until the last is installed.
    let mut received = Vec::new();
    let mut in_flight = Vec::new();
    let mut rounds = 0;
    let mut installed = false;
    while !installed {
        rounds += 1;
        assert!(rounds < 20, "snapshot transfer does not finish");
        let ready = c.take_ready();
        in_flight.extend(ready.messages.into_iter().filter(|m| m.to == 2));
        assert!(!in_flight.is_empty(), "no message to the follower");
        let msg = in_flight.remove(0);
        let Message::InstallSnapshot {
            meta,
            offset,
            data,
            done,
            ..
        } = msg.msg
        else {
            panic!("expected a snapshot chunk, got {:?}", msg.msg)
        };
        assert_eq!(offset as usize, received.len(), "chunks go out in order");
        assert!(data.len() <= 4, "chunks respect the configured size");
        received.extend_from_slice(&data);
        let next_offset = received.len() as u64;
        c.step(
            2,
            Message::InstallSnapshotResponse {
                term: 3,
                meta,
                offset,
                next_offset,
                installed: done,
            },
        )
        .expect("step");
        installed = done;
    }
    assert!(in_flight.is_empty(), "nothing sent past the last chunk");
    // The bytes sent are the service's, after the configuration the core wraps them with.
    assert!(received.ends_with(b"SNAPSHOT-THROUGH-8"));
    let pr = c.progress(2).expect("progress");
    assert_eq!(pr.matched(), 8);
    // Once installed, the follower gets the entries after the snapshot.
    let ready = c.take_ready();
    assert!(ready.messages.iter().any(|m| m.to == 2
        && matches!(&m.msg, Message::AppendEntries { prev_log_index: 8, entries, .. } if entries.len() == 3)));
}

#[test]
fn follower_resumes_after_a_lost_chunk_and_installs() {
    let mut f = follower(vec![entry(1, 1)]);
    f.step(1, chunk(b"SNAP", 0, false)).expect("step");
    assert!(matches!(
        only_response(&mut f),
        Message::InstallSnapshotResponse {
            next_offset: 4,
            installed: false,
            ..
        }
    ));
    // The chunk at offset 4 is lost; the one at 8 arrives: the follower asks for 4 again.
    f.step(1, chunk(b"HOT-", 8, false)).expect("step");
    assert!(matches!(
        only_response(&mut f),
        Message::InstallSnapshotResponse {
            next_offset: 4,
            installed: false,
            ..
        }
    ));
    f.step(1, chunk(b"SHOT", 4, false)).expect("step");
    only_response(&mut f);
    f.step(1, chunk(b"!", 8, true)).expect("step");
    let ready = f.take_ready();
    assert!(matches!(
        ready.messages[0].msg,
        Message::InstallSnapshotResponse {
            installed: true,
            ..
        }
    ));
    let expected = Snapshot {
        meta: SnapshotMeta { index: 8, term: 1 },
        data: Bytes::from_static(b"SNAPSHOT!"),
    };
    assert_eq!(ready.snapshot.as_ref(), Some(&expected), "persisted");
    assert_eq!(
        ready.restore.as_ref(),
        Some(&expected),
        "handed to the service"
    );
    assert!(
        ready.committed.is_empty(),
        "nothing before the snapshot is applied"
    );
    assert_eq!(f.commit_index(), 8);
    assert_eq!(f.log().last_index(), 8);
    assert_eq!(
        ready.truncate_from,
        Some(9),
        "the disagreeing old log is dropped from storage"
    );
}

#[test]
fn install_keeps_entries_that_agree_with_the_snapshot() {
    let log = (1..=10).map(|i| entry(i, 1)).collect();
    let mut f = follower(log);
    f.step(1, chunk(b"S", 0, true)).expect("step");
    let ready = f.take_ready();
    assert_eq!(f.log().first_index(), 9);
    assert_eq!(f.log().last_index(), 10);
    assert_eq!(ready.truncate_from, None);
    assert!(ready.restore.is_some());
}

#[test]
fn stale_snapshot_never_rolls_back() {
    let log = (1..=10).map(|i| entry(i, 1)).collect();
    let mut f = follower(log);
    // The follower learns that 10 is committed.
    f.step(
        1,
        Message::AppendEntries {
            term: 3,
            prev_log_index: 10,
            prev_log_term: 1,
            entries: vec![],
            leader_commit: 10,
        },
    )
    .expect("step");
    assert_eq!(f.take_ready().committed.len(), 10);
    f.step(1, chunk(b"OLD", 0, true)).expect("step");
    let ready = f.take_ready();
    assert!(ready.restore.is_none() && ready.snapshot.is_none());
    assert!(matches!(
        ready.messages[0].msg,
        Message::InstallSnapshotResponse {
            installed: true,
            ..
        }
    ));
    assert_eq!(f.log().last_index(), 10);
}

/// A delayed chunk of an older snapshot, one the follower's commit index already covers,
/// arrives in the middle of a newer transfer: it is acknowledged and ignored, and the
/// newer transfer goes on where it was (found by the simulator: the follower dropped the
/// newer transfer and asked for byte 0 again, once per chunk in flight).
#[test]
fn stale_chunk_does_not_cut_short_a_newer_transfer() {
    let mut f = follower(vec![entry(1, 1), entry(2, 1)]);
    f.step(
        1,
        Message::AppendEntries {
            term: 3,
            prev_log_index: 2,
            prev_log_term: 1,
            entries: vec![],
            leader_commit: 2,
        },
    )
    .expect("step");
    f.take_ready();
    let newer = |data: &'static [u8], offset: u64, done: bool| Message::InstallSnapshot {
        term: 3,
        meta: SnapshotMeta { index: 8, term: 1 },
        offset,
        data: Bytes::from_static(data),
        done,
    };
    f.step(1, newer(b"SNAP", 0, false)).expect("step");
    only_response(&mut f);
    // A chunk of a snapshot through 2, long delayed in the network.
    f.step(
        1,
        Message::InstallSnapshot {
            term: 3,
            meta: SnapshotMeta { index: 2, term: 1 },
            offset: 4,
            data: Bytes::from_static(b"old!"),
            done: false,
        },
    )
    .expect("step");
    only_response(&mut f);
    f.step(1, newer(b"SHOT", 4, true)).expect("step");
    let ready = f.take_ready();
    assert!(
        matches!(
            ready.messages[0].msg,
            Message::InstallSnapshotResponse {
                installed: true,
                next_offset: 8,
                ..
            }
        ),
        "{:?}",
        ready.messages
    );
    assert_eq!(
        ready.restore.map(|s| s.data),
        Some(Bytes::from_static(b"SNAPSHOT"))
    );
    assert_eq!(f.commit_index(), 8);
}

#[test]
fn restart_hands_the_snapshot_over_first_then_later_entries() {
    let restored = RestoredState {
        hard_state: HardState {
            term: 2,
            vote: None,
        },
        snapshot: SnapshotMeta { index: 5, term: 1 },
        snapshot_data: Bytes::from_static(b"five"),
        entries: vec![entry(6, 2)],
    };
    let mut c = RaftCore::new(
        2,
        &[1, 2, 3],
        cfg(4),
        restored,
        ChaCha8Rng::seed_from_u64(3),
    )
    .expect("core");
    let ready = c.take_ready();
    let restore = ready.restore.expect("snapshot first");
    assert_eq!(restore.meta.index, 5);
    assert_eq!(restore.data, Bytes::from_static(b"five"));
    assert!(ready.committed.is_empty());
    c.step(
        1,
        Message::AppendEntries {
            term: 2,
            prev_log_index: 6,
            prev_log_term: 2,
            entries: vec![],
            leader_commit: 6,
        },
    )
    .expect("step");
    let ready = c.take_ready();
    let applied: Vec<u64> = ready.committed.iter().map(|e| e.index).collect();
    assert_eq!(applied, vec![6]);
}

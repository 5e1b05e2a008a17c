//! The leader's parallel write (thesis §10.2.1, `CoreConfig::leader_parallel_write`): its
//! replication requests may leave before its own write is durable, and it counts its own
//! copy toward a commit only once the driver reported that write with `persisted`.
//! `--cfg raft_bug="leader-counts-unpersisted"` makes the leader count its whole log at
//! once, and the tests below that are about counting fail.

use bytes::Bytes;
use raft_core::{CoreConfig, Message, RaftCore, RestoredState, Role};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

type Core = RaftCore<ChaCha8Rng>;

fn config(parallel: bool) -> CoreConfig {
    CoreConfig {
        pre_vote: false,
        check_quorum: false,
        leader_parallel_write: parallel,
        ..CoreConfig::default()
    }
}

fn core(id: u64, peers: &[u64], parallel: bool) -> Core {
    RaftCore::new(
        id,
        peers,
        config(parallel),
        RestoredState::default(),
        ChaCha8Rng::seed_from_u64(id),
    )
    .expect("valid core")
}

/// Makes `c` leader of term 1 with the votes of its peers and their answer to its first
/// heartbeat, checking that the campaign's
/// Ready (term and vote change) lets nothing leave early.
fn elect(c: &mut Core, peers: &[u64]) {
    while c.role() == Role::Follower {
        c.tick();
    }
    let ready = c.take_ready();
    assert!(
        ready.hard_state.is_some(),
        "a campaign persists term and vote"
    );
    assert!(
        ready.early_messages.is_empty(),
        "vote requests speak for the persisted vote: {:?}",
        ready.early_messages
    );
    let me = c.id();
    for &peer in peers.iter().filter(|&&p| p != me) {
        let term = c.term();
        c.step(
            peer,
            Message::RequestVoteResponse {
                term,
                granted: true,
            },
        )
        .expect("step");
    }
    assert!(c.is_leader());
    // The followers answer the first heartbeat, so that entries stream to them.
    c.take_ready();
    for &peer in peers.iter().filter(|&&p| p != me) {
        ack(c, peer, 0);
    }
}

fn ack(c: &mut Core, from: u64, index: u64) {
    let term = c.term();
    c.step(
        from,
        Message::AppendEntriesResponse {
            term,
            index,
            reject: None,
        },
    )
    .expect("step");
}

#[test]
fn replication_requests_leave_early_and_nothing_else_does() {
    let mut c = core(1, &[1, 2, 3], true);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    let (index, _) = c.propose(Bytes::from_static(b"x")).expect("leader");
    let ready = c.take_ready();
    assert_eq!(ready.entries.last().map(|e| e.index), Some(index));
    assert_eq!(ready.early_messages.len(), 2, "{:?}", ready.early_messages);
    assert!(ready
        .early_messages
        .iter()
        .all(|m| matches!(m.msg, Message::AppendEntries { .. })));
    assert!(ready.messages.is_empty(), "{:?}", ready.messages);
}

#[test]
fn without_the_setting_every_message_waits_for_the_write() {
    let mut c = core(1, &[1, 2, 3], false);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    c.propose(Bytes::from_static(b"x")).expect("leader");
    let ready = c.take_ready();
    assert!(ready.early_messages.is_empty());
    assert_eq!(ready.messages.len(), 2);
}

#[test]
fn the_leader_counts_its_own_copy_only_once_durable() {
    let mut c = core(1, &[1, 2, 3], true);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    let (index, term) = c.propose(Bytes::from_static(b"x")).expect("leader");
    c.take_ready();
    // One follower of two has it; the leader's own write is still running: one copy of
    // three is durable, not a majority.
    ack(&mut c, 2, index);
    assert!(
        c.commit_index() < index,
        "committed {index} with only one durable copy of three"
    );
    c.persisted(index, term);
    assert_eq!(c.commit_index(), index);
}

#[test]
fn two_followers_commit_without_the_leaders_copy() {
    let mut c = core(1, &[1, 2, 3], true);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    let (index, _) = c.propose(Bytes::from_static(b"x")).expect("leader");
    c.take_ready();
    ack(&mut c, 2, index);
    ack(&mut c, 3, index);
    assert_eq!(c.commit_index(), index, "a majority of followers suffices");
}

#[test]
fn a_single_node_commits_when_its_write_is_durable() {
    let mut c = core(1, &[1], true);
    elect(&mut c, &[1]);
    c.take_ready();
    let (index, term) = c.propose(Bytes::from_static(b"x")).expect("leader");
    let ready = c.take_ready();
    assert!(ready.committed.is_empty(), "applied before it was written");
    assert!(c.commit_index() < index);
    c.persisted(index, term);
    assert_eq!(c.commit_index(), index);
    assert_eq!(c.take_ready().committed.len(), 1);
}

#[test]
fn a_report_about_replaced_entries_is_ignored() {
    // A follower takes entries 1..=3 of term 1 to write; before the write finishes, the
    // leader of term 2 replaces entries 2 and 3.
    let mut f = core(3, &[1, 2, 3], true);
    let e = |index, term| raft_core::Entry::new(term, index, Bytes::from_static(b"y"));
    let append = |term, prev: (u64, u64), entries| Message::AppendEntries {
        term,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: 0,
    };
    f.step(1, append(1, (0, 0), vec![e(1, 1), e(2, 1), e(3, 1)]))
        .expect("step");
    f.take_ready();
    f.step(2, append(2, (1, 1), vec![e(2, 2)])).expect("step");
    assert_eq!(f.durable_index(), 0);
    // The first write finishes: only entry 1 of it is still in the log.
    f.persisted(3, 1);
    assert_eq!(f.durable_index(), 0, "entry 3 of term 1 is gone");
    f.persisted(1, 1);
    assert_eq!(f.durable_index(), 1);
    f.persisted(2, 2);
    assert_eq!(f.durable_index(), 2);
    // Reports never move it back.
    f.persisted(1, 1);
    assert_eq!(f.durable_index(), 2);
}

// While the driver's write runs (`take_ready_while_writing`): only what needs no write.

#[test]
fn while_writing_only_replication_requests_leave() {
    let mut c = core(1, &[1, 2, 3], true);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    let (first, _) = c.propose(Bytes::from_static(b"x")).expect("leader");
    c.take_ready(); // the driver writes entry `first`
    let (second, _) = c.propose(Bytes::from_static(b"y")).expect("leader");
    assert!(c.has_ready_while_writing());
    let ready = c.take_ready_while_writing(usize::MAX);
    assert!(ready.entries.is_empty() && ready.hard_state.is_none());
    assert_eq!(ready.early_messages.len(), 2, "{:?}", ready.early_messages);
    assert!(ready.early_messages.iter().all(|m| matches!(
        &m.msg,
        Message::AppendEntries { entries, .. } if entries.last().map(|e| e.index) == Some(second)
    )));
    assert!(ready.messages.is_empty());
    // The new entry still waits to be written, with the next full Ready.
    let next = c.take_ready();
    assert_eq!(next.entries.first().map(|e| e.index), Some(first + 1));
}

#[test]
fn while_writing_nothing_leaves_without_the_setting() {
    let mut c = core(1, &[1, 2, 3], false);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    c.propose(Bytes::from_static(b"x")).expect("leader");
    c.take_ready();
    c.propose(Bytes::from_static(b"y")).expect("leader");
    let ready = c.take_ready_while_writing(usize::MAX);
    assert!(ready.early_messages.is_empty() && ready.messages.is_empty());
    assert_eq!(
        c.take_ready().messages.len(),
        2,
        "the requests wait for the write"
    );
}

#[test]
fn while_writing_only_entries_durable_here_are_applied() {
    // A single node without the parallel write counts its own entries at once: committed,
    // but not durable until written. Applying one early could answer a client with a
    // write that a crash then loses.
    let mut c = core(1, &[1], false);
    elect(&mut c, &[1]);
    c.take_ready();
    let (first, term) = c.propose(Bytes::from_static(b"x")).expect("leader");
    let writing = c.take_ready();
    assert_eq!(writing.entries.len(), 1);
    let (second, _) = c.propose(Bytes::from_static(b"y")).expect("leader");
    assert_eq!(c.commit_index(), second);
    assert!(c.take_ready_while_writing(9).committed.is_empty());
    // The first write ends; the second entry has not even been handed over for writing.
    c.persisted(first, term);
    assert!(!c.has_ready_while_writing());
    assert!(c.take_ready_while_writing(9).committed.is_empty());
    let next = c.take_ready();
    assert_eq!(
        next.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![second]
    );
    assert_eq!(
        next.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![second]
    );
}

#[test]
fn while_writing_a_leader_applies_what_its_followers_and_disk_hold() {
    let mut c = core(1, &[1, 2, 3], true);
    elect(&mut c, &[1, 2, 3]);
    c.take_ready();
    let (first, term) = c.propose(Bytes::from_static(b"x")).expect("leader");
    c.take_ready();
    c.persisted(first, term);
    let (second, _) = c.propose(Bytes::from_static(b"y")).expect("leader");
    c.take_ready(); // writing `second`
    ack(&mut c, 2, second);
    ack(&mut c, 3, second);
    assert_eq!(c.commit_index(), second, "both followers hold both");
    // Only `first` is durable here: `second` is applied after the leader's write.
    let ready = c.take_ready_while_writing(9);
    assert_eq!(
        ready.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        (1..=first).collect::<Vec<_>>()
    );
    assert!(
        !c.has_ready_while_writing(),
        "nothing more until the write ends"
    );
}

#[test]
fn a_ready_gives_up_only_its_durable_entries_for_applying_early() {
    let e = |index| raft_core::Entry::new(1, index, Bytes::from_static(b"z"));
    let mut ready = raft_core::Ready {
        committed: vec![e(4), e(5), e(6)],
        ..raft_core::Ready::default()
    };
    let now: Vec<u64> = ready
        .take_durable_committed(5)
        .iter()
        .map(|e| e.index)
        .collect();
    assert_eq!(now, vec![4, 5]);
    assert_eq!(
        ready.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![6]
    );
    // Behind a snapshot to restore, nothing goes early.
    ready.restore = Some(raft_core::Snapshot::default());
    assert!(ready.take_durable_committed(9).is_empty());
    assert_eq!(ready.committed.len(), 1);
}

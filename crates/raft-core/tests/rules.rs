//! One test per rule of Figure 2, driving cores by hand.

use bytes::Bytes;
use raft_core::{
    CoreConfig, CoreError, Entry, Envelope, HardState, Message, RaftCore, RestoredState, Role,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

type Core = RaftCore<ChaCha8Rng>;

fn entry(index: u64, term: u64) -> Entry {
    Entry::new(term, index, Bytes::from(format!("{index}@{term}")))
}

fn core_with(id: u64, peers: &[u64], term: u64, vote: Option<u64>, log: Vec<Entry>) -> Core {
    let restored = RestoredState {
        hard_state: HardState { term, vote },
        entries: log,
        ..Default::default()
    };
    RaftCore::new(
        id,
        peers,
        classic(),
        restored,
        ChaCha8Rng::seed_from_u64(id),
    )
    .expect("valid core")
}

/// Figure 2 as written: no pre-vote, no check-quorum (tests/stability.rs covers those).
fn classic() -> CoreConfig {
    CoreConfig {
        pre_vote: false,
        check_quorum: false,
        ..CoreConfig::default()
    }
}

fn core(id: u64) -> Core {
    core_with(id, &[1, 2, 3], 0, None, vec![])
}

fn vote_req(term: u64, last_log_index: u64, last_log_term: u64) -> Message {
    Message::RequestVote {
        term,
        last_log_index,
        last_log_term,
    }
}

fn only_reply(core: &mut Core) -> Message {
    let ready = core.take_ready();
    assert_eq!(
        ready.messages.len(),
        1,
        "expected one reply: {:?}",
        ready.messages
    );
    ready.messages[0].msg.clone()
}

fn granted(msg: &Message) -> bool {
    matches!(msg, Message::RequestVoteResponse { granted: true, .. })
}

fn elect(core: &mut Core) {
    while core.role() == Role::Follower {
        core.tick();
    }
    let term = core.term();
    core.take_ready();
    for peer in [2, 3] {
        if peer != core.id() {
            core.step(
                peer,
                Message::RequestVoteResponse {
                    term,
                    granted: true,
                },
            )
            .expect("step");
        }
    }
    assert!(core.is_leader());
}

fn append(term: u64, prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> Message {
    Message::AppendEntries {
        term,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
    }
}

// ----- elections ----------------------------------------------------------------------

#[test]
fn grants_vote_to_up_to_date_candidate_and_persists_it_first() {
    let mut c = core(1);
    c.step(2, vote_req(1, 0, 0)).expect("step");
    let ready = c.take_ready();
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            vote: Some(2)
        })
    );
    assert!(granted(&ready.messages[0].msg));
}

#[test]
fn refuses_vote_for_stale_term() {
    let mut c = core_with(1, &[1, 2, 3], 5, None, vec![]);
    c.step(2, vote_req(4, 0, 0)).expect("step");
    let reply = only_reply(&mut c);
    assert!(!granted(&reply));
    assert_eq!(reply.term(), 5);
}

#[test]
fn refuses_second_vote_in_same_term() {
    let mut c = core(1);
    c.step(2, vote_req(1, 0, 0)).expect("step");
    c.take_ready();
    c.step(3, vote_req(1, 0, 0)).expect("step");
    assert!(!granted(&only_reply(&mut c)));
    // Asking again for the same candidate is fine (a retransmission).
    c.step(2, vote_req(1, 0, 0)).expect("step");
    assert!(granted(&only_reply(&mut c)));
}

#[test]
fn refuses_vote_to_less_up_to_date_log() {
    let log = vec![entry(1, 1), entry(2, 2)];
    let mut c = core_with(1, &[1, 2, 3], 2, None, log);
    // Older last term, even though longer.
    c.step(2, vote_req(3, 5, 1)).expect("step");
    assert!(!granted(&only_reply(&mut c)));
    // Same last term, shorter log.
    c.step(3, vote_req(4, 1, 2)).expect("step");
    assert!(!granted(&only_reply(&mut c)));
    // Same last term, same length: grant.
    c.step(3, vote_req(5, 2, 2)).expect("step");
    assert!(granted(&only_reply(&mut c)));
}

#[test]
fn steps_down_on_higher_term() {
    let mut c = core(1);
    elect(&mut c);
    let term = c.term();
    c.step(
        2,
        Message::AppendEntriesResponse {
            term: term + 3,
            index: 0,
            reject: None,
        },
    )
    .expect("step");
    assert_eq!(c.role(), Role::Follower);
    assert_eq!(c.term(), term + 3);
    assert_eq!(c.hard_state().vote, None);
}

#[test]
fn election_timeout_starts_campaign_with_persisted_self_vote() {
    let mut c = core(1);
    let mut ticks = 0;
    while c.role() == Role::Follower {
        c.tick();
        ticks += 1;
        assert!(ticks <= CoreConfig::default().election_timeout_max);
    }
    assert!(ticks >= CoreConfig::default().election_timeout_min);
    let ready = c.take_ready();
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 1,
            vote: Some(1)
        })
    );
    let targets: Vec<u64> = ready.messages.iter().map(|m| m.to).collect();
    assert_eq!(targets, vec![2, 3]);
    assert!(ready
        .messages
        .iter()
        .all(|m| matches!(m.msg, Message::RequestVote { term: 1, .. })));
}

#[test]
fn candidate_with_majority_becomes_leader_and_heartbeats_at_once() {
    let mut c = core(1);
    while c.role() == Role::Follower {
        c.tick();
    }
    c.take_ready();
    c.step(
        2,
        Message::RequestVoteResponse {
            term: 1,
            granted: true,
        },
    )
    .expect("step");
    assert!(c.is_leader());
    let ready = c.take_ready();
    let heartbeats: Vec<&Envelope> = ready
        .messages
        .iter()
        .filter(|m| matches!(&m.msg, Message::AppendEntries { entries, .. } if entries.is_empty()))
        .collect();
    assert_eq!(heartbeats.len(), 2);
}

#[test]
fn leader_heartbeats_every_interval() {
    let mut c = core(1);
    elect(&mut c);
    c.take_ready();
    for _ in 0..CoreConfig::default().heartbeat_ticks {
        c.tick();
    }
    assert_eq!(c.take_ready().messages.len(), 2);
}

#[test]
fn split_vote_does_not_elect() {
    let mut c = core(1);
    while c.role() == Role::Follower {
        c.tick();
    }
    c.step(
        2,
        Message::RequestVoteResponse {
            term: 1,
            granted: false,
        },
    )
    .expect("step");
    c.step(
        3,
        Message::RequestVoteResponse {
            term: 1,
            granted: false,
        },
    )
    .expect("step");
    assert_eq!(c.role(), Role::Candidate);
}

#[test]
fn bad_construction_is_an_error() {
    let cfg = CoreConfig::default();
    let rng = || ChaCha8Rng::seed_from_u64(1);
    let st = RestoredState::default;
    assert_eq!(
        RaftCore::new(1, &[], cfg.clone(), st(), rng()).err(),
        Some(CoreError::NoPeers)
    );
    assert_eq!(
        RaftCore::new(9, &[1, 2], cfg.clone(), st(), rng()).err(),
        Some(CoreError::NotAMember(9))
    );
    let bad = CoreConfig {
        election_timeout_min: 2,
        heartbeat_ticks: 2,
        ..cfg
    };
    assert!(matches!(
        RaftCore::new(1, &[1], bad, st(), rng()).err(),
        Some(CoreError::InvalidConfig(_))
    ));
    // No span to randomise over: lock-stepped nodes could split votes forever.
    let no_span = CoreConfig {
        election_timeout_min: 10,
        election_timeout_max: 10,
        ..CoreConfig::default()
    };
    assert!(matches!(
        RaftCore::new(1, &[1], no_span, st(), rng()).err(),
        Some(CoreError::InvalidConfig(_))
    ));
    let mut c = core(1);
    // A message from this node itself is refused; one from a stranger is not (a leader of
    // a configuration not heard of yet must be followed) — see membership_rules.rs.
    assert_eq!(c.step(1, vote_req(1, 0, 0)), Err(CoreError::UnknownPeer(1)));
    assert!(matches!(
        c.propose(Bytes::new()),
        Err(CoreError::NotLeader { .. })
    ));
}

// ----- replication --------------------------------------------------------------------

#[test]
fn append_accepts_matching_prev_and_rejects_mismatch() {
    let mut c = core_with(2, &[1, 2, 3], 1, None, vec![entry(1, 1)]);
    c.step(1, append(1, (1, 1), vec![entry(2, 1)], 0))
        .expect("step");
    let ready = c.take_ready();
    assert_eq!(ready.entries, vec![entry(2, 1)]);
    assert!(matches!(
        ready.messages[0].msg,
        Message::AppendEntriesResponse {
            index: 2,
            reject: None,
            ..
        }
    ));
    // prev term mismatch at index 2 (a leader of term 9 says index 2 has term 5)
    c.step(1, append(9, (2, 5), vec![entry(3, 9)], 0))
        .expect("step");
    assert!(matches!(
        only_reply(&mut c),
        Message::AppendEntriesResponse {
            reject: Some(_),
            ..
        }
    ));
    // prev beyond the end
    c.step(1, append(9, (7, 1), vec![], 0)).expect("step");
    match only_reply(&mut c) {
        Message::AppendEntriesResponse {
            reject: Some(hint), ..
        } => {
            assert_eq!(hint.conflict_term, None);
            assert_eq!(hint.last_index, 2);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn conflicting_suffix_is_truncated_and_only_it() {
    let log = vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)];
    let mut c = core_with(2, &[1, 2, 3], 3, None, log);
    c.step(1, append(3, (1, 1), vec![entry(2, 1), entry(3, 3)], 0))
        .expect("step");
    let ready = c.take_ready();
    assert_eq!(ready.truncate_from, Some(3));
    assert_eq!(ready.entries, vec![entry(3, 3)]);
    assert_eq!(c.log().last_index(), 3);
    assert_eq!(c.log().term(2), Some(1));
}

#[test]
fn stale_or_duplicate_append_never_truncates() {
    let log = vec![entry(1, 1), entry(2, 1), entry(3, 1)];
    let mut c = core_with(2, &[1, 2, 3], 1, None, log);
    // A delayed message carrying only entry 2 must not delete entry 3.
    c.step(1, append(1, (1, 1), vec![entry(2, 1)], 0))
        .expect("step");
    let ready = c.take_ready();
    assert_eq!(ready.truncate_from, None);
    assert!(ready.entries.is_empty());
    assert_eq!(c.log().last_index(), 3);
}

#[test]
fn follower_commit_is_bounded_by_verified_entries() {
    let log = vec![entry(1, 1), entry(2, 1), entry(3, 1)];
    let mut c = core_with(2, &[1, 2, 3], 1, None, log);
    // The heartbeat only vouches for entries up to 1, so commit stops there.
    c.step(1, append(1, (1, 1), vec![], 3)).expect("step");
    assert_eq!(c.commit_index(), 1);
    let ready = c.take_ready();
    assert_eq!(ready.committed.len(), 1);
    c.step(1, append(1, (3, 1), vec![], 3)).expect("step");
    assert_eq!(c.commit_index(), 3);
    let ready = c.take_ready();
    let applied: Vec<u64> = ready.committed.iter().map(|e| e.index).collect();
    assert_eq!(applied, vec![2, 3]);
}

#[test]
fn figure8_leader_does_not_commit_old_term_by_counting() {
    // Leader of term 4 holding an entry of term 2 that a majority has.
    let log = vec![entry(1, 1), entry(2, 2)];
    let mut c = core_with(1, &[1, 2, 3], 3, None, log);
    elect(&mut c);
    assert_eq!(c.term(), 4);
    c.take_ready();
    let term = c.term();
    c.step(
        2,
        Message::AppendEntriesResponse {
            term,
            index: 2,
            reject: None,
        },
    )
    .expect("step");
    assert_eq!(
        c.commit_index(),
        0,
        "an old-term entry must not commit by count"
    );
    // Once an entry of the current term is replicated, everything up to it commits.
    let (index, _) = c.propose(Bytes::from_static(b"new")).expect("leader");
    c.step(
        2,
        Message::AppendEntriesResponse {
            term,
            index,
            reject: None,
        },
    )
    .expect("step");
    assert_eq!(c.commit_index(), 3);
}

#[test]
fn reject_hint_skips_a_whole_term() {
    // Follower: terms 1 1 2 2 2 2 ; leader: terms 1 1 3 3 3 3 3
    let follower_log = vec![
        entry(1, 1),
        entry(2, 1),
        entry(3, 2),
        entry(4, 2),
        entry(5, 2),
        entry(6, 2),
    ];
    let mut f = core_with(2, &[1, 2, 3], 3, None, follower_log);
    f.step(1, append(3, (6, 3), vec![], 0)).expect("step");
    let hint = match only_reply(&mut f) {
        Message::AppendEntriesResponse {
            reject: Some(hint), ..
        } => hint,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(hint.conflict_term, Some(2));
    assert_eq!(hint.first_index_of_term, 3);

    let leader_log = (1..=7)
        .map(|i| entry(i, if i <= 2 { 1 } else { 3 }))
        .collect();
    let mut l = core_with(1, &[1, 2, 3], 3, None, leader_log);
    elect(&mut l);
    l.take_ready();
    let term = l.term();
    l.step(
        2,
        Message::AppendEntriesResponse {
            term,
            index: 7,
            reject: Some(hint),
        },
    )
    .expect("step");
    // Leader has no term-2 entry, so it jumps straight to the follower's first term-2 index.
    let next = l.progress(2).expect("progress").next();
    assert_eq!(next, 3);
    let ready = l.take_ready();
    assert!(ready.messages.iter().any(|m| matches!(
        &m.msg,
        Message::AppendEntries { prev_log_index: 2, entries, .. } if entries.len() == 5
    )));
}

#[test]
fn pipelining_does_not_resend_inflight_entries() {
    let mut c = core(1);
    elect(&mut c);
    let term = c.term();
    c.take_ready();
    // Follower 2 acknowledges the heartbeat: it is in step.
    c.step(
        2,
        Message::AppendEntriesResponse {
            term,
            index: 0,
            reject: None,
        },
    )
    .expect("step");
    c.take_ready();
    let mut sent = 0;
    for i in 0..5 {
        c.propose(Bytes::from(vec![i])).expect("leader");
        let ready = c.take_ready();
        for m in ready.messages.iter().filter(|m| m.to == 2) {
            if let Message::AppendEntries { entries, .. } = &m.msg {
                sent += entries.len();
            }
        }
    }
    assert_eq!(
        sent, 5,
        "each entry goes to the in-step follower exactly once"
    );
}

#[test]
fn refused_stale_candidate_does_not_reset_election_timer() {
    // Two identical followers (same seed); one is bothered half-way by a candidate with a
    // higher term but a stale log. Both must campaign after the same number of ticks.
    let log = || vec![entry(1, 1), entry(2, 1)];
    let ticks_to_campaign = |bother: bool| {
        let mut c = core_with(1, &[1, 2, 3], 1, None, log());
        let mut ticks = 0;
        while c.role() == Role::Follower {
            if bother && ticks == 5 {
                c.step(2, vote_req(3, 1, 1)).expect("step");
                assert!(!granted(&only_reply(&mut c)));
            }
            c.tick();
            ticks += 1;
        }
        ticks
    };
    assert_eq!(ticks_to_campaign(false), ticks_to_campaign(true));
}

#[test]
fn granting_a_vote_resets_election_timer() {
    let mut c = core(1);
    let mut ticks = 0;
    while c.role() == Role::Follower {
        ticks += 1;
        c.tick();
    }
    let undisturbed = ticks;
    let mut c = core(1);
    for _ in 0..undisturbed - 1 {
        c.tick();
    }
    c.step(2, vote_req(1, 0, 0)).expect("step");
    c.tick();
    assert_eq!(c.role(), Role::Follower, "a vote was just granted");
}

#[test]
fn lost_append_is_resent_even_when_heartbeats_are_answered() {
    // Found by the simulator (seed 552): the answer to a heartbeat sent at `matched`
    // counted as progress, so an AppendEntries lost while streaming was never resent.
    let hb = CoreConfig::default().heartbeat_ticks;
    let mut c = core(1);
    elect(&mut c);
    let term = c.term();
    c.take_ready();
    let ack = |index| Message::AppendEntriesResponse {
        term,
        index,
        reject: None,
    };
    for peer in [2, 3] {
        c.step(peer, ack(0)).expect("step");
    }
    c.take_ready();
    c.propose(Bytes::from_static(b"lost")).expect("leader");
    c.take_ready(); // the AppendEntries carrying index 1 to peer 2 is lost
                    // Peer 3 gets it: index 1 commits, so peer 2 is due heartbeats carrying the new commit.
    c.step(3, ack(1)).expect("step");
    assert_eq!(c.commit_index(), 1);
    c.take_ready();
    let mut resent = false;
    for _ in 0..3 {
        for _ in 0..hb {
            c.tick();
        }
        for m in c.take_ready().messages.into_iter().filter(|m| m.to == 2) {
            if let Message::AppendEntries {
                prev_log_index,
                entries,
                ..
            } = m.msg
            {
                if entries.iter().any(|e| e.index == 1) {
                    resent = true;
                } else {
                    // Peer 2 answers every heartbeat, acknowledging nothing new.
                    c.step(
                        2,
                        Message::AppendEntriesResponse {
                            term,
                            index: prev_log_index,
                            reject: None,
                        },
                    )
                    .expect("step");
                }
            }
        }
    }
    assert!(resent, "the lost entry was never resent");
}

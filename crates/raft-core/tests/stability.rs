//! Pre-vote (thesis §9.6), check-quorum and leader stickiness: the rules that keep a
//! healthy cluster in its term when a node is cut off and comes back.

use bytes::Bytes;
use raft_core::{CoreConfig, Entry, Envelope, HardState, Message, RaftCore, RestoredState, Role};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::BTreeSet;

type Core = RaftCore<ChaCha8Rng>;

fn cfg(pre_vote: bool, check_quorum: bool) -> CoreConfig {
    CoreConfig {
        pre_vote,
        check_quorum,
        ..CoreConfig::default()
    }
}

fn node(id: u64, term: u64, log_terms: &[u64], cfg: CoreConfig) -> Core {
    let restored = RestoredState {
        hard_state: HardState { term, vote: None },
        entries: log_terms
            .iter()
            .enumerate()
            .map(|(i, t)| Entry::new(*t, i as u64 + 1, Bytes::new()))
            .collect(),
        ..Default::default()
    };
    RaftCore::new(id, &[1, 2, 3], cfg, restored, ChaCha8Rng::seed_from_u64(id)).expect("core")
}

fn pre_vote(term: u64, last_index: u64, last_term: u64) -> Message {
    Message::PreVote {
        term,
        last_log_index: last_index,
        last_log_term: last_term,
    }
}

fn heartbeat(term: u64) -> Message {
    Message::AppendEntries {
        term,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: Vec::new(),
        leader_commit: 0,
    }
}

fn replies(core: &mut Core) -> Vec<Message> {
    core.take_ready()
        .messages
        .into_iter()
        .map(|e| e.msg)
        .collect()
}

/// Ticks until the election timer fires.
fn time_out(core: &mut Core) {
    while core.role() == Role::Follower {
        core.tick();
    }
}

#[test]
fn pre_candidate_keeps_its_term_and_asks_for_the_next() {
    let mut c = node(1, 4, &[1, 4], cfg(true, true));
    time_out(&mut c);
    assert_eq!(c.role(), Role::PreCandidate);
    assert_eq!(
        c.hard_state(),
        HardState {
            term: 4,
            vote: None
        }
    );
    let ready = c.take_ready();
    assert_eq!(ready.hard_state, None, "a pre-vote persists nothing");
    assert_eq!(ready.messages.len(), 2);
    assert!(ready.messages.iter().all(|m| m.msg == pre_vote(5, 2, 4)));
}

#[test]
fn granting_a_pre_vote_changes_no_term_vote_or_timer() {
    let mut c = node(2, 4, &[1, 4], cfg(true, true));
    for _ in 0..5 {
        c.tick();
    }
    c.step(1, pre_vote(5, 2, 4)).expect("step");
    let ready = c.take_ready();
    assert_eq!(ready.hard_state, None);
    assert_eq!(
        c.hard_state(),
        HardState {
            term: 4,
            vote: None
        }
    );
    assert_eq!(
        ready
            .messages
            .iter()
            .map(|e| e.msg.clone())
            .collect::<Vec<_>>(),
        vec![Message::PreVoteResponse {
            term: 5,
            granted: true
        }]
    );
    // The timer kept running: a granted pre-vote promises nothing, so the voter still
    // times out on its own schedule (at most election_timeout_max ticks in all).
    let mut ticks = 5;
    while c.role() == Role::Follower {
        c.tick();
        ticks += 1;
    }
    assert!(ticks <= CoreConfig::default().election_timeout_max);
}

#[test]
fn pre_vote_refused_when_the_log_is_behind() {
    let mut c = node(2, 4, &[1, 4], cfg(true, true));
    // Same last term, shorter log; and an older last term.
    for (index, term) in [(1, 4), (5, 3)] {
        c.step(1, pre_vote(5, index, term)).expect("step");
        assert_eq!(
            replies(&mut c),
            vec![Message::PreVoteResponse {
                term: 4,
                granted: false
            }]
        );
    }
    assert_eq!(c.term(), 4);
}

#[test]
fn pre_vote_refused_for_a_term_not_above_the_voters() {
    let mut c = node(2, 6, &[], cfg(true, true));
    c.step(1, pre_vote(6, 0, 0)).expect("step");
    assert_eq!(
        replies(&mut c),
        vec![Message::PreVoteResponse {
            term: 6,
            granted: false
        }]
    );
}

#[test]
fn pre_vote_refused_while_a_leader_was_heard_recently() {
    // Without check-quorum the refusal is an answer; the rule is pre-vote's own.
    let mut c = node(2, 1, &[], cfg(true, false));
    c.step(1, heartbeat(1)).expect("step");
    c.take_ready();
    c.step(3, pre_vote(2, 0, 0)).expect("step");
    assert_eq!(
        replies(&mut c),
        vec![Message::PreVoteResponse {
            term: 1,
            granted: false
        }]
    );
    // Once the minimum election timeout passed without the leader, it is granted.
    for _ in 0..CoreConfig::default().election_timeout_min {
        c.tick();
    }
    c.step(3, pre_vote(2, 0, 0)).expect("step");
    assert_eq!(
        replies(&mut c),
        vec![Message::PreVoteResponse {
            term: 2,
            granted: true
        }]
    );
}

#[test]
fn majority_of_pre_votes_starts_the_real_campaign() {
    let mut c = node(1, 4, &[4], cfg(true, true));
    time_out(&mut c);
    c.take_ready();
    c.step(
        2,
        Message::PreVoteResponse {
            term: 5,
            granted: true,
        },
    )
    .expect("step");
    assert_eq!(c.role(), Role::Candidate);
    let ready = c.take_ready();
    assert_eq!(
        ready.hard_state,
        Some(HardState {
            term: 5,
            vote: Some(1)
        })
    );
    assert!(ready
        .messages
        .iter()
        .all(|e| matches!(e.msg, Message::RequestVote { term: 5, .. })));
}

#[test]
fn refused_pre_votes_end_the_round_and_a_newer_term_is_adopted() {
    let mut c = node(1, 4, &[4], cfg(true, true));
    time_out(&mut c);
    c.take_ready();
    // A refusal in the pre-candidate's own term counts as a no; two make a majority.
    let no = |term| Message::PreVoteResponse {
        term,
        granted: false,
    };
    c.step(2, no(4)).expect("step");
    assert_eq!(c.role(), Role::PreCandidate);
    c.step(3, no(4)).expect("step");
    assert_eq!((c.role(), c.term()), (Role::Follower, 4));
    // A refusal from a voter in a newer term brings the sender up to that term.
    time_out(&mut c);
    c.step(2, no(7)).expect("step");
    assert_eq!((c.role(), c.term()), (Role::Follower, 7));
}

#[test]
fn stale_or_foreign_pre_vote_grants_do_not_count() {
    let mut c = node(1, 4, &[4], cfg(true, true));
    time_out(&mut c);
    c.take_ready();
    // A grant for another round's term is not a grant for this one.
    c.step(
        2,
        Message::PreVoteResponse {
            term: 9,
            granted: true,
        },
    )
    .expect("step");
    assert_eq!((c.role(), c.term()), (Role::PreCandidate, 4));
}

#[test]
fn pre_vote_with_a_future_last_term_is_malformed() {
    let mut c = node(2, 1, &[], cfg(true, true));
    assert!(c.step(1, pre_vote(3, 1, 3)).is_err());
    assert_eq!(c.term(), 1);
}

// ----- check-quorum and stickiness ------------------------------------------------------

fn elect(cfg: CoreConfig) -> Core {
    let mut c = node(1, 0, &[], cfg.clone());
    time_out(&mut c);
    if c.role() == Role::PreCandidate {
        c.step(
            2,
            Message::PreVoteResponse {
                term: 1,
                granted: true,
            },
        )
        .expect("step");
    }
    c.step(
        2,
        Message::RequestVoteResponse {
            term: 1,
            granted: true,
        },
    )
    .expect("step");
    assert!(c.is_leader());
    c.take_ready();
    c
}

#[test]
fn leader_without_answers_steps_down_within_two_windows() {
    let mut c = elect(cfg(true, true));
    let window = CoreConfig::default().election_timeout_min;
    let mut ticks = 0;
    while c.is_leader() {
        c.tick();
        c.take_ready();
        ticks += 1;
        assert!(ticks <= 2 * window, "still leading after {ticks} ticks");
    }
    assert_eq!((c.role(), c.term(), c.leader()), (Role::Follower, 1, None));
    assert!(c.propose(Bytes::from_static(b"x")).is_err());
}

#[test]
fn leader_answered_by_a_majority_stays() {
    let mut c = elect(cfg(true, true));
    for _ in 0..10 * CoreConfig::default().election_timeout_min {
        c.tick();
        c.take_ready();
        c.step(
            3,
            Message::AppendEntriesResponse {
                term: 1,
                index: 0,
                reject: None,
            },
        )
        .expect("step");
    }
    assert!(c.is_leader());
}

#[test]
fn leader_without_check_quorum_never_steps_down() {
    let mut c = elect(cfg(true, false));
    for _ in 0..10 * CoreConfig::default().election_timeout_max {
        c.tick();
        c.take_ready();
    }
    assert!(c.is_leader());
}

#[test]
fn sticky_follower_ignores_vote_requests_while_the_leader_is_fresh() {
    let mut c = node(2, 1, &[], cfg(true, true));
    c.step(1, heartbeat(1)).expect("step");
    c.take_ready();
    let vote = Message::RequestVote {
        term: 2,
        last_log_index: 5,
        last_log_term: 1,
    };
    c.step(3, vote.clone()).expect("step");
    c.step(3, pre_vote(2, 5, 1)).expect("step");
    let ready = c.take_ready();
    assert!(ready.messages.is_empty(), "ignored, not answered");
    assert_eq!(ready.hard_state, None);
    assert_eq!((c.term(), c.leader()), (1, Some(1)));
    // After the minimum election timeout without the leader, the request is heard.
    for _ in 0..CoreConfig::default().election_timeout_min {
        c.tick();
    }
    c.take_ready();
    c.step(3, vote).expect("step");
    assert_eq!(
        c.hard_state(),
        HardState {
            term: 2,
            vote: Some(3)
        }
    );
}

#[test]
fn without_check_quorum_a_vote_request_is_heard_at_once() {
    let mut c = node(2, 1, &[], cfg(true, false));
    c.step(1, heartbeat(1)).expect("step");
    c.take_ready();
    c.step(
        3,
        Message::RequestVote {
            term: 2,
            last_log_index: 0,
            last_log_term: 0,
        },
    )
    .expect("step");
    assert_eq!(
        c.hard_state(),
        HardState {
            term: 2,
            vote: Some(3)
        }
    );
}

// ----- a small cluster: a node cut off and back ----------------------------------------

/// Three cores, a network that delivers everything at once except across the cut.
struct Cluster {
    nodes: Vec<Core>,
    cut: BTreeSet<u64>,
}

impl Cluster {
    fn new(cfg: CoreConfig) -> Cluster {
        Cluster {
            nodes: (1..=3).map(|id| node(id, 0, &[], cfg.clone())).collect(),
            cut: BTreeSet::new(),
        }
    }

    fn deliver(&mut self) {
        loop {
            let msgs: Vec<Envelope> = self
                .nodes
                .iter_mut()
                .flat_map(|n| n.take_ready().messages)
                .collect();
            if msgs.is_empty() {
                return;
            }
            for e in msgs {
                if self.cut.contains(&e.from) != self.cut.contains(&e.to) {
                    continue;
                }
                let _ = self.nodes[(e.to - 1) as usize].step(e.from, e.msg);
            }
        }
    }

    fn tick(&mut self, n: u32) {
        for _ in 0..n {
            for node in &mut self.nodes {
                node.tick();
            }
            self.deliver();
        }
    }

    fn terms(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.term()).collect()
    }

    fn leader(&self) -> Option<u64> {
        self.nodes.iter().find(|n| n.is_leader()).map(|n| n.id())
    }
}

/// Cuts one follower off for ten election timeouts, then heals; returns the terms before
/// and after, and the leader before and after.
fn partition_and_heal(cfg: CoreConfig) -> (u64, u64, Option<u64>, Option<u64>) {
    let mut c = Cluster::new(cfg);
    c.tick(100);
    let leader = c.leader();
    let before = c.terms()[0];
    let follower = (1..=3).find(|id| Some(*id) != leader).expect("a follower");
    c.cut.insert(follower);
    c.tick(200);
    c.cut.clear();
    c.tick(100);
    let after = *c.terms().iter().max().expect("nodes");
    (before, after, leader, c.leader())
}

#[test]
fn rejoining_node_does_not_raise_the_clusters_term_with_pre_vote() {
    let (before, after, leader, leader_after) = partition_and_heal(cfg(true, true));
    assert!(leader.is_some());
    assert_eq!(before, after, "the cluster's term moved");
    assert_eq!(leader, leader_after, "the leader was deposed");
    // Pre-vote alone (no stickiness) is enough for this.
    let (before, after, _, _) = partition_and_heal(cfg(true, false));
    assert_eq!(before, after);
}

#[test]
fn without_pre_vote_the_rejoining_node_forces_a_new_term() {
    // The contrast that shows the test above can fail.
    let (before, after, _, _) = partition_and_heal(cfg(false, false));
    assert!(after > before, "term {before} -> {after}");
}

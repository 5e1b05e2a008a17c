//! The rules of membership changes (thesis chapter 4), one test each, on cores driven by a
//! tiny in-memory network.

use bytes::Bytes;
use raft_core::{
    ConfChange, CoreConfig, CoreError, Entry, EntryKind, HardState, Membership, Message, NodeId,
    RaftCore, RestoredState, Role,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::{BTreeMap, BTreeSet};

type Core = RaftCore<ChaCha8Rng>;

fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
    ids.iter().copied().collect()
}

fn conf_entry(index: u64, term: u64, m: &Membership) -> Entry {
    Entry {
        kind: EntryKind::Config,
        ..Entry::new(term, index, m.encode())
    }
}

fn restored(term: u64, entries: Vec<Entry>) -> RestoredState {
    RestoredState {
        hard_state: HardState { term, vote: None },
        entries,
        ..Default::default()
    }
}

fn core(id: NodeId, peers: &[NodeId], st: RestoredState) -> Core {
    RaftCore::new(
        id,
        peers,
        CoreConfig::default(),
        st,
        ChaCha8Rng::seed_from_u64(id),
    )
    .expect("valid core")
}

/// Cores that exchange every message at once, except to or from isolated ones.
struct Net {
    cores: BTreeMap<NodeId, Core>,
    isolated: BTreeSet<NodeId>,
}

impl Net {
    fn new(ids: &[NodeId]) -> Self {
        let cores = ids
            .iter()
            .map(|&id| (id, core(id, ids, RestoredState::default())))
            .collect();
        Net {
            cores,
            isolated: BTreeSet::new(),
        }
    }

    fn get(&mut self, id: NodeId) -> &mut Core {
        self.cores.get_mut(&id).expect("node")
    }

    /// Delivers messages until none is left.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut msgs = Vec::new();
            for (id, c) in self.cores.iter_mut() {
                let ready = c.take_ready();
                if !self.isolated.contains(id) {
                    msgs.extend(ready.messages);
                }
            }
            if msgs.is_empty() {
                return;
            }
            for env in msgs {
                if self.isolated.contains(&env.to) {
                    continue;
                }
                if let Some(c) = self.cores.get_mut(&env.to) {
                    let _ = c.step(env.from, env.msg);
                }
            }
        }
        panic!("messages never settle");
    }

    /// Ticks only `id` until it leads.
    fn elect(&mut self, id: NodeId) {
        for _ in 0..200 {
            self.get(id).tick();
            self.settle();
            if self.get(id).is_leader() {
                return;
            }
        }
        panic!("node {id} was not elected");
    }

    /// Ticks everyone `n` times, settling after each.
    fn tick_all(&mut self, n: usize) {
        for _ in 0..n {
            for c in self.cores.values_mut() {
                c.tick();
            }
            self.settle();
        }
    }

    /// Proposes a command on `leader` and settles, so that an entry of its term commits.
    fn commit_command(&mut self, leader: NodeId) -> u64 {
        let (index, _) = self
            .get(leader)
            .propose(Bytes::from_static(b"x"))
            .expect("leader");
        self.settle();
        index
    }
}

#[test]
fn a_configuration_takes_effect_on_append_on_leader_and_followers() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    // Deliver the entry to follower 2 by hand, and no answer: nothing commits.
    let (index, _) = net
        .get(1)
        .propose_conf_change(&ConfChange::AddLearner(4))
        .expect("change");
    assert!(
        net.get(1).membership().learners.contains(&4),
        "leader: at once"
    );
    assert!(
        net.get(1).progress(4).is_some(),
        "the leader replicates to it"
    );
    let ready = net.get(1).take_ready();
    for env in ready.messages.into_iter().filter(|e| e.to == 2) {
        net.get(2).step(1, env.msg).expect("step");
    }
    let follower = net.get(2);
    assert!(follower.commit_index() < index, "not committed");
    assert!(
        follower.membership().learners.contains(&4),
        "follower: on append"
    );
    assert_eq!(follower.membership_index(), index);
    assert!(follower.peers().contains(&4));
}

#[test]
fn a_truncated_configuration_entry_rolls_back() {
    let old = Membership::with_voters([1, 2, 3]);
    let new = old.apply(&ConfChange::AddVoter(4)).expect("change");
    // Follower 2 holds an uncommitted configuration entry from the leader of term 2.
    let mut c = core(2, &[1, 2, 3], restored(2, vec![Entry::new(1, 1, "a")]));
    let append = |term, entries: Vec<Entry>| Message::AppendEntries {
        term,
        prev_log_index: 1,
        prev_log_term: 1,
        entries,
        leader_commit: 1,
    };
    c.step(1, append(2, vec![conf_entry(2, 2, &new)]))
        .expect("step");
    assert_eq!(c.membership(), &new);
    // The leader of term 3 never had it: its entry at 2 replaces the configuration entry.
    c.step(3, append(3, vec![Entry::new(3, 2, "b")]))
        .expect("step");
    assert_eq!(c.membership(), &old, "back to the configuration before it");
    assert_eq!(c.membership_index(), 0);
    assert!(!c.peers().contains(&4));
}

/// A node restored with a joint configuration [1,2,3] -> [3,4,5].
fn joint_core(id: NodeId) -> (Core, Membership) {
    let joint = Membership::with_voters([1, 2, 3])
        .apply(&ConfChange::EnterJoint(set(&[3, 4, 5])))
        .expect("joint");
    let c = core(id, &[1, 2, 3], restored(1, vec![conf_entry(1, 1, &joint)]));
    (c, joint)
}

#[test]
fn a_joint_election_needs_both_majorities() {
    let (mut c, joint) = joint_core(3);
    assert_eq!(c.membership(), &joint);
    while c.role() != Role::PreCandidate {
        c.tick();
    }
    let pre_grant = |term| Message::PreVoteResponse {
        term,
        granted: true,
    };
    let term = c.term() + 1;
    c.step(4, pre_grant(term)).expect("step");
    c.step(5, pre_grant(term)).expect("step");
    assert_eq!(
        c.role(),
        Role::PreCandidate,
        "only the new majority said yes"
    );
    c.step(1, pre_grant(term)).expect("step");
    assert_eq!(c.role(), Role::Candidate);
    let grant = Message::RequestVoteResponse {
        term: c.term(),
        granted: true,
    };
    c.step(4, grant.clone()).expect("step");
    c.step(5, grant.clone()).expect("step");
    assert_eq!(c.role(), Role::Candidate, "3,4,5 is one old voter only");
    c.step(2, grant).expect("step");
    assert!(c.is_leader(), "3,4,5 and 2,3 are majorities of both");
}

#[test]
fn a_joint_commit_needs_both_majorities() {
    let (mut c, _) = joint_core(3);
    while !c.is_leader() {
        c.tick();
        let term = c.term() + u64::from(c.role() == Role::PreCandidate);
        let granted = true;
        for from in [1, 2, 4, 5] {
            let msg = if c.role() == Role::PreCandidate {
                Message::PreVoteResponse { term, granted }
            } else {
                Message::RequestVoteResponse { term, granted }
            };
            let _ = c.step(from, msg);
        }
    }
    let (index, term) = c.propose(Bytes::from_static(b"x")).expect("leader");
    let ack = |c: &mut Core, from| {
        c.step(
            from,
            Message::AppendEntriesResponse {
                term,
                index,
                reject: None,
            },
        )
        .expect("step");
    };
    ack(&mut c, 4);
    ack(&mut c, 5);
    assert!(
        c.commit_index() < index,
        "the new majority alone does not commit"
    );
    ack(&mut c, 1);
    assert_eq!(c.commit_index(), index, "now both majorities hold it");
    // And once the joint entry is committed the leader leaves the joint configuration.
    assert!(!c.membership().is_joint());
    assert_eq!(c.membership().voters, set(&[3, 4, 5]));
}

#[test]
fn one_change_at_a_time_and_only_after_an_entry_of_the_leaders_term() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    assert_eq!(
        net.get(1).propose_conf_change(&ConfChange::AddLearner(4)),
        Err(CoreError::NotReady),
        "no entry of the new leader's term is committed yet"
    );
    net.settle(); // the no-op it appended commits
    net.get(1)
        .propose_conf_change(&ConfChange::AddLearner(4))
        .expect("first change");
    assert_eq!(
        net.get(1).propose_conf_change(&ConfChange::AddLearner(5)),
        Err(CoreError::ChangeInProgress)
    );
    net.settle();
    net.get(1)
        .propose_conf_change(&ConfChange::AddLearner(5))
        .expect("once committed, the next one");
    assert!(matches!(
        net.get(1).propose_conf_change(&ConfChange::Remove(9)),
        Err(CoreError::ChangeInProgress)
    ));
    net.settle();
    assert_eq!(
        net.get(1).propose_conf_change(&ConfChange::Remove(9)),
        Err(CoreError::Membership(raft_core::MembershipError::Unknown(
            9
        )))
    );
    assert!(matches!(
        net.get(2).propose_conf_change(&ConfChange::AddLearner(6)),
        Err(CoreError::NotLeader { .. })
    ));
}

#[test]
fn learners_never_count_and_never_campaign() {
    let conf = Membership {
        voters: set(&[1, 2]),
        learners: set(&[3]),
        outgoing: None,
    };
    let st = restored(1, vec![conf_entry(1, 1, &conf)]);
    let mut learner = RaftCore::joining(3, CoreConfig::default(), st, ChaCha8Rng::seed_from_u64(3))
        .expect("core");
    assert_eq!(learner.membership(), &conf);
    for _ in 0..1000 {
        learner.tick();
    }
    assert_eq!(learner.role(), Role::Follower);
    assert!(learner.take_ready().messages.is_empty(), "it asked no one");

    let mut net = Net::new(&[1, 2]);
    net.cores.insert(3, learner);
    net.elect(1);
    net.commit_command(1);
    net.get(1)
        .propose_conf_change(&ConfChange::AddLearner(3))
        .expect("change");
    net.settle();
    net.isolated.insert(2);
    let index = {
        let (i, _) = net
            .get(1)
            .propose(Bytes::from_static(b"y"))
            .expect("leader");
        i
    };
    net.settle();
    assert_eq!(net.get(3).log().last_index(), index, "the learner got it");
    assert!(
        net.get(1).commit_index() < index,
        "the leader and a learner are not a majority of 2 voters"
    );
}

#[test]
fn a_removed_leader_leads_until_the_change_commits_then_steps_down() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    let (index, _) = net
        .get(1)
        .propose_conf_change(&ConfChange::Remove(1))
        .expect("change");
    assert!(net.get(1).is_leader(), "still leading while uncommitted");
    assert!(!net.get(1).membership().is_voter(1));
    net.settle();
    assert!(net.get(1).commit_index() >= index);
    assert_eq!(net.get(1).role(), Role::Follower, "stepped down on commit");
    // It never campaigns again; 2 or 3 takes over.
    net.tick_all(200);
    assert_eq!(net.get(1).role(), Role::Follower);
    let leaders: Vec<NodeId> = [2, 3]
        .into_iter()
        .filter(|&id| net.get(id).is_leader())
        .collect();
    assert_eq!(leaders.len(), 1, "the remaining voters elect a leader");
}

#[test]
fn a_removed_server_does_not_disrupt_the_cluster() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    // 3 is cut off before it hears of its removal: it still believes it is a voter.
    net.isolated.insert(3);
    net.get(1)
        .propose_conf_change(&ConfChange::Remove(3))
        .expect("change");
    net.settle();
    let term = net.get(1).term();
    for _ in 0..100 {
        net.get(3).tick();
        net.get(3).take_ready();
    }
    // Its requests, whatever their term, change nothing on the remaining voters.
    for msg in [
        Message::PreVote {
            term: term + 5,
            last_log_index: 100,
            last_log_term: term + 4,
        },
        Message::RequestVote {
            term: term + 5,
            last_log_index: 100,
            last_log_term: term + 4,
        },
    ] {
        net.get(2).step(3, msg).expect("step");
    }
    assert_eq!(net.get(2).term(), term);
    assert!(net.get(1).is_leader());
}

#[test]
fn a_snapshot_carries_the_configuration_to_a_restarted_or_joining_node() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    net.get(1)
        .propose_conf_change(&ConfChange::AddLearner(4))
        .expect("change");
    net.settle();
    let want = net.get(1).membership().clone();
    let applied = net.get(1).applied_index();
    net.get(1)
        .compact(applied, Bytes::from_static(b"state"))
        .expect("compact");
    let snap = net
        .get(1)
        .take_ready()
        .snapshot
        .expect("snapshot to persist");

    // Restarted from that snapshot alone (no entries), with the bootstrap peer list.
    let mut restarted = core(
        1,
        &[1, 2, 3],
        RestoredState {
            hard_state: HardState {
                term: 1,
                vote: None,
            },
            snapshot: snap.meta,
            snapshot_data: snap.data.clone(),
            entries: Vec::new(),
        },
    );
    assert_eq!(restarted.membership(), &want);
    let restore = restarted.take_ready().restore.expect("restore");
    assert_eq!(
        restore.data,
        Bytes::from_static(b"state"),
        "the service's bytes only"
    );

    // A server joining with nothing gets it from the leader's snapshot.
    let joiner = RaftCore::joining(
        4,
        CoreConfig::default(),
        RestoredState::default(),
        ChaCha8Rng::seed_from_u64(4),
    )
    .expect("core");
    net.cores.insert(4, joiner);
    net.tick_all(5);
    let j = net.get(4);
    assert_eq!(j.membership(), &want);
    assert_eq!(j.log().snapshot().index, applied);
}

// ----- leadership transfer ---------------------------------------------------------------

#[test]
fn transfer_to_an_up_to_date_voter_takes_one_round_trip_despite_stickiness() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    let term = net.get(1).term();
    net.get(1).transfer_leader(2).expect("transfer");
    assert_eq!(net.get(1).transferring_to(), Some(2));
    assert_eq!(
        net.get(1).propose(Bytes::from_static(b"z")),
        Err(CoreError::TransferInProgress(2)),
        "no proposals while handing over"
    );
    // No tick at all: TimeoutNow, the transfer vote (which 3, having just heard from 1,
    // answers anyway) and the new leader's announcement.
    net.settle();
    assert!(net.get(2).is_leader());
    assert_eq!(net.get(2).term(), term + 1);
    assert_eq!(net.get(1).role(), Role::Follower);
    assert_eq!(net.get(1).leader(), Some(2));
}

#[test]
fn transfer_to_a_lagging_voter_brings_it_up_to_date_first() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.isolated.insert(3);
    for _ in 0..5 {
        net.commit_command(1);
    }
    let last = net.get(1).log().last_index();
    net.isolated.clear();
    net.get(1).transfer_leader(3).expect("transfer");
    net.settle();
    assert!(net.get(3).is_leader());
    assert!(net.get(3).log().last_index() >= last);
}

#[test]
fn a_transfer_to_a_dead_voter_is_abandoned_after_an_election_timeout() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    net.isolated.insert(3);
    net.commit_command(1);
    net.get(1).transfer_leader(3).expect("transfer");
    net.tick_all(usize::try_from(CoreConfig::default().election_timeout_max).expect("small"));
    assert!(net.get(1).is_leader(), "the old leader continues");
    assert_eq!(net.get(1).transferring_to(), None);
    net.get(1)
        .propose(Bytes::from_static(b"again"))
        .expect("accepts proposals again");
}

#[test]
fn only_a_voter_can_be_a_transfer_target_and_only_the_leader_sends_timeout_now() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.commit_command(1);
    net.get(1)
        .propose_conf_change(&ConfChange::AddLearner(4))
        .expect("change");
    assert_eq!(
        net.get(1).transfer_leader(4),
        Err(CoreError::Membership(raft_core::MembershipError::Unknown(
            4
        )))
    );
    assert!(matches!(
        net.get(2).transfer_leader(3),
        Err(CoreError::NotLeader { .. })
    ));
    // A TimeoutNow that does not come from this node's leader changes nothing.
    let term = net.get(2).term();
    net.get(2)
        .step(3, Message::TimeoutNow { term })
        .expect("step");
    assert_eq!(net.get(2).role(), Role::Follower);
    assert_eq!(net.get(2).term(), term);
}

#[test]
fn a_new_leader_finishes_an_unfinished_joint_change_on_its_own() {
    let (mut c, _) = joint_core(3);
    while !c.is_leader() {
        c.tick();
        let term = c.term() + u64::from(c.role() == Role::PreCandidate);
        for from in [1, 2, 4, 5] {
            let msg = if c.role() == Role::PreCandidate {
                Message::PreVoteResponse {
                    term,
                    granted: true,
                }
            } else {
                Message::RequestVoteResponse {
                    term,
                    granted: true,
                }
            };
            let _ = c.step(from, msg);
        }
    }
    // No client command: the leader appended a no-op because the change is unfinished.
    let last = c.log().last_index();
    assert_eq!(last, 2, "the joint entry, then the new leader's no-op");
    let term = c.term();
    for from in [1, 4] {
        let ack = Message::AppendEntriesResponse {
            term,
            index: last,
            reject: None,
        };
        c.step(from, ack).expect("step");
    }
    assert_eq!(c.commit_index(), last);
    assert!(!c.membership().is_joint(), "left the joint configuration");
    assert!(c.change_in_progress(), "until the leaving entry commits");
}

/// Thesis §4.2.2: a server that is not in its own latest configuration still campaigns
/// while that configuration is uncommitted, since it may be needed to commit it (it does
/// not count its own vote). Found by the simulator (seed 260 with membership events):
/// leader 1 of {1,2} appended "remove 1", lost leadership before it committed and, no
/// voter in its own configuration, never campaigned again; 2, still on {1,2}, needed 1's
/// vote, which 1 refused since 2's log lacked the configuration entry. No leader, ever.
#[test]
fn a_server_removed_by_an_uncommitted_configuration_still_campaigns() {
    let without_1 = Membership::with_voters([2]);
    let base = vec![Entry::new(1, 1, "a")];
    let mut with_entry = base.clone();
    with_entry.push(conf_entry(2, 1, &without_1));
    let mut net = Net {
        cores: [
            (1, core(1, &[1, 2], restored(1, with_entry))),
            (2, core(2, &[1, 2], restored(1, base))),
        ]
        .into_iter()
        .collect(),
        isolated: BTreeSet::new(),
    };
    assert_eq!(net.get(1).membership(), &without_1);
    net.tick_all(200);
    let c2 = net.get(2);
    assert_eq!(c2.membership(), &without_1, "the removal reached 2");
    assert!(c2.commit_index() >= 2, "and committed");
    net.tick_all(100);
    assert!(net.get(2).is_leader(), "2 leads its configuration alone");
    assert!(!net.get(1).is_leader());
}

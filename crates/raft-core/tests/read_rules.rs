//! The rules of linearizable reads without the log (ReadIndex, §6.4 of the thesis), one
//! rule per test, driving cores by hand.

use bytes::Bytes;
use raft_core::{
    CoreConfig, CoreError, Envelope, FailedRead, Message, RaftCore, ReadFailure, ReadState, Ready,
    RestoredState, Role, MAX_WIRE_VALUE,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::{BTreeMap, VecDeque};

type Core = RaftCore<ChaCha8Rng>;

/// A hand-driven cluster: Readys are taken explicitly, messages queue until delivered.
struct Net {
    nodes: BTreeMap<u64, Core>,
    queue: VecDeque<Envelope>,
    /// Everything handed over per node, accumulated.
    reads: BTreeMap<u64, Vec<ReadState>>,
    failed: BTreeMap<u64, Vec<FailedRead>>,
}

impl Net {
    fn new(ids: &[u64]) -> Net {
        let nodes = ids
            .iter()
            .map(|id| {
                // Figure 2's election (no pre-vote, no check-quorum), as in rules.rs: the
                // read rules do not depend on how a leader was elected, and `elect` below
                // ticks a node straight into candidacy.
                let config = CoreConfig {
                    pre_vote: false,
                    check_quorum: false,
                    ..CoreConfig::default()
                };
                let core = RaftCore::new(
                    *id,
                    ids,
                    config,
                    RestoredState::default(),
                    ChaCha8Rng::seed_from_u64(*id),
                )
                .expect("valid core");
                (*id, core)
            })
            .collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            reads: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    fn node(&mut self, id: u64) -> &mut Core {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Takes one node's Ready, queues its messages, records its reads.
    fn ready(&mut self, id: u64) -> Ready {
        let ready = self.node(id).take_ready();
        self.queue.extend(ready.messages.iter().cloned());
        self.reads
            .entry(id)
            .or_default()
            .extend(ready.read_states.iter().copied());
        self.failed
            .entry(id)
            .or_default()
            .extend(ready.failed_reads.iter().copied());
        ready
    }

    /// Delivers queued messages that `keep` accepts (the rest are dropped).
    fn deliver_if(&mut self, keep: impl Fn(&Envelope) -> bool) {
        while let Some(env) = self.queue.pop_front() {
            if keep(&env) {
                let _ = self.node(env.to).step(env.from, env.msg);
            }
        }
    }

    /// Readys and deliveries until nothing is left.
    fn stabilize(&mut self) {
        loop {
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in &ids {
                self.ready(*id);
            }
            if self.queue.is_empty() {
                return;
            }
            self.deliver_if(|_| true);
        }
    }

    /// Elects `id` and settles the cluster.
    fn elect(&mut self, id: u64) {
        for _ in 0..10_000 {
            if self.node(id).role() == Role::Candidate {
                break;
            }
            self.node(id).tick();
        }
        assert_eq!(self.node(id).role(), Role::Candidate, "never campaigned");
        self.stabilize();
        assert!(self.node(id).is_leader());
    }

    fn reads_of(&self, id: u64) -> Vec<ReadState> {
        self.reads.get(&id).cloned().unwrap_or_default()
    }

    fn failed_of(&self, id: u64) -> Vec<FailedRead> {
        self.failed.get(&id).cloned().unwrap_or_default()
    }
}

fn count(ready: &Ready, pred: impl Fn(&Message) -> bool) -> usize {
    ready.messages.iter().filter(|m| pred(&m.msg)).count()
}

fn is_read_heartbeat(m: &Message) -> bool {
    matches!(m, Message::ReadHeartbeat { .. })
}

/// A three-node cluster with leader 1 and one committed command of its term.
fn settled() -> Net {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.node(1)
        .propose(Bytes::from_static(b"w"))
        .expect("leader");
    net.stabilize();
    assert_eq!(net.node(1).commit_index(), 1);
    net
}

#[test]
fn a_read_is_not_answered_before_a_majority_confirms_this_leader_in_this_term() {
    let mut net = settled();
    let term = net.node(1).term();
    net.node(1).read_index(7).expect("leader");
    let ready = net.ready(1);
    assert!(
        ready.read_states.is_empty(),
        "answered before any heartbeat"
    );
    assert_eq!(count(&ready, is_read_heartbeat), 2);
    let round = match ready.messages[0].msg {
        Message::ReadHeartbeat { ctx, .. } => ctx,
        ref m => panic!("expected a read heartbeat, got {m:?}"),
    };
    net.queue.clear();
    // An acknowledgement of an earlier round, or of another term, confirms nothing.
    let stale = Message::ReadHeartbeatResponse {
        term,
        ctx: round - 1,
    };
    net.node(1).step(2, stale).expect("step");
    assert!(net.ready(1).read_states.is_empty());
    // A follower answering in a newer term deposes the leader: the read fails.
    let mut other = settled();
    other.node(1).read_index(7).expect("leader");
    other.ready(1);
    other
        .node(1)
        .step(
            2,
            Message::ReadHeartbeatResponse {
                term: term + 1,
                ctx: round,
            },
        )
        .expect("step");
    let r = other.ready(1);
    assert!(r.read_states.is_empty());
    assert_eq!(r.failed_reads[0].reason, ReadFailure::LeadershipLost);
    // One follower plus the leader is a majority of three.
    let ack = Message::ReadHeartbeatResponse { term, ctx: round };
    net.node(1).step(3, ack).expect("step");
    let ready = net.ready(1);
    assert_eq!(ready.read_states, vec![ReadState { ctx: 7, index: 1 }]);
}

#[test]
fn reads_queued_while_the_leader_loses_leadership_are_failed_never_answered() {
    let mut net = settled();
    net.node(1).read_index(1).expect("leader");
    net.node(1).read_index(2).expect("leader");
    // A read forwarded by follower 2 waits at the leader too.
    net.node(2)
        .read_index(3)
        .expect("follower knows its leader");
    net.ready(2);
    net.deliver_if(|e| e.to == 1);
    net.ready(1);
    net.queue.clear(); // the heartbeats are lost
    assert_eq!(net.node(1).pending_reads(), 3);
    // Node 3 is elected in a newer term; its heartbeat reaches the old leader.
    let term = net.node(1).term() + 1;
    let append = Message::AppendEntries {
        term,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![],
        leader_commit: 0,
    };
    net.node(1).step(3, append).expect("step");
    let ready = net.ready(1);
    assert!(ready.read_states.is_empty());
    let failed: Vec<u64> = ready.failed_reads.iter().map(|f| f.ctx).collect();
    assert_eq!(failed, vec![1, 2]);
    assert!(ready
        .failed_reads
        .iter()
        .all(|f| f.reason == ReadFailure::LeadershipLost));
    // The forwarded read is refused explicitly, so the follower fails it at once.
    net.deliver_if(|e| matches!(e.msg, Message::ReadIndexResponse { .. }));
    let ready = net.ready(2);
    assert_eq!(ready.failed_reads.len(), 1);
    assert_eq!(ready.failed_reads[0].ctx, 3);
    assert!(net.reads_of(2).is_empty() && net.reads_of(1).is_empty());
}

#[test]
fn a_new_leader_proposes_one_noop_lazily_and_answers_only_once_it_commits() {
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    // Undisturbed, a new leader appends nothing: indices stay the service's.
    assert_eq!(net.node(1).log().last_index(), 0);
    net.node(1).read_index(1).expect("leader");
    net.node(1).read_index(2).expect("leader");
    let ready = net.ready(1);
    assert_eq!(ready.entries.len(), 1, "one no-op for two reads");
    assert!(ready.entries[0].data.is_empty());
    assert_eq!(ready.entries[0].term, net.node(1).term());
    // The heartbeats are acknowledged but the no-op is not replicated yet: no answer.
    net.deliver_if(|e| is_read_heartbeat(&e.msg));
    net.ready(2);
    net.ready(3);
    net.deliver_if(|e| matches!(e.msg, Message::ReadHeartbeatResponse { .. }));
    assert!(net.ready(1).read_states.is_empty());
    net.queue.clear();
    // Once the no-op commits, both reads are answered at its index.
    net.node(1).tick();
    net.node(1).tick();
    net.stabilize();
    assert_eq!(
        net.reads_of(1),
        vec![
            ReadState { ctx: 1, index: 1 },
            ReadState { ctx: 2, index: 1 }
        ]
    );
    // A later read in the same term needs no other no-op.
    net.node(1).read_index(3).expect("leader");
    net.stabilize();
    assert_eq!(net.node(1).log().last_index(), 1);
    assert_eq!(net.reads_of(1).len(), 3);
    // The no-op is handed to the driver as an empty entry.
    assert!(net
        .node(2)
        .log()
        .entry(1)
        .is_some_and(|e| e.data.is_empty()));
}

#[test]
fn no_noop_when_an_entry_of_the_term_is_committed_or_on_its_way() {
    let mut net = settled();
    net.node(1).read_index(1).expect("leader");
    assert!(
        net.ready(1).entries.is_empty(),
        "the term's entry is committed"
    );
    let mut net = Net::new(&[1, 2, 3]);
    net.elect(1);
    net.node(1)
        .propose(Bytes::from_static(b"w"))
        .expect("leader");
    net.node(1).read_index(1).expect("leader");
    let ready = net.ready(1);
    assert_eq!(ready.entries.len(), 1, "the command is the term's entry");
    assert_eq!(&ready.entries[0].data[..], b"w");
    net.deliver_if(|_| true);
    net.stabilize();
    assert_eq!(net.reads_of(1), vec![ReadState { ctx: 1, index: 1 }]);
}

#[test]
fn a_follower_forwards_a_read_and_gets_the_read_index_back() {
    let mut net = settled();
    assert!(matches!(
        Net::new(&[1, 2, 3]).node(2).read_index(1),
        Err(CoreError::NotLeader { .. })
    ));
    net.node(2)
        .read_index(9)
        .expect("follower knows its leader");
    let ready = net.ready(2);
    assert!(matches!(
        ready.messages[..],
        [Envelope {
            to: 1,
            msg: Message::ReadIndex { ctx: 9, .. },
            ..
        }]
    ));
    net.stabilize();
    assert_eq!(net.reads_of(2), vec![ReadState { ctx: 9, index: 1 }]);
    // A duplicated answer is not a second answer.
    let term = net.node(1).term();
    let dup = Message::ReadIndexResponse {
        term,
        ctx: 9,
        index: Some(1),
    };
    net.node(2).step(1, dup).expect("step");
    assert!(net.ready(2).read_states.is_empty());
    // A node that is not the leader refuses a forwarded read.
    let fwd = Message::ReadIndex { term, ctx: 4 };
    net.node(3).step(2, fwd).expect("step");
    let ready = net.ready(3);
    assert!(matches!(
        ready.messages[0].msg,
        Message::ReadIndexResponse { index: None, .. }
    ));
    // The leader refuses a read forwarded by a server outside its configuration (a
    // removed one): it would wait forever for entries nobody sends it.
    net.node(1)
        .step(7, Message::ReadIndex { term, ctx: 5 })
        .expect("step");
    let ready = net.ready(1);
    assert!(
        ready.messages.iter().any(|e| e.to == 7
            && matches!(
                e.msg,
                Message::ReadIndexResponse {
                    ctx: 5,
                    index: None,
                    ..
                }
            )),
        "{:?}",
        ready.messages
    );
    assert_eq!(net.node(1).pending_reads(), 0);
}

#[test]
fn many_reads_share_one_round() {
    let mut net = settled();
    for ctx in 0..100 {
        net.node(1).read_index(ctx).expect("leader");
    }
    net.node(2).read_index(1000).expect("follower");
    net.ready(2);
    net.deliver_if(|_| true);
    let ready = net.ready(1);
    assert_eq!(count(&ready, is_read_heartbeat), 2, "one per follower");
    net.stabilize();
    assert_eq!(net.reads_of(1).len(), 100);
    assert_eq!(net.reads_of(2).len(), 1);
    assert!(net.reads_of(1).iter().all(|r| r.index == 1));
}

#[test]
fn unconfirmed_reads_are_retried_then_time_out() {
    let mut net = settled();
    net.node(1).read_index(1).expect("leader");
    net.ready(1);
    net.queue.clear();
    // The next heartbeat tick starts another round for the waiting read.
    let hb = CoreConfig::default().heartbeat_ticks;
    for _ in 0..hb {
        net.node(1).tick();
    }
    assert_eq!(count(&net.ready(1), is_read_heartbeat), 2);
    net.queue.clear();
    for _ in 0..CoreConfig::default().election_timeout_max {
        net.node(1).tick();
    }
    net.ready(1);
    assert_eq!(
        net.failed_of(1),
        vec![FailedRead {
            ctx: 1,
            reason: ReadFailure::TimedOut
        }]
    );
    assert_eq!(net.node(1).pending_reads(), 0);
}

#[test]
fn a_single_node_answers_at_once() {
    let mut net = Net::new(&[1]);
    while !net.node(1).is_leader() {
        net.node(1).tick();
    }
    net.ready(1);
    net.node(1).read_index(5).expect("leader");
    let ready = net.ready(1);
    assert_eq!(ready.read_states, vec![ReadState { ctx: 5, index: 1 }]);
    assert_eq!(ready.committed.len(), 1, "the no-op commits at once");
}

#[test]
fn empty_commands_and_bad_read_messages_are_refused() {
    let mut net = settled();
    assert_eq!(
        net.node(1).propose(Bytes::new()),
        Err(CoreError::EmptyCommand)
    );
    let bad = Message::ReadIndexResponse {
        term: 1,
        ctx: 0,
        index: Some(MAX_WIRE_VALUE + 1),
    };
    assert!(bad.validate().is_err());
    assert!(matches!(
        net.node(2).step(1, bad),
        Err(CoreError::MalformedMessage(_))
    ));
    assert!(Message::ReadHeartbeat { term: 1, ctx: 3 }.expects_response());
    assert!(!Message::ReadIndex { term: 1, ctx: 3 }.expects_response());
    assert!(!Message::ReadIndexResponse {
        term: 1,
        ctx: 3,
        index: None
    }
    .is_response());
}

#[test]
fn an_answer_to_an_older_terms_round_confirms_nothing() {
    // Leader 1 of term 1 reaches round 5; node 3 then moves to term 2 and node 1, restarted,
    // leads term 2 and starts its rounds from 1 again. A late heartbeat of the old round
    // 5 reaching node 3 is answered in term 2 — and must not confirm round 5 of term 2.
    let mut net = settled();
    let old_term = net.node(1).term();
    net.node(3)
        .step(
            2,
            Message::RequestVote {
                term: old_term + 1,
                last_log_index: 1,
                last_log_term: old_term,
            },
        )
        .expect("step");
    net.ready(3);
    net.queue.clear();
    let late = Message::ReadHeartbeat {
        term: old_term,
        ctx: 5,
    };
    net.node(3).step(1, late).expect("step");
    let ready = net.ready(3);
    assert_eq!(
        ready.messages[0].msg,
        Message::ReadHeartbeatResponse {
            term: old_term + 1,
            ctx: 0
        }
    );
}

//! Flow control under a slow, duplicating or lossy link: how many messages a scenario
//! costs, and how many are in flight at once. These are the properties the safety
//! invariants cannot see: a leader that sends every snapshot chunk a hundred times is
//! still correct, only useless over a real network.

use bytes::Bytes;
use raft_core::{CoreConfig, Envelope, Message, RaftCore, RestoredState, SnapshotMeta};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::BTreeMap;

type Core = RaftCore<ChaCha8Rng>;

/// What happens to a message on the link.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Deliver,
    Duplicate,
    Drop,
}

/// Nodes 1 (leader, log compacted through 8 with a snapshot of `snapshot_len` bytes), 2
/// (empty) and 3 (unreachable, so that node 1 needs node 2 for nothing but the transfer).
struct Net {
    nodes: BTreeMap<u64, Core>,
    /// (delivery tick, sequence, message)
    queue: Vec<(u64, u64, Envelope)>,
    now: u64,
    seq: u64,
    delay: u64,
    chunks_sent: u64,
    max_chunks_in_flight: usize,
    max_appends_in_flight: usize,
}

fn config(chunk: usize, heartbeat: u32) -> CoreConfig {
    CoreConfig {
        heartbeat_ticks: heartbeat,
        election_timeout_min: 50,
        election_timeout_max: 100,
        snapshot_chunk_bytes: chunk,
        // Flow control, not elections, is under test: the leader is elected the classic
        // way, by one vote, and node 3 stays silent without deposing it.
        pre_vote: false,
        check_quorum: false,
        ..CoreConfig::default()
    }
}

impl Net {
    fn with_snapshot(cfg: CoreConfig, snapshot_len: usize, delay: u64) -> Net {
        let snapshot = SnapshotMeta { index: 8, term: 1 };
        let leader_state = RestoredState {
            snapshot,
            snapshot_data: Bytes::from(vec![b's'; snapshot_len]),
            ..RestoredState::default()
        };
        let mut leader = RaftCore::new(
            1,
            &[1, 2, 3],
            cfg.clone(),
            leader_state,
            ChaCha8Rng::seed_from_u64(1),
        )
        .expect("core");
        while !leader.is_leader() {
            leader.tick();
            if leader.role() == raft_core::Role::Candidate {
                let term = leader.term();
                leader
                    .step(
                        3,
                        Message::RequestVoteResponse {
                            term,
                            granted: true,
                        },
                    )
                    .expect("vote");
            }
        }
        let follower = RaftCore::new(
            2,
            &[1, 2, 3],
            cfg,
            RestoredState::default(),
            ChaCha8Rng::seed_from_u64(2),
        )
        .expect("core");
        let mut net = Net {
            nodes: BTreeMap::from([(1, leader), (2, follower)]),
            queue: Vec::new(),
            now: 0,
            seq: 0,
            delay,
            chunks_sent: 0,
            max_chunks_in_flight: 0,
            max_appends_in_flight: 0,
        };
        net.collect(&mut |_| Fate::Deliver);
        net
    }

    fn collect(&mut self, fate: &mut dyn FnMut(&Envelope) -> Fate) {
        for id in [1, 2] {
            let Some(core) = self.nodes.get_mut(&id) else {
                continue;
            };
            let ready = core.take_ready();
            for env in ready.messages {
                if env.to == 3 {
                    continue;
                }
                if matches!(env.msg, Message::InstallSnapshot { .. }) {
                    self.chunks_sent += 1;
                }
                let copies = match fate(&env) {
                    Fate::Drop => 0,
                    Fate::Deliver => 1,
                    Fate::Duplicate => 2,
                };
                for _ in 0..copies {
                    self.seq += 1;
                    self.queue
                        .push((self.now + self.delay, self.seq, env.clone()));
                }
            }
        }
        let in_flight = |pred: &dyn Fn(&Message) -> bool| {
            self.queue
                .iter()
                .filter(|(_, _, e)| e.to == 2 && pred(&e.msg))
                .count()
        };
        let chunks = in_flight(&|m| matches!(m, Message::InstallSnapshot { .. }));
        let appends = in_flight(
            &|m| matches!(m, Message::AppendEntries { entries, .. } if !entries.is_empty()),
        );
        self.max_chunks_in_flight = self.max_chunks_in_flight.max(chunks);
        self.max_appends_in_flight = self.max_appends_in_flight.max(appends);
    }

    /// One tick of time: both nodes tick, due messages are delivered in order.
    fn tick(&mut self, fate: &mut dyn FnMut(&Envelope) -> Fate) {
        self.now += 1;
        for core in self.nodes.values_mut() {
            core.tick();
        }
        self.collect(fate);
        self.queue.sort_by_key(|(at, seq, _)| (*at, *seq));
        while self.queue.first().is_some_and(|(at, _, _)| *at <= self.now) {
            let (_, _, env) = self.queue.remove(0);
            if let Some(core) = self.nodes.get_mut(&env.to) {
                core.step(env.from, env.msg).expect("valid message");
            }
            self.collect(fate);
        }
    }

    fn follower_has_snapshot(&self) -> bool {
        self.nodes[&2].log().snapshot().index == 8
    }

    fn run_until_installed(&mut self, max_ticks: u64, fate: &mut dyn FnMut(&Envelope) -> Fate) {
        while !self.follower_has_snapshot() {
            assert!(
                self.now < max_ticks,
                "transfer did not finish in {max_ticks} ticks ({} chunks sent)",
                self.chunks_sent
            );
            self.tick(fate);
        }
        println!(
            "installed at tick {}: {} chunks sent, at most {} in flight",
            self.now, self.chunks_sent, self.max_chunks_in_flight
        );
    }
}

/// The review's scenario: a 100-chunk snapshot, a heartbeat every 2 ticks and a one-way
/// delay of 2 ticks. Before the fix every heartbeat started another stream of chunks:
/// about 10,000 chunks were sent for a transfer of 100, with 100 in flight at once.
#[test]
fn a_slow_link_gets_each_snapshot_chunk_about_once() {
    let cfg = config(10, 2);
    let window = cfg.max_inflight_msgs;
    let mut net = Net::with_snapshot(cfg, 1000, 2);
    net.run_until_installed(2_000, &mut |_| Fate::Deliver);
    assert!(
        net.chunks_sent <= 110,
        "{} chunks sent for a 100-chunk snapshot",
        net.chunks_sent
    );
    assert!(
        net.max_chunks_in_flight <= window,
        "{} chunks in flight, window {window}",
        net.max_chunks_in_flight
    );
}

/// Every message duplicated: each duplicate is answered, and no answer starts another
/// stream.
#[test]
fn duplicated_chunks_and_answers_start_no_second_stream() {
    let cfg = CoreConfig {
        max_inflight_msgs: 4,
        ..config(10, 2)
    };
    let mut net = Net::with_snapshot(cfg, 1000, 2);
    net.run_until_installed(2_000, &mut |_| Fate::Duplicate);
    assert!(
        net.chunks_sent <= 110,
        "{} chunks sent for a 100-chunk snapshot",
        net.chunks_sent
    );
    assert!(
        net.max_chunks_in_flight <= 2 * 4,
        "{} chunk copies in flight, window 4 (each sent once, duplicated)",
        net.max_chunks_in_flight
    );
}

/// Every 7th chunk is lost the first time it is sent: each loss costs a rewind to the
/// lost chunk, so the transfer finishes with a bounded number of resends.
#[test]
fn lost_chunks_are_resent_and_the_transfer_finishes() {
    let cfg = CoreConfig {
        max_inflight_msgs: 4,
        ..config(10, 2)
    };
    let mut net = Net::with_snapshot(cfg, 1000, 2);
    let mut seen = std::collections::BTreeSet::new();
    let mut n = 0u64;
    net.run_until_installed(5_000, &mut |env| match &env.msg {
        Message::InstallSnapshot { offset, .. } if seen.insert(*offset) => {
            n += 1;
            if n.is_multiple_of(7) {
                Fate::Drop
            } else {
                Fate::Deliver
            }
        }
        _ => Fate::Deliver,
    });
    // 100 chunks, 14 of them lost once; each loss resends at most the window.
    assert!(
        net.chunks_sent <= 100 + 14 * 4 + 4,
        "{} chunks sent",
        net.chunks_sent
    );
    assert_eq!(net.nodes[&2].snapshot().data.len(), 1000);
}

/// Ten proposals between two Readies: one AppendEntries per follower, not ten.
#[test]
fn a_burst_of_proposals_is_one_message_per_follower() {
    let mut net = Net::with_snapshot(config(1 << 10, 2), 10, 1);
    net.run_until_installed(100, &mut |_| Fate::Deliver);
    for _ in 0..10 {
        net.tick(&mut |_| Fate::Deliver);
    }
    let leader = net.nodes.get_mut(&1).expect("leader");
    for i in 0..10u8 {
        leader.propose(Bytes::from(vec![i])).expect("leader");
    }
    let ready = leader.take_ready();
    let to_2: Vec<_> = ready.messages.iter().filter(|m| m.to == 2).collect();
    assert_eq!(to_2.len(), 1, "{to_2:?}");
    assert!(matches!(&to_2[0].msg, Message::AppendEntries { entries, .. } if entries.len() == 10));
}

//! The rules of lease reads (LeaseGuard: "the log is the lease"), one rule per test,
//! driving cores by hand with hand-set clocks. Time unit: microseconds, 1 000 per tick.

use bytes::Bytes;
use raft_core::{
    CoreConfig, CoreError, Envelope, LeaseRead, Message, RaftCore, ReadMode, ReadState, Ready,
    RestoredState, Role,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::{BTreeMap, VecDeque};

type Core = RaftCore<ChaCha8Rng>;

const TICK: u64 = 1_000;
const DURATION: u64 = 6_000;
const UNCERTAINTY: u64 = 1_000;

fn lease_cfg(pre_vote: bool, check_quorum: bool) -> CoreConfig {
    CoreConfig {
        pre_vote,
        check_quorum,
        read_mode: ReadMode::Lease {
            duration: DURATION,
            uncertainty: UNCERTAINTY,
            units_per_tick: TICK,
        },
        ..CoreConfig::default()
    }
}

struct Net {
    nodes: BTreeMap<u64, Core>,
    queue: VecDeque<Envelope>,
    reads: BTreeMap<u64, Vec<ReadState>>,
}

impl Net {
    fn new(ids: &[u64], cfg: CoreConfig) -> Net {
        let nodes = ids
            .iter()
            .map(|id| {
                let core = RaftCore::new(
                    *id,
                    ids,
                    cfg.clone(),
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
        }
    }

    fn node(&mut self, id: u64) -> &mut Core {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Every node's clock reads `now` (no error).
    fn set_time(&mut self, now: u64) {
        for core in self.nodes.values_mut() {
            core.set_time(now);
        }
    }

    fn ready(&mut self, id: u64) -> Ready {
        let ready = self.node(id).take_ready();
        self.queue.extend(ready.messages.iter().cloned());
        self.reads
            .entry(id)
            .or_default()
            .extend(ready.read_states.iter().copied());
        ready
    }

    /// Readys and deliveries (of messages `keep` accepts) until nothing is left.
    fn stabilize_if(&mut self, keep: impl Fn(&Envelope) -> bool) {
        loop {
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in &ids {
                self.ready(*id);
            }
            if self.queue.is_empty() {
                return;
            }
            while let Some(env) = self.queue.pop_front() {
                if keep(&env) {
                    let _ = self.node(env.to).step(env.from, env.msg);
                }
            }
        }
    }

    fn stabilize(&mut self) {
        self.stabilize_if(|_| true);
    }

    /// Ticks `id` into candidacy (no pre-vote in these configs) and settles among the
    /// nodes `keep` lets talk.
    fn elect_if(&mut self, id: u64, keep: impl Fn(&Envelope) -> bool) {
        for _ in 0..1_000 {
            if self.node(id).role() == Role::Candidate {
                break;
            }
            self.node(id).tick();
        }
        assert_eq!(self.node(id).role(), Role::Candidate, "never campaigned");
        self.stabilize_if(keep);
        assert!(self.node(id).is_leader());
    }

    fn reads_of(&self, id: u64) -> Vec<ReadState> {
        self.reads.get(&id).cloned().unwrap_or_default()
    }
}

fn count(ready: &Ready, pred: impl Fn(&Message) -> bool) -> usize {
    ready.messages.iter().filter(|m| pred(&m.msg)).count()
}

fn is_read_heartbeat(m: &Message) -> bool {
    matches!(m, Message::ReadHeartbeat { .. })
}

/// Leader 1 elected at time 0, one command of its term committed, stamped at `at`.
fn leased(at: u64) -> Net {
    let mut net = Net::new(&[1, 2, 3], lease_cfg(false, false));
    net.elect_if(1, |_| true);
    net.set_time(at);
    net.node(1)
        .propose(Bytes::from_static(b"w"))
        .expect("leader");
    net.stabilize();
    assert_eq!(net.node(1).commit_index(), 1);
    assert_eq!(net.node(1).log().entry(1).map(|e| e.timestamp), Some(at));
    net
}

#[test]
fn committing_an_entry_of_its_term_grants_the_leader_a_lease_and_reads_need_no_messages() {
    let mut net = leased(5_000);
    net.set_time(5_000 + DURATION - UNCERTAINTY - 1);
    assert_eq!(
        net.node(1).lease_read(),
        Some(LeaseRead {
            index: 1,
            limbo: None
        })
    );
    net.node(1).read_index(7).expect("leader");
    let ready = net.ready(1);
    assert_eq!(
        count(&ready, is_read_heartbeat),
        0,
        "a lease read sends nothing"
    );
    assert_eq!(ready.read_states, vec![ReadState { ctx: 7, index: 1 }]);
    // A follower's forwarded read is answered from the lease too.
    net.node(2).read_index(8).expect("knows its leader");
    net.stabilize();
    assert_eq!(net.reads_of(2), vec![ReadState { ctx: 8, index: 1 }]);
}

#[test]
fn without_a_valid_lease_reads_fall_back_to_read_index_and_renew_the_lease() {
    let mut net = leased(5_000);
    // The lease ends `uncertainty` before timestamp + duration, by the leader's clock.
    net.set_time(5_000 + DURATION - UNCERTAINTY);
    assert_eq!(net.node(1).lease_read(), None);
    net.node(1).read_index(7).expect("leader");
    let ready = net.ready(1);
    assert!(ready.read_states.is_empty(), "no answer without a lease");
    assert_eq!(
        count(&ready, is_read_heartbeat),
        2,
        "ReadIndex's round instead"
    );
    // The read appended a no-op that renews the lease once it commits.
    assert_eq!(net.node(1).log().last_index(), 2);
    net.stabilize();
    // The read index is the commit index when the read arrived.
    assert_eq!(net.reads_of(1), vec![ReadState { ctx: 7, index: 1 }]);
    assert!(net.node(1).lease_read().is_some(), "renewed by the no-op");
    // ReadIndex mode never has a lease.
    let cfg = CoreConfig {
        pre_vote: false,
        check_quorum: false,
        ..CoreConfig::default()
    };
    let mut plain = Net::new(&[1, 2, 3], cfg);
    plain.set_time(5_000);
    plain.elect_if(1, |_| true);
    plain
        .node(1)
        .propose(Bytes::from_static(b"w"))
        .expect("leader");
    plain.stabilize();
    assert_eq!(plain.node(1).lease_read(), None);
    assert_eq!(plain.node(1).log().entry(1).map(|e| e.timestamp), Some(0));
}

#[test]
fn a_new_leader_defers_commit_past_a_deposed_leaders_entries_until_its_lease_expired() {
    let mut net = leased(5_000);
    // Leader 1 appends w2 at 6 000; it reaches 2 and 3, their answers are lost: 1 never
    // learns it committed, and 2 and 3 never learn it either.
    net.set_time(6_000);
    net.node(1)
        .propose(Bytes::from_static(b"w2"))
        .expect("leader");
    net.stabilize_if(|e| e.from == 1);
    assert_eq!(net.node(2).log().last_index(), 2);
    // 1 is cut off; 2's timer runs fast (timers are not trusted): it is elected at 6 500.
    net.set_time(6_500);
    net.elect_if(2, |e| e.from != 1 && e.to != 1);
    net.set_time(6_500);
    assert_eq!(net.node(2).commit_index(), 1);
    assert_eq!(net.node(2).limbo(), Some((2, 2)));
    assert_eq!(net.node(2).limbo_entries().len(), 1);
    net.node(2)
        .propose(Bytes::from_static(b"x"))
        .expect("leader");
    net.stabilize_if(|e| e.from != 1 && e.to != 1);
    assert_eq!(
        net.node(3).log().last_index(),
        3,
        "writes are replicated at once"
    );
    assert_eq!(net.node(2).commit_index(), 1, "but not committed");
    // Leader 1 may serve reads while its clock < 6 000 + duration - uncertainty; true time
    // may then be up to 6 000 + duration + uncertainty... minus its own clock error: the
    // new leader waits until its clock passes max timestamp + duration + uncertainty.
    let deadline = 6_000 + DURATION + UNCERTAINTY;
    net.set_time(deadline);
    net.stabilize_if(|e| e.from != 1 && e.to != 1);
    assert_eq!(net.node(2).commit_index(), 1, "not at the deadline itself");
    net.set_time(deadline + 1);
    net.stabilize_if(|e| e.from != 1 && e.to != 1);
    assert_eq!(
        net.node(2).commit_index(),
        3,
        "commits once the lease expired"
    );
    assert_eq!(net.node(2).limbo(), None);
    assert_eq!(
        net.node(2).lease_read(),
        None,
        "its own lease started at 6 500"
    );
}

#[test]
fn a_new_leader_defers_commit_even_when_every_earlier_entry_is_known_committed() {
    // The deposed leader's last entry is committed everywhere: no limbo, but its lease
    // (from that entry) still runs, so the new leader's first write must wait for it.
    let mut net = leased(5_000);
    net.node(1)
        .propose(Bytes::from_static(b"w2"))
        .expect("leader");
    net.stabilize();
    assert_eq!(net.node(2).commit_index(), 1);
    net.set_time(6_000);
    net.node(1).tick();
    net.node(1).tick();
    net.stabilize();
    assert_eq!(
        net.node(2).commit_index(),
        2,
        "the heartbeat carried the commit"
    );
    net.elect_if(2, |e| e.from != 1 && e.to != 1);
    net.set_time(6_000);
    assert_eq!(net.node(2).limbo(), None);
    net.node(2)
        .propose(Bytes::from_static(b"x"))
        .expect("leader");
    net.stabilize_if(|e| e.from != 1 && e.to != 1);
    assert_eq!(net.node(2).commit_index(), 2, "deferred without limbo too");
    net.set_time(5_000 + DURATION + UNCERTAINTY + 1);
    net.stabilize_if(|e| e.from != 1 && e.to != 1);
    assert_eq!(net.node(2).commit_index(), 3);
}

#[test]
fn a_new_leader_inherits_the_lease_for_keys_outside_limbo_only() {
    let mut net = leased(5_000);
    net.set_time(5_500);
    net.node(1)
        .propose(Bytes::from_static(b"w2"))
        .expect("leader");
    net.stabilize_if(|e| e.from == 1);
    net.set_time(6_000);
    net.elect_if(2, |e| e.from != 1 && e.to != 1);
    net.set_time(6_000);
    // Commit index 1, stamped at 5 000 by leader 1: the inherited lease runs while the
    // clock is below 5 000 + duration - uncertainty, and only for keys entry 2 misses.
    assert_eq!(
        net.node(2).lease_read(),
        Some(LeaseRead {
            index: 1,
            limbo: Some((2, 2))
        })
    );
    assert_eq!(
        net.node(2).limbo_entries()[0].data,
        Bytes::from_static(b"w2")
    );
    // A read of one key: answered at once when no limbo entry touches it, never when one
    // does (that entry may have been committed, and acknowledged, by leader 1).
    assert_eq!(net.node(2).lease_read_for(|cmd| cmd == b"w1"), Some(1));
    assert_eq!(
        net.node(2).lease_read_for(|cmd| cmd == b"w2"),
        None,
        "a key a limbo entry writes is not read under the inherited lease"
    );
    // read_index knows no keys: it does not use an inherited lease with limbo entries.
    net.node(2).read_index(9).expect("leader");
    let ready = net.ready(2);
    assert!(ready.read_states.is_empty());
    net.set_time(5_000 + DURATION - UNCERTAINTY);
    assert_eq!(
        net.node(2).lease_read(),
        None,
        "the inherited lease expired"
    );
    assert_eq!(net.node(2).lease_read_for(|_| false), None);
}

#[test]
fn a_lease_expires_before_an_election_timeout_can_elect_another_leader_even_with_drift() {
    // The worst case for the old leader: its clock is `uncertainty` ahead when it stamps the
    // entry and `uncertainty` behind afterwards; the followers' clocks are ahead. Timers
    // run at true speed. Whatever the election settings, the last lease read happens
    // before any other node becomes leader, and that leader commits later still.
    for (pre_vote, check_quorum) in [(false, false), (true, true), (true, false)] {
        let mut net = Net::new(&[1, 2, 3], lease_cfg(pre_vote, check_quorum));
        let mut now = 0u64;
        // Elect someone by ticking the whole cluster in true time.
        loop {
            now += TICK;
            net.set_time(now);
            for id in [1, 2, 3] {
                net.node(id).tick();
            }
            net.stabilize();
            if net.nodes.values().any(|c| c.is_leader()) {
                break; // whoever won is the leader studied
            }
        }
        let old = *net
            .nodes
            .iter()
            .find(|(_, c)| c.is_leader())
            .map(|(id, _)| id)
            .expect("a leader");
        let t0 = now;
        net.node(old).set_time(t0 + UNCERTAINTY);
        net.node(old)
            .propose(Bytes::from_static(b"w"))
            .expect("leader");
        net.stabilize();
        assert!(net.node(old).lease_read().is_some());
        // Cut the old leader off and let true time run in steps of 100 us.
        let mut last_lease = None;
        let mut new_leader_at = None;
        let mut new_commit_at = None;
        let step = 100;
        let mut since_tick = 0;
        for k in 1..=400u64 {
            let t = t0 + k * step;
            net.node(old).set_time(t - UNCERTAINTY);
            if net.node(old).lease_read().is_some() {
                last_lease = Some(t);
            }
            for id in [1, 2, 3] {
                if id != old {
                    net.node(id).set_time(t + UNCERTAINTY);
                }
            }
            since_tick += step;
            if since_tick == TICK {
                since_tick = 0;
                for id in [1, 2, 3] {
                    net.node(id).tick();
                }
            }
            let before = new_leader_at.is_none();
            net.stabilize_if(|e| e.from != old && e.to != old);
            for id in [1, 2, 3] {
                if id != old && net.node(id).is_leader() {
                    if before {
                        new_leader_at = Some(t);
                        let _ = net.node(id).propose(Bytes::from_static(b"x"));
                    } else if new_commit_at.is_none() && net.node(id).commit_index() > 1 {
                        new_commit_at = Some(t);
                    }
                }
            }
        }
        let last_lease = last_lease.expect("the old leader had a lease");
        let elected = new_leader_at.expect("a new leader within 40 ms");
        assert!(
            last_lease < elected,
            "lease read at {last_lease} after a new leader at {elected}"
        );
        assert!(last_lease < t0 + DURATION + UNCERTAINTY);
        if let Some(c) = new_commit_at {
            assert!(c > last_lease);
        }
    }
}

#[test]
fn config_validation_refuses_a_lease_not_below_the_election_timeout_by_the_uncertainty() {
    let with = |duration, uncertainty| CoreConfig {
        read_mode: ReadMode::Lease {
            duration,
            uncertainty,
            units_per_tick: TICK,
        },
        ..CoreConfig::default()
    };
    // election_timeout_min is 10 ticks = 10 000 us.
    assert!(with(8_999, 1_000).validate().is_ok());
    for (d, u) in [
        (9_000, 1_000),
        (10_000, 0),
        (9_500, 1_000),
        (1_000, 1_000),
        (0, 0),
    ] {
        assert!(
            matches!(with(d, u).validate(), Err(CoreError::InvalidConfig(_))),
            "duration {d}, uncertainty {u} accepted"
        );
    }
    let no_tick = CoreConfig {
        read_mode: ReadMode::Lease {
            duration: 5,
            uncertainty: 1,
            units_per_tick: 0,
        },
        ..CoreConfig::default()
    };
    assert!(no_tick.validate().is_err());
}

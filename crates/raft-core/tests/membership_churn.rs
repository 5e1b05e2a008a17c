//! Random membership churn on five cores under message loss and partitions, checked
//! after every step: at most one leader per term, across all configurations; committed
//! entries never differ between nodes; every configuration a node uses is one its log
//! (or snapshot) holds. Deterministic: a fixed list of seeds.

use bytes::Bytes;
use raft_core::{ConfChange, CoreConfig, EntryKind, Membership, NodeId, RaftCore, RestoredState};
use rand_chacha::{
    rand_core::{RngCore, SeedableRng},
    ChaCha8Rng,
};
use std::collections::{BTreeMap, BTreeSet};

type Core = RaftCore<ChaCha8Rng>;

const IDS: [NodeId; 5] = [1, 2, 3, 4, 5];

fn start(seed: u64) -> BTreeMap<NodeId, Core> {
    IDS.iter()
        .map(|&id| {
            let rng = ChaCha8Rng::seed_from_u64(seed * 31 + id);
            let core = if id <= 3 {
                RaftCore::new(
                    id,
                    &[1, 2, 3],
                    CoreConfig::default(),
                    RestoredState::default(),
                    rng,
                )
            } else {
                RaftCore::joining(id, CoreConfig::default(), RestoredState::default(), rng)
            };
            (id, core.expect("core"))
        })
        .collect()
}

fn run(seed: u64, steps: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut cores = start(seed);
    let mut cut: BTreeSet<NodeId> = BTreeSet::new();
    let mut leaders: BTreeMap<u64, NodeId> = BTreeMap::new();
    let mut changes = 0;
    let mut x = 0u64;
    for step in 0..steps {
        let roll = rng.next_u64() % 100;
        let leader = cores.values().find(|c| c.is_leader()).map(|c| c.id());
        match (roll, leader) {
            (0..=59, _) => cores.values_mut().for_each(|c| c.tick()),
            (60..=74, Some(l)) => {
                x += 1;
                let _ = cores
                    .get_mut(&l)
                    .map(|c| c.propose(Bytes::from(x.to_le_bytes().to_vec())));
            }
            (75..=89, Some(l)) => {
                let id = IDS[(rng.next_u64() % 5) as usize];
                let c = cores.get_mut(&l).expect("leader");
                let change = match rng.next_u64() % 4 {
                    0 => ConfChange::AddLearner(id),
                    1 => ConfChange::AddVoter(id),
                    2 => ConfChange::Remove(id),
                    _ => {
                        let voters: BTreeSet<NodeId> = IDS
                            .iter()
                            .copied()
                            .filter(|_| rng.next_u64().is_multiple_of(2))
                            .collect();
                        ConfChange::EnterJoint(voters)
                    }
                };
                if c.propose_conf_change(&change).is_ok() {
                    changes += 1;
                }
            }
            (90..=94, _) => {
                let id = IDS[(rng.next_u64() % 5) as usize];
                if !cut.remove(&id) {
                    cut.insert(id);
                }
            }
            _ => cut.clear(),
        }
        deliver(&mut cores, &cut, &mut rng);
        check(seed, step, &cores, &mut leaders);
    }
    assert!(
        changes >= 5,
        "seed {seed}: only {changes} changes were made"
    );
    assert!(leaders.len() >= 2, "seed {seed}: leadership never moved");
}

/// Delivers messages until none is left, losing one in ten and any to or from a cut node.
fn deliver(cores: &mut BTreeMap<NodeId, Core>, cut: &BTreeSet<NodeId>, rng: &mut ChaCha8Rng) {
    for _ in 0..50 {
        let mut msgs = Vec::new();
        for c in cores.values_mut() {
            msgs.extend(c.take_ready().messages);
        }
        if msgs.is_empty() {
            return;
        }
        for env in msgs {
            if cut.contains(&env.from) || cut.contains(&env.to) || rng.next_u64().is_multiple_of(10)
            {
                continue;
            }
            if let Some(c) = cores.get_mut(&env.to) {
                let _ = c.step(env.from, env.msg);
            }
        }
    }
}

fn check(
    seed: u64,
    step: usize,
    cores: &BTreeMap<NodeId, Core>,
    leaders: &mut BTreeMap<u64, NodeId>,
) {
    for c in cores.values().filter(|c| c.is_leader()) {
        let prev = leaders.entry(c.term()).or_insert(c.id());
        assert_eq!(
            *prev,
            c.id(),
            "seed {seed} step {step}: two leaders in term {}",
            c.term()
        );
    }
    for a in cores.values() {
        // The configuration in force is the one the log's last configuration entry holds.
        let log = a.log();
        let from_log = (log.first_index()..=log.last_index())
            .rev()
            .filter_map(|i| log.entry(i))
            .find(|e| e.kind == EntryKind::Config)
            .and_then(|e| Membership::decode(&e.data));
        if let Some(m) = from_log {
            assert_eq!(
                a.membership(),
                &m,
                "seed {seed} step {step}: node {}",
                a.id()
            );
        }
        for b in cores.values() {
            let upto = a.commit_index().min(b.commit_index());
            let from = a.log().first_index().max(b.log().first_index());
            for i in from..=upto {
                assert_eq!(
                    a.log().term(i),
                    b.log().term(i),
                    "seed {seed} step {step}: nodes {} and {} differ at committed {i}",
                    a.id(),
                    b.id()
                );
            }
        }
    }
}

#[test]
fn random_membership_churn_keeps_every_safety_property() {
    for seed in 0..20 {
        run(seed, 1500);
    }
}

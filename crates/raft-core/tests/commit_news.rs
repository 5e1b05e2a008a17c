//! How a follower that asked for a read index hears that it is committed. Its service
//! answers the read once it has applied through the read index, and it applies only what
//! it knows is committed; if it learned that from the next heartbeat, every linearizable
//! read served by a follower would wait up to a heartbeat interval. The leader tells it
//! in the next `Ready` instead (with an empty AppendEntries if no entries go to it
//! anyway), or, while messages to it are in flight, as soon as it answers them. Writes
//! alone cost no extra message: followers hear of their commits with the next entries
//! or heartbeat, as before (the classic suite's RPC budget counts them).

use bytes::Bytes;
use raft_core::{CoreConfig, Envelope, Message, RaftCore, ReadState, RestoredState};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

type Core = RaftCore<ChaCha8Rng>;

fn node(id: u64) -> Core {
    let cfg = CoreConfig {
        pre_vote: false,
        check_quorum: false,
        ..CoreConfig::default()
    };
    RaftCore::new(
        id,
        &[1, 2, 3],
        cfg,
        RestoredState::default(),
        ChaCha8Rng::seed_from_u64(id),
    )
    .expect("valid core")
}

/// Node 1 leads nodes 2 and 3; every message so far is delivered and answered.
fn cluster() -> Vec<Core> {
    let mut nodes = vec![node(1), node(2), node(3)];
    while !nodes[0].is_leader() {
        nodes[0].tick();
        if nodes[0].role() == raft_core::Role::Candidate {
            let term = nodes[0].term();
            let vote = Message::RequestVoteResponse {
                term,
                granted: true,
            };
            nodes[0].step(2, vote).expect("vote");
        }
    }
    let out = nodes[0].take_ready().messages;
    deliver_all(&mut nodes, out, |_| false);
    nodes
}

/// Delivers `msgs` and everything they cause, until the cluster is quiet, except the
/// messages `hold` picks (returned); and the reads confirmed on the way, by node.
fn deliver_all(
    nodes: &mut [Core],
    mut msgs: Vec<Envelope>,
    hold: impl Fn(&Envelope) -> bool,
) -> (Vec<Envelope>, Vec<(u64, ReadState)>) {
    let (mut held, mut reads) = (Vec::new(), Vec::new());
    while !msgs.is_empty() {
        for env in std::mem::take(&mut msgs) {
            if hold(&env) {
                held.push(env);
            } else {
                deliver(nodes, env);
            }
        }
        for n in nodes.iter_mut() {
            let ready = n.take_ready();
            msgs.extend(ready.messages);
            reads.extend(ready.read_states.into_iter().map(|r| (n.id(), r)));
        }
    }
    (held, reads)
}

fn deliver(nodes: &mut [Core], env: Envelope) {
    let to = usize::try_from(env.to - 1).expect("small id");
    nodes[to].step(env.from, env.msg).expect("valid message");
}

/// The commit index of each empty AppendEntries in `msgs` to `to`.
fn commit_told(msgs: &[Envelope], to: u64) -> Vec<u64> {
    msgs.iter()
        .filter(|e| e.to == to)
        .filter_map(|e| match &e.msg {
            Message::AppendEntries {
                entries,
                leader_commit,
                ..
            } if entries.is_empty() => Some(*leader_commit),
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_given_a_read_index_learns_at_once_that_it_is_committed() {
    let mut nodes = cluster();
    let (index, _) = nodes[0].propose(Bytes::from_static(b"x")).expect("leader");
    let appends = nodes[0].take_ready().messages;
    // Both followers store the entry; node 3's answer is slow.
    let (from_3, _) = deliver_all(&mut nodes, appends, |e| e.from == 3);
    assert_eq!(nodes[0].commit_index(), index);
    assert_eq!(
        nodes[1].commit_index(),
        index - 1,
        "not told yet: no read waits"
    );

    // Node 2 asks for a read index: the answer and the commit index come together.
    nodes[1].read_index(7).expect("a follower forwards reads");
    let ask = nodes[1].take_ready().messages;
    let (_, reads) = deliver_all(&mut nodes, ask, |e| e.from == 3 && e.to == 1);
    assert_eq!(reads, vec![(2, ReadState { ctx: 7, index })]);
    assert_eq!(nodes[1].commit_index(), index, "told in the same Ready");

    // Node 3 asks while its acknowledgement of the entry is still on its way: an empty
    // AppendEntries now could only name an older entry, so it is told when it answers.
    nodes[2].read_index(8).expect("a follower forwards reads");
    let ask = nodes[2].take_ready().messages;
    let (more_held, reads) = deliver_all(&mut nodes, ask, |e| {
        e.from == 3 && e.to == 1 && !matches!(e.msg, Message::ReadIndex { .. })
    });
    assert_eq!(reads, vec![(3, ReadState { ctx: 8, index })]);
    assert_eq!(nodes[2].commit_index(), index - 1);
    for env in from_3.into_iter().chain(more_held) {
        deliver(&mut nodes, env);
    }
    let ready = nodes[0].take_ready().messages;
    assert_eq!(commit_told(&ready, 3), vec![index]);
    assert!(ready.iter().all(|e| e.to != 2), "node 2 knows: {ready:?}");
    deliver_all(&mut nodes, ready, |_| false);
    assert_eq!(nodes[2].commit_index(), index);

    // Their answers start nothing more.
    assert!(!nodes[0].has_ready(), "the leader has nothing more to say");
}

#[test]
fn a_commit_rides_on_the_entries_already_on_their_way() {
    let mut nodes = cluster();
    let (first, _) = nodes[0].propose(Bytes::from_static(b"a")).expect("leader");
    let appends = nodes[0].take_ready().messages;
    deliver_all(&mut nodes, appends, |_| false);
    assert_eq!(nodes[0].commit_index(), first);
    // The next entry leaves with the commit index of the first, and is slow to arrive.
    nodes[0].propose(Bytes::from_static(b"b")).expect("leader");
    let slow = nodes[0].take_ready().messages;
    // Node 2's read is answered meanwhile: the entry on its way already says `first`
    // is committed, so no message is added, now or when node 2 answers it.
    nodes[1].read_index(1).expect("a follower forwards reads");
    let ask = nodes[1].take_ready().messages;
    let empty_to_2 = std::cell::Cell::new(0);
    let count = |e: &Envelope| {
        if !commit_told(std::slice::from_ref(e), 2).is_empty() {
            empty_to_2.set(empty_to_2.get() + 1);
        }
        false
    };
    let (_, reads) = deliver_all(&mut nodes, ask, count);
    assert_eq!(
        reads,
        vec![(
            2,
            ReadState {
                ctx: 1,
                index: first
            }
        )]
    );
    deliver_all(&mut nodes, slow, count);
    assert_eq!(nodes[1].commit_index(), first, "from the entry's message");
    assert_eq!(empty_to_2.get(), 0);
}

//! Membership changes and leadership transfer, in the classic style: servers join a
//! running cluster, leave it, are replaced, and leadership moves, while commands keep
//! committing.
//!
//! Every cluster here wires `n` servers to each other from the start; only the first
//! ones form the initial configuration, the others run as joining servers (no
//! configuration, never campaigning) until a change brings them in.

use super::Test;
use crate::member_ops::{achieved, attempt, retryable, MemberOp as Op};
use crate::{cmd, Cluster, RunOptions, Summary};
use futures::FutureExt;
use raft::{Config, Membership, NodeId, RaftError};
use std::collections::BTreeSet;
use std::time::Duration;
// The test's clock: virtual time in the default suite, so that every deadline is a
// function of the seed, not of the machine's speed.
use tokio::time::Instant;

/// The membership tests.
pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "grow 1 -> 3 -> 5 under load",
            part: "member",
            run: |o| grow(o).boxed(),
        },
        Test {
            name: "replace two of three (joint consensus)",
            part: "member",
            run: |o| replace_joint(o).boxed(),
        },
        Test {
            name: "remove the leader",
            part: "member",
            run: |o| remove_leader(o).boxed(),
        },
        Test {
            name: "transfer leadership to each node in turn",
            part: "member",
            run: |o| transfer(o).boxed(),
        },
        Test {
            name: "a learner catches up through a snapshot",
            part: "member",
            run: |o| learner_snapshot(o).boxed(),
        },
        Test {
            name: "a learner that cannot catch up is not promoted",
            part: "member",
            run: |o| learner_cannot_catch_up(o).boxed(),
        },
        Test {
            name: "replace every member one by one",
            part: "member",
            run: |o| replace_one_by_one(o).boxed(),
        },
        Test {
            name: "shrink 5 -> 3",
            part: "member",
            run: |o| shrink(o).boxed(),
        },
        Test {
            name: "add a server while a minority is partitioned",
            part: "member",
            run: |o| add_with_minority_partitioned(o).boxed(),
        },
        Test {
            name: "a joint change interrupted by a leader crash",
            part: "member",
            run: |o| change_interrupted(o).boxed(),
        },
        Test {
            name: "replace all three at once (joint consensus)",
            part: "member",
            run: |o| replace_all_joint(o).boxed(),
        },
        Test {
            name: "transfer to a dead node aborts",
            part: "member",
            run: |o| transfer_to_dead(o).boxed(),
        },
        Test {
            name: "a removed server with a high term does not disrupt",
            part: "member",
            run: |o| removed_high_term(o).boxed(),
        },
    ]
}

/// Carries out `op` on the leader, retrying while there is none, it changes, or a change
/// is still in flight, until it has taken effect; fails after 10 s or on any other error.
async fn change(c: &mut Cluster, op: Op) -> Membership {
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{op:?} did not complete"
        );
        let leader = c.check_one_leader().await;
        let Some(raft) = c.raft(leader).cloned() else {
            continue;
        };
        let Ok(status) = raft.membership().await else {
            continue;
        };
        // A retried change that already happened: done.
        if achieved(leader as NodeId, &status, &op) {
            return status.membership;
        }
        match attempt(&raft, &op).await {
            Ok(m) => return m,
            Err(e) if retryable(&e) => c.sleep_ms(100).await,
            Err(e) => panic!("{op:?} failed: {e}"),
        }
    }
}

/// Commits five more commands, each on at least `n` servers.
async fn load(c: &Cluster, x: &mut u64, n: usize) {
    for _ in 0..5 {
        *x += 1;
        c.one(cmd(*x), n, true).await;
    }
}

fn voters(m: &Membership) -> Vec<NodeId> {
    m.voters.iter().copied().collect()
}

/// Checks the leader's configuration: exactly `want` as voters, nothing in flight.
async fn check_voters(c: &mut Cluster, want: &[NodeId]) {
    let leader = c.check_one_leader().await;
    let status = c
        .raft(leader)
        .expect("alive")
        .membership()
        .await
        .expect("alive");
    let want: BTreeSet<NodeId> = want.iter().copied().collect();
    assert_eq!(status.membership.voters, want, "voters");
    assert!(
        status.membership.outgoing.is_none(),
        "left the joint configuration"
    );
}

/// One server, then three, then five, committing commands between every step.
pub async fn grow(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(5, 1, false, false, opts, Config::default());
    c.begin("Test (member): grow 1 -> 3 -> 5 under load");
    let mut x = 0;
    load(&c, &mut x, 1).await;
    for id in [1, 2] {
        change(&mut c, Op::AddLearner(id)).await;
        load(&c, &mut x, 1).await;
    }
    let m = change(&mut c, Op::voters(vec![0, 1, 2])).await;
    assert_eq!(voters(&m), vec![0, 1, 2]);
    load(&c, &mut x, 3).await;
    for id in [3, 4] {
        change(&mut c, Op::AddLearner(id)).await;
        load(&c, &mut x, 3).await;
    }
    change(&mut c, Op::voters(vec![0, 1, 2, 3, 4])).await;
    load(&c, &mut x, 5).await;
    check_voters(&mut c, &[0, 1, 2, 3, 4]).await;
    c.end()
}

/// Voters {0,1,2} become {0,3,4} in one joint change; then 1 and 2 are cut off and the
/// new cluster commits without them.
pub async fn replace_joint(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(5, 3, false, false, opts, Config::default());
    c.begin("Test (member): replace two of three (joint consensus)");
    c.one(cmd(1), 3, true).await;
    change(&mut c, Op::AddLearner(3)).await;
    change(&mut c, Op::AddLearner(4)).await;
    c.one(cmd(2), 5, true).await;
    let m = change(&mut c, Op::voters(vec![0, 3, 4])).await;
    assert_eq!(voters(&m), vec![0, 3, 4]);
    c.disconnect(1);
    c.disconnect(2);
    c.one(cmd(3), 3, true).await;
    check_voters(&mut c, &[0, 3, 4]).await;
    c.end()
}

/// The leader removes itself: it leads until the change commits, then steps down, and
/// the two others go on.
pub async fn remove_leader(opts: RunOptions) -> Summary {
    let mut c = Cluster::new(3, false, opts);
    c.begin("Test (member): remove the leader");
    c.one(cmd(1), 3, true).await;
    let leader = c.check_one_leader().await;
    let rest: Vec<NodeId> = (0..3).filter(|&i| i != leader as NodeId).collect();
    let m = change(&mut c, Op::voters(rest.clone())).await;
    assert_eq!(voters(&m), rest);
    c.sleep_ms(1500).await;
    let new_leader = c.check_one_leader().await;
    assert_ne!(new_leader, leader, "the removed leader stepped down");
    c.one(cmd(2), 2, true).await;
    // The removed server, cut off and back, does not disturb the cluster.
    c.disconnect(leader);
    c.sleep_ms(2000).await;
    c.connect(leader);
    c.sleep_ms(1000).await;
    assert_eq!(c.check_one_leader().await, new_leader, "leader unchanged");
    c.end()
}

/// Leadership goes to every node in turn, then to a dead one (the transfer fails and
/// the leader goes on).
pub async fn transfer(opts: RunOptions) -> Summary {
    let n = 3;
    let mut c = Cluster::new(n, false, opts);
    c.begin("Test (member): transfer leadership to each node in turn");
    c.one(cmd(1), n, true).await;
    for round in 0..2 {
        for target in 0..n {
            change(&mut c, Op::Transfer(target as NodeId)).await;
            assert_eq!(c.check_one_leader().await, target, "round {round}");
            c.one(cmd(10 + target as u64), n, true).await;
        }
    }
    let leader = c.check_one_leader().await;
    let dead = (leader + 1) % n;
    c.disconnect(dead);
    let raft = c.raft(leader).cloned().expect("alive");
    match raft.transfer_leader(dead as NodeId).await {
        Err(RaftError::TransferFailed(_)) => {}
        other => panic!("a transfer to a dead node must fail, got {other:?}"),
    }
    assert_eq!(
        c.check_one_leader().await,
        leader,
        "the old leader continues"
    );
    c.one(cmd(100), n - 1, true).await;
    c.connect(dead);
    c.end()
}

/// Servers snapshot every 10 entries: a learner added after 40 commands can only catch
/// up from the leader's snapshot; then it is promoted.
pub async fn learner_snapshot(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(4, 3, false, true, opts, Config::default());
    c.begin("Test (member): a learner catches up through a snapshot");
    let mut last = 0;
    for x in 1..=40 {
        last = c.one(cmd(x), 3, true).await;
    }
    change(&mut c, Op::AddLearner(3)).await;
    c.wait(last, 4, None).await;
    assert!(
        c.snapshots_applied() > 0,
        "the learner installed a snapshot"
    );
    let m = change(&mut c, Op::voters(vec![0, 1, 2, 3])).await;
    assert_eq!(voters(&m), vec![0, 1, 2, 3]);
    c.one(cmd(41), 4, true).await;
    c.end()
}

/// Five voters become three in one (joint) change; the two removed are then cut off.
pub async fn shrink(opts: RunOptions) -> Summary {
    let mut c = Cluster::new(5, false, opts);
    c.begin("Test (member): shrink 5 -> 3");
    c.one(cmd(1), 5, true).await;
    let m = change(&mut c, Op::voters(vec![0, 1, 2])).await;
    assert_eq!(voters(&m), vec![0, 1, 2]);
    c.disconnect(3);
    c.disconnect(4);
    c.one(cmd(2), 3, true).await;
    check_voters(&mut c, &[0, 1, 2]).await;
    c.end()
}

/// A voter that is not the leader is cut off; a learner is added and promoted with the
/// majorities of the others; the cut-off voter catches up when it comes back.
pub async fn add_with_minority_partitioned(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(4, 3, false, false, opts, Config::default());
    c.begin("Test (member): add a server while a minority is partitioned");
    c.one(cmd(1), 3, true).await;
    let leader = c.check_one_leader().await;
    let cut = (leader + 1) % 3;
    c.disconnect(cut);
    change(&mut c, Op::AddLearner(3)).await;
    c.one(cmd(2), 3, true).await;
    let mut want: Vec<NodeId> = vec![0, 1, 2, 3];
    let m = change(&mut c, Op::voters(want.clone())).await;
    assert_eq!(voters(&m), want);
    c.one(cmd(3), 3, true).await;
    c.connect(cut);
    let index = c.one(cmd(4), 4, true).await;
    c.wait(index, 4, None).await;
    want.sort_unstable();
    check_voters(&mut c, &want).await;
    c.end()
}

/// The leader crashes right after proposing a joint change: the next leader either
/// finishes it (and leaves the joint configuration) or never had it; never both.
pub async fn change_interrupted(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(5, 3, false, false, opts, Config::default());
    c.begin("Test (member): a joint change interrupted by a leader crash");
    c.one(cmd(1), 3, true).await;
    change(&mut c, Op::AddLearner(3)).await;
    change(&mut c, Op::AddLearner(4)).await;
    c.one(cmd(2), 5, true).await;
    let leader = c.check_one_leader().await;
    let keep = ((leader + 1) % 3) as NodeId;
    let target = vec![keep, 3, 4];
    let raft = c.raft(leader).cloned().expect("alive");
    let proposal = tokio::spawn({
        let target = target.clone();
        async move { raft.change_membership(target).await }
    });
    c.sleep_ms(5).await;
    c.crash1(leader);
    let _ = proposal.await;
    // Whatever happened, the survivors settle on one non-joint configuration.
    let t0 = Instant::now();
    let status = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no settled configuration"
        );
        let l = c.check_one_leader().await;
        let status = c.raft(l).expect("alive").membership().await.expect("alive");
        if !status.change_in_progress {
            break status;
        }
    };
    let got = voters(&status.membership);
    let mut old: Vec<NodeId> = vec![0, 1, 2];
    let mut new = target;
    old.sort_unstable();
    new.sort_unstable();
    assert!(
        got == old || got == new,
        "voters {got:?}: neither {old:?} nor {new:?}"
    );
    // Two voters of either configuration survive the crash.
    c.one(cmd(3), 2, true).await;
    c.start1(leader);
    c.connect(leader);
    c.end()
}

/// `add_voter` on a server that is cut off: it is added as a learner but, not catching
/// up in time, never promoted; once reconnected, the same call promotes it.
pub async fn learner_cannot_catch_up(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(4, 3, false, false, opts, Config::default());
    c.begin("Test (member): a learner that cannot catch up is not promoted");
    for x in 1..=10 {
        c.one(cmd(x), 3, true).await;
    }
    c.disconnect(3);
    let leader = c.check_one_leader().await;
    let raft = c.raft(leader).cloned().expect("alive");
    match raft.add_voter(3, Duration::from_secs(2)).await {
        Err(RaftError::CatchUpTimeout(3)) => {}
        other => panic!("a server that cannot catch up must not be promoted: {other:?}"),
    }
    check_voters(&mut c, &[0, 1, 2]).await;
    c.one(cmd(11), 3, true).await;
    c.connect(3);
    let leader = c.check_one_leader().await;
    let raft = c.raft(leader).cloned().expect("alive");
    let m = raft
        .add_voter(3, Duration::from_secs(5))
        .await
        .expect("caught up and promoted");
    assert_eq!(voters(&m), vec![0, 1, 2, 3]);
    c.one(cmd(12), 4, true).await;
    c.end()
}

/// Voters {0,1,2} become {3,4,5} one server at a time (add a voter, remove an old one),
/// with commands committing between steps; the old servers are then cut off.
pub async fn replace_one_by_one(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(6, 3, false, false, opts, Config::default());
    c.begin("Test (member): replace every member one by one");
    let mut x = 0;
    load(&c, &mut x, 3).await;
    for (old, new) in [(0, 3), (1, 4), (2, 5)] {
        let leader = c.check_one_leader().await;
        let raft = c.raft(leader).cloned().expect("alive");
        raft.add_voter(new, Duration::from_secs(5))
            .await
            .expect("added");
        load(&c, &mut x, 3).await;
        let m = change(&mut c, Op::voters(old + 1..=new)).await;
        assert!(!m.is_voter(old));
        load(&c, &mut x, 3).await;
    }
    for old in 0..3 {
        c.disconnect(old);
    }
    load(&c, &mut x, 3).await;
    check_voters(&mut c, &[3, 4, 5]).await;
    c.end()
}

/// Voters {0,1,2} move to the disjoint {3,4,5} in one joint change (the three new
/// servers added as learners first), commands committing before and after; the old
/// servers are then crashed and the new cluster commits alone, with a leader of its own.
pub async fn replace_all_joint(opts: RunOptions) -> Summary {
    let mut c = Cluster::with_members(6, 3, false, false, opts, Config::default());
    c.begin("Test (member): replace all three at once (joint consensus)");
    let mut x = 0;
    load(&c, &mut x, 3).await;
    for id in [3, 4, 5] {
        change(&mut c, Op::AddLearner(id)).await;
    }
    load(&c, &mut x, 6).await;
    let m = change(&mut c, Op::voters(vec![3, 4, 5])).await;
    assert_eq!(voters(&m), vec![3, 4, 5]);
    assert!(m.learners.is_empty(), "the old voters left: {m:?}");
    load(&c, &mut x, 3).await;
    for old in 0..3 {
        c.crash1(old);
    }
    load(&c, &mut x, 3).await;
    let leader = c.check_one_leader().await;
    assert!(leader >= 3, "leader {leader} is one of the new voters");
    check_voters(&mut c, &[3, 4, 5]).await;
    c.end()
}

/// A transfer to a crashed voter: the leader refuses proposals while it tries, gives
/// up after an election timeout (not before the minimum one), and leads on in the same
/// term, committing with the two live servers; the dead one catches up when restarted.
pub async fn transfer_to_dead(opts: RunOptions) -> Summary {
    let n = 3;
    let config = Config::default();
    let min = config.election_timeout_min;
    let mut c = Cluster::with_config(n, false, false, opts, config);
    c.begin("Test (member): transfer to a dead node aborts");
    c.one(cmd(1), n, true).await;
    let leader = c.check_one_leader().await;
    let (term, _) = c.state(leader).expect("alive");
    let dead = (leader + 1) % n;
    c.crash1(dead);
    let raft = c.raft(leader).cloned().expect("alive");
    let t0 = Instant::now();
    let transfer = tokio::spawn(async move { raft.transfer_leader(dead as NodeId).await });
    c.sleep_ms(50).await;
    assert!(
        c.start(leader, cmd(2)).await.is_none(),
        "the leader took a proposal during the transfer"
    );
    match transfer.await {
        Ok(Err(RaftError::TransferFailed(t))) if t == dead as NodeId => {}
        other => panic!("a transfer to a dead node must fail, got {other:?}"),
    }
    let took = t0.elapsed();
    assert!(
        took >= min && took < Duration::from_secs(5),
        "the transfer was abandoned after {took:?}, not after an election timeout"
    );
    assert_eq!(
        c.state(leader),
        Some((term, true)),
        "the old leader leads on in its term"
    );
    c.one(cmd(3), n - 1, true).await;
    assert_eq!(c.state(leader), Some((term, true)), "and commits in it");
    c.start1(dead);
    c.connect(dead);
    c.one(cmd(4), n, true).await;
    c.end()
}

/// A voter is cut off and removed while away (it never hears of it). Without pre-vote
/// its elections raise its term far above the cluster's; when it comes back its vote
/// requests must not depose the leader (check-quorum's stickiness: servers that hear
/// from a leader ignore them) and the cluster's term and leader stay the same.
pub async fn removed_high_term(opts: RunOptions) -> Summary {
    let n = 5;
    let config = Config {
        pre_vote: false,
        ..Config::default()
    };
    let mut c = Cluster::with_config(n, false, false, opts, config);
    c.begin("Test (member): a removed server with a high term does not disrupt");
    c.one(cmd(1), n, true).await;
    let leader = c.check_one_leader().await;
    let removed = (leader + 1) % n;
    c.disconnect(removed);
    let rest: Vec<NodeId> = (0..n as NodeId)
        .filter(|&i| i != removed as NodeId)
        .collect();
    let m = change(&mut c, Op::voters(rest.clone())).await;
    assert_eq!(voters(&m), rest);
    c.one(cmd(2), n - 1, true).await;
    let leader = c.check_one_leader().await;
    let (term, _) = c.state(leader).expect("alive");
    // Away, it campaigns again and again.
    c.sleep_ms(3000).await;
    let (away_term, _) = c.state(removed).expect("alive");
    assert!(
        away_term > term + 1,
        "the removed server's term ({away_term}) did not rise above the cluster's ({term})"
    );
    c.connect(removed);
    for x in 3..8 {
        c.one(cmd(x), n - 1, true).await;
        c.sleep_ms(300).await;
        assert_eq!(
            c.state(leader),
            Some((term, true)),
            "the leader was disturbed by the removed server"
        );
    }
    for i in (0..n).filter(|&i| i != removed) {
        let (t, _) = c.state(i).expect("alive");
        assert_eq!(t, term, "server {i} moved to another term");
    }
    c.end()
}

//! The key/value service while its cluster changes membership (issue 13): clients keep
//! appending to their keys and reading them back while servers are added (as learners,
//! caught up, promoted), removed (the leader too), replaced one by one or all at once
//! (joint consensus to disjoint servers), a joint change is interrupted by the crash of
//! its leader, a server is added while a voter is cut off, and leadership is handed to
//! every voter in turn — over a lossy network, with a server crashed and restarted every
//! second or so.
//! Removed servers are shut down for good where the plan says so, and the clients then
//! read every token they were told was written from the servers that remain: no
//! acknowledged write is lost. Every history is checked for linearizability.
//!
//! Virtual time by default; `RAFT_TEST_REALTIME=1` for the wall clock (with
//! `--test-threads=1`); `RAFT_TEST_SEED=N` to replay a seed; `KV_TEST_READ_MODE=lease` for
//! lease reads.

mod common;

use common::members::Faults;
use common::scenarios::{client_loop, Generic, MAX_RAFT_STATE};
use common::{check_clnt_appends, join, run, KvCluster};
use raft::NodeId;
use raft_tester::member_ops::MemberOp;
use raft_tester::RunOptions;
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One step of a plan, carried out on whichever server leads.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Start these new servers and add them as learners.
    Learners(&'static [usize]),
    /// Start this new server and add it as a voter (learner, caught up, promoted).
    AddVoter(usize),
    /// Move the voters to exactly these (joint consensus when more than one changes).
    Voters(&'static [usize]),
    /// Remove this server (it keeps running unless a later step stops it).
    Remove(usize),
    /// Remove the server that leads when the step begins.
    RemoveLeader,
    /// Propose moving the voters to these on the leader, crash the leader right after,
    /// then drive the change to its end on whichever server leads next (which finished
    /// it, or never had it).
    InterruptedVoters(&'static [usize]),
    /// Cut a voter that does not lead off from the other servers.
    IsolateFollower,
    /// Reconnect the isolated servers.
    Heal,
    /// Hand leadership to every voter in turn.
    TransferRound,
    /// Shut these removed servers down for good.
    Stop(&'static [usize]),
}

/// A membership scenario.
#[derive(Clone, Copy, Debug)]
struct Plan {
    /// Server slots.
    servers: usize,
    /// Servers `0..initial` form the initial cluster.
    initial: usize,
    /// What happens, in order.
    steps: &'static [Step],
    /// The voters at the end (`None`: only their number is known, `final_count`).
    final_voters: Option<&'static [usize]>,
    /// The number of voters at the end.
    final_count: usize,
    /// The classic `maxraftstate` (`Some`: new servers catch up through snapshots).
    maxraftstate: Option<u64>,
}

/// Concurrent clients of every scenario.
const CLIENTS: usize = 5;
/// Load (and faults) before the first step, between steps and after the last.
const BETWEEN_STEPS: Duration = Duration::from_secs(1);

/// Runs `plan` with clients writing throughout, the network lossy and crashes on; then
/// checks the final voters, every client's acknowledged appends, and the history.
async fn churn(opts: RunOptions, name: &str, plan: Plan) {
    let mut cfg =
        KvCluster::with_members(plan.servers, plan.initial, true, plan.maxraftstate, opts);
    let seed = cfg.seed();
    cfg.begin(name);
    let all = cfg.all();
    let done = Arc::new(AtomicBool::new(false));
    let g = Generic {
        nclients: CLIENTS,
        unreliable: true,
        crash: true,
        maxraftstate: plan.maxraftstate,
        ..Generic::BASE
    };
    let mut clients = Vec::new();
    for cli in 0..CLIENTS {
        let ck = cfg.make_client(&all);
        let client_seed = cfg.rng().gen();
        clients.push(tokio::spawn(client_loop(
            cli,
            ck,
            done.clone(),
            g,
            client_seed,
            seed,
        )));
    }
    let mut faults = Faults::new(true);
    cfg.pause(&mut faults, BETWEEN_STEPS).await;
    for step in plan.steps {
        run_step(&mut cfg, &mut faults, *step).await;
        cfg.pause(&mut faults, BETWEEN_STEPS).await;
    }
    cfg.end_faults(&mut faults);
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    let mut counts = Vec::new();
    for handle in clients {
        counts.push(join(handle).await);
    }

    let m = cfg.settled_membership(&mut faults).await;
    assert_eq!(
        m.voters.len(),
        plan.final_count,
        "final voters {m:?} (seed {seed})"
    );
    if let Some(want) = plan.final_voters {
        let want: BTreeSet<NodeId> = want.iter().map(|&i| i as NodeId).collect();
        assert_eq!(m.voters, want, "final voters (seed {seed})");
    }
    // Every acknowledged append is there, once and in order, on the servers that remain.
    let mut ck = cfg.make_client(&all);
    for (cli, &count) in counts.iter().enumerate() {
        let v = ck.get(&cli.to_string()).await;
        check_clnt_appends(cli, &v, count, seed);
    }
    if !opts.quiet {
        let writes: usize = counts.iter().sum();
        println!(
            "  info: {writes} acknowledged appends, {} crashes, voters now {:?}",
            faults.crashes, m.voters
        );
    }
    cfg.end();
}

async fn run_step(cfg: &mut KvCluster, faults: &mut Faults, step: Step) {
    let ids = |s: &[usize]| s.iter().map(|&i| i as NodeId).collect::<Vec<_>>();
    match step {
        Step::Learners(new) => {
            for &i in new {
                cfg.add_server(i);
                cfg.member_op(faults, MemberOp::AddLearner(i as NodeId))
                    .await;
            }
        }
        Step::AddVoter(i) => {
            cfg.add_voter(faults, i).await;
        }
        Step::Voters(v) => {
            let m = cfg.member_op(faults, MemberOp::voters(ids(v))).await;
            assert_eq!(m.voters, ids(v).into_iter().collect(), "{step:?}");
        }
        Step::Remove(i) => {
            cfg.member_op(faults, MemberOp::Remove(i as NodeId)).await;
        }
        Step::RemoveLeader => {
            let leader = cfg.await_leader(faults).await;
            cfg.member_op(faults, MemberOp::Remove(leader as NodeId))
                .await;
        }
        Step::InterruptedVoters(v) => {
            let leader = cfg.await_leader(faults).await;
            if let Some(kv) = cfg.server(leader).cloned() {
                let want = ids(v);
                let proposal = tokio::spawn(async move { kv.change_membership(want).await });
                tokio::time::sleep(Duration::from_millis(5)).await;
                cfg.crash_now(faults, leader);
                // Whatever it answers (most likely that it was killed).
                let _ = proposal.await;
            }
            let m = cfg.member_op(faults, MemberOp::voters(ids(v))).await;
            assert_eq!(m.voters, ids(v).into_iter().collect(), "{step:?}");
        }
        Step::IsolateFollower => {
            let leader = cfg.await_leader(faults).await;
            let m = cfg.settled_membership(faults).await;
            let follower = m
                .voters
                .iter()
                .map(|&id| id as usize)
                .find(|&i| i != leader)
                .expect("another voter");
            cfg.isolate(faults, follower);
        }
        Step::Heal => cfg.heal(faults),
        Step::TransferRound => {
            let m = cfg.settled_membership(faults).await;
            for id in m.voters {
                cfg.member_op(faults, MemberOp::Transfer(id)).await;
            }
        }
        Step::Stop(old) => {
            for &i in old {
                cfg.stop_for_good(faults, i);
            }
        }
    }
}

macro_rules! churn_tests {
    ($($test:ident => $name:literal, $plan:expr;)*) => {$(
        #[test]
        fn $test() {
            run($name, |o| Box::pin(churn(o, $name, $plan)));
        }
    )*};
}

churn_tests! {
    grow_member => "membership: grow 1 -> 3 -> 5, snapshots", Plan {
        servers: 5,
        initial: 1,
        steps: &[
            Step::Learners(&[1, 2]),
            Step::Voters(&[0, 1, 2]),
            Step::AddVoter(3),
            Step::AddVoter(4),
        ],
        final_voters: Some(&[0, 1, 2, 3, 4]),
        final_count: 5,
        maxraftstate: Some(MAX_RAFT_STATE),
    };
    shrink_member => "membership: shrink 5 -> 3 (joint), removed servers stopped", Plan {
        servers: 5,
        initial: 5,
        steps: &[Step::Voters(&[0, 1, 2]), Step::Stop(&[3, 4])],
        final_voters: Some(&[0, 1, 2]),
        final_count: 3,
        maxraftstate: None,
    };
    replace_one_by_one_member => "membership: replace every server one by one, snapshots", Plan {
        servers: 6,
        initial: 3,
        steps: &[
            Step::AddVoter(3),
            Step::Remove(0),
            Step::AddVoter(4),
            Step::Remove(1),
            Step::AddVoter(5),
            Step::Remove(2),
            Step::Stop(&[0, 1, 2]),
        ],
        final_voters: Some(&[3, 4, 5]),
        final_count: 3,
        maxraftstate: Some(MAX_RAFT_STATE),
    };
    replace_all_member => "membership: replace all three at once (joint)", Plan {
        servers: 6,
        initial: 3,
        steps: &[
            Step::Learners(&[3, 4, 5]),
            Step::Voters(&[3, 4, 5]),
            Step::Stop(&[0, 1, 2]),
        ],
        final_voters: Some(&[3, 4, 5]),
        final_count: 3,
        maxraftstate: None,
    };
    remove_leader_member => "membership: remove the leader twice, removed servers running", Plan {
        servers: 5,
        initial: 5,
        steps: &[Step::RemoveLeader, Step::RemoveLeader],
        final_voters: None,
        final_count: 3,
        maxraftstate: None,
    };
    interrupted_member => "membership: a joint change interrupted by a leader crash", Plan {
        servers: 5,
        initial: 3,
        steps: &[
            Step::Learners(&[3, 4]),
            Step::InterruptedVoters(&[2, 3, 4]),
            Step::Stop(&[0, 1]),
        ],
        final_voters: Some(&[2, 3, 4]),
        final_count: 3,
        maxraftstate: None,
    };
    minority_partitioned_member => "membership: add a server while a minority is partitioned", Plan {
        servers: 4,
        initial: 3,
        steps: &[Step::IsolateFollower, Step::AddVoter(3), Step::Heal],
        final_voters: Some(&[0, 1, 2, 3]),
        final_count: 4,
        maxraftstate: None,
    };
    transfer_member => "membership: transfer leadership to every voter, twice", Plan {
        servers: 3,
        initial: 3,
        steps: &[Step::TransferRound, Step::TransferRound],
        final_voters: Some(&[0, 1, 2]),
        final_count: 3,
        maxraftstate: None,
    };
}

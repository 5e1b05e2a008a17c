//! Same seed, same configuration: the same sequence of events, in virtual time.

use raft_tester::{block_on, cmd, Cluster, Mode, RunOptions};

/// Elects, commits, crashes the leader, re-elects, commits again; returns the trace.
fn scenario(seed: u64) -> Vec<String> {
    let opts = RunOptions {
        mode: Mode::Virtual,
        seed,
        quiet: true,
    };
    block_on(Mode::Virtual, async move {
        let mut cfg = Cluster::new(5, true, opts);
        let leader = cfg.check_one_leader().await;
        for x in 1..=5 {
            cfg.one(cmd(x), 4, true).await;
        }
        cfg.crash1(leader);
        cfg.check_one_leader().await;
        for x in 6..=10 {
            cfg.one(cmd(x), 4, true).await;
        }
        cfg.start1(leader);
        cfg.connect(leader);
        cfg.one(cmd(11), 5, true).await;
        cfg.events()
    })
}

#[test]
fn same_seed_same_trace() {
    let a = scenario(42);
    let b = scenario(42);
    assert!(
        a.len() > 50,
        "trace too short to mean anything: {}",
        a.len()
    );
    assert_eq!(a, b, "two runs with one seed diverged");
}

#[test]
fn different_seed_different_trace() {
    assert_ne!(scenario(1), scenario(2));
}

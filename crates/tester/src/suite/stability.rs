//! A calm cluster: one follower cut off and reconnected 100 times. With pre-vote, the
//! cluster's term and leader stay put (a classic candidate raises its term at every
//! timeout while cut off, and deposes the leader when it comes back).

use super::Test;
use crate::{Cluster, RunOptions, Summary};
use futures::FutureExt;
use raft::Config;
use std::time::Duration;

/// Partition/heal cycles of the scenario.
pub const CYCLES: usize = 100;

/// The stability tests.
pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "rejoining follower keeps the term (pre-vote)",
            part: "stable",
            run: |o| rejoin_keeps_term(o).boxed(),
        },
        Test {
            name: "rejoining follower raises the term (no pre-vote)",
            part: "stable",
            run: |o| rejoin_raises_term_without_pre_vote(o).boxed(),
        },
    ]
}

/// Shorter timeouts than the classic defaults, so that 100 cycles, each longer than an
/// election timeout, fit the suite's 120 s limit in real time.
fn quick(pre_vote: bool) -> Config {
    Config {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(250),
        election_timeout_max: Duration::from_millis(500),
        pre_vote,
        ..Config::default()
    }
}

/// Cuts the same follower off for longer than the longest election timeout and
/// reconnects it, [`CYCLES`] times; returns the terms before and after and the leaders
/// before and after.
async fn cycles(cfg: &mut Cluster) -> (u64, u64, usize, usize) {
    let leader = cfg.check_one_leader().await;
    let before = cfg.check_terms();
    let follower = (leader + 1) % cfg.n();
    for _ in 0..CYCLES {
        cfg.disconnect(follower);
        cfg.sleep_ms(600).await;
        cfg.connect(follower);
        cfg.sleep_ms(150).await;
    }
    let leader_after = cfg.check_one_leader().await;
    let after = cfg.check_terms();
    (before, after, leader, leader_after)
}

/// With pre-vote (and check-quorum, the defaults), 100 partitions of one follower leave
/// the term and the leader unchanged.
pub async fn rejoin_keeps_term(opts: RunOptions) -> Summary {
    let mut cfg = Cluster::with_config(3, false, false, opts, quick(true));
    cfg.begin("Test (stable): rejoining follower keeps the term, pre-vote on");
    let (before, after, leader, leader_after) = cycles(&mut cfg).await;
    if !opts.quiet {
        println!("  terms: {before} before, {after} after {CYCLES} partition/heal cycles");
    }
    assert_eq!(
        before, after,
        "the term moved from {before} to {after} (seed {})",
        opts.seed
    );
    assert_eq!(
        leader, leader_after,
        "the leader changed (seed {})",
        opts.seed
    );
    cfg.end()
}

/// The contrast: without pre-vote the same cycles raise the term (so the test above
/// measures something). Check-quorum stays on: stickiness alone does not help, since
/// the rejoining node's higher term reaches the leader in its answers.
pub async fn rejoin_raises_term_without_pre_vote(opts: RunOptions) -> Summary {
    let mut cfg = Cluster::with_config(3, false, false, opts, quick(false));
    cfg.begin("Test (stable): rejoining follower raises the term, pre-vote off");
    let (before, after, _, _) = cycles(&mut cfg).await;
    if !opts.quiet {
        println!("  terms: {before} before, {after} after {CYCLES} partition/heal cycles");
    }
    assert!(
        after >= before + CYCLES as u64 / 2,
        "expected the term to rise by at least one per two cycles, it went from {before} to {after} (seed {})",
        opts.seed
    );
    cfg.end()
}

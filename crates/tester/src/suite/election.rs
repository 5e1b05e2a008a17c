//! Part 4A: leader election.

use super::Test;
use crate::{Cluster, RunOptions, Summary};
use futures::FutureExt;
use rand::Rng;

/// The timeout tests sleep in units of (the classic `RaftElectionTimeout`).
pub const ELECTION_TIMEOUT_MS: u64 = 1000;

/// The 4A tests.
pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "initial election",
            part: "4A",
            run: |o| initial_election(o).boxed(),
        },
        Test {
            name: "election after network failure",
            part: "4A",
            run: |o| re_election(o).boxed(),
        },
        Test {
            name: "multiple elections",
            part: "4A",
            run: |o| many_elections(o).boxed(),
        },
        Test {
            name: "RPC counts at election",
            part: "4A",
            run: |o| election_rpc_counts(o).boxed(),
        },
    ]
}

/// One leader; all agree on a term ≥ 1; with no failure, leader and term stay put over
/// two election timeouts.
pub async fn initial_election(opts: RunOptions) -> Summary {
    let mut cfg = Cluster::new(3, false, opts);
    cfg.begin("Test (4A): initial election");
    cfg.check_one_leader().await;
    cfg.sleep_ms(50).await;
    let term1 = cfg.check_terms();
    assert!(term1 >= 1, "term is {term1}, but should be at least 1");
    cfg.sleep_ms(2 * ELECTION_TIMEOUT_MS).await;
    let term2 = cfg.check_terms();
    assert_eq!(
        term1, term2,
        "term changed even though there were no failures"
    );
    cfg.check_one_leader().await;
    cfg.end()
}

/// A new leader after the old one is cut off; the old one rejoins without disturbing
/// it; no leader without a majority; a leader again once a majority is back.
pub async fn re_election(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4A): election after network failure");
    let leader1 = cfg.check_one_leader().await;

    cfg.disconnect(leader1);
    cfg.check_one_leader().await;

    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader().await;

    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % n);
    cfg.sleep_ms(2 * ELECTION_TIMEOUT_MS).await;
    cfg.check_no_leader();

    cfg.connect((leader2 + 1) % n);
    cfg.check_one_leader().await;

    cfg.connect(leader2);
    cfg.check_one_leader().await;
    cfg.end()
}

/// Seven peers, nine rounds of cutting off three random peers.
pub async fn many_elections(opts: RunOptions) -> Summary {
    let n = 7;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4A): multiple elections");
    cfg.check_one_leader().await;
    for _ in 0..9 {
        let i1 = cfg.rng().gen_range(0..n);
        let i2 = cfg.rng().gen_range(0..n);
        let i3 = cfg.rng().gen_range(0..n);
        cfg.disconnect(i1);
        cfg.disconnect(i2);
        cfg.disconnect(i3);
        // Either the current leader is still alive, or the remaining four elect one.
        cfg.check_one_leader().await;
        cfg.connect(i1);
        cfg.connect(i2);
        cfg.connect(i3);
    }
    cfg.check_one_leader().await;
    cfg.end()
}

/// The first election costs at most 30 RPCs; an idle second with a leader at most 60.
pub async fn election_rpc_counts(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4A): RPC counts at election");
    cfg.check_one_leader().await;
    let total1: u64 = (0..n).map(|i| cfg.rpc_count(i)).sum();
    assert!(
        (1..=30).contains(&total1),
        "too many or too few RPCs ({total1}) to elect initial leader"
    );
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    let total2: u64 = (0..n).map(|i| cfg.rpc_count(i)).sum();
    assert!(
        total2 - total1 <= 60,
        "too many RPCs ({}) for 1 second of idleness",
        total2 - total1
    );
    cfg.end()
}

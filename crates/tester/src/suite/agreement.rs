//! Part 4B, first half: agreement.

use super::election::ELECTION_TIMEOUT_MS;
use super::Test;
use crate::{cmd, Cluster, RunOptions, Summary};
use bytes::Bytes;
use futures::FutureExt;
use rand::{distributions::Alphanumeric, Rng};

/// The agreement tests.
pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "basic agreement",
            part: "4B",
            run: |o| basic_agree(o).boxed(),
        },
        Test {
            name: "RPC byte count",
            part: "4B",
            run: |o| rpc_bytes(o).boxed(),
        },
        Test {
            name: "test progressive failure of followers",
            part: "4B",
            run: |o| follower_failure(o).boxed(),
        },
        Test {
            name: "test failure of leaders",
            part: "4B",
            run: |o| leader_failure(o).boxed(),
        },
        Test {
            name: "agreement after follower reconnects",
            part: "4B",
            run: |o| fail_agree(o).boxed(),
        },
        Test {
            name: "no agreement if too many followers disconnect",
            part: "4B",
            run: |o| fail_no_agree(o).boxed(),
        },
        Test {
            name: "concurrent Start()s",
            part: "4B",
            run: |o| concurrent_starts(o).boxed(),
        },
        Test {
            name: "rejoin of partitioned leader",
            part: "4B",
            run: |o| rejoin(o).boxed(),
        },
        Test {
            name: "leader backs up quickly over incorrect follower logs",
            part: "4B",
            run: |o| backup(o).boxed(),
        },
        Test {
            name: "RPC counts aren't too high",
            part: "4B",
            run: |o| count(o).boxed(),
        },
    ]
}

/// Three commands on an undisturbed cluster land at indices 1, 2, 3.
pub async fn basic_agree(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): basic agreement");
    for index in 1..=3 {
        let (nd, _) = cfg.n_committed(index);
        assert_eq!(nd, 0, "some have committed before Start()");
        let xindex = cfg.one(cmd(index * 100), n, false).await;
        assert_eq!(xindex, index, "got index {xindex} but expected {index}");
    }
    cfg.end()
}

fn random_text(cfg: &mut Cluster, len: usize) -> Bytes {
    let s: String = cfg
        .rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    Bytes::from(s)
}

/// Ten 5,000-byte commands: each should be sent to each follower about once.
pub async fn rpc_bytes(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): RPC byte count");
    cfg.one(cmd(99), n, false).await;
    let bytes0 = cfg.total_bytes();
    let mut sent = 0u64;
    for index in 2..12 {
        let c = random_text(&mut cfg, 5000);
        let xindex = cfg.one(c.clone(), n, false).await;
        assert_eq!(xindex, index, "got index {xindex} but expected {index}");
        sent += c.len() as u64;
    }
    let got = cfg.total_bytes() - bytes0;
    let expected = n as u64 * sent;
    assert!(
        got <= expected + 50_000,
        "too many RPC bytes; got {got}, expected {expected}"
    );
    cfg.end()
}

/// A follower, then both, disconnect: commits need a majority.
pub async fn follower_failure(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): test progressive failure of followers");
    cfg.one(cmd(101), n, false).await;
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect((leader1 + 1) % n);
    cfg.one(cmd(102), n - 1, false).await;
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    cfg.one(cmd(103), n - 1, false).await;

    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect((leader2 + 1) % n);
    cfg.disconnect((leader2 + 2) % n);
    let (index, _) = cfg
        .start(leader2, cmd(104))
        .await
        .unwrap_or_else(|| panic!("leader rejected Start()"));
    assert_eq!(index, 4, "expected index 4, got {index}");
    cfg.sleep_ms(2 * ELECTION_TIMEOUT_MS).await;
    let (nd, _) = cfg.n_committed(index);
    assert!(nd == 0, "{nd} committed but no majority");
    cfg.end()
}

/// The leader, then the next leader, disconnect: nothing commits with one of three.
pub async fn leader_failure(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): test failure of leaders");
    cfg.one(cmd(101), n, false).await;
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);
    cfg.one(cmd(102), n - 1, false).await;
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    cfg.one(cmd(103), n - 1, false).await;

    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);
    for i in 0..n {
        cfg.start(i, cmd(104)).await;
    }
    cfg.sleep_ms(2 * ELECTION_TIMEOUT_MS).await;
    let (nd, _) = cfg.n_committed(4);
    assert!(nd == 0, "{nd} committed but no majority");
    cfg.end()
}

/// A disconnected follower catches up after it reconnects.
pub async fn fail_agree(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): agreement after follower reconnects");
    cfg.one(cmd(101), n, false).await;
    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 1) % n);
    cfg.one(cmd(102), n - 1, false).await;
    cfg.one(cmd(103), n - 1, false).await;
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    cfg.one(cmd(104), n - 1, false).await;
    cfg.one(cmd(105), n - 1, false).await;

    cfg.connect((leader + 1) % n);
    cfg.one(cmd(106), n, true).await;
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    cfg.one(cmd(107), n, true).await;
    cfg.end()
}

/// With three of five followers gone nothing commits; after they return, the log is
/// repaired.
pub async fn fail_no_agree(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): no agreement if too many followers disconnect");
    cfg.one(cmd(10), n, false).await;
    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 1) % n);
    cfg.disconnect((leader + 2) % n);
    cfg.disconnect((leader + 3) % n);
    let (index, _) = cfg
        .start(leader, cmd(20))
        .await
        .unwrap_or_else(|| panic!("leader rejected Start()"));
    assert_eq!(index, 2, "expected index 2, got {index}");
    cfg.sleep_ms(2 * ELECTION_TIMEOUT_MS).await;
    let (nd, _) = cfg.n_committed(index);
    assert_eq!(nd, 0, "{nd} committed but no majority");

    cfg.connect((leader + 1) % n);
    cfg.connect((leader + 2) % n);
    cfg.connect((leader + 3) % n);
    // The disconnected majority may have chosen a leader from among their own ranks,
    // forgetting index 2.
    let leader2 = cfg.check_one_leader().await;
    let (index2, _) = cfg
        .start(leader2, cmd(30))
        .await
        .unwrap_or_else(|| panic!("leader2 rejected Start()"));
    assert!((2..=3).contains(&index2), "unexpected index {index2}");
    cfg.one(cmd(1000), n, true).await;
    cfg.end()
}

/// Five concurrent Start()s in one term all commit.
pub async fn concurrent_starts(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): concurrent Start()s");
    let mut success = false;
    'outer: for attempt in 0..5 {
        if attempt > 0 {
            cfg.sleep_ms(3000).await;
        }
        let leader = cfg.check_one_leader().await;
        let Some((_, term)) = cfg.start(leader, cmd(1)).await else {
            continue;
        };
        let Some(raft) = cfg.raft(leader).cloned() else {
            continue;
        };
        let starts = (0..5u64).map(|i| {
            let raft = raft.clone();
            async move {
                raft.start(cmd(100 + i))
                    .await
                    .ok()
                    .filter(|(_, t)| *t == term)
            }
        });
        let results = futures::future::join_all(starts).await;
        for i in 0..n {
            if cfg.state(i).is_some_and(|(t, _)| t != term) {
                continue 'outer; // term changed: try again
            }
        }
        let mut cmds = Vec::new();
        for result in results {
            let Some((index, _)) = result else {
                continue 'outer;
            };
            match cfg.wait(index, n, Some(term)).await {
                Some(c) => cmds.push(c),
                None => continue 'outer, // peers moved to a later term
            }
        }
        for i in 0..5u64 {
            let want = cmd(100 + i);
            assert!(cmds.contains(&want), "cmd {} missing in {cmds:?}", 100 + i);
        }
        success = true;
        break;
    }
    assert!(success, "term changed too often");
    cfg.end()
}

/// A partitioned leader's uncommitted entries are overwritten when it rejoins.
pub async fn rejoin(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): rejoin of partitioned leader");
    cfg.one(cmd(101), n, true).await;

    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);
    for c in [102, 103, 104] {
        cfg.start(leader1, cmd(c)).await;
    }
    cfg.one(cmd(103), 2, true).await;

    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);
    cfg.connect(leader1);
    cfg.one(cmd(104), 2, true).await;

    cfg.connect(leader2);
    cfg.one(cmd(105), n, true).await;
    cfg.end()
}

/// Two rounds of 50 divergent uncommitted entries are repaired quickly.
pub async fn backup(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): leader backs up quickly over incorrect follower logs");
    let c = cfg.rng().gen::<u32>().into();
    cfg.one(cmd(c), n, true).await;

    // Put the leader and one follower in a partition.
    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect((leader1 + 2) % n);
    cfg.disconnect((leader1 + 3) % n);
    cfg.disconnect((leader1 + 4) % n);
    // Lots of commands that won't commit.
    for _ in 0..50 {
        let c = cfg.rng().gen::<u32>().into();
        cfg.start(leader1, cmd(c)).await;
    }
    cfg.sleep_ms(ELECTION_TIMEOUT_MS / 2).await;
    cfg.disconnect(leader1);
    cfg.disconnect((leader1 + 1) % n);

    // Allow the other partition to recover.
    cfg.connect((leader1 + 2) % n);
    cfg.connect((leader1 + 3) % n);
    cfg.connect((leader1 + 4) % n);
    for _ in 0..50 {
        let c = cfg.rng().gen::<u32>().into();
        cfg.one(cmd(c), 3, true).await;
    }

    // Now another partitioned leader and one follower.
    let leader2 = cfg.check_one_leader().await;
    let mut other = (leader1 + 2) % n;
    if leader2 == other {
        other = (leader2 + 1) % n;
    }
    cfg.disconnect(other);
    for _ in 0..50 {
        let c = cfg.rng().gen::<u32>().into();
        cfg.start(leader2, cmd(c)).await;
    }
    cfg.sleep_ms(ELECTION_TIMEOUT_MS / 2).await;

    // Bring the original leader back to life.
    for i in 0..n {
        cfg.disconnect(i);
    }
    cfg.connect(leader1);
    cfg.connect((leader1 + 1) % n);
    cfg.connect(other);
    for _ in 0..50 {
        let c = cfg.rng().gen::<u32>().into();
        cfg.one(cmd(c), 3, true).await;
    }

    // Now everyone.
    for i in 0..n {
        cfg.connect(i);
    }
    let c = cfg.rng().gen::<u32>().into();
    cfg.one(cmd(c), n, true).await;
    cfg.end()
}

/// Few RPCs: at most 30 to elect, (10+1+3)×3 to commit ten commands, 60 per idle second.
pub async fn count(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): RPC counts aren't too high");
    let rpcs = |cfg: &Cluster| -> u64 { (0..n).map(|i| cfg.rpc_count(i)).sum() };

    let leader = cfg.check_one_leader().await;
    let mut total1 = rpcs(&cfg);
    assert!(
        (1..=30).contains(&total1),
        "too many or few RPCs ({total1}) to elect initial leader"
    );

    let mut total2 = 0;
    let mut success = false;
    'outer: for attempt in 0..5 {
        if attempt > 0 {
            // Give the solution some time to settle.
            cfg.sleep_ms(3000).await;
        }
        let leader = cfg.check_one_leader().await;
        total1 = rpcs(&cfg);
        let iters = 10u64;
        let Some((starti, term)) = cfg.start(leader, cmd(1)).await else {
            continue; // leader moved on quickly
        };
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x: u32 = cfg.rng().gen();
            cmds.push(cmd(x.into()));
            let Some((index1, term1)) = cfg.start(leader, cmd(x.into())).await else {
                continue 'outer; // leader moved on quickly
            };
            if term1 != term {
                continue 'outer; // term changed while starting
            }
            assert_eq!(starti + i, index1, "Start() failed");
        }
        for i in 1..=iters {
            let Some(c) = cfg.wait(starti + i, n, Some(term)).await else {
                continue 'outer; // term changed while waiting
            };
            assert_eq!(
                c,
                cmds[(i - 1) as usize],
                "wrong value committed for index {}",
                starti + i
            );
        }
        let mut failed = false;
        total2 = 0;
        for j in 0..n {
            if let Some((t, _)) = cfg.state(j) {
                if t != term {
                    failed = true; // term changed: can't expect low RPC counts
                }
            }
            total2 += cfg.rpc_count(j);
        }
        if failed {
            continue 'outer;
        }
        assert!(
            total2 - total1 <= (iters + 1 + 3) * 3,
            "too many RPCs ({}) for {iters} entries",
            total2 - total1
        );
        success = true;
        break;
    }
    assert!(success, "term changed too often");
    let _ = leader;

    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    let total3 = rpcs(&cfg);
    assert!(
        total3 - total2 <= 3 * 20,
        "too many RPCs ({}) for 1 second of idleness",
        total3 - total2
    );
    cfg.end()
}

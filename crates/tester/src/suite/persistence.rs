//! Part 4B, second half: persistence, Figure 8, unreliable networks and churn.

use super::election::ELECTION_TIMEOUT_MS;
use super::Test;
use crate::{cmd, Cluster, RunOptions, Summary};
use bytes::Bytes;
use futures::FutureExt;
use rand::Rng;
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The persistence and chaos tests.
pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "basic persistence",
            part: "4B",
            run: |o| persist1(o).boxed(),
        },
        Test {
            name: "more persistence",
            part: "4B",
            run: |o| persist2(o).boxed(),
        },
        Test {
            name: "partitioned leader and one follower crash, leader restarts",
            part: "4B",
            run: |o| persist3(o).boxed(),
        },
        Test {
            name: "Figure 8",
            part: "4B",
            run: |o| figure8(o).boxed(),
        },
        Test {
            name: "unreliable agreement",
            part: "4B",
            run: |o| unreliable_agree(o).boxed(),
        },
        Test {
            name: "Figure 8 (unreliable)",
            part: "4B",
            run: |o| figure8_unreliable(o).boxed(),
        },
        Test {
            name: "churn",
            part: "4B",
            run: |o| reliable_churn(o).boxed(),
        },
        Test {
            name: "unreliable churn",
            part: "4B",
            run: |o| unreliable_churn(o).boxed(),
        },
    ]
}

fn restart_and_connect(cfg: &mut Cluster, i: usize) {
    cfg.start1(i);
    cfg.connect(i);
}

/// Restarts of everyone, of the leader, and of followers keep committed state.
pub async fn persist1(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): basic persistence");
    cfg.one(cmd(11), n, true).await;

    // Crash and restart all.
    for i in 0..n {
        cfg.start1(i);
    }
    for i in 0..n {
        cfg.disconnect(i);
        cfg.connect(i);
    }
    cfg.one(cmd(12), n, true).await;

    let leader1 = cfg.check_one_leader().await;
    cfg.disconnect(leader1);
    restart_and_connect(&mut cfg, leader1);
    cfg.one(cmd(13), n, true).await;

    let leader2 = cfg.check_one_leader().await;
    cfg.disconnect(leader2);
    cfg.one(cmd(14), n - 1, true).await;
    restart_and_connect(&mut cfg, leader2);
    cfg.wait(4, n, None).await; // wait for leader2 to join before killing i3

    let i3 = (cfg.check_one_leader().await + 1) % n;
    cfg.disconnect(i3);
    cfg.one(cmd(15), n - 1, true).await;
    restart_and_connect(&mut cfg, i3);
    cfg.one(cmd(16), n, true).await;
    cfg.end()
}

/// Five rounds in which stale peers restart while the up-to-date one must win.
pub async fn persist2(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): more persistence");
    let mut index = 1;
    for _ in 0..5 {
        cfg.one(cmd(10 + index), n, true).await;
        index += 1;

        let leader1 = cfg.check_one_leader().await;
        cfg.disconnect((leader1 + 1) % n);
        cfg.disconnect((leader1 + 2) % n);
        cfg.one(cmd(10 + index), n - 2, true).await;
        index += 1;

        cfg.disconnect(leader1);
        cfg.disconnect((leader1 + 3) % n);
        cfg.disconnect((leader1 + 4) % n);

        restart_and_connect(&mut cfg, (leader1 + 1) % n);
        restart_and_connect(&mut cfg, (leader1 + 2) % n);
        cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;

        restart_and_connect(&mut cfg, (leader1 + 3) % n);
        cfg.one(cmd(10 + index), n - 2, true).await;
        index += 1;

        cfg.connect((leader1 + 4) % n);
        cfg.connect(leader1);
    }
    cfg.one(cmd(1000), n, true).await;
    cfg.end()
}

/// A partitioned leader and a follower crash; the leader restarts.
pub async fn persist3(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): partitioned leader and one follower crash, leader restarts");
    cfg.one(cmd(101), 3, true).await;

    let leader = cfg.check_one_leader().await;
    cfg.disconnect((leader + 2) % n);
    cfg.one(cmd(102), 2, true).await;

    cfg.crash1(leader % n);
    cfg.crash1((leader + 1) % n);
    cfg.connect((leader + 2) % n);
    restart_and_connect(&mut cfg, leader % n);
    cfg.one(cmd(103), 2, true).await;

    restart_and_connect(&mut cfg, (leader + 1) % n);
    cfg.one(cmd(104), n, true).await;
    cfg.end()
}

/// Sleeps briefly, or (one time in ten) up to half an election timeout: the Figure 8
/// tests' pauses.
async fn figure8_pause(cfg: &mut Cluster) {
    let ms = if cfg.rng().gen_range(0..1000) < 100 {
        cfg.rng().gen_range(0..ELECTION_TIMEOUT_MS / 2)
    } else {
        cfg.rng().gen_range(0..13)
    };
    cfg.sleep_ms(ms).await;
}

/// A thousand rounds of crashing whoever leads; the appliers check safety throughout.
pub async fn figure8(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (4B): Figure 8");
    let c = cfg.rng().gen::<u32>().into();
    cfg.one(cmd(c), 1, true).await;

    let mut nup = n;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..n {
            let c = cfg.rng().gen::<u32>().into();
            if cfg.start(i, cmd(c)).await.is_some() {
                leader = Some(i);
            }
        }
        figure8_pause(&mut cfg).await;
        if let Some(leader) = leader {
            cfg.crash1(leader);
            nup -= 1;
        }
        if nup < 3 {
            let s = cfg.rng().gen_range(0..n);
            if !cfg.is_alive(s) {
                restart_and_connect(&mut cfg, s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        if !cfg.is_alive(i) {
            restart_and_connect(&mut cfg, i);
        }
    }
    let c = cfg.rng().gen::<u32>().into();
    cfg.one(cmd(c), n, true).await;
    cfg.end()
}

/// Agreement on an unreliable network, with many concurrent clients.
pub async fn unreliable_agree(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, true, opts);
    cfg.begin("Test (4B): unreliable agreement");
    for iters in 1..50u64 {
        let clients = (0..4u64).map(|j| cfg.one(cmd(100 * iters + j), 1, true));
        let (_, _) = futures::join!(
            futures::future::join_all(clients),
            cfg.one(cmd(iters), 1, true)
        );
    }
    cfg.set_unreliable(false);
    cfg.one(cmd(100), n, true).await;
    cfg.end()
}

/// Figure 8 on an unreliable network with long reordering: leaders are disconnected,
/// not crashed.
pub async fn figure8_unreliable(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, true, opts);
    cfg.begin("Test (4B): Figure 8 (unreliable)");
    let c = cfg.rng().gen_range(0..10_000);
    cfg.one(cmd(c), 1, true).await;

    let mut nup = n;
    for iters in 0..1000 {
        if iters == 200 {
            cfg.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..n {
            let c = cfg.rng().gen_range(0..10_000);
            if cfg.start(i, cmd(c)).await.is_some() && cfg.is_connected(i) {
                leader = Some(i);
            }
        }
        figure8_pause(&mut cfg).await;
        if let Some(leader) = leader {
            if cfg.rng().gen_range(0..1000) < ELECTION_TIMEOUT_MS / 2 {
                cfg.disconnect(leader);
                nup -= 1;
            }
        }
        if nup < 3 {
            let s = cfg.rng().gen_range(0..n);
            if !cfg.is_connected(s) {
                cfg.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..n {
        if !cfg.is_connected(i) {
            cfg.connect(i);
        }
    }
    let c = cfg.rng().gen_range(0..10_000);
    cfg.one(cmd(c), n, true).await;
    cfg.end()
}

/// Clients submit commands while peers are disconnected, crashed and restarted at
/// random; afterwards every value a client saw committed is in the log.
async fn churn(opts: RunOptions, unreliable: bool) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, unreliable, opts);
    if unreliable {
        cfg.begin("Test (4B): unreliable churn");
    } else {
        cfg.begin("Test (4B): churn");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let rafts = Arc::new(Mutex::new(
        (0..n).map(|i| cfg.raft(i).cloned()).collect::<Vec<_>>(),
    ));
    let shared_cfg = Arc::new(tokio::sync::Mutex::new(()));
    let ncli = 3;
    let mut clients = Vec::new();
    for me in 0..ncli as u64 {
        let stop = stop.clone();
        let rafts = rafts.clone();
        let seed = opts.seed ^ (me + 1).wrapping_mul(0x9E37_79B9);
        let probe = ChurnProbe {
            rafts: rafts.clone(),
            committed: cfg_committed_handle(&cfg),
        };
        let _ = &shared_cfg;
        clients.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut values = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let x: u32 = rng.gen();
                let mut index = None;
                let snapshot: Vec<_> = probe
                    .rafts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                for raft in snapshot.iter().flatten() {
                    if let Ok((i, _)) = raft.start(cmd(x.into())).await {
                        index = Some(i);
                    }
                }
                if let Some(index) = index {
                    // Poll for a while for the command to commit.
                    for ms in [10u64, 20, 50, 100, 200] {
                        if probe.committed_value(index) == Some(cmd(x.into())) {
                            values.push(x);
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(79 + me * 17)).await;
                }
            }
            values
        }));
    }

    for _ in 0..20 {
        if cfg.rng().gen_range(0..1000) < 200 {
            let i = cfg.rng().gen_range(0..n);
            cfg.disconnect(i);
        }
        if cfg.rng().gen_range(0..1000) < 500 {
            let i = cfg.rng().gen_range(0..n);
            if !cfg.is_alive(i) {
                cfg.start1(i);
            }
            cfg.connect(i);
        }
        if cfg.rng().gen_range(0..1000) < 200 {
            let i = cfg.rng().gen_range(0..n);
            if cfg.is_alive(i) {
                cfg.crash1(i);
            }
        }
        refresh(&cfg, &rafts);
        // Make crash/restart infrequent enough that the peers can often keep up, but not
        // so infrequent that everything has settled down between changes.
        cfg.sleep_ms(ELECTION_TIMEOUT_MS * 7 / 10).await;
    }

    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;
    cfg.set_unreliable(false);
    for i in 0..n {
        if !cfg.is_alive(i) {
            cfg.start1(i);
        }
        cfg.connect(i);
    }
    refresh(&cfg, &rafts);
    stop.store(true, Ordering::Relaxed);

    let mut values = Vec::new();
    for c in clients {
        match c.await {
            Ok(v) => values.extend(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    cfg.sleep_ms(ELECTION_TIMEOUT_MS).await;

    let c = cfg.rng().gen::<u32>().into();
    let last_index = cfg.one(cmd(c), n, true).await;
    let mut really = Vec::new();
    for index in 1..=last_index {
        let v = cfg
            .wait(index, n, None)
            .await
            .unwrap_or_else(|| panic!("no value at index {index}"));
        really.push(v);
    }
    for v in values {
        assert!(
            really.contains(&cmd(v.into())),
            "churn: didn't find a value {v} a client saw committed"
        );
    }
    cfg.end()
}

fn refresh(cfg: &Cluster, rafts: &Mutex<Vec<Option<raft::Raft>>>) {
    let mut r = rafts.lock().unwrap_or_else(|e| e.into_inner());
    for (i, slot) in r.iter_mut().enumerate() {
        *slot = cfg.raft(i).cloned();
    }
}

/// What a churn client needs: the live peers and a way to read committed values.
struct ChurnProbe {
    rafts: Arc<Mutex<Vec<Option<raft::Raft>>>>,
    committed: crate::cluster::CommittedView,
}

impl ChurnProbe {
    fn committed_value(&self, index: raft::Index) -> Option<Bytes> {
        self.committed.value(index)
    }
}

fn cfg_committed_handle(cfg: &Cluster) -> crate::cluster::CommittedView {
    cfg.committed_view()
}

/// Churn on a reliable network.
pub async fn reliable_churn(opts: RunOptions) -> Summary {
    churn(opts, false).await
}

/// Churn on an unreliable network.
pub async fn unreliable_churn(opts: RunOptions) -> Summary {
    churn(opts, true).await
}

//! Log compaction: snapshots and InstallSnapshot (the classic 2D/3D tests).

use super::Test;
use crate::{cmd, Cluster, RunOptions, Summary};
use futures::FutureExt;
use rand::Rng;

/// The appliers snapshot every this many entries.
pub const SNAPSHOT_INTERVAL: u64 = 10;
/// The persisted Raft state must stay under this many bytes.
pub const MAX_LOG_SIZE: u64 = 2000;

/// The snapshot tests.
pub fn tests() -> Vec<Test> {
    vec![
        Test {
            name: "snapshots basic",
            part: "snap",
            run: |o| snapshot_basic(o).boxed(),
        },
        Test {
            name: "install snapshots (disconnect)",
            part: "snap",
            run: |o| install_disconnect(o).boxed(),
        },
        Test {
            name: "install snapshots (disconnect+unreliable)",
            part: "snap",
            run: |o| install_disconnect_unreliable(o).boxed(),
        },
        Test {
            name: "install snapshots (crash)",
            part: "snap",
            run: |o| install_crash(o).boxed(),
        },
        Test {
            name: "install snapshots (unreliable+crash)",
            part: "snap",
            run: |o| install_unreliable_crash(o).boxed(),
        },
        Test {
            name: "crash and restart all servers",
            part: "snap",
            run: |o| all_crash(o).boxed(),
        },
        Test {
            name: "snapshot initialization",
            part: "snap",
            run: |o| init(o).boxed(),
        },
    ]
}

fn random_cmd(cfg: &mut Cluster) -> bytes::Bytes {
    cmd(cfg.rng().gen::<u32>().into())
}

/// The largest persisted Raft state of any peer.
fn log_size(cfg: &Cluster) -> u64 {
    (0..cfg.n())
        .map(|i| cfg.raft_state_size(i))
        .max()
        .unwrap_or(0)
}

/// Thirty rounds of 5–14 commands with one victim disconnected or crashed (per variant)
/// that must then catch up, typically through InstallSnapshot; the persisted Raft state
/// stays under 2,000 bytes throughout.
async fn snapcommon(
    opts: RunOptions,
    name: &str,
    disconnect: bool,
    reliable: bool,
    crash: bool,
) -> Summary {
    let iters = 30;
    let n = 3;
    let mut cfg = Cluster::with_snapshots(n, !reliable, opts);
    cfg.begin(name);
    let c = random_cmd(&mut cfg);
    cfg.one(c, n, true).await;
    let mut leader1 = cfg.check_one_leader().await;

    for i in 0..iters {
        let (mut victim, mut sender) = ((leader1 + 1) % n, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % n;
            victim = leader1;
        }
        if disconnect {
            cfg.disconnect(victim);
            let c = random_cmd(&mut cfg);
            cfg.one(c, n - 1, true).await;
        }
        if crash {
            cfg.crash1(victim);
            let c = random_cmd(&mut cfg);
            cfg.one(c, n - 1, true).await;
        }
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rng().gen_range(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = random_cmd(&mut cfg);
            cfg.start(sender, c).await;
        }
        // Let the appliers catch up with the starts.
        let c = random_cmd(&mut cfg);
        if !disconnect && !crash {
            // All followers caught up, so no InstallSnapshot is needed here.
            cfg.one(c, n, true).await;
        } else {
            cfg.one(c, n - 1, true).await;
        }
        let size = log_size(&cfg);
        assert!(size < MAX_LOG_SIZE, "log size too large: {size} bytes");
        if disconnect {
            // Reconnect a follower, which may be behind and need a snapshot.
            cfg.connect(victim);
            let c = random_cmd(&mut cfg);
            cfg.one(c, n, true).await;
            leader1 = cfg.check_one_leader().await;
        }
        if crash {
            cfg.start1(victim);
            cfg.connect(victim);
            let c = random_cmd(&mut cfg);
            cfg.one(c, n, true).await;
            leader1 = cfg.check_one_leader().await;
        }
    }
    if disconnect {
        // Peers never restart here, so every snapshot delivered came by InstallSnapshot.
        assert!(
            cfg.snapshots_applied() > 0,
            "no follower ever caught up through InstallSnapshot"
        );
    }
    cfg.end()
}

/// Snapshots with no faults.
pub async fn snapshot_basic(opts: RunOptions) -> Summary {
    snapcommon(opts, "Test (snap): snapshots basic", false, true, false).await
}

/// A disconnected follower catches up through InstallSnapshot.
pub async fn install_disconnect(opts: RunOptions) -> Summary {
    snapcommon(
        opts,
        "Test (snap): install snapshots (disconnect)",
        true,
        true,
        false,
    )
    .await
}

/// The same on an unreliable network.
pub async fn install_disconnect_unreliable(opts: RunOptions) -> Summary {
    snapcommon(
        opts,
        "Test (snap): install snapshots (disconnect+unreliable)",
        true,
        false,
        false,
    )
    .await
}

/// A crashed follower restarts from its snapshot and catches up.
pub async fn install_crash(opts: RunOptions) -> Summary {
    snapcommon(
        opts,
        "Test (snap): install snapshots (crash)",
        false,
        true,
        true,
    )
    .await
}

/// The same on an unreliable network.
pub async fn install_unreliable_crash(opts: RunOptions) -> Summary {
    snapcommon(
        opts,
        "Test (snap): install snapshots (unreliable+crash)",
        false,
        false,
        true,
    )
    .await
}

/// Five rounds of commands and full restarts; the next index keeps growing.
pub async fn all_crash(opts: RunOptions) -> Summary {
    let n = 3;
    let iters = 5;
    let mut cfg = Cluster::with_snapshots(n, false, opts);
    cfg.begin("Test (snap): crash and restart all servers");
    let c = random_cmd(&mut cfg);
    cfg.one(c, n, true).await;
    for _ in 0..iters {
        // Perhaps enough to get a snapshot.
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rng().gen_range(0..SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = random_cmd(&mut cfg);
            cfg.one(c, n, true).await;
        }
        let c = random_cmd(&mut cfg);
        let index1 = cfg.one(c, n, true).await;
        cfg.restart_all();
        let c = random_cmd(&mut cfg);
        let index2 = cfg.one(c, n, true).await;
        assert!(index2 > index1, "index decreased from {index1} to {index2}");
    }
    cfg.end()
}

/// Restarts everything twice; catches a Raft that loses its snapshot on the first write
/// after a restart.
pub async fn init(opts: RunOptions) -> Summary {
    let n = 3;
    let mut cfg = Cluster::with_snapshots(n, false, opts);
    cfg.begin("Test (snap): snapshot initialization");
    let c = random_cmd(&mut cfg);
    cfg.one(c, n, true).await;
    // Enough ops to make a snapshot.
    for _ in 0..=SNAPSHOT_INTERVAL {
        let c = random_cmd(&mut cfg);
        cfg.one(c, n, true).await;
    }
    for _ in 0..2 {
        cfg.restart_all();
        // A single op, to get something written back to persistent storage.
        let c = random_cmd(&mut cfg);
        cfg.one(c, n, true).await;
    }
    cfg.end()
}

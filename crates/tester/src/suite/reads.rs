//! Linearizable reads without the log (ReadIndex) through the runtime: the canonical
//! stale-read scenario, in the classic style.

use super::election::ELECTION_TIMEOUT_MS;
use super::Test;
use crate::{cmd, Cluster, RunOptions, Summary};
use futures::FutureExt;
use raft::{Index, RaftError};
use std::time::Duration;

/// The read tests.
pub fn tests() -> Vec<Test> {
    vec![Test {
        name: "no stale read from a partitioned leader",
        part: "reads",
        run: |o| stale_read(o).boxed(),
    }]
}

/// Asks peer `i` for a read index, waiting at most `limit`: `None` when it did not answer
/// in time.
async fn read(cfg: &Cluster, i: usize, limit: Duration) -> Option<Result<Index, RaftError>> {
    let raft = cfg.raft(i)?.clone();
    tokio::time::timeout(limit, raft.read_index()).await.ok()
}

/// A read at peer `i` that must succeed within a few tries, returning its read index.
async fn read_ok(cfg: &Cluster, i: usize) -> Index {
    let mut last = None;
    for _ in 0..20 {
        match read(cfg, i, Duration::from_millis(ELECTION_TIMEOUT_MS)).await {
            Some(Ok(index)) => return index,
            other => last = Some(other),
        }
        cfg.sleep_ms(100).await;
    }
    panic!("peer {i} could not serve a read: last answer {last:?}");
}

/// The leader is cut off from everyone; the others elect a new leader and commit a write.
/// A read on the old leader (which may still believe it leads) must fail or time out —
/// never hand back a read index from before the write. A read on the new side, at its
/// leader or at a follower (forwarded), sees the write; so does the old leader once
/// it is back.
pub async fn stale_read(opts: RunOptions) -> Summary {
    let n = 5;
    let mut cfg = Cluster::new(n, false, opts);
    cfg.begin("Test (reads): no stale read from a partitioned leader");
    let first = cfg.one(cmd(101), n, false).await;
    let leader1 = cfg.check_one_leader().await;
    assert!(read_ok(&cfg, leader1).await >= first);

    cfg.disconnect(leader1);
    let written = cfg.one(cmd(102), n - 1, false).await;
    let leader2 = cfg.check_one_leader().await;
    assert_ne!(leader1, leader2);
    // The old leader cannot reach a majority: its read fails or times out.
    for _ in 0..3 {
        let answer = read(
            &cfg,
            leader1,
            Duration::from_millis(2 * ELECTION_TIMEOUT_MS),
        )
        .await;
        if let Some(Ok(index)) = answer {
            assert!(
                index >= written,
                "stale read: the partitioned old leader {leader1} answered with read index \
                 {index}, before the write committed at {written} by the majority"
            );
        }
    }
    // The majority's leader, and one of its followers through forwarding, see the write.
    assert!(read_ok(&cfg, leader2).await >= written);
    let follower = (0..n).find(|i| *i != leader1 && *i != leader2).unwrap_or(0);
    assert!(read_ok(&cfg, follower).await >= written);

    cfg.connect(leader1);
    cfg.one(cmd(103), n, true).await;
    assert!(read_ok(&cfg, leader1).await >= written);
    cfg.end()
}

//! Memory stays bounded with log compaction: 1,000,000 small commands through a 3-peer
//! cluster (in-process transport, in-memory storage), each peer snapshotting every 1,000
//! applied entries. Prints resident memory (RSS) as the log grows; with snapshots it stays
//! flat, without them it grows with the number of commands.
//!
//! ```text
//! cargo bench -p raft --bench snapshot_memory                    # 1,000,000 commands
//! cargo bench -p raft --bench snapshot_memory -- 200000 nosnap   # contrast: no snapshots
//! ```

mod common;

use common::Local;
use raft::{ApplyMsg, Bytes, Config, NodeId, Raft};
use raft_storage::MemStorage;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn applier(
    raft: Raft,
    mut rx: mpsc::Receiver<ApplyMsg>,
    applied: watch::Sender<u64>,
    every: Option<u64>,
) {
    // The "service state": how many commands were applied, and a checksum of them.
    let mut state = (0u64, 0u64);
    while let Some(msg) = rx.recv().await {
        match msg {
            ApplyMsg::Command { index, command, .. } => {
                state.0 += 1;
                state.1 = state.1.wrapping_mul(31).wrapping_add(command.len() as u64);
                if every.is_some_and(|n| index.is_multiple_of(n)) {
                    let mut data = state.0.to_le_bytes().to_vec();
                    data.extend_from_slice(&state.1.to_le_bytes());
                    let _ = raft.snapshot(index, Bytes::from(data)).await;
                }
                let _ = applied.send(index);
            }
            // No reads in this benchmark: no no-op is ever appended.
            ApplyMsg::NoOp { index, .. } | ApplyMsg::Config { index, .. } => {
                let _ = applied.send(index);
            }
            ApplyMsg::Snapshot { index, data, .. } => {
                let word = |i: usize| {
                    data.get(i..i + 8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_le_bytes)
                        .unwrap_or(0)
                };
                state = (word(0), word(8));
                let _ = applied.send(index);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let total: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let snapshots = !args.iter().any(|a| a == "nosnap");
    let every = snapshots.then_some(1_000);
    let batch = 1_000u64;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot build runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let n = 3;
        let ids: Vec<NodeId> = (0..n).collect();
        let registry = Arc::new(OnceLock::new());
        let mut rafts = Vec::new();
        let mut progress = Vec::new();
        for id in 0..n {
            let (tx, rx) = mpsc::channel(1024);
            let transport = Local {
                peers: registry.clone(),
            };
            let raft = Raft::new(
                &ids,
                id,
                MemStorage::new(),
                tx,
                Config::default(),
                transport,
            )
            .unwrap_or_else(|e| panic!("cannot start peer {id}: {e}"));
            let (applied_tx, applied_rx) = watch::channel(0);
            tokio::spawn(applier(raft.clone(), rx, applied_tx, every));
            rafts.push(raft);
            progress.push(applied_rx);
        }
        let _ = registry.set(rafts.clone());

        let started = Instant::now();
        println!(
            "{total} commands of 16 bytes, 3 peers, {}",
            if snapshots {
                "snapshot every 1,000 entries"
            } else {
                "no snapshots"
            }
        );
        println!(
            "{:>10} {:>10} {:>14} {:>10}",
            "commands", "RSS KiB", "raft state B", "seconds"
        );
        println!("{:>10} {:>10} {:>14} {:>10.1}", 0, rss_kib(), 0, 0.0);
        let mut sent = 0u64;
        let mut peak = 0u64;
        while sent < total {
            let leader = loop {
                if let Some(l) = rafts.iter().position(|r| r.state().1) {
                    break l;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let mut last = 0;
            for k in 0..batch {
                let cmd = Bytes::from((sent + k).to_le_bytes().repeat(2));
                match rafts[leader].start(cmd).await {
                    Ok((index, _)) => last = index,
                    Err(_) => break,
                }
            }
            // Wait until the leader has applied the batch; followers learn of the commit
            // with the next batch and keep up.
            let _ = progress[leader].wait_for(|applied| *applied >= last).await;
            sent += batch;
            let rss = rss_kib();
            peak = peak.max(rss);
            if sent.is_multiple_of((total / 10).max(batch)) {
                let size = rafts.iter().map(Raft::raft_state_size).max().unwrap_or(0);
                println!(
                    "{sent:>10} {rss:>10} {size:>14} {:>10.1}",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let last = total;
        for rx in progress.iter_mut() {
            let _ = rx.wait_for(|applied| *applied >= last).await;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "done: {total} commands in {secs:.1} s ({:.0} commands/s), peak RSS {peak} KiB",
            total as f64 / secs
        );
        for r in &rafts {
            r.kill();
        }
    });
}

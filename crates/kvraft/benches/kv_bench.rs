//! The kvraft benchmark (not a test): sequential Appends on a 3-server cluster on the
//! labrpc network in real time, with no added latency, for 1, 10 and 100 concurrent
//! clerks (each clerk appends 1,000 times to its own key, one operation at a time).
//! Prints throughput and per-operation latency (median, p99, max).
//!
//! `cargo bench -p kvraft` (or `cargo bench -p kvraft -- 1 10` for chosen clerk counts).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{KvCluster, Latency};
use raft_tester::{Mode, RunOptions};
use std::time::{Duration, Instant};

const OPS_PER_CLERK: usize = 1000;

struct Figures {
    clerks: usize,
    ops: usize,
    wall: Duration,
    median: Duration,
    p99: Duration,
    max: Duration,
    /// RPCs on the network (clerk requests and Raft messages) per operation.
    rpcs_per_op: f64,
}

async fn scenario(clerks: usize, maxraftstate: Option<u64>) -> Figures {
    let opts = RunOptions {
        mode: Mode::RealTime,
        seed: 1,
        quiet: true,
    };
    let mut cfg = KvCluster::with_latency(3, false, maxraftstate, opts, Latency::ZERO);
    let all = cfg.all();
    let mut cks: Vec<_> = (0..clerks)
        .map(|_| cfg.make_client(&all).into_clerk())
        .collect();
    // Warm up: a leader is elected and every clerk has found it.
    for ck in &mut cks {
        if let Err(e) = ck.get("warmup").await {
            panic!("warm-up get failed: {e}");
        }
    }
    let rpcs_before = cfg.net().total_count();
    let start = Instant::now();
    let tasks: Vec<_> = cks
        .into_iter()
        .enumerate()
        .map(|(c, mut ck)| {
            tokio::spawn(async move {
                let key = format!("k{c}");
                let mut lat = Vec::with_capacity(OPS_PER_CLERK);
                for i in 0..OPS_PER_CLERK {
                    let t = Instant::now();
                    if let Err(e) = ck.append(&key, &format!("x {c} {i} y")).await {
                        panic!("append failed: {e}");
                    }
                    lat.push(t.elapsed());
                }
                // Every append is there, once, in order.
                match ck.get(&key).await {
                    Ok(v) => common::check_clnt_appends(c, &v, OPS_PER_CLERK, 1),
                    Err(e) => panic!("final get failed: {e}"),
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(clerks * OPS_PER_CLERK);
    for t in tasks {
        match t.await {
            Ok(l) => lat.extend(l),
            Err(e) => panic!("clerk task failed: {e}"),
        }
    }
    // The wall time includes each clerk's final (checking) get: one operation in 1,001.
    let wall = start.elapsed();
    let rpcs = cfg.net().total_count() - rpcs_before;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let figures = Figures {
        clerks,
        ops: lat.len(),
        wall,
        median: pct(0.50),
        p99: pct(0.99),
        max: lat[lat.len() - 1],
        rpcs_per_op: rpcs as f64 / lat.len() as f64,
    };
    drop(cfg);
    figures
}

fn main() {
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![1, 10, 100];
    }
    println!(
        "kvraft: {OPS_PER_CLERK} sequential appends per clerk, 3 servers, labrpc, real time, no added latency"
    );
    println!(
        "| clerks | maxraftstate | ops | seconds | ops/s | median latency | p99 latency | max latency | RPCs/op |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut runs: Vec<(usize, Option<u64>)> = counts.iter().map(|&c| (c, None)).collect();
    runs.push((1, Some(1000)));
    for (clerks, maxraftstate) in runs {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => panic!("cannot build a runtime: {e}"),
        };
        let f = runtime.block_on(scenario(clerks, maxraftstate));
        runtime.shutdown_background();
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {} | {} | {} | {:.2} |",
            f.clerks,
            maxraftstate.map_or("none".to_string(), |m| m.to_string()),
            f.ops,
            f.wall.as_secs_f64(),
            f.ops as f64 / f.wall.as_secs_f64(),
            ms(f.median),
            ms(f.p99),
            ms(f.max),
            f.rpcs_per_op
        );
    }
}

//! The kvraft benchmark (not a test): sequential Appends on a 3-server cluster on the
//! labrpc network in real time, with no added latency, for 1, 10 and 100 concurrent
//! clerks (each clerk appends 1,000 times to its own key, one operation at a time).
//! Prints throughput and per-operation latency (median, p99, max).
//!
//! `cargo bench -p kvraft` (or `cargo bench -p kvraft -- 1 10` for chosen clerk counts).
//!
//! `cargo bench -p kvraft --bench kv_bench -- reads [clerk counts]` runs the read mixes
//! instead: read-heavy (95 % gets, 5 % appends, every clerk on its own key) and
//! read-only (gets only), and prints, beside throughput and latency, how much the
//! persisted Raft state (term, vote, log) grew during the measured part: what the
//! operations cost in storage writes.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{KvCluster, Latency, TestEnd};
use kvraft::Clerk;
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

/// A fresh 2-worker runtime for one scenario, so that scenarios share no leftover tasks.
fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a runtime: {e}"),
    }
}

/// Three servers in real time on a reliable network with no added latency, and `clerks`
/// clerks that have not yet sent anything.
fn cluster(clerks: usize, maxraftstate: Option<u64>) -> (KvCluster, Vec<Clerk<TestEnd>>) {
    let opts = RunOptions {
        mode: Mode::RealTime,
        seed: 1,
        quiet: true,
    };
    let mut cfg = KvCluster::with_latency(3, false, maxraftstate, opts, Latency::ZERO);
    let all = cfg.all();
    let cks = (0..clerks)
        .map(|_| cfg.make_client(&all).into_clerk())
        .collect();
    (cfg, cks)
}

async fn scenario(clerks: usize, maxraftstate: Option<u64>) -> Figures {
    let (cfg, mut cks) = cluster(clerks, maxraftstate);
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut counts: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if counts.is_empty() {
        counts = vec![1, 10, 100];
    }
    if args.iter().any(|a| a == "reads") {
        reads::main(&counts);
        return;
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
        let runtime = runtime();
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

/// The read mixes.
mod reads {
    use std::time::{Duration, Instant};

    const OPS_PER_CLERK: usize = 1000;

    struct Figures {
        ops: usize,
        wall: Duration,
        read_median: Duration,
        read_p99: Duration,
        write_median: Option<Duration>,
        /// Growth of the largest persisted Raft state over the measured part, in bytes.
        log_growth: u64,
    }

    /// `writes_every`: one append every that many operations (`None`: gets only).
    async fn scenario(clerks: usize, writes_every: Option<usize>) -> Figures {
        let (mut cfg, mut cks) = super::cluster(clerks, None);
        for (c, ck) in cks.iter_mut().enumerate() {
            if let Err(e) = ck.append(&format!("k{c}"), "x").await {
                panic!("warm-up append failed: {e}");
            }
            if let Err(e) = ck.get("warmup").await {
                panic!("warm-up get failed: {e}");
            }
        }
        // Let the warm-up's entries reach every disk before measuring.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log_before = cfg.log_size();
        let start = Instant::now();
        let tasks: Vec<_> = cks
            .into_iter()
            .enumerate()
            .map(|(c, mut ck)| {
                tokio::spawn(async move {
                    let key = format!("k{c}");
                    let (mut reads, mut writes) = (Vec::new(), Vec::new());
                    for i in 0..OPS_PER_CLERK {
                        let t = Instant::now();
                        if writes_every.is_some_and(|w| i % w == w - 1) {
                            if let Err(e) = ck.append(&key, "x").await {
                                panic!("append failed: {e}");
                            }
                            writes.push(t.elapsed());
                        } else {
                            match ck.get(&key).await {
                                Ok(v) if v.starts_with('x') => {}
                                Ok(v) => panic!("get of {key} returned {v:?}"),
                                Err(e) => panic!("get failed: {e}"),
                            }
                            reads.push(t.elapsed());
                        }
                    }
                    (reads, writes)
                })
            })
            .collect();
        let (mut reads, mut writes) = (Vec::new(), Vec::new());
        for t in tasks {
            match t.await {
                Ok((r, w)) => {
                    reads.extend(r);
                    writes.extend(w);
                }
                Err(e) => panic!("clerk task failed: {e}"),
            }
        }
        let wall = start.elapsed();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let log_growth = cfg.log_size().saturating_sub(log_before);
        reads.sort();
        writes.sort();
        let pct = |v: &[Duration], p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
        let figures = Figures {
            ops: reads.len() + writes.len(),
            wall,
            read_median: pct(&reads, 0.5),
            read_p99: pct(&reads, 0.99),
            write_median: (!writes.is_empty()).then(|| pct(&writes, 0.5)),
            log_growth,
        };
        cfg.cleanup();
        figures
    }

    pub(super) fn main(counts: &[usize]) {
        println!(
            "kvraft read mixes: {OPS_PER_CLERK} operations per clerk on its own key, 3 servers, labrpc, real time, no added latency"
        );
        println!(
            "| mix | clerks | ops | seconds | ops/s | get median | get p99 | append median | Raft state growth (bytes) |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (mix, writes_every) in [("95/5", Some(20)), ("read-only", None)] {
            for &clerks in counts {
                let runtime = super::runtime();
                let f = runtime.block_on(scenario(clerks, writes_every));
                runtime.shutdown_background();
                let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1000.0);
                println!(
                    "| {mix} | {clerks} | {} | {:.2} | {:.0} | {} | {} | {} | {} |",
                    f.ops,
                    f.wall.as_secs_f64(),
                    f.ops as f64 / f.wall.as_secs_f64(),
                    ms(f.read_median),
                    ms(f.read_p99),
                    f.write_median.map_or("-".to_string(), ms),
                    f.log_growth
                );
            }
        }
    }
}

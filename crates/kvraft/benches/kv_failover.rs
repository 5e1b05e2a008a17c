//! Failover availability (the LeaseGuard paper's availability figure, on this system):
//! 10 clerks run a 95/5 get/append mix, each on its own key, against 3 servers; after 2 s
//! the leader is killed. For each 100 ms window from the kill, the gets and appends that
//! completed, as a percentage of the mean per window in the second before the kill,
//! for ReadIndex and for lease reads (300 ms lease, 50 ms clock uncertainty, election
//! timeout 400-800 ms). Virtual time (deterministic per seed), the suite's U[2, 8) ms
//! one-way latency; the figures are means over the seeds.
//!
//! `cargo bench -p kvraft --bench kv_failover [-- SEEDS]` (default 5 seeds); with
//! `partition` the leader is not killed but cut off from the other servers (the clerks
//! still reach it).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{KvCluster, Latency};
use raft_tester::{block_on, Mode, RunOptions};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const CLERKS: usize = 10;
const WINDOW: Duration = Duration::from_millis(100);
const BEFORE: Duration = Duration::from_secs(2);
const AFTER: Duration = Duration::from_secs(3);
/// Windows shown after the kill.
const SHOWN: usize = 20;

/// One mode's figures: name, gets and appends per window (% of before), gets and appends
/// per second before the kill.
type Row = (&'static str, Vec<f64>, Vec<f64>, f64, f64);

/// Completions (time since the kill, in windows; negative before) of gets and appends.
type Done = Arc<Mutex<Vec<(i64, bool)>>>;

/// Per window after the kill, gets and appends in % of before; and the gets and appends
/// per second before the kill.
async fn run(seed: u64, lease: bool, partition: bool) -> (Vec<f64>, Vec<f64>, f64, f64) {
    common::set_lease(lease);
    let opts = RunOptions {
        mode: Mode::Virtual,
        seed,
        quiet: true,
    };
    let mut cfg = KvCluster::with_latency(3, false, None, opts, Latency::DEFAULT);
    let all = cfg.all();
    let start = Instant::now();
    let kill_at = start + BEFORE;
    let done: Done = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..CLERKS {
        let mut ck = cfg.make_client(&all).into_clerk();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{c}");
            let mut i = 0u64;
            while Instant::now() < kill_at + AFTER {
                let is_get = !i.is_multiple_of(20);
                let ok = if is_get {
                    ck.get(&key).await.is_ok()
                } else {
                    ck.append(&key, "x").await.is_ok()
                };
                i += 1;
                if ok {
                    let now = Instant::now();
                    let w = if now >= kill_at {
                        (now - kill_at).as_micros() as i64 / WINDOW.as_micros() as i64
                    } else {
                        -((kill_at - now).as_micros() as i64 / WINDOW.as_micros() as i64) - 1
                    };
                    if let Ok(mut d) = done.lock() {
                        d.push((w, is_get));
                    }
                }
            }
        }));
    }
    tokio::time::sleep_until(kill_at).await;
    if let Some(leader) = cfg.leader() {
        if partition {
            // Alive and reachable by the clerks, cut off from the other servers.
            cfg.disconnect(leader, &all);
        } else {
            cfg.shutdown_server(leader);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let d = done.lock().map(|d| d.clone()).unwrap_or_default();
    let base = |get: bool| {
        // The second before the kill: windows -10..=-1.
        d.iter()
            .filter(|(w, g)| *g == get && (-10..0).contains(w))
            .count() as f64
            / 10.0
    };
    let series = |get: bool| {
        let b = base(get).max(1e-9);
        (0..SHOWN as i64)
            .map(|w| {
                let n = d.iter().filter(|(x, g)| *g == get && *x == w).count() as f64;
                100.0 * n / b
            })
            .collect::<Vec<_>>()
    };
    let out = (
        series(true),
        series(false),
        base(true) * 10.0,
        base(false) * 10.0,
    );
    cfg.cleanup();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5);
    let partition = args.iter().any(|a| a == "partition");
    let mut rows: Vec<Row> = Vec::new();
    for (name, lease) in [("ReadIndex", false), ("Lease", true)] {
        let mut gets = vec![0.0; SHOWN];
        let mut appends = vec![0.0; SHOWN];
        let (mut get_rate, mut append_rate) = (0.0, 0.0);
        for seed in 1..=seeds {
            let (g, a, gr, ar) = block_on(Mode::Virtual, run(seed, lease, partition));
            get_rate += gr / seeds as f64;
            append_rate += ar / seeds as f64;
            for w in 0..SHOWN {
                gets[w] += g[w] / seeds as f64;
                appends[w] += a[w] / seeds as f64;
            }
        }
        rows.push((name, gets, appends, get_rate, append_rate));
    }
    println!(
        "kvraft failover: {CLERKS} clerks, 95/5 gets/appends, leader {} at 0; completions per 100 ms window in % of the mean window of the second before, mean of {seeds} seeds (virtual time)",
        if partition { "cut off from the other servers" } else { "killed" }
    );
    let header: Vec<String> = (0..SHOWN).map(|w| format!("{}", w * 100)).collect();
    println!("| mode | op | before (ops/s) | {} |", header.join(" | "));
    println!("| --- | --- | ---: |{}", " ---: |".repeat(SHOWN));
    for (name, gets, appends, gr, ar) in &rows {
        for (op, s, rate) in [("get", gets, gr), ("append", appends, ar)] {
            let cells: Vec<String> = s.iter().map(|v| format!("{v:.0}")).collect();
            println!("| {name} | {op} | {rate:.0} | {} |", cells.join(" | "));
        }
    }
}

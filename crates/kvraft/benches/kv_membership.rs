//! Membership figures (issue 13), on the kv test harness: three servers, clerks writing
//! 1 KiB puts in a closed loop throughout, the suite's U[2, 8) ms one-way latency on
//! every link (client to server and server to server), no snapshots.
//!
//! - **Adding a server to a loaded cluster**: once the log holds `LOG` entries, a fourth
//!   server is started and the leader adds it as a learner (committed), then
//!   `add_voter` waits for it to catch up and promotes it (committed). Printed: the log
//!   at that moment (entries, bytes of the largest persisted Raft state), the time to
//!   commit the learner, to catch up and promote, and the total; and how many writes the
//!   clerks completed meanwhile.
//! - **Leadership transfer**: `TRANSFERS` transfers on a loaded three-server cluster,
//!   each to the next voter in turn, timed from the call until the old leader follows
//!   the target (what `transfer_leader` waits for); median, p99 and max.
//!
//! Both in virtual time (deterministic per seed; the figures are those of the latency
//! model and the timers, not of this machine) and in real time (on this machine).
//!
//! `cargo bench -p kvraft --bench kv_membership [-- --quick] [--virtual|--real] [--seeds N]`

#[path = "../tests/common/mod.rs"]
mod common;

use common::members::Faults;
use common::KvCluster;
use raft_tester::{block_on, Mode, RunOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    /// Log entries before the new server is added.
    log: u64,
    /// Leadership transfers timed.
    transfers: usize,
    /// Concurrent writing clerks.
    writers: usize,
}

const FULL: Sizes = Sizes {
    log: 5000,
    transfers: 100,
    writers: 8,
};
const QUICK: Sizes = Sizes {
    log: 200,
    transfers: 10,
    writers: 4,
};
const VALUE_BYTES: usize = 1024;

/// Clerks putting `VALUE_BYTES` values to their own keys until `stop`; counts writes.
fn start_writers(
    cfg: &mut KvCluster,
    n: usize,
    stop: &Arc<AtomicBool>,
    writes: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let all = cfg.all();
    (0..n)
        .map(|c| {
            let mut ck = cfg.make_client(&all).into_clerk();
            let (stop, writes) = (stop.clone(), writes.clone());
            tokio::spawn(async move {
                let key = format!("w{c}");
                let value = "v".repeat(VALUE_BYTES);
                while !stop.load(Ordering::Relaxed) {
                    if ck.put(&key, &value).await.is_ok() {
                        writes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

/// What adding a server measured.
struct Add {
    entries: u64,
    log_bytes: u64,
    learner: Duration,
    promote: Duration,
    writes_during: u64,
}

async fn add_server(opts: RunOptions, s: Sizes) -> Add {
    let mut cfg = KvCluster::with_members(4, 3, false, None, opts);
    let mut faults = Faults::new(false);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&mut cfg, s.writers, &stop, &writes);
    let leader = loop {
        let l = cfg.await_leader(&mut faults).await;
        let applied = cfg.server(l).map_or(0, |kv| kv.stats().last_applied);
        if applied >= s.log {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let kv = cfg.server(leader).cloned().expect("the leader runs");
    let entries = kv.stats().last_applied;
    let log_bytes = cfg.log_size();
    cfg.add_server(3);
    let before = writes.load(Ordering::Relaxed);
    let t0 = Instant::now();
    kv.add_learner(3).await.expect("learner added");
    let t1 = Instant::now();
    kv.add_voter(3, Duration::from_secs(600))
        .await
        .expect("caught up and promoted");
    let t2 = Instant::now();
    let writes_during = writes.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    cfg.cleanup();
    Add {
        entries,
        log_bytes,
        learner: t1 - t0,
        promote: t2 - t1,
        writes_during,
    }
}

/// Durations of `s.transfers` transfers, each to the next voter.
async fn transfers(opts: RunOptions, s: Sizes) -> Vec<Duration> {
    let mut cfg = KvCluster::with_members(3, 3, false, None, opts);
    let mut faults = Faults::new(false);
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writers = start_writers(&mut cfg, s.writers, &stop, &writes);
    let mut took = Vec::new();
    let mut failed = 0;
    while took.len() < s.transfers {
        assert!(failed < 10, "10 transfers failed");
        let leader = cfg.await_leader(&mut faults).await;
        let target = (leader + 1) % 3;
        let kv = cfg.server(leader).cloned().expect("the leader runs");
        let t0 = Instant::now();
        match kv.transfer_leader(target as raft::NodeId).await {
            Ok(()) => took.push(t0.elapsed()),
            Err(e) => {
                failed += 1;
                eprintln!("  transfer {leader} -> {target} failed ({e}); not counted");
            }
        }
        // Let the new leader settle under the load before the next one.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    cfg.cleanup();
    took
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { QUICK } else { FULL };
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let mut modes = Vec::new();
    if !args.iter().any(|a| a == "--real") {
        modes.push(Mode::Virtual);
    }
    if !args.iter().any(|a| a == "--virtual") {
        modes.push(Mode::RealTime);
    }
    println!(
        "kvraft membership: 3 servers, {} clerks putting {VALUE_BYTES} B values in a closed loop, U[2, 8) ms one-way latency, election timeout 400-800 ms, heartbeat 100 ms, no snapshots",
        sizes.writers
    );
    println!();
    println!(
        "Adding a fourth server once the log holds {} entries:",
        sizes.log
    );
    println!("| time | seed | log entries | log bytes | learner committed (ms) | catch-up + promotion (ms) | total (ms) | writes meanwhile |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for &mode in &modes {
        for seed in 1..=seeds {
            let opts = RunOptions {
                mode,
                seed,
                quiet: true,
            };
            let a = block_on(mode, add_server(opts, sizes));
            println!(
                "| {} | {seed} | {} | {} | {} | {} | {} | {} |",
                mode_name(mode),
                a.entries,
                a.log_bytes,
                ms(a.learner),
                ms(a.promote),
                ms(a.learner + a.promote),
                a.writes_during
            );
        }
    }
    println!();
    println!(
        "Leadership transfer, {} transfers per run (call to the old leader following the target):",
        sizes.transfers
    );
    println!("| time | seed | median (ms) | p99 (ms) | max (ms) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for &mode in &modes {
        for seed in 1..=seeds {
            let opts = RunOptions {
                mode,
                seed,
                quiet: true,
            };
            let mut t = block_on(mode, transfers(opts, sizes));
            t.sort_unstable();
            let p = |q: f64| t[((q * t.len() as f64).ceil() as usize).clamp(1, t.len()) - 1];
            println!(
                "| {} | {seed} | {} | {} | {} |",
                mode_name(mode),
                ms(p(0.5)),
                ms(p(0.99)),
                ms(t[t.len() - 1])
            );
        }
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Virtual => "virtual",
        Mode::RealTime => "real",
    }
}

//! A five-peer Raft cluster on the simulated network: elect a leader, commit commands,
//! crash the leader, watch the re-election, restart the old leader and watch it catch up.
//!
//! ```text
//! cargo run -p raft-tester --bin raft-demo              # wall-clock time
//! cargo run -p raft-tester --bin raft-demo -- --virtual # simulated time, instant
//! ```

use clap::Parser;
use raft_tester::{block_on, cmd, Cluster, Mode, RunOptions};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Watch a 5-peer Raft cluster elect, replicate, lose its leader and recover")]
struct Args {
    /// Number of peers.
    #[arg(long, default_value_t = 5)]
    peers: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Run in simulated time (instant and reproducible) instead of wall-clock time.
    #[arg(long = "virtual")]
    virtual_time: bool,
}

fn main() {
    let args = Args::parse();
    if args.peers < 3 {
        eprintln!("--peers must be at least 3 to survive a crash");
        std::process::exit(2);
    }
    let mode = if args.virtual_time {
        Mode::Virtual
    } else {
        Mode::RealTime
    };
    let opts = RunOptions {
        mode,
        seed: args.seed,
        quiet: true,
    };
    block_on(mode, demo(args.peers, opts));
}

fn say(t0: Instant, what: String) {
    println!("[{:>7.3} s] {what}", t0.elapsed().as_secs_f64());
}

async fn wait_for_leader(cfg: &Cluster, t0: Instant) -> (usize, u64) {
    loop {
        for i in 0..cfg.n() {
            if let (true, Some((term, true))) = (cfg.is_connected(i), cfg.state(i)) {
                return (i, term);
            }
        }
        if t0.elapsed() > Duration::from_secs(30) {
            eprintln!("no leader after 30 s: something is wrong");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn demo(n: usize, opts: RunOptions) {
    let t0 = Instant::now();
    say(
        t0,
        format!(
            "starting {n} peers on the simulated network (seed {})",
            opts.seed
        ),
    );
    let mut cfg = Cluster::new(n, false, opts);

    let (leader, term) = wait_for_leader(&cfg, t0).await;
    say(t0, format!("peer {leader} is leader of term {term}"));

    for x in 1..=3 {
        let index = cfg.one(cmd(x * 100), n, true).await;
        say(
            t0,
            format!(
                "command {} committed at index {index} on all {n} peers",
                x * 100
            ),
        );
    }

    let crashed_at = Instant::now();
    cfg.crash1(leader);
    say(t0, format!("CRASH: peer {leader} (the leader) is gone"));
    let (leader2, term2) = wait_for_leader(&cfg, t0).await;
    say(
        t0,
        format!(
            "peer {leader2} is leader of term {term2}, {} ms after the crash",
            crashed_at.elapsed().as_millis()
        ),
    );

    for x in 4..=5 {
        let index = cfg.one(cmd(x * 100), n - 1, true).await;
        say(
            t0,
            format!(
                "command {} committed at index {index} on {} peers",
                x * 100,
                n - 1
            ),
        );
    }

    cfg.start1(leader);
    cfg.connect(leader);
    say(
        t0,
        format!("RESTART: peer {leader} is back, with only what it had persisted"),
    );
    let index = cfg.one(cmd(600), n, true).await;
    say(
        t0,
        format!("command 600 committed at index {index} on all {n} peers: peer {leader} caught up"),
    );
    say(
        t0,
        format!(
            "done: {} RPCs sent; every peer applied the same commands in the same order",
            cfg.rpc_total()
        ),
    );
}

//! Runs the classic suite (or part of it), for one seed or many, and prints the classic
//! per-test lines and a table beside the reference figures of the Go implementation.
//!
//! ```text
//! cargo run --release -p raft-tester --bin classic-suite -- --seeds 50
//! cargo run --release -p raft-tester --bin classic-suite -- --part 4B --markdown
//! RAFT_TEST_REALTIME=1 cargo run --release -p raft-tester --bin classic-suite
//! RAFT_TEST_STORAGE=disk cargo run --release -p raft-tester --bin classic-suite -- --part 4B
//! cargo run --release -p raft-tester --bin classic-suite -- --part 4A --timeline /tmp/tl
//! ```
//!
//! With `RAFT_TEST_STORAGE=disk` the peers keep their state in `raft-wal` data directories
//! (temporary) and restart from them.

use clap::Parser;
use raft_tester::timeline::file_stem;
use raft_tester::{
    block_on, record_timeline, run_with, suite, Mode, RunOptions, StorageMode, Summary,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Run the classic Raft suite on the simulated network")]
struct Args {
    /// Only tests of this part (4A, 4B).
    #[arg(long)]
    part: Option<String>,
    /// Only tests whose name contains this text.
    #[arg(long)]
    name: Option<String>,
    /// How many times to run the suite, each time with other seeds.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// The first round's base seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Run against the wall clock instead of virtual time.
    #[arg(long)]
    realtime: bool,
    /// Print the table as Markdown (for docs/TESTS.md).
    #[arg(long)]
    markdown: bool,
    /// Print only failures and the final summary.
    #[arg(long)]
    quiet: bool,
    /// Write every run's HTML timeline into this directory, one file per test and seed.
    #[arg(long, value_name = "DIR")]
    timeline: Option<std::path::PathBuf>,
}

/// The classic Go implementation's figures (from the handout): RPCs and bytes.
fn reference(name: &str) -> Option<(u64, u64)> {
    Some(match name {
        "initial election" => (32, 9_170),
        "election after network failure" => (70, 13_895),
        "basic agreement" => (18, 5_158),
        "RPC byte count" => (50, 115_122),
        "agreement after follower reconnects" => (64, 17_489),
        "no agreement if too many followers disconnect" => (116, 27_838),
        "concurrent Start()s" => (16, 4_648),
        "rejoin of partitioned leader" => (111, 26_996),
        "leader backs up quickly over incorrect follower logs" => (1_342, 953_354),
        "RPC counts aren't too high" => (30, 9_050),
        "basic persistence" => (206, 42_208),
        "more persistence" => (1_194, 198_270),
        "partitioned leader and one follower crash, leader restarts" => (46, 10_638),
        "Figure 8" => (9_395, 1_939_183),
        "unreliable agreement" => (244, 85_259),
        "Figure 8 (unreliable)" => (1_948, 4_175_577),
        "churn" => (4_402, 2_220_926),
        "unreliable churn" => (781, 539_084),
        _ => return None,
    })
}

fn mix(a: u64, b: u64) -> u64 {
    (a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (a >> 31)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tests: Vec<_> = suite::all()
        .into_iter()
        .filter(|t| {
            args.part
                .as_deref()
                .is_none_or(|p| t.part.eq_ignore_ascii_case(p))
        })
        .filter(|t| args.name.as_deref().is_none_or(|n| t.name.contains(n)))
        .collect();
    if tests.is_empty() {
        eprintln!("no test matches the filters");
        return ExitCode::from(2);
    }
    let mode = if args.realtime {
        Mode::RealTime
    } else {
        Mode::Virtual
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut first_round: Vec<(&str, &str, Summary)> = Vec::new();
    let mut passed = 0u64;
    // Panics are reported as failures below; keep the default hook's message short.
    for round in 0..args.seeds {
        let base = args.first_seed + round;
        for (k, test) in tests.iter().enumerate() {
            let opts = RunOptions {
                mode,
                seed: mix(base, k as u64 + 1),
                quiet: args.quiet,
            };
            let run = || match &args.timeline {
                Some(dir) => {
                    let file =
                        dir.join(format!("{}.seed-{}.html", file_stem(test.name), opts.seed));
                    block_on(opts.mode, record_timeline(file, (test.run)(opts)))
                }
                None => run_with(opts, test.run),
            };
            match catch_unwind(AssertUnwindSafe(run)) {
                Ok(summary) => {
                    passed += 1;
                    if round == 0 {
                        first_round.push((test.part, test.name, summary));
                    }
                }
                Err(_) => {
                    eprintln!("FAILED: {} (seed {})", test.name, opts.seed);
                    failures.push((test.name, opts.seed));
                }
            }
        }
        if args.seeds > 1 {
            eprintln!(
                "round {}/{}: {} failures so far, {:.1} s wall",
                round + 1,
                args.seeds,
                failures.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    print_table(&first_round, args.markdown);
    println!(
        "\n{passed} passed, {} failed ({} rounds of {} tests, {:.1} s wall, {} time, {} storage)",
        failures.len(),
        args.seeds,
        tests.len(),
        started.elapsed().as_secs_f64(),
        if args.realtime { "real" } else { "virtual" },
        StorageMode::current().name()
    );
    for (name, seed) in &failures {
        println!("replay: RAFT_TEST_SEED={seed} cargo test -p raft-tester -- '{name}'");
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn ratio(ours: u64, theirs: u64) -> String {
    format!("{:.2}", ours as f64 / theirs as f64)
}

fn print_table(rows: &[(&str, &str, Summary)], markdown: bool) {
    if rows.is_empty() {
        return;
    }
    println!();
    let header = [
        "part",
        "test",
        "sim s",
        "peers",
        "RPCs",
        "bytes",
        "commits",
        "ref RPCs",
        "ref bytes",
        "RPC ratio",
        "byte ratio",
    ];
    let mut lines = Vec::new();
    for (part, name, s) in rows {
        let (rr, rb, q1, q2) = match reference(name) {
            Some((r, b)) => (
                r.to_string(),
                b.to_string(),
                ratio(s.rpcs, r),
                ratio(s.bytes, b),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        lines.push([
            part.to_string(),
            name.to_string(),
            format!("{:.1}", s.seconds),
            s.peers.to_string(),
            s.rpcs.to_string(),
            s.bytes.to_string(),
            s.commits.to_string(),
            rr,
            rb,
            q1,
            q2,
        ]);
    }
    if markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}", " --- |".repeat(header.len()));
        for l in &lines {
            println!("| {} |", l.join(" | "));
        }
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.len());
        }
    }
    let fmt = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 1 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", fmt(header.iter().map(|s| s.to_string()).collect()));
    for l in lines {
        println!("{}", fmt(l.to_vec()));
    }
}

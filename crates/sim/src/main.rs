//! Command-line runner: sweep a range of seeds, replay one, or benchmark.

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use raft_sim::{
    planted_bugs, run_seed, shrink, timeline_html, timeline_svg, InvariantKind, SeedReport,
    SimConfig, Summary, TraceMode,
};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Deterministic simulation of raft-core under faults, checking every safety invariant
/// after every step.
#[derive(Parser, Debug)]
#[command(name = "raft-sim", version)]
struct Args {
    /// Seeds to run, as `A..B` (B excluded), `A..=B` or a single number.
    #[arg(long, default_value = "0..1000")]
    seeds: String,
    /// Cluster size (default: each seed picks 3, 5 or 7).
    #[arg(long)]
    nodes: Option<usize>,
    /// Steps of the chaos phase of each seed.
    #[arg(long)]
    steps: Option<u64>,
    /// Replay one seed with full tracing.
    #[arg(long)]
    replay: Option<u64>,
    /// With --replay: also write the run as an interactive HTML timeline to this file.
    #[arg(long, value_name = "FILE", requires = "replay")]
    html: Option<std::path::PathBuf>,
    /// With --replay: also draw the run as a static SVG (the log view just before the
    /// first log repair and at the end) to this file.
    #[arg(long, value_name = "FILE", requires = "replay")]
    svg: Option<std::path::PathBuf>,
    /// Benchmark: steps per second and seeds per minute on one core.
    #[arg(long)]
    bench: bool,
    /// Trace records shown with a violation.
    #[arg(long, default_value_t = 80)]
    trace_len: usize,
    /// Keep going after a violation (default: stop at the first).
    #[arg(long)]
    keep_going: bool,
    /// Use the default fault mix for every seed instead of a per-seed random mix.
    #[arg(long)]
    no_swarm: bool,
    /// Do not check this invariant (repeatable).
    #[arg(long = "disable", value_name = "INVARIANT")]
    disabled: Vec<String>,
    /// Do not check liveness after the heal.
    #[arg(long)]
    no_liveness: bool,
    /// Ticks allowed from the heal to a commit on every node.
    #[arg(long)]
    liveness_bound: Option<u64>,
    /// Override one setting, as `key=value` (repeatable), e.g. `faults.crash=0.1`,
    /// `core.max_inflight_msgs=1`, `network.latency_max_us=20000`. With the per-seed
    /// swarm draw, some settings are only a base; add --no-swarm to pin them.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// Shrink a failing run to a simpler one (fewer fault kinds, fewer nodes).
    #[arg(long)]
    shrink: bool,
    /// Worker threads for a sweep.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// List the invariants and exit.
    #[arg(long)]
    list_invariants: bool,
}

/// Failure reports kept in memory during a sweep.
const KEEP_REPORTS: usize = 4;

fn parse_seeds(s: &str) -> Result<Range<u64>> {
    let num = |x: &str| -> Result<u64> {
        x.trim()
            .replace('_', "")
            .parse::<u64>()
            .with_context(|| format!("bad seed number {x:?}"))
    };
    if let Some((a, b)) = s.split_once("..=") {
        let (a, b) = (num(a)?, num(b)?);
        return Ok(a..b.checked_add(1).context("seed range overflows")?);
    }
    if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (num(a)?, num(b)?);
        if a > b {
            bail!("empty seed range {s}");
        }
        return Ok(a..b);
    }
    let a = num(s)?;
    Ok(a..a + 1)
}

fn config(args: &Args) -> Result<SimConfig> {
    let mut cfg = SimConfig {
        nodes: args.nodes,
        swarm: !args.no_swarm,
        check_liveness: !args.no_liveness,
        disabled_invariants: args.disabled.clone(),
        ..SimConfig::default()
    };
    if let Some(s) = args.steps {
        cfg.chaos_steps = s;
    }
    if let Some(b) = args.liveness_bound {
        cfg.liveness_bound_ticks = b;
    }
    for kv in &args.settings {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set wants KEY=VALUE, not {kv:?}"))?;
        cfg.set(k.trim(), v)?;
    }
    cfg.validate()?;
    Ok(cfg)
}

fn replay_flags(args: &Args) -> String {
    let mut s = String::new();
    if let Some(n) = args.nodes {
        s.push_str(&format!(" --nodes {n}"));
    }
    if let Some(n) = args.steps {
        s.push_str(&format!(" --steps {n}"));
    }
    if args.no_swarm {
        s.push_str(" --no-swarm");
    }
    for d in &args.disabled {
        s.push_str(&format!(" --disable {d}"));
    }
    if args.no_liveness {
        s.push_str(" --no-liveness");
    }
    if let Some(b) = args.liveness_bound {
        s.push_str(&format!(" --liveness-bound {b}"));
    }
    for kv in &args.settings {
        s.push_str(&format!(" --set {kv}"));
    }
    s
}

/// The cargo command that rebuilds this binary with the same planted bugs (a `--cfg`, in
/// a target directory of its own so that the normal build is not invalidated).
fn cargo_run() -> String {
    let bugs = planted_bugs();
    if bugs.is_empty() {
        "cargo run --release -p raft-sim --".to_string()
    } else {
        let cfgs: Vec<String> = bugs
            .iter()
            .map(|b| format!("--cfg raft_bug=\\\"{b}\\\""))
            .collect();
        format!(
            "RUSTFLAGS=\"{}\" CARGO_TARGET_DIR=target-sim cargo run --release -p raft-sim --",
            cfgs.join(" ")
        )
    }
}

fn print_failure(args: &Args, report: &SeedReport) {
    println!("\n=== VIOLATION ===");
    println!("{}", report.failure_report(args.trace_len));
    println!(
        "replay with: {} --replay {}{}",
        cargo_run(),
        report.seed,
        replay_flags(args)
    );
    if args.shrink {
        println!("\nshrinking...");
        match shrink(report, TraceMode::Ring(args.trace_len * 20)) {
            Some(small) => {
                println!(
                    "=== SHRUNK (same seed, simpler settings; {} steps instead of {}) ===",
                    small.violation().map_or(0, |v| v.step),
                    report.violation().map_or(0, |v| v.step)
                );
                println!("{}", small.failure_report(args.trace_len));
                println!(
                    "replay with: {} --replay {} {}",
                    cargo_run(),
                    small.seed,
                    small.config.cli_flags()
                );
            }
            None => println!("could not reproduce the failure"),
        }
    }
}

fn replay(args: &Args, seed: u64) -> Result<bool> {
    let cfg = config(args)?;
    if let Some(path) = &args.svg {
        let (_, svg) = timeline_svg(seed, &cfg)?;
        std::fs::write(path, &svg).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("SVG written to {} ({} bytes)", path.display(), svg.len());
    }
    let report = match &args.html {
        Some(path) => {
            let start = Instant::now();
            let (report, html) = timeline_html(seed, &cfg)?;
            std::fs::write(path, &html).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "timeline written to {} ({} bytes, {:.2} s to run and draw)",
                path.display(),
                html.len(),
                start.elapsed().as_secs_f64()
            );
            report
        }
        None => run_seed(seed, &cfg, TraceMode::Full)?,
    };
    println!("seed {seed}\nsettings:\n{}\n", report.config);
    print!("{}", report.trace.render());
    println!("\nfinal cluster:\n{}", report.cluster);
    let s = &report.stats;
    println!(
        "{} steps, {:.3} s simulated, {} elections, {} commits, faults {}",
        s.counts.steps,
        s.counts.sim_time_us as f64 / 1e6,
        s.counts.elections,
        s.counts.commits,
        s.counts.faults
    );
    match &report.outcome {
        Ok(o) => {
            println!("outcome: {o:?}");
            Ok(true)
        }
        Err(v) => {
            println!("\nVIOLATION: {v}");
            if args.shrink {
                if let Some(small) = shrink(&report, TraceMode::Full) {
                    println!("\n=== SHRUNK ===\n{}", small.failure_report(usize::MAX));
                    println!(
                        "replay with: {} --replay {} {}",
                        cargo_run(),
                        small.seed,
                        small.config.cli_flags()
                    );
                }
            }
            Ok(false)
        }
    }
}

fn sweep(args: &Args, seeds: Range<u64>) -> Result<bool> {
    let cfg = config(args)?;
    let bugs = planted_bugs();
    if !bugs.is_empty() {
        eprintln!("planted bugs enabled: {}", bugs.join(", "));
    }
    let total = seeds.end - seeds.start;
    let pb = if args.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} seeds ({per_sec}, eta {eta}) {msg}",
            )
            .context("progress bar template")?
            .progress_chars("=> "),
        );
        pb
    };
    let next = AtomicU64::new(seeds.start);
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<SeedReport>> = Mutex::new(Vec::new());
    let failed = AtomicU64::new(0);
    let ring = TraceMode::Ring(args.trace_len.saturating_mul(8).max(64));
    let start = Instant::now();
    let jobs = args.jobs.max(1);
    let summaries: Vec<Result<Summary>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| -> Result<Summary> {
                    let mut sum = Summary::default();
                    while !stop.load(Ordering::Relaxed) {
                        let seed = next.fetch_add(1, Ordering::Relaxed);
                        if seed >= seeds.end {
                            break;
                        }
                        let report = run_seed(seed, &cfg, ring)?;
                        sum.add(&report);
                        pb.inc(1);
                        if report.violation().is_some() {
                            if !args.keep_going {
                                stop.store(true, Ordering::Relaxed);
                            }
                            let mut f = failures
                                .lock()
                                .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
                            // Keep the lowest seeds' reports only (a long run may fail often).
                            f.push(report);
                            f.sort_by_key(|r| r.seed);
                            f.truncate(KEEP_REPORTS);
                            failed.fetch_add(1, Ordering::Relaxed);
                            pb.set_message(format!(
                                "{} violation(s)",
                                failed.load(Ordering::Relaxed)
                            ));
                        }
                    }
                    Ok(sum)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker panicked")))
            })
            .collect()
    });
    pb.finish_and_clear();
    let mut summary = Summary::default();
    for s in summaries {
        summary.merge(&s?);
    }
    summary.wall = start.elapsed();
    let mut failures = failures
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a worker panicked"))?;
    failures.sort_by_key(|r| r.seed);
    if let Some(first) = failures.first() {
        print_failure(args, first);
    }
    print_summary(&seeds, jobs, &summary);
    Ok(summary.violations() == 0)
}

fn print_summary(seeds: &Range<u64>, jobs: usize, summary: &Summary) {
    println!(
        "\n=== SUMMARY (seeds {}..{}{}) ===",
        seeds.start,
        seeds.end,
        if jobs > 1 {
            format!(", {jobs} threads")
        } else {
            String::new()
        }
    );
    println!("{summary}");
}

fn bench(args: &Args) -> Result<bool> {
    let cfg = config(args)?;
    let seeds = if args.seeds == "0..1000" {
        0..5000
    } else {
        parse_seeds(&args.seeds)?
    };
    println!(
        "benchmark: seeds {}..{}, one thread, default settings{}",
        seeds.start,
        seeds.end,
        args.nodes
            .map_or(" (3, 5 or 7 nodes per seed)".to_string(), |n| format!(
                ", {n} nodes"
            ))
    );
    for (label, mode) in [
        ("sweep (ring trace of 640 records)", TraceMode::Ring(640)),
        ("no trace", TraceMode::Off),
    ] {
        let start = Instant::now();
        let mut sum = Summary::default();
        for seed in seeds.clone() {
            sum.add(&run_seed(seed, &cfg, mode)?);
        }
        sum.wall = start.elapsed();
        println!(
            "{label:<36} {:>10.0} steps/s {:>9.0} seeds/min  ({} steps, {:.1} s wall, {:.0} simulated s/wall s, {} violations)",
            sum.steps_per_sec(),
            sum.seeds_per_min(),
            sum.counts.steps,
            sum.wall.as_secs_f64(),
            sum.counts.sim_time_us as f64 / 1e6 / sum.wall.as_secs_f64().max(1e-9),
            sum.violations()
        );
    }
    Ok(true)
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.list_invariants {
        for k in InvariantKind::ALL {
            println!("{}", k.name());
        }
        println!("liveness, catch-up (after the heal; --no-liveness)");
        println!("no-panic, driver-contract (always)");
        return Ok(());
    }
    let ok = if let Some(seed) = args.replay {
        replay(&args, seed)?
    } else if args.bench {
        bench(&args)?
    } else {
        sweep(&args, parse_seeds(&args.seeds)?)?
    };
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

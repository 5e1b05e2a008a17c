//! The simulator's fixed seed budget, the proof that it has teeth.
//!
//! - In a normal build, no seed of the budget may break any invariant: the safety
//!   invariants (liveness off) and, separately, liveness after the heal.
//! - In a build with a planted raft-core bug (`RUSTFLAGS='--cfg raft_bug="…"'`), some seed within the
//!   budget must break a safety invariant; the test prints how many seeds that took.
//!   Liveness is off there: the planted bugs are safety bugs, and a clean build shows no
//!   safety violation over the same seeds, so whatever is caught is the planted bug.
//!
//! `check-planted-bugs.sh` runs this test once per planted bug. The environment variable
//! `RAFT_SIM_DISABLE` (comma-separated invariant names) switches invariants off, to see
//! which ones catch a bug on their own.

use raft_sim::{planted_bugs, run_seed, SimConfig, Summary, TraceMode};
use std::time::Instant;

/// Seeds every normal test run checks.
const CLEAN_BUDGET: u64 = 10_000;
/// Seeds a planted bug must be caught within.
const BUG_BUDGET: u64 = 20_000;

/// The default settings, with the invariants named in `RAFT_SIM_DISABLE` switched off.
fn settings(check_liveness: bool) -> SimConfig {
    let disabled = std::env::var("RAFT_SIM_DISABLE").unwrap_or_default();
    SimConfig {
        check_liveness,
        disabled_invariants: disabled
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        ..SimConfig::default()
    }
}

fn sweep(
    cfg: &SimConfig,
    seeds: std::ops::Range<u64>,
    stop_at_first: bool,
) -> (Summary, Vec<String>) {
    let start = Instant::now();
    let mut summary = Summary::default();
    let mut reports = Vec::new();
    for seed in seeds {
        let report = run_seed(seed, cfg, TraceMode::Ring(400)).expect("valid settings");
        summary.add(&report);
        if report.violation().is_some() {
            if reports.len() < 3 {
                reports.push(report.failure_report(60));
            }
            if stop_at_first {
                break;
            }
        }
    }
    summary.wall = start.elapsed();
    (summary, reports)
}

fn fail_with(what: &str, summary: &Summary, reports: &[String]) -> ! {
    panic!(
        "{what}: {} of {} seeds broke an invariant\n\n{summary}\n\nfirst failure:\n{}\n\
         (docs/TESTING.md, section \"Simulator\", lists the raft-core bugs it found)",
        summary.violations(),
        summary.seeds,
        reports.first().map(String::as_str).unwrap_or("")
    );
}

/// No safety invariant breaks on any seed of the budget (liveness not checked).
#[test]
fn no_safety_violation_within_budget() {
    if !planted_bugs().is_empty() {
        return; // see `planted_bug_is_caught_within_budget`
    }
    let (summary, reports) = sweep(&settings(false), 0..CLEAN_BUDGET, false);
    println!("safety budget:\n{summary}");
    if summary.violations() > 0 {
        fail_with("safety", &summary, &reports);
    }
}

/// After the heal, every seed of the budget elects a leader that commits a proposal on
/// every node within the bound.
#[test]
fn every_seed_is_live_within_budget() {
    if !planted_bugs().is_empty() {
        return;
    }
    let (summary, reports) = sweep(&settings(true), 0..CLEAN_BUDGET, false);
    println!("liveness budget:\n{summary}");
    if summary.violations() > 0 {
        fail_with("liveness", &summary, &reports);
    }
}

/// With a planted bug, some seed of the budget breaks a safety invariant.
#[test]
fn planted_bug_is_caught_within_budget() {
    let bugs = planted_bugs();
    if bugs.is_empty() {
        return;
    }
    let cfg = settings(false);
    let (summary, reports) = sweep(&cfg, 0..BUG_BUDGET, true);
    let Some((seed, invariant)) = summary.failures.first().copied() else {
        panic!(
            "planted bug(s) {} NOT caught within {BUG_BUDGET} seeds\n{summary}",
            bugs.join(", ")
        );
    };
    println!("{}", reports.first().map(String::as_str).unwrap_or(""));
    let disabled = if cfg.disabled_invariants.is_empty() {
        "none".to_string()
    } else {
        cfg.disabled_invariants.join(",")
    };
    println!(
        "SEEDS-TO-CATCH {} {} seed={seed} invariant={invariant} disabled={disabled} wall={:.1}s",
        bugs.join(","),
        seed + 1,
        summary.wall.as_secs_f64()
    );
}

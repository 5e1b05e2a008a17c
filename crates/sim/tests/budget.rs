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

/// Seeds of the lease-mode budget in every normal test run (the 20 000-seed sweep is a
/// documented command, docs/TESTING.md).
const LEASE_BUDGET: u64 = 1_000;

/// Lease mode as the planted lease bugs need it to show: no swarm; a long lease with a
/// large clock uncertainty (55 + 44 ms against a 100 ms election timeout); timers 45%
/// off true time, so that a new leader can be elected while the old lease runs (the
/// deferred commit, not the timers, must protect it); many reads, often sent to a node
/// that is not the newest leader.
fn lease_bug_settings(cfg: &mut SimConfig) {
    for (k, v) in [
        ("network.lease_us", "55000"),
        ("network.clock_uncertainty_us", "44000"),
        ("network.drift_ppm", "450000"),
        ("workload.reads_per_tick", "2"),
        ("workload.leader_bias", "0.3"),
    ] {
        cfg.set(k, v).expect("valid setting");
    }
    cfg.swarm = false;
}

/// Lease mode as an inherited read needs it: reads of one of 4 keys, mostly at the
/// leader; a lease of 99 ms with an exact clock; election timeouts of 10-12 ticks on
/// timers up to 45% fast, so that a new leader is often elected while the entry at its
/// commit index still grants a lease, with the deposed leader's entries in limbo.
fn inherited_read_settings(cfg: &mut SimConfig) {
    for (k, v) in [
        ("network.lease_us", "99000"),
        ("network.clock_uncertainty_us", "0"),
        ("network.drift_ppm", "450000"),
        ("workload.reads_per_tick", "2"),
        ("workload.leader_bias", "0.9"),
        ("workload.proposals_per_tick", "2"),
        ("core.election_timeout_max", "12"),
        ("workload.keys", "4"),
    ] {
        cfg.set(k, v).expect("valid setting");
    }
    cfg.swarm = false;
}

/// The default settings, with the invariants named in `RAFT_SIM_DISABLE` switched off
/// (and lease mode when a planted lease bug is built in).
fn settings(check_liveness: bool) -> SimConfig {
    let mut cfg = base_settings(check_liveness);
    let bugs = planted_bugs();
    if bugs.contains(&"no-deferred-commit") || bugs.contains(&"lease-ignores-uncertainty") {
        lease_bug_settings(&mut cfg);
    }
    if bugs.contains(&"inherited-read-in-limbo") {
        inherited_read_settings(&mut cfg);
    }
    if bugs.contains(&"lease-longer-than-timeout") {
        // A lease of 10 s against a 100 ms election timeout, which a correct core
        // refuses. Safety does not suffer (a new leader defers its commits until the
        // lease ends); availability does, so this bug is caught by the liveness check.
        cfg.set("network.lease_us", "10000000")
            .expect("valid setting");
        cfg.swarm = false;
        cfg.check_liveness = true;
    }
    let membership_bugs = [
        "joint-new-majority-only",
        "config-on-commit",
        "learner-votes",
    ];
    if bugs.iter().any(|b| membership_bugs.contains(b)) {
        membership_settings(&mut cfg);
    }
    cfg
}

fn base_settings(check_liveness: bool) -> SimConfig {
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

/// Lease mode (the swarm's draw around a 55 ms lease with 44 ms of clock uncertainty,
/// and the planted lease bugs' settings, inherited reads of one key included): no
/// invariant breaks, liveness included.
#[test]
fn lease_mode_is_safe_and_live_within_budget() {
    if !planted_bugs().is_empty() {
        return;
    }
    let mut swarm = base_settings(true);
    swarm.set("network.lease_us", "55000").expect("valid");
    swarm
        .set("network.clock_uncertainty_us", "44000")
        .expect("valid");
    let mut harsh = base_settings(true);
    lease_bug_settings(&mut harsh);
    let mut inherited = base_settings(true);
    inherited_read_settings(&mut inherited);
    for cfg in [swarm, harsh, inherited] {
        let (summary, reports) = sweep(&cfg, 0..LEASE_BUDGET, false);
        println!("lease budget:\n{summary}");
        assert!(
            summary.counts.reads_leased > 0,
            "no read was taken under a lease"
        );
        assert!(
            cfg.workload.keys == 0 || cfg.swarm || summary.counts.reads_inherited > 0,
            "no read was answered under an inherited lease past a limbo range"
        );
        if summary.violations() > 0 {
            fail_with("lease mode", &summary, &reports);
        }
    }
}

/// Seeds of the membership budget in every normal test run (the 100 000-seed sweep is a
/// documented command, docs/TESTING.md).
const MEMBERSHIP_BUDGET: u64 = 400;

/// Membership events on (in two swarm seeds of three): spare nodes join, voters are
/// added, removed and replaced, joint changes to arbitrary (even disjoint) voter sets,
/// leadership transfers. No invariant breaks, liveness (from the final configuration)
/// included.
#[test]
fn membership_events_are_safe_and_live_within_budget() {
    if !planted_bugs().is_empty() {
        return;
    }
    let mut cfg = base_settings(true);
    membership_settings(&mut cfg);
    let (summary, reports) = sweep(&cfg, 0..MEMBERSHIP_BUDGET, false);
    println!("membership budget:\n{summary}");
    assert!(
        summary.counts.conf_changes > 100 && summary.counts.transfers > 10,
        "too few membership events: {} changes, {} transfers",
        summary.counts.conf_changes,
        summary.counts.transfers
    );
    if summary.violations() > 0 {
        fail_with("membership events", &summary, &reports);
    }
}

/// Membership events in the swarm's mix (docs/TESTING.md).
fn membership_settings(cfg: &mut SimConfig) {
    cfg.set("workload.membership_per_tick", "0.05")
        .expect("valid setting");
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

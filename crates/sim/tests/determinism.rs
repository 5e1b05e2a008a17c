//! The same seed gives the same run, byte for byte.

use raft_sim::{run_seed, SimConfig, TraceMode};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

fn full_trace(seed: u64, cfg: &SimConfig) -> (String, raft_sim::RunStats) {
    let report = run_seed(seed, cfg, TraceMode::Full).expect("valid settings");
    let mut text = format!("{}\n", report.config);
    text.push_str(&report.trace.render());
    text.push_str(&report.cluster);
    text.push_str(&format!("{:?}\n", report.outcome));
    (text, report.stats)
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

#[test]
fn same_seed_same_trace() {
    let cfg = SimConfig::default();
    for seed in [1u64, 42, 2024, 987_654_321] {
        let (a, stats_a) = full_trace(seed, &cfg);
        let (b, stats_b) = full_trace(seed, &cfg);
        assert!(
            a.lines().count() > 1000,
            "seed {seed}: trace too short to mean much"
        );
        assert_eq!(stats_a, stats_b, "seed {seed}: statistics differ");
        assert_eq!(hash(&a), hash(&b), "seed {seed}: traces differ");
        assert!(a == b, "seed {seed}: traces differ");
        println!(
            "seed {seed}: {} trace lines, {} steps, hash {:016x}",
            a.lines().count(),
            stats_a.counts.steps,
            hash(&a)
        );
    }
}

#[test]
fn different_seeds_differ() {
    let cfg = SimConfig::default();
    let (a, _) = full_trace(5, &cfg);
    let (b, _) = full_trace(6, &cfg);
    assert_ne!(hash(&a), hash(&b));
}

/// A seed's resolved settings, run again with the same seed, replay the very same run:
/// what shrinking and `--replay` rely on.
#[test]
fn resolved_settings_replay_the_run() {
    let cfg = SimConfig::default();
    for seed in [3u64, 77] {
        let first = run_seed(seed, &cfg, TraceMode::Full).expect("valid settings");
        assert!(!first.config.swarm && first.config.nodes.is_some());
        let again = run_seed(seed, &first.config, TraceMode::Full).expect("valid settings");
        assert_eq!(first.config, again.config);
        assert_eq!(first.trace.render(), again.trace.render());
    }
}

/// Every cluster size runs, and a ring trace is the tail of the full one.
#[test]
fn ring_trace_is_tail_of_full_trace() {
    for nodes in [3usize, 5, 7] {
        let cfg = SimConfig {
            nodes: Some(nodes),
            ..SimConfig::default()
        };
        let full = run_seed(11, &cfg, TraceMode::Full).expect("valid settings");
        let ring = run_seed(11, &cfg, TraceMode::Ring(50)).expect("valid settings");
        let full: Vec<_> = full.trace.records().cloned().collect();
        let ring: Vec<_> = ring.trace.records().cloned().collect();
        assert_eq!(ring.len(), 50);
        assert_eq!(&full[full.len() - 50..], &ring[..]);
    }
}

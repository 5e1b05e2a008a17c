//! The HTML timeline of a replayed seed: deterministic, self-contained, and showing what
//! the trace says (one lane per node, one line per message, the elections).

use raft_sim::{record_timeline, run_seed, timeline_html, Fate, SimConfig, TraceKind, TraceMode};

fn short() -> SimConfig {
    SimConfig {
        chaos_steps: 1500,
        ..SimConfig::default()
    }
}

#[test]
fn same_seed_same_html() {
    let cfg = short();
    let (_, a) = timeline_html(42, &cfg).expect("valid settings");
    let (_, b) = timeline_html(42, &cfg).expect("valid settings");
    assert!(a.len() > 10_000, "suspiciously small page");
    assert!(a == b, "the same seed drew different pages");
    let (_, c) = timeline_html(43, &cfg).expect("valid settings");
    assert!(a != c, "different seeds drew the same page");
}

#[test]
fn recording_does_not_change_the_run() {
    let cfg = short();
    let plain = run_seed(42, &cfg, TraceMode::Full).expect("valid settings");
    let (recorded, _) = record_timeline(42, &cfg).expect("valid settings");
    assert_eq!(plain.trace.render(), recorded.trace.render());
    assert_eq!(plain.stats, recorded.stats);
    assert_eq!(plain.outcome, recorded.outcome);
}

#[test]
fn page_shows_lanes_messages_and_elections() {
    let cfg = short();
    for seed in [7u64, 42] {
        let (report, html) = timeline_html(seed, &cfg).expect("valid settings");
        let nodes = report.config.nodes.expect("resolved");
        assert_eq!(
            html.matches("<g class=\"lane\"").count(),
            nodes,
            "seed {seed}"
        );
        for n in 1..=nodes {
            assert!(html.contains(&format!("<g class=\"lane\" data-node=\"{n}\"")));
        }
        // Every delivery or loss in the trace is one message line that reaches the
        // receiver; every message dropped at send is one dropped line.
        let mut reached = 0;
        let mut dropped = 0;
        for r in report.trace.records() {
            match &r.what {
                TraceKind::Deliver { .. } | TraceKind::Lost { .. } => reached += 1,
                TraceKind::Faulted {
                    fate: Fate::Dropped,
                    ..
                } => dropped += 1,
                _ => {}
            }
        }
        let lines: Vec<&str> = html
            .lines()
            .filter(|l| l.starts_with("<line class=\"m "))
            .collect();
        let dropped_lines = lines.iter().filter(|l| l.contains(" dropped")).count();
        let inflight = lines.iter().filter(|l| l.contains(" inflight")).count();
        assert!(reached > 100, "seed {seed}: too few messages to mean much");
        assert_eq!(dropped_lines, dropped, "seed {seed}");
        assert_eq!(
            lines.len() - dropped_lines - inflight,
            reached,
            "seed {seed}"
        );
        // One election marker per (node, term) a node led, as the simulator counts them.
        let elections = html.matches("<path class=\"elec\"").count() as u64;
        assert!(elections >= 1, "seed {seed}: no election drawn");
        assert_eq!(elections, report.stats.counts.elections, "seed {seed}");
        assert!(html.contains("data-tip=\"n") && html.contains("elected leader of term"));
        // The log view has every node's log writes.
        assert!(html.contains("<div id=\"logview\">"), "seed {seed}");
        let logs = html.split("\"logs\":[").nth(1).expect("log data");
        assert!(
            logs.starts_with("[[") && logs.matches("],[").count() > nodes,
            "seed {seed}"
        );
    }
}

/// The log view's data replays to each node's log at the end of the run.
#[test]
fn log_writes_replay_to_the_final_logs() {
    let (report, run) = record_timeline(42, &short()).expect("valid settings");
    assert!(!run.logs.is_empty());
    // Replays the writes as the page's script does (terms from index base+1 on).
    let mut checked = 0;
    for node in run.nodes.clone() {
        let (mut base, mut terms) = (0u64, Vec::<u64>::new());
        for op in run.logs.iter().filter(|o| o.node == node) {
            if op.reset {
                base = op.snapshot.map_or(0, |s| s.0);
                terms = op.terms.clone();
                continue;
            }
            if op.truncate_from > 0 {
                terms.truncate(op.truncate_from.saturating_sub(1 + base) as usize);
            }
            if let Some((si, st)) = op.snapshot {
                let k = si.saturating_sub(base) as usize;
                terms = if k >= 1 && k <= terms.len() && terms[k - 1] == st {
                    terms[k..].to_vec()
                } else {
                    Vec::new()
                };
                base = si;
            }
            if !op.terms.is_empty() {
                terms.truncate(op.first.saturating_sub(1 + base) as usize);
                terms.extend_from_slice(&op.terms);
            }
        }
        // The final cluster description gives each node's last index and term on disk.
        let line = report
            .cluster
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("n{node}:")))
            .expect("node in the cluster description");
        let disk = line.split("disk:").nth(1).expect("disk part");
        let want = disk.rsplit("log ..").next().expect("log part").trim();
        let got = format!(
            "{}@{}",
            base + terms.len() as u64,
            terms.last().copied().unwrap_or(0)
        );
        if terms.is_empty() {
            continue; // last term is the snapshot's, not in the ops' terms
        }
        assert_eq!(got, want, "n{node}: {line}");
        checked += 1;
    }
    assert!(checked >= 2, "too few logs to compare");
}

#[test]
fn page_is_self_contained() {
    let (_, html) = timeline_html(42, &short()).expect("valid settings");
    assert!(!html.contains("http://"), "page refers to the network");
    assert!(!html.contains("https://"), "page refers to the network");
    assert!(!html.contains("<script src") && !html.contains("<link"));
    assert!(html.contains("<svg") && html.contains("<script>"));
}

//! The tester's HTML timeline: one short scenario recorded through the API (not the
//! environment variable, which other tests of this binary would see), checked for its
//! lanes, elections, messages, crash and disconnection; and recording changes nothing.

use raft_tester::{block_on, cmd, record_timeline, Cluster, Mode, RunOptions};
use std::path::Path;

/// Elects, commits, disconnects a follower and reconnects it, crashes the leader,
/// re-elects, restarts the old leader; returns the tester's trace.
async fn scenario(seed: u64) -> Vec<String> {
    let opts = RunOptions {
        mode: Mode::Virtual,
        seed,
        quiet: true,
    };
    let mut cfg = Cluster::new(3, false, opts);
    cfg.begin("timeline scenario");
    let leader = cfg.check_one_leader().await;
    cfg.one(cmd(1), 3, true).await;
    let follower = (leader + 1) % 3;
    cfg.disconnect(follower);
    cfg.one(cmd(2), 2, true).await;
    cfg.connect(follower);
    cfg.one(cmd(3), 3, true).await;
    cfg.crash1(leader);
    cfg.check_one_leader().await;
    cfg.one(cmd(4), 2, true).await;
    cfg.start1(leader);
    cfg.connect(leader);
    cfg.one(cmd(5), 3, true).await;
    cfg.end();
    cfg.events()
}

fn recorded(seed: u64, file: &Path) -> Vec<String> {
    block_on(
        Mode::Virtual,
        record_timeline(file.to_path_buf(), scenario(seed)),
    )
}

#[test]
fn a_test_writes_its_timeline() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("sub").join("scenario.html");
    recorded(7, &file);
    let html = std::fs::read_to_string(&file).expect("the timeline was written");
    // One lane per peer, numbered from 0 as the tester numbers them.
    assert_eq!(html.matches("<g class=\"lane\"").count(), 3);
    for i in 0..3 {
        assert!(html.contains(&format!("<g class=\"lane\" data-node=\"{i}\"")));
    }
    assert!(html.contains("<title>timeline scenario</title>"));
    // Two elections at least (the first leader, the one after the crash).
    assert!(html.matches("<path class=\"elec\"").count() >= 2);
    // The crash, restarted; the disconnection, healed.
    assert_eq!(html.matches("<rect class=\"crash\"").count(), 1);
    assert!(html.contains("crashed, then restarted from its storage"));
    assert!(html.matches("<rect class=\"part\"").count() >= 1);
    assert!(html.contains("disconnected from every other peer: n"));
    // Messages of every usual kind, and the ones to the disconnected or dead peer.
    let lines: Vec<&str> = html
        .lines()
        .filter(|l| l.starts_with("<line class=\"m "))
        .collect();
    assert!(lines.len() > 50, "{} messages", lines.len());
    for kind in ["vote", "vote-resp", "append", "heartbeat", "append-resp"] {
        let class = format!("<line class=\"m k-{kind}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&class) && !l.contains(" lost")),
            "no delivered {kind}"
        );
    }
    // Sent into a cut link (the disconnected follower, the crashed leader): dropped.
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" dropped") && l.contains("link cut")),
        "nothing dropped"
    );
    // The page's data: nodes, elections, and the log view's writes for every peer.
    let data = html
        .split("<script id=\"tl-data\" type=\"application/json\">")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .expect("page data");
    let data: serde_json::Value = serde_json::from_str(data).expect("page data is JSON");
    assert_eq!(data["nodes"], serde_json::json!([0, 1, 2]));
    assert!(data["elections"].as_array().is_some_and(|e| e.len() >= 2));
    let logs = data["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 3);
    assert!(logs
        .iter()
        .all(|l| l.as_array().is_some_and(|ops| ops.len() >= 2)));
    // Commit ticks: every peer reaches index 5 at the end.
    for i in 0..3 {
        assert!(
            html.contains(&format!("data-tip=\"n{i} commit 5 applied 5")),
            "n{i}"
        );
    }
}

#[test]
fn recording_changes_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let plain = block_on(Mode::Virtual, scenario(7));
    let a = recorded(7, &dir.path().join("a.html"));
    assert_eq!(plain, a, "recording changed the run");
    let b = recorded(7, &dir.path().join("b.html"));
    assert_eq!(a, b);
    let read = |f: &str| std::fs::read(dir.path().join(f)).expect("written");
    assert!(
        read("a.html") == read("b.html"),
        "same seed, different pages"
    );
}

#[test]
fn a_failing_test_still_writes_its_timeline() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("failed.html");
    let opts = RunOptions {
        mode: Mode::Virtual,
        seed: 3,
        quiet: true,
    };
    let target = file.clone();
    let outcome = std::panic::catch_unwind(move || {
        block_on(
            Mode::Virtual,
            record_timeline(target, async move {
                let mut cfg = Cluster::new(3, false, opts);
                cfg.begin("a test that fails");
                cfg.check_one_leader().await;
                panic!("planned failure");
            }),
        )
    });
    assert!(outcome.is_err(), "the scenario was meant to fail");
    let html = std::fs::read_to_string(&file).expect("the timeline was written");
    assert_eq!(html.matches("<g class=\"lane\"").count(), 3);
    assert!(html.contains("test violated</b>"));
    assert!(html.contains("the test failed (panicked) here"));
    assert!(html.contains("<path class=\"elec\""));
}

//! The page drawn from a small hand-made run: structure, escaping, determinism.

use raft_viz::{
    render_html, At, Crash, Fate, LogOp, Message, MsgKind, PartitionSpan, Role, Run, SnapshotMark,
    StateChange, ViolationMark,
};

fn at(step: u64, ms: u64) -> At {
    At {
        step,
        time_us: ms * 1000,
    }
}

fn msg(from: u64, to: u64, kind: MsgKind, sent: At, fate: Fate, duplicate: bool) -> Message {
    Message {
        from,
        to,
        kind,
        sent,
        fate,
        duplicate,
        term: 2,
        index: 4,
        entries: if kind == MsgKind::Append { 3 } else { 0 },
        bytes: 99,
        detail: "Append(t2 <x> & \"y\")".to_string(),
    }
}

fn sample() -> Run {
    let mut run = Run::new("sample <run>", vec![1, 2, 3]);
    run.notes.push("nodes: 3".to_string());
    run.end = at(100, 500);
    for (step, node, role, term) in [
        (1, 1, Role::Follower, 1),
        (1, 2, Role::Follower, 1),
        (1, 3, Role::Follower, 1),
        (5, 1, Role::Candidate, 2),
        (9, 1, Role::Leader, 2),
        (40, 1, Role::Leader, 2),
    ] {
        run.states.push(StateChange {
            at: at(step, step * 5),
            node,
            role,
            term,
            commit: step / 10,
            applied: step / 10,
        });
    }
    run.messages = vec![
        msg(
            1,
            2,
            MsgKind::Vote,
            at(5, 25),
            Fate::Delivered(at(6, 30)),
            false,
        ),
        msg(1, 3, MsgKind::Vote, at(5, 25), Fate::Dropped, false),
        msg(
            1,
            2,
            MsgKind::Append,
            at(10, 50),
            Fate::Delivered(at(11, 60)),
            false,
        ),
        msg(
            1,
            2,
            MsgKind::Append,
            at(10, 50),
            Fate::Delivered(at(12, 70)),
            true,
        ),
        msg(
            1,
            3,
            MsgKind::Heartbeat,
            at(20, 100),
            Fate::Lost(at(21, 110), "down".into()),
            false,
        ),
        msg(
            2,
            1,
            MsgKind::AppendResp,
            at(99, 499),
            Fate::InFlight,
            false,
        ),
    ];
    run.crashes.push(Crash {
        node: 3,
        start: at(15, 90),
        end: Some(at(30, 200)),
        detail: "n3 CRASHES".to_string(),
    });
    run.partitions.push(PartitionSpan {
        start: at(50, 250),
        end: None,
        label: "partition: n2 isolated".to_string(),
        nodes: vec![2],
    });
    run.snapshots.push(SnapshotMark {
        at: at(60, 300),
        node: 1,
        index: 5,
        installed: false,
    });
    run.logs.push(LogOp {
        at: at(9, 45),
        node: 1,
        first: 1,
        terms: vec![1, 1, 2],
        ..LogOp::default()
    });
    run.violation = Some(ViolationMark {
        at: at(80, 400),
        invariant: "log-matching".to_string(),
        message: "n1 and n2 differ at <5>".to_string(),
    });
    run
}

#[test]
fn draws_every_part() {
    let html = render_html(&sample());
    assert_eq!(html.matches("<g class=\"lane\"").count(), 3);
    assert_eq!(html.matches("<line class=\"m ").count(), 6);
    assert_eq!(html.matches(" dropped\"").count(), 1);
    assert_eq!(html.matches(" lost\"").count(), 1);
    assert_eq!(html.matches(" dup\"").count(), 1);
    assert_eq!(html.matches(" inflight\"").count(), 1);
    assert_eq!(html.matches("<path class=\"elec\"").count(), 1);
    assert_eq!(html.matches("<rect class=\"crash\"").count(), 1);
    assert_eq!(html.matches("<rect class=\"part\"").count(), 1);
    assert_eq!(html.matches("<rect class=\"cut\"").count(), 1);
    assert_eq!(html.matches("<path class=\"snap\"").count(), 1);
    // Bands: n1 follower, candidate, leader (the second leader state continues it);
    // n2 follower; n3 follower until its crash.
    assert_eq!(html.matches("<rect class=\"band ").count(), 5);
    assert!(html.contains("<line class=\"viol\""));
    assert!(html.contains("log-matching violated</b>"));
    assert!(html.contains("id=\"jviol\""));
    assert!(html.contains("<div id=\"logview\">"));
    assert!(html.contains("\"logs\":[[[45000,0,0,0,0,1,[1,1,2]]],[],[]]"));
}

#[test]
fn escapes_text() {
    let html = render_html(&sample());
    assert!(html.contains("<title>sample &lt;run&gt;</title>"));
    assert!(html.contains("&lt;x&gt; &amp; &quot;y&quot;"));
    assert!(html.contains("differ at &lt;5&gt;"));
    assert!(!html.contains("<x>") && !html.contains("<run>"));
}

#[test]
fn deterministic_and_self_contained() {
    let a = render_html(&sample());
    let b = render_html(&sample());
    assert_eq!(a, b);
    assert!(!a.contains("http://") && !a.contains("https://"));
}

#[test]
fn empty_run_renders() {
    let html = render_html(&Run::new("empty", vec![1]));
    assert_eq!(html.matches("<g class=\"lane\"").count(), 1);
    assert!(!html.contains("id=\"jviol\""));
    assert!(!html.contains("<div id=\"logview\">"));
    assert!(!html.contains("NaN") && !html.contains("\"inf"));
}

#[test]
fn static_svg_draws_the_run_and_the_log_views() {
    let run = sample();
    let svg = raft_viz::render_svg(&run, &[45_000, 500_000]);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("<script"), "a static SVG has no script");
    assert_eq!(svg.matches("<g class=\"lane\"").count(), 3);
    assert_eq!(svg.matches("<line class=\"m ").count(), 6);
    assert_eq!(svg.matches("<path class=\"elec\"").count(), 1);
    // The axis is drawn (the page's script draws it; here there is none).
    assert!(svg.matches("<g class=\"tick\">").count() >= 5);
    // Two log views, one row per node each; n1's three entries in each.
    assert_eq!(svg.matches("<g class=\"logview\"").count(), 2);
    assert!(svg.contains("Logs at 0.045000s") && svg.contains("Logs at 0.500000s"));
    assert_eq!(svg.matches("fill=\"hsl(").count(), 6);
    assert!(svg.contains(">leader, term 2</text>"));
    // n3 is down from 90 ms to 200 ms: up again at 500 ms.
    assert!(!svg.contains(">down</text>"));
    assert_eq!(svg, raft_viz::render_svg(&run, &[45_000, 500_000]));
}

#[test]
fn logs_replay_and_repairs_are_found() {
    let mut run = Run::new("logs", vec![1, 2]);
    let op = |ms: u64, node: u64, truncate_from: u64, first: u64, terms: Vec<u64>| LogOp {
        at: at(ms, ms),
        node,
        truncate_from,
        first,
        terms,
        ..LogOp::default()
    };
    run.logs = vec![
        op(1, 1, 0, 1, vec![1, 1, 1]),
        op(2, 2, 0, 1, vec![1, 1]),
        // n2 gets a conflicting suffix overwritten: a repair.
        op(3, 2, 2, 2, vec![2, 2]),
        // Truncating past the end removes nothing: not a repair.
        op(4, 1, 4, 4, vec![2]),
    ];
    run.logs.push(LogOp {
        at: at(5, 5),
        node: 1,
        snapshot: Some((2, 1)),
        ..LogOp::default()
    });
    let l = raft_viz::log_at(&run, 2, 3_000);
    assert_eq!((l.base, l.terms.clone()), (0, vec![1, 2, 2]));
    assert_eq!(raft_viz::log_at(&run, 2, 2_999).terms, vec![1, 1]);
    let l = raft_viz::log_at(&run, 1, 5_000);
    assert_eq!((l.base, l.base_term, l.terms.clone()), (2, 1, vec![1, 2]));
    assert_eq!(l.last_index(), 4);
    assert_eq!(raft_viz::log_repairs(&run), vec![at(3, 3)]);
}

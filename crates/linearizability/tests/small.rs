//! Hand-written tiny histories, file-format errors and the recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use linearizability::{check, CheckResult, History, HistoryError, OpKind, Operation, Recorder};

const BUDGET: Duration = Duration::from_secs(10);

fn verdict(ops: Vec<Operation>) -> CheckResult {
    check(&History::from_operations(ops).expect("valid ops"), BUDGET)
}

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(verdict(vec![]), CheckResult::Linearizable);
}

#[test]
fn read_of_unwritten_key_is_empty() {
    assert!(verdict(vec![Operation::get(0, "k", "", 0, 1)]).is_linearizable());
    assert!(verdict(vec![Operation::get(0, "k", "x", 0, 1)]).is_not_linearizable());
}

#[test]
fn stale_read_after_completed_put_is_rejected() {
    let r = verdict(vec![
        Operation::put(0, "k", "a", 0, 10),
        Operation::put(0, "k", "b", 20, 30),
        Operation::get(1, "k", "a", 40, 50),
    ]);
    let CheckResult::NotLinearizable { key, report } = r else {
        panic!("stale read must be rejected, got {r}");
    };
    assert_eq!(key, "k");
    assert_eq!(report.longest_prefix, vec![0, 1]);
    assert_eq!(report.state_after_prefix, "b");
    assert_eq!(report.blocked, vec![2]);
}

#[test]
fn concurrent_puts_seen_in_either_consistent_order_are_accepted() {
    // Both puts overlap; readers may see a then b ...
    assert!(verdict(vec![
        Operation::put(0, "k", "a", 0, 100),
        Operation::put(1, "k", "b", 0, 100),
        Operation::get(2, "k", "a", 10, 20),
        Operation::get(2, "k", "b", 30, 40),
        Operation::get(3, "k", "b", 110, 120),
    ])
    .is_linearizable());
    // ... or b then a.
    assert!(verdict(vec![
        Operation::put(0, "k", "a", 0, 100),
        Operation::put(1, "k", "b", 0, 100),
        Operation::get(2, "k", "b", 10, 20),
        Operation::get(2, "k", "a", 30, 40),
        Operation::get(3, "k", "a", 110, 120),
    ])
    .is_linearizable());
    // But not a, then b, then a again.
    assert!(verdict(vec![
        Operation::put(0, "k", "a", 0, 100),
        Operation::put(1, "k", "b", 0, 100),
        Operation::get(2, "k", "a", 10, 20),
        Operation::get(2, "k", "b", 30, 40),
        Operation::get(3, "k", "a", 50, 60),
    ])
    .is_not_linearizable());
    // Nor two readers disagreeing on the order after both puts completed.
    assert!(verdict(vec![
        Operation::put(0, "k", "a", 0, 100),
        Operation::put(1, "k", "b", 0, 100),
        Operation::get(2, "k", "a", 110, 120),
        Operation::get(3, "k", "b", 130, 140),
    ])
    .is_not_linearizable());
}

#[test]
fn read_of_value_never_written_is_rejected() {
    let r = verdict(vec![
        Operation::put(0, "k", "a", 0, 10),
        Operation::append(1, "k", "b", 5, 15),
        Operation::get(2, "k", "c", 0, 100),
    ]);
    assert!(r.is_not_linearizable(), "{r}");
}

#[test]
fn concurrent_append_with_reads_seeing_a_prefix_is_accepted() {
    assert!(verdict(vec![
        Operation::append(0, "k", "x", 0, 10),
        Operation::append(1, "k", "y", 5, 100),
        Operation::get(2, "k", "x", 20, 30),
        Operation::get(3, "k", "xy", 40, 50),
        Operation::get(2, "k", "xy", 110, 120),
    ])
    .is_linearizable());
    // The appended values arrive in some order; reads never see a non-prefix.
    assert!(verdict(vec![
        Operation::append(0, "k", "x", 0, 100),
        Operation::append(1, "k", "y", 0, 100),
        Operation::get(2, "k", "y", 10, 20),
        Operation::get(2, "k", "yx", 30, 40),
    ])
    .is_linearizable());
    assert!(verdict(vec![
        Operation::append(0, "k", "x", 0, 100),
        Operation::append(1, "k", "y", 0, 100),
        Operation::get(2, "k", "y", 10, 20),
        Operation::get(2, "k", "xy", 30, 40),
    ])
    .is_not_linearizable());
}

#[test]
fn touching_intervals_are_concurrent() {
    // [1,2] and [2,3] share the instant 2, so the get may precede the put.
    assert!(verdict(vec![
        Operation::put(0, "k", "a", 1, 2),
        Operation::get(1, "k", "", 2, 3),
    ])
    .is_linearizable());
    // ... or follow it.
    assert!(verdict(vec![
        Operation::get(1, "k", "a", 1, 2),
        Operation::put(0, "k", "a", 2, 3),
    ])
    .is_linearizable());
    // One tick apart they are ordered.
    assert!(verdict(vec![
        Operation::put(0, "k", "a", 1, 2),
        Operation::get(1, "k", "", 3, 4),
    ])
    .is_not_linearizable());
}

#[test]
fn keys_are_independent_and_smallest_failing_key_is_reported() {
    let r = verdict(vec![
        // "big" fails with 3 ops, "small" fails with 1, "fine" is fine.
        Operation::put(0, "big", "a", 0, 1),
        Operation::put(0, "big", "b", 2, 3),
        Operation::get(0, "big", "a", 4, 5),
        Operation::get(0, "small", "zzz", 0, 1),
        Operation::put(1, "fine", "q", 0, 10),
        Operation::get(2, "fine", "q", 11, 12),
    ]);
    let CheckResult::NotLinearizable { key, report } = r else {
        panic!("expected failure, got {r}");
    };
    assert_eq!(key, "small");
    assert_eq!(report.operations.len(), 1);
    assert!(report.longest_prefix.is_empty());
}

#[test]
fn inverted_interval_is_rejected() {
    let err = History::from_operations(vec![
        Operation::get(0, "k", "", 0, 1),
        Operation::get(0, "k", "", 5, 4),
    ])
    .expect_err("ret < call");
    assert!(matches!(
        err,
        HistoryError::InvertedInterval {
            index: 1,
            call: 5,
            ret: 4
        }
    ));
    let mut h = History::new();
    assert!(h.push(Operation::put(0, "k", "v", 3, 2)).is_err());
    assert!(h.is_empty());
}

const LINE: &str = r#"{"client": 3, "kind": "append", "key": "4", "value": "x 3 1 y", "output": "", "call": 12, "return": 15}"#;

#[test]
fn parses_the_documented_format() {
    let h = History::from_jsonl_str(&format!("{LINE}\n\n")).expect("valid");
    assert_eq!(
        h.operations(),
        &[Operation {
            client: 3,
            kind: OpKind::Append,
            key: "4".into(),
            value: "x 3 1 y".into(),
            output: String::new(),
            call: 12,
            ret: 15,
        }]
    );
    assert_eq!(h.to_jsonl_string(), format!("{LINE}\n"));
    // serde agrees with the hand-written writer.
    let op: Operation = serde_json::from_str(LINE).expect("serde");
    let v: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&op).expect("ser")).expect("json");
    assert_eq!(v["return"], 15);
    assert_eq!(v["kind"], "append");
}

#[test]
fn malformed_lines_report_line_numbers() {
    let cases = [
        (format!("{LINE}\n{{not json\n"), 2),
        (
            format!("{LINE}\n\n{}\n", LINE.replace("append", "delete")),
            3,
        ),
        (format!("{}\n", LINE.replace(", \"output\": \"\"", "")), 1),
        (
            format!("{}\n", LINE.replace("\"client\": 3", "\"client\": -3")),
            1,
        ),
        (format!("{}\n", LINE.replace("}", ", \"extra\": 1}")), 1),
    ];
    for (text, line) in cases {
        match History::from_jsonl_str(&text) {
            Err(HistoryError::Parse { line: l, .. }) => assert_eq!(l, line, "{text}"),
            other => panic!("expected parse error at line {line}, got {other:?}"),
        }
    }
    let err = History::from_jsonl_str(&format!("{LINE}\n{}\n", LINE.replace("15", "1")))
        .expect_err("inverted");
    assert!(matches!(
        err,
        HistoryError::InvertedIntervalAtLine { line: 2, .. }
    ));
    assert!(err.to_string().starts_with("line 2:"), "{err}");
}

#[test]
fn file_round_trip_and_missing_file() {
    let dir = std::env::temp_dir().join(format!("lin-small-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("h.jsonl");
    let h = History::from_operations(vec![
        Operation::put(1, "k\"ey", "va\nl", 0, 5),
        Operation::get(2, "k\"ey", "va\nl", 6, 7),
    ])
    .expect("valid");
    h.write_jsonl(&path).expect("write");
    assert_eq!(History::read_jsonl(&path).expect("read"), h);
    std::fs::write(&path, "{}\n").expect("write");
    let err = History::read_jsonl(&path).expect_err("malformed");
    assert!(err.to_string().contains("line 1"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(matches!(
        History::read_jsonl(dir.join("missing.jsonl")),
        Err(HistoryError::File { .. })
    ));
}

/// Real concurrent clients on a mutex-protected store, recorded with a
/// `Recorder`, always produce a linearizable history.
#[test]
fn recorder_with_real_threads_is_linearizable() {
    let rec = Recorder::new();
    let store: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    std::thread::scope(|s| {
        for client in 0..4u64 {
            let rec = rec.clone();
            let store = Arc::clone(&store);
            s.spawn(move || {
                for i in 0..50u64 {
                    let key = format!("{}", (client + i) % 3);
                    let call = rec.now();
                    let op = {
                        let mut m = store.lock().expect("no panics while locked");
                        match i % 3 {
                            0 => {
                                let v = format!("{client}.{i} ");
                                m.entry(key.clone()).or_default().push_str(&v);
                                Operation::append(client, key, v, call, 0)
                            }
                            1 => {
                                let out = m.get(&key).cloned().unwrap_or_default();
                                Operation::get(client, key, out, call, 0)
                            }
                            _ => {
                                let v = format!("p{client}.{i}");
                                m.insert(key.clone(), v.clone());
                                Operation::put(client, key, v, call, 0)
                            }
                        }
                    };
                    rec.record(Operation {
                        ret: rec.now(),
                        ..op
                    });
                }
            });
        }
    });
    assert_eq!(rec.len(), 200);
    let h = rec.history().expect("monotonic timestamps");
    assert_eq!(h.keys(), vec!["0", "1", "2"]);
    assert_eq!(check(&h, BUDGET), CheckResult::Linearizable);
}

//! Known-answer histories from porcupine's test data, kept in this crate's `testdata/`
//! (its README says where they come from).

use std::path::PathBuf;
use std::time::Duration;

use linearizability::{check, CheckResult, History};

/// The crate's test data directory; panics (failing the test) if missing.
fn testdata_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    assert!(
        dir.is_dir(),
        "known-answer test data directory {} is missing (it is part of the repository)",
        dir.display()
    );
    dir
}

fn load(name: &str) -> History {
    let path = testdata_dir().join(name);
    assert!(
        path.is_file(),
        "known-answer file {} is missing",
        path.display()
    );
    History::read_jsonl(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

const BUDGET: Duration = Duration::from_secs(60);

fn assert_linearizable(name: &str) {
    let history = load(name);
    let result = check(&history, BUDGET);
    assert_eq!(
        result,
        CheckResult::Linearizable,
        "{name} must be linearizable"
    );
}

fn assert_not_linearizable(name: &str) {
    let history = load(name);
    let result = check(&history, BUDGET);
    assert!(
        result.is_not_linearizable(),
        "{name} must be NOT linearizable, got {result}"
    );
}

#[test]
fn c01_ok() {
    assert_linearizable("kv-c01-ok.jsonl");
}

#[test]
fn c01_bad() {
    assert_not_linearizable("kv-c01-bad.jsonl");
}

#[test]
fn c10_ok() {
    assert_linearizable("kv-c10-ok.jsonl");
}

#[test]
fn c10_bad() {
    assert_not_linearizable("kv-c10-bad.jsonl");
}

#[test]
fn c50_ok() {
    assert_linearizable("kv-c50-ok.jsonl");
}

#[test]
fn c50_bad() {
    assert_not_linearizable("kv-c50-bad.jsonl");
}

#[test]
fn sizes_match_readme() {
    assert_eq!(load("kv-c50-ok.jsonl").len(), 1712);
    assert_eq!(load("kv-c50-bad.jsonl").len(), 2024);
}

#[test]
fn files_round_trip_byte_for_byte() {
    for name in [
        "kv-c01-ok.jsonl",
        "kv-c01-bad.jsonl",
        "kv-c10-ok.jsonl",
        "kv-c10-bad.jsonl",
        "kv-c50-ok.jsonl",
        "kv-c50-bad.jsonl",
    ] {
        let path = testdata_dir().join(name);
        let text = std::fs::read_to_string(&path).expect("readable test data");
        let history = History::from_jsonl_str(&text).expect("valid test data");
        assert_eq!(
            history.to_jsonl_string(),
            text,
            "{name} does not round-trip"
        );
    }
}

#[test]
fn c01_bad_report_names_the_stale_read() {
    let history = load("kv-c01-bad.jsonl");
    let CheckResult::NotLinearizable { key, report } = check(&history, BUDGET) else {
        panic!("kv-c01-bad must be NOT linearizable");
    };
    assert_eq!(key, report.key);
    // The single-client history: the failing key's ops are all of that key,
    // sorted by call time, and the prefix is a proper prefix.
    assert!(report.operations.iter().all(|op| op.key == key));
    assert!(report.operations.windows(2).all(|w| w[0].call <= w[1].call));
    assert!(report.longest_prefix.len() < report.operations.len());
    assert!(!report.blocked.is_empty());
    let text = report.to_string();
    assert!(text.contains("longest linearizable prefix found"), "{text}");
    assert!(text.contains(&format!("key {key:?}")), "{text}");
    for op in &report.operations {
        assert!(text.contains(&op.to_string()), "{text} lacks {op}");
    }
}

/// An absurdly small budget may give up, but must never give a wrong verdict.
#[test]
fn tiny_budget_is_unknown_or_correct() {
    let ok = load("kv-c50-ok.jsonl");
    let bad = load("kv-c50-bad.jsonl");
    for budget in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(50),
        Duration::from_millis(1),
    ] {
        let r = check(&ok, budget);
        assert!(
            r.is_linearizable() || r.is_unknown(),
            "budget {budget:?}: linearizable history judged {r}"
        );
        let r = check(&bad, budget);
        assert!(
            r.is_not_linearizable() || r.is_unknown(),
            "budget {budget:?}: non-linearizable history judged {r}"
        );
    }
    let r = check(&ok, Duration::ZERO);
    if let CheckResult::Unknown { undecided_keys } = &r {
        assert!(!undecided_keys.is_empty());
    }
}

//! The `lincheck` binary: verdicts and exit codes.

use std::path::PathBuf;
use std::process::Command;

fn testdata(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    assert!(
        dir.is_dir(),
        "known-answer test data directory {} is missing",
        dir.display()
    );
    dir.join(name)
}

fn run(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .args(args)
        .output()
        .expect("lincheck runs");
    let code = out.status.code().expect("lincheck exits normally");
    (code, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn ok_file_exits_0() {
    let f = testdata("kv-c10-ok.jsonl");
    let (code, out) = run(&[f.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("linearizable\n"), "{out}");
    assert!(out.contains("operations: 337, keys: 10"), "{out}");
}

#[test]
fn bad_file_exits_1() {
    let f = testdata("kv-c10-bad.jsonl");
    let (code, out) = run(&[f.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("NOT linearizable\n"), "{out}");
    assert!(out.contains("longest linearizable prefix found"), "{out}");
}

#[test]
fn zero_budget_exits_2_or_correct() {
    let f = testdata("kv-c50-ok.jsonl");
    let (code, out) = run(&[f.as_os_str(), "--budget-ms".as_ref(), "0".as_ref()]);
    assert!(code == 2 || code == 0, "{code}: {out}");
    if code == 2 {
        assert!(out.starts_with("unknown\n"), "{out}");
    }
}

#[test]
fn bad_input_exits_3() {
    let dir = std::env::temp_dir().join(format!("lincheck-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let f = dir.join("bad.jsonl");
    std::fs::write(
        &f,
        "{\"client\": 0, \"kind\": \"get\", \"key\": \"k\", \"value\": \"\", \"output\": \"\", \"call\": 0, \"return\": 1}\nnot json\n",
    )
    .expect("write temp file");
    let out = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .arg(&f)
        .output()
        .expect("lincheck runs");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);

    let (code, _) = run(&["/nonexistent/history.jsonl".as_ref()]);
    assert_eq!(code, 3);
    let (code, _) = run(&[]);
    assert_eq!(code, 3, "missing argument is bad input");
    let (code, _) = run(&["x".as_ref(), "--budget-ms".as_ref(), "soon".as_ref()]);
    assert_eq!(code, 3, "bad option value is bad input");
}

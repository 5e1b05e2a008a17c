//! raft-core must stay a pure state machine: no async runtime or I/O dependency, no
//! clock, no threads, no randomness it was not given. This test reads the crate's own
//! manifest and sources and fails on any of them.

use std::path::Path;

const FORBIDDEN_DEPS: &[&str] = &[
    "tokio",
    "async-std",
    "mio",
    "rand =",
    "rand.workspace",
    "getrandom",
    "libc",
];
const FORBIDDEN_CODE: &[&str] = &[
    "std::time",
    "Instant::now",
    "SystemTime",
    "std::thread",
    "thread::spawn",
    "std::fs",
    "std::net",
    "thread_rng",
    "from_entropy",
];

#[test]
fn manifest_has_no_runtime_or_io_dependency() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("read Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] section");
    for bad in FORBIDDEN_DEPS {
        assert!(!deps.contains(bad), "raft-core must not depend on {bad}");
    }
}

#[test]
fn sources_read_no_clock_and_spawn_nothing() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            for bad in FORBIDDEN_CODE {
                assert!(!text.contains(bad), "{} uses {bad}", path.display());
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 5,
        "expected the core's sources, found {checked} files"
    );
}

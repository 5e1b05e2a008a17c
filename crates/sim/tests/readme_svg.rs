//! The README's picture, docs/timeline.svg, is what its documented command draws: this
//! runs that command (the same flags, read from the README) and compares the bytes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Kills and reaps the child when dropped, also when the test fails.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The flags of the command in README.md, after `cargo run --release -p raft-sim --`.
const FLAGS: &str = "--replay 913 --nodes 3 --steps 400 --no-swarm \
    --set faults.partition=0 --set faults.drop=0 --set faults.duplicate=0 \
    --set faults.delay=0 --set faults.reorder=0 --set faults.crash=0.03 \
    --set faults.crash_leader_bias=1";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Words of `s`, with shell line continuations gone.
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().filter(|w| *w != "\\").collect()
}

#[test]
fn readme_shows_this_command() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let all = words(&readme);
    let want: Vec<&str> = words(FLAGS)
        .into_iter()
        .chain(["--svg", "docs/timeline.svg"])
        .collect();
    assert!(
        all.windows(want.len()).any(|w| w == want.as_slice()),
        "README.md no longer shows `raft-sim {} --svg docs/timeline.svg`",
        FLAGS
    );
}

#[test]
fn regenerating_the_readme_svg_gives_the_same_bytes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("timeline.svg");
    let child = Command::new(env!("CARGO_BIN_EXE_raft-sim"))
        .args(words(FLAGS))
        .arg("--svg")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("raft-sim starts");
    let mut child = Guard(child);
    let status = child.0.wait().expect("raft-sim runs");
    assert!(status.success(), "{status:?}");
    let fresh = std::fs::read(&out).expect("the SVG was written");
    let committed = std::fs::read(repo().join("docs/timeline.svg")).expect("docs/timeline.svg");
    assert!(
        fresh == committed,
        "docs/timeline.svg is out of date: regenerate it with the command in README.md"
    );
    let svg = String::from_utf8(fresh).expect("UTF-8");
    // What the picture is for: three lanes, a crash, two elections, a repair shown.
    assert_eq!(svg.matches("<g class=\"lane\"").count(), 3);
    assert_eq!(svg.matches("<rect class=\"crash\"").count(), 1);
    assert_eq!(svg.matches("<path class=\"elec\"").count(), 2);
    assert_eq!(svg.matches("<g class=\"logview\"").count(), 2);
}

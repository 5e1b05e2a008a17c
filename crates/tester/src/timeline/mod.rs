//! The timeline of a test: with `RAFT_TEST_TIMELINE=DIR`, every test of the classic suite
//! writes `DIR/<test binary>.<test>.html`, one self-contained HTML page drawn by
//! `raft-viz`: a lane per peer with its role, term, commit and applied index over time,
//! every RPC as an arrow from send to delivery (lost and dropped ones marked), crashes,
//! restarts and disconnections, snapshots and the log view.
//!
//! The recording comes from three hooks, all installed only when a timeline is asked for
//! (otherwise each costs one branch): labrpc's [`NetObserver`](labrpc::NetObserver) for
//! the calls, the runtime's [`Observer`](raft::Observer) for each peer's state and log
//! writes, and the [`Cluster`](crate::Cluster)'s own crash, restart, connect and
//! disconnect. None of them awaits or draws randomness, so a recorded run is the run it
//! would have been (`tests/timeline.rs` checks it).
//!
//! [`record_timeline`] asks for the timeline of one future (any cluster it builds);
//! [`run`](crate::run) and the `classic_tests!` tests do it when the variable is set.

mod describe;
mod recorder;

pub(crate) use recorder::Recorder;

use std::future::Future;
use std::path::PathBuf;

tokio::task_local! {
    /// The file the current run's timeline goes to.
    static TIMELINE: PathBuf;
}

/// The variable naming the directory timelines are written to.
pub const TIMELINE_VAR: &str = "RAFT_TEST_TIMELINE";

/// Runs `fut` so that the cluster it builds records its timeline and writes it to `file`
/// (an HTML page) when the cluster is dropped, also when the test fails. A second
/// cluster in the same future writes over the first's file.
pub async fn record_timeline<F: Future>(file: PathBuf, fut: F) -> F::Output {
    TIMELINE.scope(file, fut).await
}

/// The file a test's timeline goes to when `RAFT_TEST_TIMELINE=DIR` is set:
/// `DIR/<test>.html`, with `test` made safe as a file name.
pub fn timeline_file(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(TIMELINE_VAR).filter(|d| !d.is_empty())?;
    Some(PathBuf::from(dir).join(format!("{}.html", file_stem(test))))
}

/// `test` made safe as a file name: lower case, `::` as `.`, anything but letters,
/// digits, `_` and `.` replaced (runs of them by one `-`).
pub fn file_stem(test: &str) -> String {
    let mut out = String::new();
    for c in test.replace("::", ".").chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.') {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The file asked for by the run the caller is in, if any.
pub(crate) fn current_file() -> Option<PathBuf> {
    TIMELINE.try_with(Clone::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::file_stem;

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(
            file_stem("election_4a::initial_election"),
            "election_4a.initial_election"
        );
        assert_eq!(
            file_stem("Test (4A): initial election"),
            "test-4a-initial-election"
        );
        assert_eq!(file_stem("../x/y"), "..-x-y");
    }
}

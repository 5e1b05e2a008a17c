//! # raft-tester
//!
//! The harness of the classic Raft test suite, rebuilt on the `raft` runtime and the
//! `labrpc` simulated network, and the suite itself.
//!
//! - [`Cluster`] builds an n-peer cluster, its storage in memory or on disk
//!   ([`persister`]), and offers the classic checks: one leader, terms, no leader, `n_committed`, `one`, `wait`, connect and
//!   disconnect, crash and restart.
//! - [`suite`] holds every scenario as an async function; the integration tests and the
//!   `classic-suite` binary both run them.
//! - [`member_ops`] carries out a membership change on whichever peer leads, retrying
//!   until it has taken effect; the key/value harness drives its changes with it too.
//! - [`wiring`] connects a peer to the labrpc network (its ends, its transport); the
//!   key/value harness builds its servers from it too.
//! - [`run`] runs one scenario on a fresh tokio runtime, in virtual time by default
//!   (tokio's paused clock: simulated seconds cost no wall time, everything is seeded and
//!   reproducible), or against the wall clock when `RAFT_TEST_REALTIME=1`.
//!
//! Environment variables:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `RAFT_TEST_REALTIME=1` | run against the wall clock on a multi-threaded runtime |
//! | `RAFT_TEST_SEED=N` | the seed of every random choice (network, timeouts, tester) |
//! | `RAFT_TEST_QUIET=1` | do not print the per-test lines |
//! | `RAFT_TEST_STORAGE=disk` | peers keep their state in `raft-wal` data directories (temporary), restarts reopen them |
//! | `RAFT_TEST_TIMELINE=DIR` | every test writes its run as an HTML timeline, `DIR/<binary>.<test>.html` ([`timeline`]) |
#![warn(missing_docs)]

mod applier;
mod cluster;
pub mod member_ops;
pub mod persister;
mod runner;
pub mod suite;
pub mod timeline;
pub mod wiring;

pub use cluster::{cmd, Cluster, Summary};
pub use persister::{DiskStorage, PeerStorage, Persisters, StorageMode};
pub use runner::{block_on, run, run_on, run_test, run_with, seed_of, Mode, RunOptions, Scenario};
pub use timeline::{record_timeline, timeline_file};

/// Declares one `#[test]` per scenario: `name => "description", path::to::scenario;`.
/// Each runs with [`run_test`], so it honours `RAFT_TEST_REALTIME`, `RAFT_TEST_SEED`,
/// `RAFT_TEST_QUIET` and `RAFT_TEST_TIMELINE`, and has its own fixed default seed. Starting the list with
/// `on Disk;` (or `on Memory;`) fixes the peers' storage, whatever `RAFT_TEST_STORAGE` says;
/// tests of such a list may carry attributes (`#[ignore = "why"] name => ...`).
#[macro_export]
macro_rules! classic_tests {
    (on $storage:ident; $($(#[$attr:meta])* $test:ident => $name:literal, $f:path;)*) => {$(
        #[test]
        $(#[$attr])*
        fn $test() {
            $crate::run_test(
                concat!(module_path!(), "::", stringify!($test)),
                Some($crate::StorageMode::$storage),
                $name,
                |o| Box::pin($f(o)),
            );
        }
    )*};
    ($($test:ident => $name:literal, $f:path;)*) => {$(
        #[test]
        fn $test() {
            $crate::run_test(
                concat!(module_path!(), "::", stringify!($test)),
                None,
                $name,
                |o| Box::pin($f(o)),
            );
        }
    )*};
}

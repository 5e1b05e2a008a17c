//! Running one scenario on a fresh runtime, in virtual or real time.

use crate::cluster::Summary;
use crate::persister::StorageMode;
use futures::future::BoxFuture;

/// How time passes in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// tokio's paused clock on one thread: time jumps ahead whenever every task waits,
    /// and the run is a deterministic function of the seed.
    Virtual,
    /// The wall clock on a multi-threaded runtime, as a deployment would run.
    RealTime,
}

/// What a scenario runs with.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Virtual or real time.
    pub mode: Mode,
    /// Seed of the network, the peers' election timeouts and the tester's own choices.
    pub seed: u64,
    /// Suppress the per-test lines.
    pub quiet: bool,
}

impl RunOptions {
    /// Options from the environment (`RAFT_TEST_REALTIME`, `RAFT_TEST_SEED`,
    /// `RAFT_TEST_QUIET`), with `default_seed` when no seed is given.
    pub fn from_env(default_seed: u64) -> Self {
        let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1" || v == "true");
        let seed = std::env::var("RAFT_TEST_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default_seed);
        RunOptions {
            mode: if flag("RAFT_TEST_REALTIME") {
                Mode::RealTime
            } else {
                Mode::Virtual
            },
            seed,
            quiet: flag("RAFT_TEST_QUIET"),
        }
    }
}

/// A scenario of the suite: builds its own cluster, runs, returns its summary, and
/// panics with a message on failure.
pub type Scenario = fn(RunOptions) -> BoxFuture<'static, Summary>;

/// Runs `scenario` with options from the environment; the seed defaults to a hash of
/// `name`, so every test has its own fixed seed. With `RAFT_TEST_TIMELINE=DIR` its
/// timeline goes to a file named after `name`.
pub fn run(name: &str, scenario: Scenario) -> Summary {
    run_test(name, None, name, scenario)
}

/// Runs test `test` (its path, naming its timeline file when `RAFT_TEST_TIMELINE` is set),
/// described as `name` (which seeds it), with options from the environment; `storage`
/// fixes the peers' storage whatever `RAFT_TEST_STORAGE` says. What `classic_tests!`
/// calls.
pub fn run_test(
    test: &str,
    storage: Option<StorageMode>,
    name: &str,
    scenario: Scenario,
) -> Summary {
    let opts = RunOptions::from_env(seed_of(name));
    let fut = async move {
        match storage {
            Some(s) => s.scope(scenario(opts)).await,
            None => scenario(opts).await,
        }
    };
    match crate::timeline::timeline_file(test) {
        Some(file) => block_on(opts.mode, crate::timeline::record_timeline(file, fut)),
        None => block_on(opts.mode, fut),
    }
}

/// The seed a test runs with unless `RAFT_TEST_SEED` says otherwise: a hash (FNV-1a) of
/// its name, so that every test has its own fixed seed.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs `scenario` on a fresh runtime built for `opts.mode`.
pub fn run_with(opts: RunOptions, scenario: Scenario) -> Summary {
    block_on(opts.mode, scenario(opts))
}

/// As [`run`], with the peers' storage fixed to `storage` whatever `RAFT_TEST_STORAGE`
/// says.
pub fn run_on(storage: StorageMode, name: &str, scenario: Scenario) -> Summary {
    run_test(name, Some(storage), name, scenario)
}

/// Runs any future to completion on a fresh runtime built for `mode`: one thread with a
/// paused clock for [`Mode::Virtual`], two worker threads on the wall clock for
/// [`Mode::RealTime`].
pub fn block_on<F: std::future::Future>(mode: Mode, fut: F) -> F::Output {
    let runtime = match mode {
        Mode::Virtual => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build(),
        Mode::RealTime => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a tokio runtime: {e}"),
    };
    let out = runtime.block_on(fut);
    // Zombie tasks of killed peers may still be sleeping; do not wait for them.
    runtime.shutdown_background();
    out
}

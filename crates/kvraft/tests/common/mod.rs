//! The kvraft test harness: the classic kvraft tester's `config`, in Rust.
//!
//! - `n` [`KvServer`]s on a labrpc network; each server's Raft peer and key/value service
//!   share one labrpc server (methods [`RAFT_METHOD`] and [`KV_METHOD`]).
//! - Clerks ([`TestClerk`]) get their own ends to every server, only a chosen subset
//!   enabled; [`KvCluster::partition`] changes server-to-server links only.
//! - Shutdown and restart of servers with a copy of their storage (the classic "copy the
//!   persister"), or, on disk (`RAFT_TEST_STORAGE=disk` or [`run_on`]), from their
//!   `raft-wal` data directories reopened (see `raft_tester::persister`); the persisted
//!   Raft-state and snapshot sizes can be checked.
//! - Every clerk operation is recorded (client, kind, key, value, output, call and return
//!   event numbers, see [`OpLog`]) and [`KvCluster::end`] checks the whole
//!   history for linearizability: `Unknown` is reported and passes, as in the classic
//!   tester; `NotLinearizable` fails, prints the report and writes the history as JSON
//!   lines (re-check it with `lincheck FILE`).
//!
//! Set `KV_TEST_HISTORY_DIR=DIR` to keep every checked history as a JSON-lines file.
//!
//! **Latency.** Every request on the harness's links (clerk to server, server to server)
//! waits a one-way latency drawn from [`Latency`] (U[2 ms, 8 ms) by default) before it
//! enters labrpc. The raw labrpc network has no latency on reliable links; in virtual
//! time that would let closed-loop clients run forever at one instant (the paused clock
//! only advances when every task waits), and in both modes it would make the classic
//! 5-second rounds produce histories far larger than the classic ones. The benchmark
//! uses zero latency.
//!
//! Long delays are off (calls to a disabled end fail within 100 ms), as in the classic
//! kvraft tester.

#![allow(dead_code)]

pub mod members;
pub mod oplog;
pub mod scenarios;

pub use oplog::OpLog;

use futures::future::BoxFuture;
use kvraft::{Clerk, ClerkConfig, KvConfig, KvEnd, KvReply, KvRequest, KvServer};
use labrpc::{ClientEnd, Network, Server};
use linearizability::{check, CheckResult, Operation};
use raft::{Envelope, NodeId};
pub use raft_tester::wiring::Latency;
use raft_tester::wiring::{peer_ends, server_name, LabTransport, RAFT_METHOD};
use raft_tester::{
    block_on, seed_of, with_peer_storage, Mode, Persisters, RunOptions, StorageMode,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::future::Future;
use std::pin::Pin;

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The classic tester's sleep unit.
pub const ELECTION_TIMEOUT: Duration = Duration::from_millis(1000);
/// A test fails if it runs longer than this.
pub const TEST_LIMIT: Duration = Duration::from_secs(120);
/// A test that has not finished after this long fails even if it is stuck.
const HANG_LIMIT: Duration = TEST_LIMIT;
/// Time budget of the linearizability check (wall clock).
pub const LINEARIZABILITY_BUDGET: Duration = Duration::from_secs(5);

/// A scenario: builds its cluster, runs, panics with a message (and its seed) on failure.
pub type Scenario = fn(RunOptions) -> Pin<Box<dyn Future<Output = ()>>>;

thread_local! {
    /// Lease reads for the clusters this thread builds (see [`run_lease`]).
    static LEASE_ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The lease the suite runs with in lease mode: the default election timeout is
/// 400-800 ms, so 300 ms + 50 ms of clock uncertainty stays below it.
pub const LEASE_MODE: raft::ReadMode = raft::ReadMode::Lease {
    duration: Duration::from_millis(300),
    uncertainty: Duration::from_millis(50),
};

/// The read mode of the clusters built now: lease reads under [`run_lease`] or with
/// `KV_TEST_READ_MODE=lease` (the whole suite in lease mode), ReadIndex otherwise.
pub fn read_mode() -> raft::ReadMode {
    let env = std::env::var("KV_TEST_READ_MODE").is_ok_and(|v| v == "lease");
    if env || LEASE_ON.with(|l| l.get()) {
        LEASE_MODE
    } else {
        raft::ReadMode::ReadIndex
    }
}

/// Lease reads (or not) for the clusters this thread builds from now on.
pub fn set_lease(on: bool) {
    LEASE_ON.with(|l| l.set(on));
}

/// As [`run`], with lease reads (the scenario's future runs on this thread, which
/// builds its clusters).
pub fn run_lease(name: &str, scenario: Scenario) {
    set_lease(true);
    run(name, scenario);
}

/// Runs `scenario` with options from the environment (`RAFT_TEST_REALTIME`,
/// `RAFT_TEST_SEED`, `RAFT_TEST_QUIET`), in virtual time by default.
pub fn run(name: &str, scenario: Scenario) {
    run_with(RunOptions::from_env(seed_of(name)), scenario);
}

/// Runs `scenario` with `opts` on a fresh runtime; fails if it hangs.
pub fn run_with(opts: RunOptions, scenario: Scenario) {
    run_in(StorageMode::current(), opts, scenario);
}

/// As [`run`], with the servers' storage fixed to `storage` whatever `RAFT_TEST_STORAGE`
/// says.
pub fn run_on(storage: StorageMode, name: &str, scenario: Scenario) {
    run_in(storage, RunOptions::from_env(seed_of(name)), scenario);
}

fn run_in(storage: StorageMode, opts: RunOptions, scenario: Scenario) {
    block_on(
        opts.mode,
        storage.scope(async move {
            if tokio::time::timeout(HANG_LIMIT, scenario(opts))
                .await
                .is_err()
            {
                panic!(
                    "test did not finish within {HANG_LIMIT:?} (seed {})",
                    opts.seed
                );
            }
        }),
    );
}

/// The labrpc method under which a server serves client requests ([`KvRequest`] in,
/// [`KvReply`] out), beside Raft's [`RAFT_METHOD`].
pub const KV_METHOD: &str = "KV.Op";

/// A clerk's plain labrpc end to one server (kvraft itself names no network).
pub struct LabEnd(pub ClientEnd);

impl KvEnd for LabEnd {
    fn call(&self, req: &KvRequest) -> BoxFuture<'static, Option<KvReply>> {
        let end = self.0.clone();
        let req = req.clone();
        Box::pin(async move { end.call::<KvRequest, KvReply>(KV_METHOD, &req).await.ok() })
    }
}

/// A clerk's end to one server, with latency.
pub struct TestEnd {
    end: LabEnd,
    latency: Latency,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl KvEnd for TestEnd {
    fn call(&self, req: &KvRequest) -> BoxFuture<'static, Option<KvReply>> {
        let delay = self.latency.sample(&self.rng);
        let inner = KvEnd::call(&self.end, req);
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            inner.await
        })
    }
}

// ----- the operation log ---------------------------------------------------------------

/// A clerk of the tests: a [`Clerk`] whose every operation is recorded.
pub struct TestClerk {
    /// The number of this clerk in the history (`client` field).
    pub num: u64,
    clerk: Clerk<TestEnd>,
    end_names: Vec<String>,
    log: OpLog,
    seed: u64,
}

impl TestClerk {
    /// Gets `key`, recording the operation.
    pub async fn get(&mut self, key: &str) -> String {
        let call = self.log.stamp();
        let v = match self.clerk.get(key).await {
            Ok(v) => v,
            Err(e) => panic!("get({key}) failed: {e} (seed {})", self.seed),
        };
        let ret = self.log.stamp();
        self.log
            .record(Operation::get(self.num, key, v.clone(), 0, 0), call, ret);
        v
    }

    /// Puts `value` to `key`, recording the operation.
    pub async fn put(&mut self, key: &str, value: &str) {
        let call = self.log.stamp();
        if let Err(e) = self.clerk.put(key, value).await {
            panic!("put({key}) failed: {e} (seed {})", self.seed);
        }
        let ret = self.log.stamp();
        self.log
            .record(Operation::put(self.num, key, value, 0, 0), call, ret);
    }

    /// Appends `value` to `key`, recording the operation.
    pub async fn append(&mut self, key: &str, value: &str) {
        let call = self.log.stamp();
        if let Err(e) = self.clerk.append(key, value).await {
            panic!("append({key}) failed: {e} (seed {})", self.seed);
        }
        let ret = self.log.stamp();
        self.log
            .record(Operation::append(self.num, key, value, 0, 0), call, ret);
    }

    /// Fails unless `key` reads `expected`.
    pub async fn check(&mut self, key: &str, expected: &str) {
        let v = self.get(key).await;
        if !own_checks() {
            return;
        }
        assert_eq!(
            v, expected,
            "get({key}): expected {expected:?}, got {v:?} (seed {})",
            self.seed
        );
    }

    /// The names of this clerk's ends, to reconnect it after it moved into a task.
    pub fn end_names(&self) -> Vec<String> {
        self.end_names.clone()
    }

    /// The wrapped clerk, taken out (its operations are no longer recorded).
    pub fn into_clerk(self) -> Clerk<TestEnd> {
        self.clerk
    }

    /// The wrapped clerk (for unrecorded use, e.g. bad input).
    pub fn clerk(&mut self) -> &mut Clerk<TestEnd> {
        &mut self.clerk
    }
}

// ----- the cluster -------------------------------------------------------------------------

/// `n` key/value servers on a simulated network, with the classic kvraft tester's
/// operations. Every check panics with a readable message and the seed.
pub struct KvCluster {
    n: usize,
    /// Servers `0..bootstrap` form the initial cluster; the others are started later as
    /// joining servers (see [`members`]).
    bootstrap: usize,
    net: Network,
    opts: RunOptions,
    rng: ChaCha8Rng,
    config: KvConfig,
    latency: Latency,
    servers: Vec<Option<KvServer>>,
    /// Every server's durable state, in memory or on disk.
    store: Persisters,
    /// `ends[i][j]`: the name of the end server i uses to reach server j.
    ends: Vec<Vec<String>>,
    generation: u64,
    next_client: u64,
    log: OpLog,
    created: Instant,
    name: String,
    t0: Instant,
    rpcs0: u64,
    ops0: usize,
}

impl KvCluster {
    /// Starts `n` connected servers; `unreliable` makes the network lose and delay
    /// messages; `max_raft_state` is the classic `maxraftstate` (`None`: -1).
    pub fn new(n: usize, unreliable: bool, max_raft_state: Option<u64>, opts: RunOptions) -> Self {
        Self::with_latency(n, unreliable, max_raft_state, opts, Latency::DEFAULT)
    }

    /// As [`new`](Self::new), with a given latency on every link.
    pub fn with_latency(
        n: usize,
        unreliable: bool,
        max_raft_state: Option<u64>,
        opts: RunOptions,
        latency: Latency,
    ) -> Self {
        let mut cfg = Self::build(n, n, unreliable, max_raft_state, opts, latency);
        for i in 0..n {
            cfg.start_server(i);
        }
        cfg.connect_all();
        cfg
    }

    /// `n` server slots of which none is started yet; `0..bootstrap` will form the
    /// initial cluster.
    fn build(
        n: usize,
        bootstrap: usize,
        unreliable: bool,
        max_raft_state: Option<u64>,
        opts: RunOptions,
        latency: Latency,
    ) -> Self {
        let net = Network::new(opts.seed);
        net.set_reliable(!unreliable);
        net.set_long_delays(false);
        let mut config = KvConfig::with_max_raft_state(max_raft_state);
        config.raft.seed = opts.seed;
        config.raft.read_mode = read_mode();
        let now = Instant::now();
        KvCluster {
            n,
            bootstrap: bootstrap.clamp(1, n),
            net,
            opts,
            rng: ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(1)),
            config,
            latency,
            servers: vec![None; n],
            store: Persisters::new(StorageMode::current(), n, opts.mode),
            ends: vec![Vec::new(); n],
            generation: 0,
            next_client: 0,
            log: OpLog::new(),
            created: now,
            name: String::new(),
            t0: now,
            rpcs0: 0,
            ops0: 0,
        }
    }

    /// Number of servers.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Every server's index.
    pub fn all(&self) -> Vec<usize> {
        (0..self.n).collect()
    }

    /// The test's seed.
    pub fn seed(&self) -> u64 {
        self.opts.seed
    }

    /// The run options.
    pub fn opts(&self) -> RunOptions {
        self.opts
    }

    /// The tester's own seeded generator.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// The operation log.
    pub fn log(&self) -> &OpLog {
        &self.log
    }

    /// The network.
    pub fn net(&self) -> &Network {
        &self.net
    }

    /// Server `i`, if it is running.
    pub fn server(&self, i: usize) -> Option<&KvServer> {
        self.servers[i].as_ref()
    }

    // ----- lifecycle ---------------------------------------------------------------------

    /// Marks the start of the measured part and prints the test's name.
    pub fn begin(&mut self, description: &str) {
        if !self.opts.quiet {
            println!("Test: {description} ...");
        }
        self.name = description.to_string();
        self.t0 = Instant::now();
        self.rpcs0 = self.net.total_count();
        self.ops0 = self.log.len();
    }

    /// Checks the time limit and the linearizability of the whole history so far, and
    /// prints the classic line `... Passed -- seconds peers rpcs ops`.
    pub fn end(&mut self) {
        self.check_timeout();
        self.check_linearizable();
        if !self.opts.quiet {
            let mode = match self.opts.mode {
                Mode::Virtual => "virtual",
                Mode::RealTime => "real",
            };
            println!(
                "  ... Passed --  {:4.1}  {} {:5} {:4}   (seed {}, {mode} time, {})",
                self.t0.elapsed().as_secs_f64(),
                self.n,
                self.net.total_count() - self.rpcs0,
                self.log.len() - self.ops0,
                self.opts.seed,
                self.store.mode().name()
            );
        }
    }

    /// Fails the test if it has run longer than 120 s.
    pub fn check_timeout(&self) {
        let elapsed = self.created.elapsed();
        assert!(
            elapsed <= TEST_LIMIT,
            "test took longer than 120 seconds ({elapsed:?}; seed {})",
            self.opts.seed
        );
    }

    /// Checks the whole history: fails if it is not linearizable (printing the smallest
    /// failing key's history and writing the whole history to a file), reports an
    /// undecided check and passes.
    pub fn check_linearizable(&self) {
        let history = self.log.history();
        if let Ok(dir) = std::env::var("KV_TEST_HISTORY_DIR") {
            let path = std::path::Path::new(&dir).join(self.history_file_name());
            if let Err(e) = history.write_jsonl(&path) {
                println!("  info: could not write {}: {e}", path.display());
            }
        }
        match check(&history, LINEARIZABILITY_BUDGET) {
            CheckResult::Linearizable => {}
            CheckResult::Unknown { undecided_keys } => {
                println!(
                    "  info: linearizability check timed out after {LINEARIZABILITY_BUDGET:?} \
                     ({} ops, {} keys undecided); assuming history is ok (seed {})",
                    history.len(),
                    undecided_keys.len(),
                    self.opts.seed
                );
            }
            result @ CheckResult::NotLinearizable { .. } => {
                let path = std::env::temp_dir().join(self.history_file_name());
                let saved = match history.write_jsonl(&path) {
                    Ok(()) => format!("history written to {}", path.display()),
                    Err(e) => format!("could not write the history: {e}"),
                };
                panic!(
                    "history is not linearizable (seed {}); {saved}\n{result}",
                    self.opts.seed
                );
            }
        }
    }

    fn history_file_name(&self) -> String {
        let name: String = self
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("kvraft-history-{name}-{}.jsonl", self.opts.seed)
    }

    // ----- clients -----------------------------------------------------------------------

    /// A new clerk with its own ends to every server, those in `to` enabled.
    pub fn make_client(&mut self, to: &[usize]) -> TestClerk {
        self.make_client_with(to, ClerkConfig::default())
    }

    /// As [`make_client`](Self::make_client), with given clerk settings.
    pub fn make_client_with(&mut self, to: &[usize], config: ClerkConfig) -> TestClerk {
        let num = self.next_client;
        self.next_client += 1;
        let id: u64 = self.rng.gen();
        let rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(self.rng.gen())));
        let names: Vec<String> = (0..self.n).map(|j| format!("clerk-{num}-{j}")).collect();
        let ends = names
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let end = self.net.make_end(name.clone());
                self.net.connect(name, &server_name(j));
                TestEnd {
                    end: LabEnd(end),
                    latency: self.latency,
                    rng: rng.clone(),
                }
            })
            .collect();
        let ck = TestClerk {
            num,
            clerk: Clerk::with_id(ends, id, config),
            end_names: names,
            log: self.log.clone(),
            seed: self.opts.seed,
        };
        self.connect_client(&ck, to);
        ck
    }

    /// Enables `ck`'s ends to the servers in `to` and disables the others.
    pub fn connect_client(&self, ck: &TestClerk, to: &[usize]) {
        self.connect_client_links(&ck.end_names, to);
    }

    /// As [`connect_client`](Self::connect_client), given the clerk's end names.
    pub fn connect_client_links(&self, end_names: &[String], to: &[usize]) {
        for (j, name) in end_names.iter().enumerate() {
            self.net.enable(name, to.contains(&j));
        }
    }

    /// A raw labrpc end to server `j`, enabled, for hand-made requests.
    pub fn raw_end(&mut self, j: usize) -> ClientEnd {
        let name = format!("raw-{}-{j}", self.next_client);
        self.next_client += 1;
        let end = self.net.make_end(name.clone());
        self.net.connect(&name, &server_name(j));
        self.net.enable(&name, true);
        end
    }

    // ----- the network between servers --------------------------------------------------

    /// Enables the links between server `i` and every server in `to`, both directions.
    pub fn connect(&self, i: usize, to: &[usize]) {
        for &j in to {
            if let Some(name) = self.ends[i].get(j) {
                self.net.enable(name, true);
            }
            if let Some(name) = self.ends[j].get(i) {
                self.net.enable(name, true);
            }
        }
    }

    /// Disables the links between server `i` and every server in `from`.
    pub fn disconnect(&self, i: usize, from: &[usize]) {
        for &j in from {
            if let Some(name) = self.ends[i].get(j) {
                self.net.enable(name, false);
            }
            if let Some(name) = self.ends[j].get(i) {
                self.net.enable(name, false);
            }
        }
    }

    /// Connects every server to every other.
    pub fn connect_all(&self) {
        let all = self.all();
        for i in 0..self.n {
            self.connect(i, &all);
        }
    }

    /// Splits the servers into `p1` and `p2`: links within each side on, across off.
    /// Clerk links are untouched.
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        for &i in p1 {
            self.disconnect(i, p2);
            self.connect(i, p1);
        }
        for &i in p2 {
            self.disconnect(i, p1);
            self.connect(i, p2);
        }
    }

    /// The first server that believes it leads, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.n).find(|&i| self.servers[i].as_ref().is_some_and(|s| s.raft().state().1))
    }

    /// A majority and a minority, with the current leader (if any) in the minority.
    pub fn make_partition(&self) -> (Vec<usize>, Vec<usize>) {
        let l = self.leader().unwrap_or(0);
        let mut p1: Vec<usize> = (0..self.n).filter(|&i| i != l).collect();
        let mut p2 = p1.split_off(self.n / 2 + 1);
        p2.push(l);
        (p1, p2)
    }

    // ----- crash and restart ---------------------------------------------------------------

    /// Shuts server `i` down: cuts its links, deletes its labrpc server, kills it and
    /// fences off its storage (so the dead instance's late writes go nowhere: in memory
    /// the harness keeps a copy, on disk it closes the server's log).
    pub fn shutdown_server(&mut self, i: usize) {
        let all = self.all();
        self.disconnect(i, &all);
        self.net.delete_server(&server_name(i));
        if let Some(kv) = self.servers[i].take() {
            kv.kill();
        }
        self.store.crash(i);
    }

    /// (Re)starts server `i` from a copy of its storage, with fresh outgoing ends. Its
    /// links are off until [`connect`](Self::connect) or [`connect_all`](Self::connect_all).
    /// A server outside the initial cluster starts as a joining one ([`KvServer::join`]),
    /// restarts included: its storage, if any, holds its configuration.
    pub fn start_server(&mut self, i: usize) {
        self.generation += 1;
        let (names, ends) = peer_ends(&self.net, i, self.n, self.generation);
        self.ends[i] = names;
        let transport = LabTransport::new(ends).with_latency(self.latency, self.rng.gen());
        // Every server's clock reads the test's clock (virtual or real), so stamps and
        // session expiry are reproducible.
        let mut config = self.config.clone();
        config.clock_origin_ms =
            Some(u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX));
        let peers: Vec<NodeId> = (0..self.bootstrap as NodeId).collect();
        let storage = self.store.open(i);
        let started = if i < self.bootstrap {
            with_peer_storage!(storage, |s| KvServer::new(
                &peers,
                i as NodeId,
                s,
                config,
                transport
            ))
        } else {
            with_peer_storage!(storage, |s| KvServer::join(
                i as NodeId,
                s,
                config,
                transport
            ))
        };
        let kv = match started {
            Ok(kv) => kv,
            Err(e) => panic!("cannot start server {i}: {e} (seed {})", self.opts.seed),
        };
        let mut server = Server::new();
        let raft = kv.raft().clone();
        server.add_typed_method(RAFT_METHOD, move |env: Envelope| {
            let raft = raft.clone();
            async move { raft.handle(env).await }
        });
        let service = kv.clone();
        server.add_typed_method(KV_METHOD, move |req: KvRequest| {
            let service = service.clone();
            async move { service.handle(req).await }
        });
        self.net.add_server(server_name(i), server);
        self.servers[i] = Some(kv);
    }

    // ----- sizes ----------------------------------------------------------------------------

    /// The largest persisted Raft state of any server, in bytes.
    pub fn log_size(&self) -> u64 {
        (0..self.n)
            .map(|i| self.store.raft_state_size(i))
            .max()
            .unwrap_or(0)
    }

    /// The largest persisted snapshot of any server, in bytes.
    pub fn snapshot_size(&self) -> u64 {
        (0..self.n)
            .map(|i| self.store.snapshot_size(i))
            .max()
            .unwrap_or(0)
    }

    /// Kills every server.
    pub fn cleanup(&mut self) {
        for kv in self.servers.iter_mut().filter_map(Option::take) {
            kv.kill();
        }
    }
}

impl Drop for KvCluster {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// False when `KV_TEST_OWN_CHECKS=0`: the scenarios' own checks of values (every read
/// of a client's own key, the final check of every client's appends, [`TestClerk::check`])
/// are skipped, so that only the linearizability check of the history can catch a wrong
/// value. `crates/kvraft/check-planted-bugs.sh` uses it to show what that check catches.
pub fn own_checks() -> bool {
    std::env::var("KV_TEST_OWN_CHECKS").map_or(true, |v| v != "0")
}

/// Fails unless `v` holds client `clnt`'s tokens `x clnt 0 y` .. `x clnt count-1 y`,
/// each exactly once and in order.
pub fn check_clnt_appends(clnt: usize, v: &str, count: usize, seed: u64) {
    if !own_checks() {
        return;
    }
    let mut last: Option<usize> = None;
    for j in 0..count {
        let wanted = format!("x {clnt} {j} y");
        let Some(off) = v.find(&wanted) else {
            panic!(
                "client {clnt}: missing element {wanted:?} in append result {v:?} (seed {seed})"
            );
        };
        let off1 = v.rfind(&wanted);
        assert_eq!(
            off1,
            Some(off),
            "duplicate element {wanted:?} in append result (seed {seed})"
        );
        let in_order = match last {
            Some(l) => off > l,
            None => true,
        };
        assert!(
            in_order,
            "wrong order for element {wanted:?} in append result (seed {seed})"
        );
        last = Some(off);
    }
}

/// Fails unless `v` holds every client's tokens exactly once and in per-client order.
pub fn check_concurrent_appends(v: &str, counts: &[usize], seed: u64) {
    for (clnt, &count) in counts.iter().enumerate() {
        check_clnt_appends(clnt, v, count, seed);
    }
}

/// Waits for a spawned client task, re-raising its panic.
pub async fn join<T>(handle: tokio::task::JoinHandle<T>) -> T {
    match handle.await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("client task failed: {e}"),
    }
}

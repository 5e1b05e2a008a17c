//! The cluster harness: the classic tester's `config`, in Rust.

use crate::applier::applier;
use crate::persister::{Persisters, StorageMode};
use crate::runner::{Mode, RunOptions};
use crate::timeline::Recorder;
use crate::wiring::{peer_ends, server_name, LabTransport, RAFT_METHOD};
use bytes::Bytes;
use labrpc::{Network, Server};
use raft::{Config, Envelope, Index, NodeId, Raft, Term};
use rand::Rng;
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A test ends in failure if it runs longer than this.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Encodes an integer command the way every test writes them: as its decimal text.
pub fn cmd(x: u64) -> Bytes {
    Bytes::from(x.to_string())
}

/// What a finished test reports: the columns of the classic "Passed" line.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The test's description.
    pub name: String,
    /// Seconds of (virtual or real) time the test took.
    pub seconds: f64,
    /// Number of peers.
    pub peers: usize,
    /// RPCs sent.
    pub rpcs: u64,
    /// Bytes of arguments and replies.
    pub bytes: u64,
    /// Log entries committed during the test.
    pub commits: u64,
}

/// What the appliers and checks share.
#[derive(Default)]
pub(crate) struct Shared {
    /// Per peer: what it applied at each index. Survives restarts.
    pub(crate) logs: Vec<BTreeMap<Index, Bytes>>,
    /// First apply error, if any; the test fails at its next check.
    pub(crate) apply_err: Option<String>,
    /// Highest index applied by anyone.
    pub(crate) max_index: Index,
    /// A trace of what happened, with virtual times, for the determinism check.
    pub(crate) events: Vec<String>,
    /// Snapshots delivered on apply channels (from the leader, or on restart).
    pub(crate) snapshots_applied: u64,
}

/// An n-peer Raft cluster on a simulated network, with the classic tester's checks.
/// Every check panics with a readable message when it fails.
pub struct Cluster {
    n: usize,
    /// Peers `0..bootstrap` start as the voters of the initial configuration; the others
    /// start as joining servers that a membership change brings in.
    bootstrap: usize,
    net: Network,
    opts: RunOptions,
    rng: ChaCha8Rng,
    config: Config,
    /// Whether appliers snapshot every 10 entries.
    snapshots: bool,
    shared: Arc<Mutex<Shared>>,
    rafts: Vec<Option<Raft>>,
    /// Every peer's durable state, in memory or on disk; what a restart resumes from.
    store: Persisters,
    connected: Vec<bool>,
    /// `ends[i][j]`: the name of the end peer i uses to reach peer j.
    ends: Vec<Vec<String>>,
    generation: u64,
    created: Instant,
    name: String,
    t0: Instant,
    rpcs0: u64,
    bytes0: u64,
    index0: Index,
    /// Records the run for its HTML timeline, when one was asked for.
    timeline: Option<Recorder>,
}

impl Cluster {
    /// Starts `n` connected peers; `unreliable` makes the network lose and delay messages.
    pub fn new(n: usize, unreliable: bool, opts: RunOptions) -> Cluster {
        Self::with_config(n, unreliable, false, opts, Config::default())
    }

    /// A cluster whose appliers snapshot every 10 entries (the classic `applierSnap`).
    pub fn with_snapshots(n: usize, unreliable: bool, opts: RunOptions) -> Cluster {
        Self::with_config(n, unreliable, true, opts, Config::default())
    }

    /// As [`new`](Self::new), with snapshotting appliers or not, and a given peer
    /// configuration (its seed is replaced by the test's).
    pub fn with_config(
        n: usize,
        unreliable: bool,
        snapshots: bool,
        opts: RunOptions,
        config: Config,
    ) -> Cluster {
        Self::with_members(n, n, unreliable, snapshots, opts, config)
    }

    /// `n` servers, all wired to each other, of which only `0..voters` form the initial
    /// cluster; the others run as joining servers (no configuration, never campaigning)
    /// until a membership change adds them.
    pub fn with_members(
        n: usize,
        voters: usize,
        unreliable: bool,
        snapshots: bool,
        opts: RunOptions,
        config: Config,
    ) -> Cluster {
        let net = Network::new(opts.seed);
        net.set_reliable(!unreliable);
        net.set_long_delays(true);
        let now = Instant::now();
        let timeline = Recorder::current(n, now);
        if let Some(t) = &timeline {
            net.set_observer(Some(Arc::new(t.clone())));
        }
        let mut cluster = Cluster {
            n,
            bootstrap: voters.clamp(1, n),
            net,
            opts,
            rng: ChaCha8Rng::seed_from_u64(opts.seed.wrapping_add(1)),
            config: Config {
                seed: opts.seed,
                ..config
            },
            snapshots,
            shared: Arc::new(Mutex::new(Shared {
                logs: vec![BTreeMap::new(); n],
                ..Shared::default()
            })),
            rafts: vec![None; n],
            store: Persisters::new(StorageMode::current(), n, opts.mode),
            connected: vec![false; n],
            ends: vec![Vec::new(); n],
            generation: 0,
            created: now,
            name: String::new(),
            t0: now,
            rpcs0: 0,
            bytes0: 0,
            index0: 0,
            timeline,
        };
        for i in 0..n {
            cluster.start1(i);
        }
        for i in 0..n {
            cluster.connect(i);
        }
        cluster
    }

    /// Number of peers.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The tester's own seeded random generator, for scenario choices.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Sleeps for `d` of (virtual or real) time.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Sleeps for `ms` milliseconds.
    pub async fn sleep_ms(&self, ms: u64) {
        self.sleep(Duration::from_millis(ms)).await;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, what: String) {
        let ms = self.created.elapsed().as_millis();
        self.lock().events.push(format!("{ms:>8} {what}"));
    }

    /// The trace of applies and leader checks, with times; identical for identical seeds
    /// in virtual time.
    pub fn events(&self) -> Vec<String> {
        self.lock().events.clone()
    }

    // ----- test lifecycle -------------------------------------------------------------

    /// Marks the start of the measured part of a test and prints its name.
    pub fn begin(&mut self, description: &str) {
        if !self.opts.quiet {
            println!("{description} ...");
        }
        self.name = description.to_string();
        if let Some(t) = &self.timeline {
            let mode = match self.opts.mode {
                Mode::Virtual => "virtual",
                Mode::RealTime => "real",
            };
            t.describe_test(
                description,
                vec![format!(
                    "raft-tester: {} peers, seed {}, {mode} time, storage {}; peers are numbered from 0 as in the test's messages",
                    self.n,
                    self.opts.seed,
                    self.store.mode().name()
                )],
            );
        }
        self.t0 = Instant::now();
        self.rpcs0 = self.net.total_count();
        self.bytes0 = self.net.total_bytes();
        let index0 = self.lock().max_index;
        self.index0 = index0;
    }

    /// Checks the time limit, prints the classic "Passed" line and returns the figures.
    pub fn end(&mut self) -> Summary {
        self.check_timeout();
        self.check_apply_errors();
        let summary = Summary {
            name: self.name.clone(),
            seconds: self.t0.elapsed().as_secs_f64(),
            peers: self.n,
            rpcs: self.net.total_count() - self.rpcs0,
            bytes: self.net.total_bytes() - self.bytes0,
            commits: self.lock().max_index - self.index0,
        };
        if !self.opts.quiet {
            let mode = match self.opts.mode {
                Mode::Virtual => "virtual",
                Mode::RealTime => "real",
            };
            println!(
                "  ... Passed --  {:4.1}  {} {:4} {:7} {:4}   (seed {}, {mode} time, {})",
                summary.seconds,
                summary.peers,
                summary.rpcs,
                summary.bytes,
                summary.commits,
                self.opts.seed,
                self.store.mode().name()
            );
        }
        summary
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

    fn check_apply_errors(&self) {
        if let Some(err) = self.lock().apply_err.clone() {
            panic!("apply error: {err} (seed {})", self.opts.seed);
        }
    }

    // ----- peers -------------------------------------------------------------------------

    /// The live instance of peer `i`, if it is running.
    pub fn raft(&self, i: usize) -> Option<&Raft> {
        self.rafts[i].as_ref()
    }

    /// Whether peer `i` is running.
    pub fn is_alive(&self, i: usize) -> bool {
        self.rafts[i].is_some()
    }

    /// Whether peer `i` is connected to the network.
    pub fn is_connected(&self, i: usize) -> bool {
        self.connected[i]
    }

    /// Peer `i`'s persisted Raft-state size in bytes.
    pub fn raft_state_size(&self, i: usize) -> u64 {
        self.store.raft_state_size(i)
    }

    /// Where the peers keep their durable state.
    pub fn storage_mode(&self) -> StorageMode {
        self.store.mode()
    }

    /// Peer `i`'s data directory, on disk.
    pub fn data_dir(&self, i: usize) -> Option<std::path::PathBuf> {
        self.store.dir(i)
    }

    /// Calls `start` on peer `i`, if it is alive: `Some((index, term))` when it accepted.
    pub async fn start(&self, i: usize, command: Bytes) -> Option<(Index, Term)> {
        let raft = self.rafts[i].as_ref()?;
        raft.start(command).await.ok()
    }

    /// `(term, is_leader)` of peer `i`, if it is alive.
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.rafts[i].as_ref().map(Raft::state)
    }

    /// RPCs dispatched to peer `i`'s current server instance.
    pub fn rpc_count(&self, i: usize) -> u64 {
        self.net.count(&server_name(i))
    }

    /// RPCs sent on the whole network since it was created.
    pub fn rpc_total(&self) -> u64 {
        self.net.total_count()
    }

    /// Makes the network lose and delay messages (or not).
    pub fn set_unreliable(&self, unreliable: bool) {
        self.net.set_reliable(!unreliable);
    }

    /// Turns long reordering of replies on or off.
    pub fn set_long_reordering(&self, on: bool) {
        self.net.set_long_reordering(on);
    }

    /// Connects peer `i` to every currently connected peer, both directions.
    pub fn connect(&mut self, i: usize) {
        self.connected[i] = true;
        if let Some(t) = &self.timeline {
            t.connected(i, true);
        }
        for j in 0..self.n {
            if self.connected[j] {
                self.net.enable(&self.ends[i][j], true);
                self.net.enable(&self.ends[j][i], true);
            }
        }
    }

    /// Cuts peer `i` off from everyone, both directions.
    pub fn disconnect(&mut self, i: usize) {
        self.connected[i] = false;
        if let Some(t) = &self.timeline {
            t.connected(i, false);
        }
        for j in 0..self.n {
            if !self.ends[i].is_empty() {
                self.net.enable(&self.ends[i][j], false);
            }
            if !self.ends[j].is_empty() {
                self.net.enable(&self.ends[j][i], false);
            }
        }
    }

    /// Crashes peer `i`: disconnects it, removes its server, kills it, and fences off its
    /// storage so that the dead instance's late writes go nowhere (in memory: the harness
    /// keeps a copy; on disk: the harness closes the peer's log).
    pub fn crash1(&mut self, i: usize) {
        if let Some(t) = &self.timeline {
            t.crashed(i);
        }
        self.disconnect(i);
        self.net.delete_server(&server_name(i));
        if let Some(raft) = self.rafts[i].take() {
            raft.kill();
        }
        self.store.crash(i);
        self.event(format!("crash p{i}"));
    }

    /// (Re)starts peer `i` from its storage (a copy in memory, its data directory reopened
    /// on disk), with fresh outgoing ends. It is not connected: call
    /// [`connect`](Self::connect) next.
    pub fn start1(&mut self, i: usize) {
        self.crash1(i);
        self.generation += 1;
        let (names, clients) = peer_ends(&self.net, i, self.n, self.generation);
        self.ends[i] = names;

        let (apply_tx, apply_rx) = mpsc::channel(1024);
        let peers: Vec<NodeId> = (0..self.bootstrap as NodeId).collect();
        let storage = self.store.open(i);
        let transport = LabTransport::new(clients);
        let mut config = self.config.clone();
        if let Some(t) = &self.timeline {
            t.started(i, self.generation);
            config.observer = Some(t.peer_observer(i, self.generation));
        }
        let started = if i < self.bootstrap {
            crate::with_peer_storage!(storage, |s| Raft::new(
                &peers,
                i as NodeId,
                s,
                apply_tx,
                config,
                transport
            ))
        } else {
            crate::with_peer_storage!(storage, |s| Raft::join(
                i as NodeId,
                s,
                apply_tx,
                config,
                transport
            ))
        };
        let raft = match started {
            Ok(raft) => raft,
            Err(e) => panic!("cannot start peer {i}: {e}"),
        };
        tokio::spawn(applier(
            i,
            apply_rx,
            self.shared.clone(),
            self.created,
            raft.clone(),
            self.snapshots,
        ));

        let handle = raft.clone();
        let mut server = Server::new();
        server.add_typed_method(RAFT_METHOD, move |env: Envelope| {
            let raft = handle.clone();
            async move { raft.handle(env).await }
        });
        self.net.add_server(server_name(i), server);
        self.rafts[i] = Some(raft);
        self.event(format!("start p{i}"));
    }

    /// Crashes every peer, then restarts and reconnects them all from their storage.
    pub fn restart_all(&mut self) {
        for i in 0..self.n {
            self.crash1(i);
        }
        for i in 0..self.n {
            self.start1(i);
            self.connect(i);
        }
    }

    /// Kills every peer (the end of a test).
    pub fn cleanup(&mut self) {
        for raft in self.rafts.iter_mut().filter_map(Option::take) {
            raft.kill();
        }
    }

    // ----- checks ------------------------------------------------------------------------

    /// Waits for exactly one leader among the connected peers and returns it. Fails if
    /// two leaders share a term, or if there is none after about 5 seconds.
    pub async fn check_one_leader(&mut self) -> usize {
        for _ in 0..10 {
            let ms = 450 + self.rng.gen_range(0..100);
            self.sleep_ms(ms).await;
            let mut leaders: BTreeMap<Term, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n {
                if let (true, Some((term, true))) = (self.connected[i], self.state(i)) {
                    leaders.entry(term).or_default().push(i);
                }
            }
            for (term, ls) in &leaders {
                assert!(
                    ls.len() <= 1,
                    "term {term} has {} (>1) leaders: {ls:?} (seed {})",
                    ls.len(),
                    self.opts.seed
                );
            }
            if let Some((term, ls)) = leaders.last_key_value() {
                let leader = ls[0];
                self.event(format!("leader p{leader} term {term}"));
                return leader;
            }
        }
        panic!("expected one leader, got none (seed {})", self.opts.seed);
    }

    /// Checks that every connected peer has the same term, and returns it.
    pub fn check_terms(&self) -> Term {
        let mut term = None;
        for i in 0..self.n {
            if let (true, Some((t, _))) = (self.connected[i], self.state(i)) {
                match term {
                    None => term = Some(t),
                    Some(other) => assert_eq!(
                        other, t,
                        "servers disagree on term (seed {})",
                        self.opts.seed
                    ),
                }
            }
        }
        term.unwrap_or(0)
    }

    /// Fails if any connected peer thinks it is the leader.
    pub fn check_no_leader(&self) {
        for i in 0..self.n {
            if let (true, Some((_, true))) = (self.connected[i], self.state(i)) {
                panic!(
                    "expected no leader among connected servers, but {i} claims to be leader (seed {})",
                    self.opts.seed
                );
            }
        }
    }

    /// How many peers have applied `index`, and the command there. Fails on disagreement
    /// or any apply error.
    pub fn n_committed(&self, index: Index) -> (usize, Option<Bytes>) {
        self.check_apply_errors();
        let shared = self.lock();
        let mut count = 0;
        let mut command: Option<Bytes> = None;
        for (i, log) in shared.logs.iter().enumerate() {
            if let Some(c) = log.get(&index) {
                if let Some(prev) = &command {
                    assert_eq!(
                        prev, c,
                        "committed values do not match: index {index}, peer {i} (seed {})",
                        self.opts.seed
                    );
                }
                count += 1;
                command = Some(c.clone());
            }
        }
        (count, command)
    }

    /// Waits for at least `n` peers to apply `index`; gives up early (returning `None`)
    /// if a peer moves past `start_term`, and fails if too few apply it in ~30 s.
    pub async fn wait(&self, index: Index, n: usize, start_term: Option<Term>) -> Option<Bytes> {
        let mut pause = Duration::from_millis(10);
        for _ in 0..30 {
            let (count, _) = self.n_committed(index);
            if count >= n {
                break;
            }
            self.sleep(pause).await;
            if pause < Duration::from_secs(1) {
                pause *= 2;
            }
            if let Some(start) = start_term {
                let moved_on = (0..self.n).any(|i| self.state(i).is_some_and(|(t, _)| t > start));
                if moved_on {
                    return None;
                }
            }
        }
        let (count, command) = self.n_committed(index);
        assert!(
            count >= n,
            "only {count} decided for index {index}; wanted {n} (seed {})",
            self.opts.seed
        );
        command
    }

    /// Gets `command` committed by at least `expected` peers and returns its index: tries
    /// the connected peers in turn until one accepts, then waits up to 2 s for agreement,
    /// resubmitting if `retry`; fails after 10 s.
    pub async fn one(&self, command: Bytes, expected: usize, retry: bool) -> Index {
        let t0 = Instant::now();
        let mut next = 0;
        while t0.elapsed() < Duration::from_secs(10) {
            self.check_timeout();
            let mut index = None;
            for _ in 0..self.n {
                next = (next + 1) % self.n;
                if self.connected[next] {
                    if let Some((i, _)) = self.start(next, command.clone()).await {
                        index = Some(i);
                        break;
                    }
                }
            }
            if let Some(index) = index {
                let t1 = Instant::now();
                while t1.elapsed() < Duration::from_secs(2) {
                    let (count, got) = self.n_committed(index);
                    if count > 0 && count >= expected && got.as_ref() == Some(&command) {
                        return index;
                    }
                    self.sleep_ms(20).await;
                }
                assert!(
                    retry,
                    "one({}) failed to reach agreement (seed {})",
                    String::from_utf8_lossy(&command),
                    self.opts.seed
                );
            } else {
                self.sleep_ms(50).await;
            }
        }
        self.check_timeout();
        panic!(
            "one({}) failed to reach agreement (seed {})",
            String::from_utf8_lossy(&command),
            self.opts.seed
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cleanup();
        if let Some(t) = self.timeline.take() {
            t.write(std::thread::panicking());
        }
    }
}

/// A read-only view of what the peers applied, for client tasks that run beside the
/// test (the churn clients).
#[derive(Clone)]
pub struct CommittedView {
    shared: Arc<Mutex<Shared>>,
}

impl CommittedView {
    /// The command applied at `index` by any peer, if one has applied it. Peers never
    /// disagree here: the appliers fail the test first.
    pub fn value(&self, index: Index) -> Option<Bytes> {
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        s.logs.iter().find_map(|log| log.get(&index).cloned())
    }
}

impl Cluster {
    /// A view of applied commands that can move into another task.
    pub fn committed_view(&self) -> CommittedView {
        CommittedView {
            shared: self.shared.clone(),
        }
    }
}

impl Cluster {
    /// Bytes sent on the whole network since it was created.
    pub fn total_bytes(&self) -> u64 {
        self.net.total_bytes()
    }

    /// How many snapshots the peers' apply channels delivered so far.
    pub fn snapshots_applied(&self) -> u64 {
        self.lock().snapshots_applied
    }

    /// Peer `i`'s persisted snapshot size in bytes.
    pub fn snapshot_size(&self, i: usize) -> u64 {
        self.store.snapshot_size(i)
    }
}

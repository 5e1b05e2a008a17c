//! Membership in the kvraft harness: a cluster whose spare slots start later as new,
//! joining servers (their ends to everyone made then; the running servers' ends to a
//! slot exist from their own start and reach it once it is there), servers shut down for
//! good once removed, crashes and restarts injected while the test waits, and membership
//! operations carried out on whichever server leads with `raft_tester::member_ops` (the
//! classic suite's driver), retried until they have taken effect.

use super::{KvCluster, Latency};
use raft::{Membership, NodeId};
use raft_tester::member_ops::{achieved, attempt, retryable, MemberOp};
use raft_tester::RunOptions;
use rand::Rng;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;
use tokio::time::{sleep, sleep_until, Instant};

/// How long one membership operation may take, retries included, before the test fails.
const OP_LIMIT: Duration = Duration::from_secs(60);
/// How long one attempt may wait for its answer (a killed leader's never comes).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);
/// How long a learner may take to catch up in one `add_voter` attempt.
const CATCH_UP: Duration = Duration::from_secs(3);

/// Crashes and restarts of servers while the test waits: one server down at a time,
/// down for 0.3-1 s, then up for 0.5-1.5 s; servers shut down for good stay down, and
/// isolated servers stay cut off from the others when they restart.
#[derive(Debug)]
pub struct Faults {
    on: bool,
    down: Option<usize>,
    next: Instant,
    stopped: BTreeSet<usize>,
    isolated: BTreeSet<usize>,
    /// Crashes so far.
    pub crashes: u64,
}

impl Faults {
    /// A schedule that crashes a first server soon, or nothing at all if `!on`.
    pub fn new(on: bool) -> Self {
        Faults {
            on,
            down: None,
            next: Instant::now() + Duration::from_millis(500),
            stopped: BTreeSet::new(),
            isolated: BTreeSet::new(),
            crashes: 0,
        }
    }
}

impl KvCluster {
    /// `n` server slots, of which `0..voters` start now as the initial cluster (all
    /// linked); the others are started later by [`add_server`](Self::add_server).
    pub fn with_members(
        n: usize,
        voters: usize,
        unreliable: bool,
        max_raft_state: Option<u64>,
        opts: RunOptions,
    ) -> Self {
        let mut cfg = Self::build(
            n,
            voters,
            unreliable,
            max_raft_state,
            opts,
            Latency::DEFAULT,
        );
        for i in 0..cfg.bootstrap {
            cfg.start_server(i);
        }
        cfg.connect_all();
        cfg
    }

    /// Starts server `i` (a slot outside the initial cluster) as a new server that will
    /// join, and links it to every server; does nothing if it runs already.
    pub fn add_server(&mut self, i: usize) {
        if self.servers[i].is_some() {
            return;
        }
        self.start_server(i);
        let all = self.all();
        self.connect(i, &all);
    }

    /// Runs `fut` to completion while `faults` crash and restart servers.
    pub async fn under_faults<T>(
        &mut self,
        faults: &mut Faults,
        fut: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                // Biased: the branch order is not drawn at random, so a virtual-time run
                // is a function of its seed.
                biased;
                out = &mut fut => return out,
                () = sleep_until(faults.next), if faults.on => self.fault(faults),
            }
        }
    }

    /// Sleeps `d` while faults go on.
    pub async fn pause(&mut self, faults: &mut Faults, d: Duration) {
        self.under_faults(faults, sleep(d)).await;
    }

    fn fault(&mut self, f: &mut Faults) {
        let now = Instant::now();
        match f.down.take() {
            Some(i) => {
                self.restart(f, i);
                f.next = now + Duration::from_millis(self.rng.gen_range(500..1500));
            }
            None => {
                let up: Vec<usize> = (0..self.n)
                    .filter(|i| self.servers[*i].is_some() && !f.stopped.contains(i))
                    .collect();
                if !up.is_empty() {
                    let i = up[self.rng.gen_range(0..up.len())];
                    self.shutdown_server(i);
                    f.down = Some(i);
                    f.crashes += 1;
                }
                f.next = now + Duration::from_millis(self.rng.gen_range(300..1000));
            }
        }
    }

    /// Restarts server `i` (unless it was stopped for good) and links it to every server
    /// that is not isolated (to none if it is).
    fn restart(&mut self, f: &Faults, i: usize) {
        if f.stopped.contains(&i) {
            return;
        }
        self.start_server(i);
        if !f.isolated.contains(&i) {
            let peers: Vec<usize> = self
                .all()
                .into_iter()
                .filter(|j| !f.isolated.contains(j))
                .collect();
            self.connect(i, &peers);
        }
    }

    /// Crashes server `i` now, as the faults' one server down (the one they had down,
    /// if another, is restarted first); it comes back after 0.3-1 s like any other.
    pub fn crash_now(&mut self, f: &mut Faults, i: usize) {
        match f.down.take() {
            Some(j) if j != i => self.restart(f, j),
            _ => {}
        }
        self.shutdown_server(i);
        f.down = Some(i);
        f.crashes += 1;
        f.next = Instant::now() + Duration::from_millis(self.rng.gen_range(300..1000));
    }

    /// Cuts server `i` off from every other server (clients still reach it), also
    /// across its restarts, until [`heal`](Self::heal).
    pub fn isolate(&mut self, f: &mut Faults, i: usize) {
        f.isolated.insert(i);
        let all = self.all();
        self.disconnect(i, &all);
    }

    /// Reconnects the isolated servers that run.
    pub fn heal(&mut self, f: &mut Faults) {
        let all = self.all();
        for i in std::mem::take(&mut f.isolated) {
            if self.servers[i].is_some() {
                self.connect(i, &all);
            }
        }
    }

    /// Stops the faults and restarts the server they left down, if any.
    pub fn end_faults(&mut self, f: &mut Faults) {
        f.on = false;
        if let Some(i) = f.down.take() {
            self.restart(f, i);
        }
    }

    /// Shuts server `i` down for good (a removed server decommissioned): the faults
    /// never restart it.
    pub fn stop_for_good(&mut self, f: &mut Faults, i: usize) {
        f.stopped.insert(i);
        self.shutdown_server(i);
    }

    /// The server that leads, waiting (while faults go on) until one does.
    pub async fn await_leader(&mut self, faults: &mut Faults) -> usize {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self.leader() {
                return l;
            }
            assert!(
                t0.elapsed() < OP_LIMIT,
                "no leader for {OP_LIMIT:?} (seed {})",
                self.opts.seed
            );
            self.pause(faults, Duration::from_millis(50)).await;
        }
    }

    /// Carries out `op` on whichever server leads, while `faults` go on, until it has
    /// taken effect (checked in a committed configuration before every attempt, since an
    /// attempt that failed may have committed all the same); returns the configuration.
    pub async fn member_op(&mut self, faults: &mut Faults, op: MemberOp) -> Membership {
        let t0 = Instant::now();
        loop {
            assert!(
                t0.elapsed() < OP_LIMIT,
                "{op:?} did not complete in {OP_LIMIT:?} (seed {})",
                self.opts.seed
            );
            let leader = self.await_leader(faults).await;
            let Some(raft) = self.server(leader).map(|kv| kv.raft().clone()) else {
                continue;
            };
            let goal = op.clone();
            let outcome = self
                .under_faults(faults, async move {
                    let once = async {
                        let status = raft.membership().await?;
                        if achieved(leader as NodeId, &status, &goal) {
                            return Ok(status.membership);
                        }
                        attempt(&raft, &goal).await
                    };
                    tokio::time::timeout(ATTEMPT_LIMIT, once).await
                })
                .await;
            match outcome {
                Ok(Ok(m)) => return m,
                Ok(Err(e)) if retryable(&e) => {}
                Ok(Err(e)) => panic!("{op:?} failed: {e} (seed {})", self.opts.seed),
                Err(_elapsed) => {}
            }
            self.pause(faults, Duration::from_millis(100)).await;
        }
    }

    /// Adds server `i` as a voter the safe way: started as a new server if it is not
    /// running, added as a learner, promoted once caught up.
    pub async fn add_voter(&mut self, faults: &mut Faults, i: usize) -> Membership {
        self.add_server(i);
        self.member_op(faults, MemberOp::AddVoter(i as NodeId, CATCH_UP))
            .await
    }

    /// The configuration in force on the leader once no change is in flight.
    pub async fn settled_membership(&mut self, faults: &mut Faults) -> Membership {
        let t0 = Instant::now();
        loop {
            assert!(
                t0.elapsed() < OP_LIMIT,
                "no settled configuration (seed {})",
                self.opts.seed
            );
            let leader = self.await_leader(faults).await;
            if let Some(raft) = self.server(leader).map(|kv| kv.raft().clone()) {
                if let Ok(Ok(s)) = self
                    .under_faults(
                        faults,
                        tokio::time::timeout(ATTEMPT_LIMIT, raft.membership()),
                    )
                    .await
                {
                    if !s.change_in_progress {
                        return s.membership;
                    }
                }
            }
            self.pause(faults, Duration::from_millis(100)).await;
        }
    }
}

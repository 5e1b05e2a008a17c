//! The simulator: one seeded run of a cluster, one event per step, every invariant
//! checked after every step.

use crate::config::{ConfigError, Micros, PartitionKind, SimConfig};
use crate::event::{Event, EventQueue, Fault, Partition};
use crate::invariant::{Checker, Observation, Violation};
use crate::network::Network;
use crate::rng::SharedRng;
use crate::trace::{
    Fate, LostReason, MsgSummary, ProposeResult, ReadySummary, Trace, TraceKind, TraceMode,
};
use crate::world::{
    decode_snapshot, digest_step, encode_snapshot, Ledger, Recorded, SimNode, Unsent, World,
    DIGEST_INIT,
};
use bytes::Bytes;
use raft_core::{Entry, Envelope, Index, NodeId, RaftCore, Ready, RestoredState, Snapshot, Term};
use rand::Rng;
use std::fmt;

mod clock;
mod membership;
mod reads;
mod while_writing;

/// Counts of injected faults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Messages dropped.
    pub drop: u64,
    /// Messages duplicated.
    pub duplicate: u64,
    /// Messages delayed.
    pub delay: u64,
    /// Messages reordered.
    pub reorder: u64,
    /// Partitions created.
    pub partition: u64,
    /// Network heals (during the chaos phase).
    pub heal: u64,
    /// Crashes.
    pub crash: u64,
    /// Crashes that lost an unsynced batch.
    pub lost_unsynced: u64,
    /// Restarts.
    pub restart: u64,
}

impl FaultCounts {
    /// All faults injected (restarts and heals excluded).
    pub fn total(&self) -> u64 {
        self.drop + self.duplicate + self.delay + self.reorder + self.partition + self.crash
    }

    /// Adds `o` to these counts.
    pub fn add(&mut self, o: &FaultCounts) {
        self.drop += o.drop;
        self.duplicate += o.duplicate;
        self.delay += o.delay;
        self.reorder += o.reorder;
        self.partition += o.partition;
        self.heal += o.heal;
        self.crash += o.crash;
        self.lost_unsynced += o.lost_unsynced;
        self.restart += o.restart;
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (drop {}, dup {}, delay {}, reorder {}, partition {}, crash {} of which {} lost an unsynced batch; heals {}, restarts {})",
            self.total(),
            self.drop,
            self.duplicate,
            self.delay,
            self.reorder,
            self.partition,
            self.crash,
            self.lost_unsynced,
            self.heal,
            self.restart
        )
    }
}

/// Counters a run accumulates and a sweep sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Steps (events) taken.
    pub steps: u64,
    /// Virtual time simulated.
    pub sim_time_us: Micros,
    /// Times a node became leader.
    pub elections: u64,
    /// Distinct log indices committed.
    pub commits: u64,
    /// Commands proposed by clients.
    pub proposals: u64,
    /// Commands acknowledged to clients as committed.
    pub acked: u64,
    /// Linearizable reads asked for.
    pub reads: u64,
    /// Reads answered (each checked by `linearizable-read`).
    pub reads_answered: u64,
    /// Reads a leader took under its lease, without a heartbeat round (lease mode).
    pub reads_leased: u64,
    /// Of those, reads of one key a new leader answered under the lease it inherited,
    /// while limbo entries (none touching the key) were pending
    /// ([`raft_core::RaftCore::lease_read_for`]).
    pub reads_inherited: u64,
    /// Configuration changes a leader accepted (membership events).
    pub conf_changes: u64,
    /// Leadership transfers a leader started (membership events).
    pub transfers: u64,
    /// Messages sent.
    pub messages: u64,
    /// Faults injected.
    pub faults: FaultCounts,
}

impl Counters {
    /// Adds another run's (or sweep's) counters to these.
    pub fn add(&mut self, o: &Counters) {
        self.steps += o.steps;
        self.sim_time_us += o.sim_time_us;
        self.elections += o.elections;
        self.commits += o.commits;
        self.proposals += o.proposals;
        self.acked += o.acked;
        self.reads += o.reads;
        self.reads_answered += o.reads_answered;
        self.reads_leased += o.reads_leased;
        self.reads_inherited += o.reads_inherited;
        self.conf_changes += o.conf_changes;
        self.transfers += o.transfers;
        self.messages += o.messages;
        self.faults.add(&o.faults);
    }
}

/// What one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Events, time, elections, commits, messages and faults.
    pub counts: Counters,
    /// Ticks from the heal until the liveness check succeeded.
    pub liveness_ticks: Option<u64>,
    /// Catch-up allowance added to the liveness bound at the heal, in ticks.
    pub liveness_allowance: u64,
}

/// How a run ended when no invariant broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// After the heal, a leader committed a proposal on every node within this many ticks.
    Live {
        /// Ticks from the heal.
        ticks: u64,
    },
    /// Liveness was not checked; the run stopped at the bound.
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Chaos,
    Settle { healed_at: Micros, deadline: Micros },
    Done,
}

#[derive(Clone, Copy, Debug)]
struct ClientOp {
    node: usize,
    index: Index,
    term: Term,
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    node: usize,
    term: Term,
    index: Index,
    acked: bool,
}

/// Encodes command `cmd` as an entry payload.
pub fn encode_cmd(cmd: u64) -> Bytes {
    Bytes::copy_from_slice(&cmd.to_le_bytes())
}

/// Decodes an entry payload made by [`encode_cmd`].
pub fn decode_cmd(data: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = data.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// One seeded run of a simulated cluster.
///
/// ```
/// use raft_sim::{SimConfig, Simulator, TraceMode};
/// let mut sim = Simulator::new(42, &SimConfig::default(), TraceMode::Off).unwrap();
/// match sim.run() {
///     Ok(outcome) => println!("{outcome:?} after {} steps", sim.stats().counts.steps),
///     Err(violation) => println!("{violation}"),
/// }
/// assert!(sim.stats().counts.steps > 0);
/// ```
pub struct Simulator {
    seed: u64,
    cfg: SimConfig,
    rng: SharedRng,
    queue: EventQueue,
    world: World,
    checker: Checker,
    net: Network,
    trace: Trace,
    stats: RunStats,
    periods: Vec<Micros>,
    peers: Vec<NodeId>,
    phase: Phase,
    faults_on: bool,
    ops: Vec<Option<ClientOp>>,
    probe: Option<Probe>,
    probe_scheduled: bool,
    leader_term: Vec<Option<Term>>,
    next_read: u64,
    /// Lease mode: each node's clock error, in microseconds (see `sim/clock.rs`).
    clock_errors: Vec<i64>,
    /// A replacement under way: the voter to remove once its successor was added.
    replace_pending: Option<NodeId>,
}

impl Simulator {
    /// Sets up the run of `seed` under `cfg` (resolved for this seed: see
    /// [`SimConfig::resolve`]), keeping the trace as `mode` says.
    pub fn new(seed: u64, cfg: &SimConfig, mode: TraceMode) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let cfg = cfg.resolve(&mut SharedRng::with_stream(seed, 1));
        let mut rng = SharedRng::from_seed(seed);
        cfg.validate()?;
        // The initial voters, then the spare nodes (membership events only).
        let n = cfg.total_nodes();
        let peers: Vec<NodeId> = (1..=cfg.nodes.unwrap_or(3) as NodeId).collect();
        let mut nodes = Vec::with_capacity(n);
        for id in 1..=n as NodeId {
            let restored = RestoredState::default();
            let core = if peers.contains(&id) {
                RaftCore::new(id, &peers, cfg.core_config(), restored, rng.clone())
            } else {
                RaftCore::joining(id, cfg.core_config(), restored, rng.clone())
            };
            let core = core.map_err(|e| ConfigError(format!("core: {e}")))?;
            nodes.push(SimNode::new(id, core));
        }
        let tick = cfg.network.tick_us;
        let drift = cfg.network.drift_ppm as i64;
        let periods = (0..n)
            .map(|_| {
                let ppm = if drift > 0 {
                    rng.gen_range(-drift..=drift)
                } else {
                    0
                };
                ((tick as i64) + (tick as i64) * ppm / 1_000_000).max(1) as Micros
            })
            .collect::<Vec<_>>();
        let checker = Checker::new(&cfg, n);
        let mut sim = Simulator {
            seed,
            rng,
            queue: EventQueue::default(),
            world: World {
                nodes,
                bootstrap: raft_core::Membership::with_voters(peers.iter().copied()),
                ledger: Ledger::default(),
                now: 0,
                step: 0,
            },
            checker,
            net: Network::new(n),
            trace: Trace::new(mode),
            stats: RunStats::default(),
            periods,
            peers,
            phase: Phase::Chaos,
            faults_on: true,
            ops: Vec::new(),
            probe: None,
            probe_scheduled: false,
            leader_term: vec![None; n],
            next_read: 0,
            clock_errors: vec![0; n],
            replace_pending: None,
            cfg,
        };
        sim.init_clocks();
        for node in 0..n {
            let first = sim.rng.gen_range(1..=sim.periods[node]);
            sim.queue.push(
                first,
                Event::Tick {
                    node,
                    incarnation: 0,
                },
            );
        }
        sim.schedule_proposal();
        sim.schedule_read();
        sim.schedule_fault();
        sim.schedule_membership();
        Ok(sim)
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The settings this seed runs with (resolved).
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The cluster.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// What the run did so far.
    pub fn stats(&self) -> RunStats {
        let mut s = self.stats;
        s.counts.steps = self.world.step;
        s.counts.sim_time_us = self.world.now;
        s.counts.commits = self.world.ledger.len() as u64;
        s
    }

    /// The trace kept so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The invariant checker, to add invariants of one's own before running.
    pub fn checker_mut(&mut self) -> &mut Checker {
        &mut self.checker
    }

    /// Runs to the end: the liveness check succeeds, or an invariant breaks.
    pub fn run(&mut self) -> Result<Outcome, Violation> {
        loop {
            match self.phase {
                Phase::Done => break,
                Phase::Settle { .. } => {
                    self.step()?;
                    if let Some(outcome) = self.settle_check()? {
                        return Ok(outcome);
                    }
                }
                Phase::Chaos => {
                    self.step()?;
                }
            }
        }
        Ok(Outcome::Ended)
    }

    /// Takes one step: delivers the next event and checks every safety invariant against
    /// what it did (liveness is [`run`](Self::run)'s business). Returns false when there is
    /// nothing left to do.
    pub fn step(&mut self) -> Result<bool, Violation> {
        let (at, event) = if self.phase == Phase::Chaos && self.world.step >= self.cfg.chaos_steps {
            (self.world.now, Event::Heal)
        } else {
            match self.queue.pop() {
                Some(x) => x,
                None => {
                    self.phase = Phase::Done;
                    return Ok(false);
                }
            }
        };
        self.world.step += 1;
        self.world.now = at;
        self.dispatch(event)?;
        Ok(true)
    }

    fn dispatch(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick { node, incarnation } => {
                if self.world.nodes[node].incarnation != incarnation
                    || !self.world.nodes[node].is_up()
                {
                    return Ok(());
                }
                let next = self.world.now + self.periods[node];
                self.queue.push(next, Event::Tick { node, incarnation });
                self.record(TraceKind::Tick {
                    node: node as NodeId + 1,
                });
                self.flush_before_input(node)?;
                self.set_clock(node);
                if let Some(core) = self.world.nodes[node].core.as_mut() {
                    core.tick();
                    self.observe(Observation::Ticked { node })?;
                }
                self.after_input(node)
            }
            Event::Deliver(env) => self.deliver(env),
            Event::Flush { node, incarnation } => {
                if self.world.nodes[node].incarnation == incarnation
                    && self.world.nodes[node].unsent.is_some()
                {
                    let p = self.cfg.faults.crash_in_sync;
                    if self.faults_on && self.chance(p) {
                        return self.crash(node);
                    }
                    self.record(TraceKind::Flush {
                        node: node as NodeId + 1,
                    });
                    self.flush_unsent(node)?;
                    self.after_input(node)?;
                }
                Ok(())
            }
            Event::Propose => {
                if self.phase != Phase::Chaos {
                    return Ok(());
                }
                self.schedule_proposal();
                self.propose_batch()
            }
            Event::Read => self.read(),
            Event::Membership => self.membership_event(),
            Event::Probe { node } => self.probe(node),
            Event::Compact { node, incarnation } => self.compact(node, incarnation),
            Event::Fault => {
                if !self.faults_on {
                    return Ok(());
                }
                self.schedule_fault();
                self.inject_fault()
            }
            Event::Restart { node, incarnation } => {
                if self.world.nodes[node].incarnation == incarnation
                    && !self.world.nodes[node].is_up()
                {
                    self.restart(node)?;
                }
                Ok(())
            }
            Event::Heal => self.heal_all(),
        }
    }

    // ----- randomness -------------------------------------------------------------

    #[inline]
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p)
    }

    fn latency(&mut self) -> Micros {
        let n = &self.cfg.network;
        let (lo, hi) = (n.latency_min_us, n.latency_max_us);
        self.rng.gen_range(lo..=hi)
    }

    // ----- tracing and violations -------------------------------------------------

    #[inline]
    fn record(&mut self, what: TraceKind) {
        self.trace.push(self.world.step, self.world.now, what);
    }

    fn violation(&self, invariant: &'static str, detail: String) -> Violation {
        Violation {
            invariant,
            detail,
            step: self.world.step,
            time_us: self.world.now,
        }
    }

    #[inline]
    fn observe(&mut self, obs: Observation<'_>) -> Result<(), Violation> {
        self.checker.observe(&self.world, &obs)
    }

    // ----- inputs ---------------------------------------------------------------------

    fn deliver(&mut self, env: Envelope) -> Result<(), Violation> {
        let (from, to) = (env.from as usize - 1, env.to as usize - 1);
        let why = if !self.net.link_up(from, to) {
            Some(LostReason::Partition)
        } else if !self.world.nodes[to].is_up() {
            Some(LostReason::Down)
        } else {
            None
        };
        if let Some(why) = why {
            self.observe(Observation::Lost { env: &env })?;
            if self.trace.enabled() {
                self.record(TraceKind::Lost {
                    from: env.from,
                    to: env.to,
                    msg: MsgSummary::from(&env.msg),
                    why,
                });
            }
            return Ok(());
        }
        if self.trace.enabled() {
            self.record(TraceKind::Deliver {
                from: env.from,
                to: env.to,
                msg: MsgSummary::from(&env.msg),
            });
        }
        self.flush_before_input(to)?;
        self.set_clock(to);
        let (term, response) = (env.msg.term(), env.msg.is_response());
        let result = match self.world.nodes[to].core.as_mut() {
            Some(core) => core.step(env.from, env.msg),
            None => Ok(()),
        };
        if let Err(e) = result {
            return Err(self.violation(
                "driver-contract",
                format!("n{} refused a message from n{}: {e}", env.to, env.from),
            ));
        }
        self.observe(Observation::Delivered {
            node: to,
            from,
            term,
            response,
        })?;
        self.after_input(to)
    }

    fn current_leader(&self) -> Option<usize> {
        self.world
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.core().filter(|c| c.is_leader()).map(|c| (c.term(), i)))
            .max()
            .map(|(_, i)| i)
    }

    fn schedule_proposal(&mut self) {
        self.schedule_at_rate(self.cfg.workload.proposals_per_tick, Event::Propose);
    }

    /// Schedules the next `event` of a client stream of `rate` events per tick on average
    /// (the gap uniform in 1..=2 mean gaps; nothing when `rate` is 0).
    fn schedule_at_rate(&mut self, rate: f64, event: Event) {
        if rate <= 0.0 {
            return;
        }
        let mean = ((self.cfg.network.tick_us as f64) / rate).max(1.0) as Micros;
        let at = self.world.now + self.rng.gen_range(1..=2 * mean);
        self.queue.push(at, event);
    }

    /// The node a client request goes to: the newest leader with probability
    /// `workload.leader_bias` (when there is one), otherwise any node.
    fn client_target(&mut self) -> usize {
        let n = self.world.nodes.len();
        let bias = self.cfg.workload.leader_bias;
        match self.current_leader() {
            Some(l) if self.chance(bias) => l,
            _ => self.rng.gen_range(0..n),
        }
    }

    fn propose_batch(&mut self) -> Result<(), Violation> {
        let k = self.rng.gen_range(1..=self.cfg.workload.max_batch);
        let target = self.client_target();
        self.flush_before_input(target)?;
        self.set_clock(target);
        for _ in 0..k {
            if !matches!(self.propose_one(target), ProposeResult::Accepted(..)) {
                break;
            }
        }
        self.after_input(target)
    }

    /// Proposes the next command at `node`.
    fn propose_one(&mut self, node: usize) -> ProposeResult {
        let cmd = self.ops.len() as u64;
        self.stats.counts.proposals += 1;
        let result = match self.world.nodes[node].core.as_mut() {
            None => ProposeResult::Down,
            Some(core) => match core.propose(encode_cmd(cmd)) {
                Ok((index, term)) => ProposeResult::Accepted(index, term),
                Err(_) => ProposeResult::NotLeader,
            },
        };
        self.ops.push(match result {
            ProposeResult::Accepted(index, term) => Some(ClientOp { node, index, term }),
            _ => None,
        });
        self.record(TraceKind::Propose {
            node: node as NodeId + 1,
            cmd,
            result,
        });
        result
    }

    // ----- the driver: persist, send, apply -------------------------------------------

    fn after_input(&mut self, node: usize) -> Result<(), Violation> {
        if self.world.nodes[node].unsent.is_some() {
            // One write at a time: the next Ready waits for this one's flush, and only
            // what needs no write is handed over meanwhile.
            return self.while_writing(node);
        }
        let ready = match self.world.nodes[node].core.as_mut() {
            Some(core) if core.has_ready() => core.take_ready(),
            _ => return Ok(()),
        };
        let Ready {
            hard_state,
            truncate_from,
            entries,
            snapshot,
            early_messages,
            messages,
            restore,
            committed,
            read_states,
            failed_reads,
        } = ready;
        let durable = entries
            .last()
            .map(|e| (e.index, e.term))
            .or(snapshot.as_ref().map(|s| (s.meta.index, s.meta.term)));
        if hard_state.is_some()
            || snapshot.is_some()
            || truncate_from.is_some()
            || !entries.is_empty()
        {
            if let Err(e) = self.world.nodes[node].storage.write(
                hard_state,
                snapshot.as_ref(),
                truncate_from,
                &entries,
            ) {
                return Err(self.violation("driver-contract", format!("n{}: {e}", node + 1)));
            }
            self.observe(Observation::Persisted {
                node,
                hard_state,
                snapshot: snapshot.as_ref(),
                truncate_from,
                entries: &entries,
            })?;
        }
        self.observe(Observation::Stepped { node })?;
        self.take_reads(node, read_states, failed_reads)?;
        self.count_election(node);
        let lag = self.cfg.faults.sync_lag;
        let deferred = self.faults_on && self.chance(lag);
        if self.trace.enabled() {
            let summary = ReadySummary {
                hard_state,
                snapshot: snapshot.as_ref().map(|s| s.meta),
                truncate_from,
                appended: entries
                    .first()
                    .zip(entries.last())
                    .map(|(a, b)| (a.index, b.index)),
                messages: messages.len() as u32,
                restore: restore.as_ref().map(|s| s.meta),
                committed: committed
                    .first()
                    .zip(committed.last())
                    .map(|(a, b)| (a.index, b.index)),
                deferred,
            };
            self.record(TraceKind::Ready {
                node: node as NodeId + 1,
                ready: summary,
            });
            if let Some(state) = self.world.nodes[node].state() {
                self.record(TraceKind::State {
                    node: node as NodeId + 1,
                    state,
                });
            }
        }
        // A leader's replication requests leave before its write is synced (thesis
        // §10.2.1); a crash before the sync may then lose entries its followers hold.
        for env in early_messages {
            self.send(node, env)?;
        }
        if deferred {
            // What this node already held durable is applied now, as the runtime does
            // (`Ready::take_durable_committed`); the rest waits for the sync.
            let durable_here = self.world.nodes[node]
                .core()
                .map_or(0, |c| c.durable_index());
            let mut rest = Ready {
                restore,
                committed,
                ..Ready::default()
            };
            let now = rest.take_durable_committed(durable_here);
            let (restore, committed) = (rest.restore, rest.committed);
            let nd = &mut self.world.nodes[node];
            nd.unsent = Some(Unsent {
                durable,
                messages,
                restore,
                committed,
            });
            self.apply_durable(node, now)?;
            let nd = &mut self.world.nodes[node];
            let incarnation = nd.incarnation;
            let fsync = self.cfg.network.fsync_max_us.max(1);
            let at = self.world.now + self.rng.gen_range(1..=fsync);
            self.queue.push(at, Event::Flush { node, incarnation });
            self.answer_reads(node)
        } else {
            self.flush_ready(node, durable, messages, restore, committed)
        }
    }

    fn count_election(&mut self, node: usize) {
        if let Some(core) = self.world.nodes[node].core() {
            if core.is_leader() && self.leader_term[node] != Some(core.term()) {
                self.leader_term[node] = Some(core.term());
                self.stats.counts.elections += 1;
            }
        }
    }

    fn record_commits(&mut self, node: usize) -> Result<(), Violation> {
        self.record_commits_through(node, Index::MAX)
    }

    /// Records the node's commits up to `last` (and its commit index).
    pub(super) fn record_commits_through(
        &mut self,
        node: usize,
        last: Index,
    ) -> Result<(), Violation> {
        let (commit, term) = match self.world.nodes[node].core() {
            Some(c) => (c.commit_index().min(last), c.term()),
            None => return Ok(()),
        };
        let seen = self.world.nodes[node].commit_seen;
        if commit <= seen {
            return Ok(());
        }
        // Entries a snapshot covers are checked when the snapshot is persisted or loaded.
        let compacted = self.world.nodes[node]
            .core()
            .map_or(0, |c| c.log().snapshot().index);
        for index in (seen + 1).max(compacted + 1)..=commit {
            let entry: Option<Entry> = self.world.nodes[node]
                .core()
                .and_then(|c| c.log().entry(index).cloned());
            let recorded = match &entry {
                Some(e) => self.world.ledger.record(e, term),
                None => Recorded::Same,
            };
            self.observe(Observation::Committed {
                node,
                index,
                entry: entry.as_ref(),
                recorded: &recorded,
            })?;
        }
        self.world.nodes[node].commit_seen = commit;
        Ok(())
    }

    /// Before a node handles an input, its unsynced write normally completes: a driver
    /// that persists before it sends has nothing else to do meanwhile. With the leader's
    /// parallel write the driver is the runtime's, which keeps stepping inputs into the
    /// core while its write runs, hands over meanwhile only what needs no write
    /// (`while_writing`) and takes the next whole `Ready` only after it (see
    /// `after_input`); that is what lets a leader hear acknowledgements of entries its own
    /// disk does not hold yet.
    fn flush_before_input(&mut self, node: usize) -> Result<(), Violation> {
        if self.cfg.core.leader_parallel_write {
            return Ok(());
        }
        self.flush_unsent(node)
    }

    fn flush_unsent(&mut self, node: usize) -> Result<(), Violation> {
        match self.world.nodes[node].unsent.take() {
            Some(u) => self.flush_ready(node, u.durable, u.messages, u.restore, u.committed),
            None => Ok(()),
        }
    }

    fn flush_ready(
        &mut self,
        node: usize,
        durable: Option<(Index, Term)>,
        messages: Vec<Envelope>,
        restore: Option<Snapshot>,
        committed: Vec<Entry>,
    ) -> Result<(), Violation> {
        self.world.nodes[node].storage.sync();
        // A commit is decided once the write that holds it is synced: a leader that is a
        // quorum on its own counts entries its unsynced batch holds, and a crash before
        // the sync loses them with nothing told to anyone.
        self.record_commits(node)?;
        // With `leader_parallel_write` a leader counts its own copy from here on, which
        // may commit at once: that Ready is taken after this one is carried out.
        let mut commit_moved = false;
        if let (Some((index, term)), Some(core)) = (durable, self.world.nodes[node].core.as_mut()) {
            let before = core.commit_index();
            core.persisted(index, term);
            commit_moved = core.commit_index() > before;
        }
        for env in messages {
            self.send(node, env)?;
        }
        if let Some(snapshot) = restore {
            self.observe(Observation::Restored {
                node,
                snapshot: &snapshot,
            })?;
            let nd = &mut self.world.nodes[node];
            nd.applied = snapshot.meta.index;
            if let Some((_, digest)) = decode_snapshot(&snapshot.data) {
                nd.digest = digest;
            }
        }
        let applied_any = !committed.is_empty();
        for entry in committed {
            self.apply(node, entry)?;
        }
        if applied_any {
            self.maybe_schedule_compaction(node);
        }
        self.answer_reads(node)?;
        if commit_moved {
            self.after_input(node)?;
        }
        Ok(())
    }

    pub(super) fn maybe_schedule_compaction(&mut self, node: usize) {
        let every = self.cfg.snapshot_every;
        let nd = &self.world.nodes[node];
        let Some(core) = nd.core() else { return };
        if every == 0 || nd.compact_pending || nd.applied < core.log().snapshot().index + every {
            return;
        }
        let incarnation = nd.incarnation;
        self.world.nodes[node].compact_pending = true;
        let at = self.world.now + self.rng.gen_range(1..=self.cfg.network.fsync_max_us.max(1));
        self.queue.push(at, Event::Compact { node, incarnation });
    }

    fn compact(&mut self, node: usize, incarnation: u32) -> Result<(), Violation> {
        if self.world.nodes[node].incarnation != incarnation || !self.world.nodes[node].is_up() {
            return Ok(());
        }
        self.world.nodes[node].compact_pending = false;
        self.flush_unsent(node)?;
        let nd = &mut self.world.nodes[node];
        let (index, data) = (nd.applied, encode_snapshot(nd.applied, nd.digest));
        let result = match nd.core.as_mut() {
            Some(core) if index > core.log().snapshot().index => core.compact(index, data),
            _ => return Ok(()),
        };
        if let Err(e) = result {
            return Err(self.violation(
                "driver-contract",
                format!("n{} refused to compact through {index}: {e}", node + 1),
            ));
        }
        self.record(TraceKind::Compact {
            node: node as NodeId + 1,
            index,
        });
        self.after_input(node)
    }

    pub(super) fn send(&mut self, node: usize, env: Envelope) -> Result<(), Violation> {
        let n = self.world.nodes.len() as NodeId;
        if env.from != node as NodeId + 1 || env.to == 0 || env.to > n || env.to == env.from {
            return Err(self.violation(
                "driver-contract",
                format!(
                    "n{} sent a message from n{} to n{}",
                    node + 1,
                    env.from,
                    env.to
                ),
            ));
        }
        self.stats.counts.messages += 1;
        let (from, to) = (env.from as usize - 1, env.to as usize - 1);
        let latency = self.latency();
        let now = self.world.now;
        if self.faults_on {
            let f = &self.cfg.faults;
            let (drop, dup, delay, reorder) = (f.drop, f.duplicate, f.delay, f.reorder);
            let delay_max = f.delay_max_ticks * self.cfg.network.tick_us;
            let fate = if self.chance(drop) {
                self.stats.counts.faults.drop += 1;
                Some(Fate::Dropped)
            } else if self.chance(dup) {
                self.stats.counts.faults.duplicate += 1;
                let extra = self.rng.gen_range(0..=delay_max / 4 + 1);
                self.queue
                    .push(now + latency + extra, Event::Deliver(env.clone()));
                Some(Fate::Duplicated)
            } else if self.chance(delay) {
                self.stats.counts.faults.delay += 1;
                let extra = self.rng.gen_range(1..=delay_max.max(1));
                self.queue
                    .push(now + latency + extra, Event::Deliver(env.clone()));
                Some(Fate::Delayed)
            } else if self.chance(reorder) {
                self.stats.counts.faults.reorder += 1;
                // Outside the link's FIFO order: it may overtake earlier messages.
                let lo = self.cfg.network.latency_min_us;
                let at = now + self.rng.gen_range(lo..=latency);
                self.queue.push(at, Event::Deliver(env.clone()));
                Some(Fate::Reordered)
            } else {
                None
            };
            self.observe(Observation::Sent {
                node,
                env: &env,
                disturbed: fate.is_some(),
            })?;
            if let Some(fate) = fate {
                if self.trace.enabled() {
                    self.record(TraceKind::Faulted {
                        from: env.from,
                        to: env.to,
                        msg: MsgSummary::from(&env.msg),
                        fate,
                    });
                }
                if fate != Fate::Duplicated {
                    return Ok(());
                }
            }
        }
        if !self.faults_on {
            self.observe(Observation::Sent {
                node,
                env: &env,
                disturbed: false,
            })?;
        }
        let at = self.net.fifo_time(from, to, now + latency);
        self.queue.push(at, Event::Deliver(env));
        Ok(())
    }

    pub(super) fn apply(&mut self, node: usize, entry: Entry) -> Result<(), Violation> {
        self.observe(Observation::Applied {
            node,
            entry: &entry,
        })?;
        let nd = &mut self.world.nodes[node];
        nd.applied = entry.index;
        nd.digest = digest_step(nd.digest, &entry);
        let Some(cmd) = decode_cmd(&entry.data).filter(|_| membership::is_command(&entry)) else {
            return Ok(());
        };
        let Some(Some(op)) = self.ops.get(cmd as usize).copied() else {
            return Ok(());
        };
        if op.node != node || op.index != entry.index || op.term != entry.term {
            return Ok(());
        }
        self.ops[cmd as usize] = None;
        self.stats.counts.acked += 1;
        if let Some(p) = self.probe.as_mut() {
            if p.node == node && p.index == entry.index && p.term == entry.term {
                p.acked = true;
            }
        }
        self.record(TraceKind::Acked {
            node: node as NodeId + 1,
            cmd,
            index: entry.index,
        });
        self.observe(Observation::Acked {
            node,
            index: entry.index,
            term: entry.term,
        })
    }

    // ----- faults -----------------------------------------------------------------------

    fn fault_rate(&self) -> f64 {
        let f = &self.cfg.faults;
        let partition = if f.partition_kinds.is_empty() {
            0.0
        } else {
            f.partition
        };
        partition + f.heal + f.crash
    }

    fn schedule_fault(&mut self) {
        let rate = self.fault_rate();
        if rate <= 0.0 {
            return;
        }
        let mean = ((self.cfg.network.tick_us as f64) / rate).max(1.0) as Micros;
        let at = self.world.now + self.rng.gen_range(1..=2 * mean);
        self.queue.push(at, Event::Fault);
    }

    fn inject_fault(&mut self) -> Result<(), Violation> {
        let rate = self.fault_rate();
        let f = &self.cfg.faults;
        let partition = if f.partition_kinds.is_empty() {
            0.0
        } else {
            f.partition
        };
        let heal = f.heal;
        let r = self.rng.gen::<f64>() * rate;
        if r < partition {
            self.partition();
            Ok(())
        } else if r < partition + heal {
            self.net.heal();
            self.stats.counts.faults.heal += 1;
            self.record(TraceKind::Fault(Fault::HealNetwork));
            Ok(())
        } else {
            let live: Vec<usize> = (0..self.world.nodes.len())
                .filter(|i| self.world.nodes[*i].is_up())
                .collect();
            if live.is_empty() {
                return Ok(());
            }
            let bias = self.cfg.faults.crash_leader_bias;
            let target = match self.current_leader() {
                Some(l) if self.chance(bias) => l,
                _ => live[self.rng.gen_range(0..live.len())],
            };
            self.crash(target)
        }
    }

    fn random_mask(&mut self, n: usize) -> u64 {
        // A non-empty proper subset of 0..n.
        let all = (1u64 << n) - 1;
        self.rng.gen_range(1..all)
    }

    fn partition(&mut self) {
        let n = self.world.nodes.len();
        if n < 2 {
            return;
        }
        let kinds = &self.cfg.faults.partition_kinds;
        let kind = kinds[self.rng.gen_range(0..kinds.len())];
        let p = match kind {
            PartitionKind::RandomSplit => Partition::Split {
                side: self.random_mask(n),
            },
            PartitionKind::IsolateLeader => {
                let node = match self.current_leader() {
                    Some(l) => l,
                    None => self.rng.gen_range(0..n),
                };
                Partition::Isolate {
                    node: node as NodeId + 1,
                }
            }
            PartitionKind::Bridge if n >= 3 => {
                let bridge = self.rng.gen_range(0..n);
                let others: Vec<usize> = (0..n).filter(|i| *i != bridge).collect();
                // Split the others into two non-empty halves.
                let m = others.len();
                let bits = self.rng.gen_range(1..(1u64 << m) - 1);
                let a = others
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| bits & (1 << k) != 0)
                    .fold(0u64, |acc, (_, i)| acc | (1 << i));
                Partition::Bridge {
                    a,
                    bridge: bridge as NodeId + 1,
                }
            }
            PartitionKind::Bridge => Partition::Split {
                side: self.random_mask(n),
            },
            PartitionKind::OneWay => Partition::OneWay {
                node: self.rng.gen_range(1..=n as NodeId),
                deaf: self.rng.gen_bool(0.5),
            },
        };
        self.net.apply(&p);
        self.stats.counts.faults.partition += 1;
        self.record(TraceKind::Fault(Fault::Partition(p)));
    }

    fn crash(&mut self, node: usize) -> Result<(), Violation> {
        let lose_p = self.cfg.faults.lose_unsynced;
        let unsent = self.world.nodes[node].unsent.is_some();
        let lose = unsent && self.world.nodes[node].storage.has_unsynced() && self.chance(lose_p);
        let nd = &mut self.world.nodes[node];
        nd.core = None;
        nd.unsent = None;
        let rolled_back = nd.storage.crash(lose);
        self.drop_reads(node)?;
        let nd = &mut self.world.nodes[node];
        nd.incarnation += 1;
        nd.applied = 0;
        nd.digest = DIGEST_INIT;
        nd.commit_seen = 0;
        nd.compact_pending = false;
        let incarnation = nd.incarnation;
        self.stats.counts.faults.crash += 1;
        if rolled_back.is_some() {
            self.stats.counts.faults.lost_unsynced += 1;
        }
        self.record(TraceKind::Fault(Fault::Crash {
            node: node as NodeId + 1,
            lost_unsynced: rolled_back.is_some(),
            unsent,
        }));
        self.observe(Observation::Crashed { node, rolled_back })?;
        let max_down = self.cfg.faults.max_down_ticks;
        let tick = self.cfg.network.tick_us;
        let at =
            self.world.now + self.rng.gen_range(0..=max_down) * tick + self.rng.gen_range(1..=tick);
        self.queue.push(at, Event::Restart { node, incarnation });
        Ok(())
    }

    fn restart(&mut self, node: usize) -> Result<(), Violation> {
        let restored = self.world.nodes[node].storage.restored();
        let id = node as NodeId + 1;
        let core = match self.new_core(node, restored) {
            Ok(c) => c,
            Err(e) => {
                return Err(self.violation(
                    "driver-contract",
                    format!("n{id} cannot restart from its own storage: {e}"),
                ))
            }
        };
        let nd = &mut self.world.nodes[node];
        nd.core = Some(core);
        nd.applied = 0;
        nd.digest = DIGEST_INIT;
        nd.commit_seen = 0;
        let incarnation = nd.incarnation;
        self.stats.counts.faults.restart += 1;
        self.record(TraceKind::Fault(Fault::Restart { node: id }));
        self.observe(Observation::Restarted { node })?;
        let first = self.world.now + self.rng.gen_range(1..=self.periods[node]);
        self.queue.push(first, Event::Tick { node, incarnation });
        Ok(())
    }

    // ----- the end: heal and check liveness --------------------------------------------

    fn heal_all(&mut self) -> Result<(), Violation> {
        self.record(TraceKind::Heal);
        self.net.heal();
        self.faults_on = false;
        for node in 0..self.world.nodes.len() {
            if !self.world.nodes[node].is_up() {
                self.restart(node)?;
            }
        }
        let now = self.world.now;
        let allowance = self.catch_up_allowance();
        self.stats.liveness_allowance = allowance;
        self.phase = Phase::Settle {
            healed_at: now,
            deadline: now + (self.cfg.liveness_bound_ticks + allowance) * self.cfg.network.tick_us,
        };
        Ok(())
    }

    fn probe(&mut self, node: usize) -> Result<(), Violation> {
        self.probe_scheduled = false;
        if !self.world.nodes[node].is_leader() {
            return Ok(());
        }
        self.flush_before_input(node)?;
        self.set_clock(node);
        match self.propose_one(node) {
            ProposeResult::Accepted(index, term) => {
                self.probe = Some(Probe {
                    node,
                    term,
                    index,
                    acked: false,
                })
            }
            // Refused (a leadership transfer under way): asked again a tick later.
            _ => {
                self.probe_scheduled = true;
                let at = self.world.now + self.cfg.network.tick_us;
                self.queue.push(at, Event::Probe { node });
            }
        }
        self.after_input(node)
    }

    /// Ticks allowed, on top of the base bound, to ship the backlog at the heal: one
    /// round trip per in-flight window of entries the most lagging node misses beyond
    /// its committed prefix, plus one per term in the longest log (probing back).
    fn catch_up_allowance(&self) -> u64 {
        let net = &self.cfg.network;
        let core = &self.cfg.core;
        let rtt_ticks = (2 * (net.latency_max_us + net.fsync_max_us)).div_ceil(net.tick_us) + 1;
        // The simulator's commands are 8 bytes; raft-core adds its header estimate.
        let per_msg = (core.max_msg_bytes / (8 + raft_core::Entry::OVERHEAD)).max(1) as u64;
        let window = per_msg * core.max_inflight_msgs.max(1) as u64;
        let ledger = &self.world.ledger;
        let max_last = self
            .world
            .nodes
            .iter()
            .map(|n| n.storage.last_index())
            .max()
            .unwrap_or(0);
        let min_agree = self
            .world
            .nodes
            .iter()
            .map(|n| {
                let compacted = n.storage.snapshot_meta().index;
                let mut j = n.storage.last_index().min(ledger.max_index());
                while j > compacted && n.storage.term(j) != ledger.get(j).map(|c| c.term) {
                    j -= 1;
                }
                j
            })
            .min()
            .unwrap_or(0);
        let terms = self
            .world
            .nodes
            .iter()
            .map(|n| {
                let mut count = 0u64;
                let mut last = 0;
                for i in n.storage.snapshot_meta().index + 1..=n.storage.last_index() {
                    let t = n.storage.term(i).unwrap_or(0);
                    if t != last {
                        count += 1;
                        last = t;
                    }
                }
                count
            })
            .max()
            .unwrap_or(0);
        ((max_last - min_agree).div_ceil(window) + terms) * rtt_ticks
    }

    fn settle_check(&mut self) -> Result<Option<Outcome>, Violation> {
        let Phase::Settle {
            healed_at,
            deadline,
        } = self.phase
        else {
            return Ok(None);
        };
        let leader = self.current_leader();
        if let Some(l) = leader {
            let term = self.world.nodes[l].core().map_or(0, |c| c.term());
            let current = self.probe.filter(|p| p.node == l && p.term == term);
            match current {
                Some(p) if p.acked && self.members_applied(l, p.index) => {
                    let tick = self.cfg.network.tick_us;
                    let ticks = (self.world.now - healed_at).div_ceil(tick);
                    self.stats.liveness_ticks = Some(ticks);
                    self.record(TraceKind::Live { ticks });
                    self.phase = Phase::Done;
                    return Ok(Some(Outcome::Live { ticks }));
                }
                Some(_) => {}
                None if !self.probe_scheduled => {
                    self.probe_scheduled = true;
                    self.queue.push(self.world.now, Event::Probe { node: l });
                }
                None => {}
            }
        }
        if self.world.now <= deadline {
            return Ok(None);
        }
        if !self.cfg.check_liveness {
            self.phase = Phase::Done;
            return Ok(Some(Outcome::Ended));
        }
        let bound = (deadline - healed_at) / self.cfg.network.tick_us;
        let who = match leader {
            Some(l) => format!("n{} leads", l + 1),
            None => "no leader".to_string(),
        };
        let (invariant, what) = match self.probe {
            Some(p) if p.acked && Some(p.node) == leader => (
                "catch-up",
                format!(
                    "probe {}@{} committed at n{}, but not every node applied it",
                    p.index,
                    p.term,
                    p.node + 1
                ),
            ),
            Some(p) => (
                "liveness",
                format!(
                    "last probe {}@{} at n{} {}",
                    p.index,
                    p.term,
                    p.node + 1,
                    if p.acked {
                        "committed, but its leader lost leadership"
                    } else {
                        "not committed"
                    }
                ),
            ),
            None => ("liveness", "no probe accepted by a leader".to_string()),
        };
        Err(self.violation(
            invariant,
            format!(
                "{bound} ticks after the heal (base {} + catch-up allowance {}), {who}; {what}\n{}",
                self.cfg.liveness_bound_ticks,
                bound.saturating_sub(self.cfg.liveness_bound_ticks),
                self.world.describe()
            ),
        ))
    }
}

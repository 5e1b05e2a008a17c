//! The settings of one simulation run: cluster size, network, faults, workload, and the
//! "swarm" randomisation that gives every seed its own mix of them.

use crate::rng::SharedRng;
use raft_core::{CoreConfig, ReadMode};
use rand::Rng;
use std::fmt;

/// Virtual time, in microseconds since the start of the run.
pub type Micros = u64;

/// Everything that shapes one seed's run. With `swarm` set, each seed draws its own
/// variation of these settings (fault mix, latencies, flow-control limits) from its RNG
/// before the run starts; [`SimConfig::resolve`] performs that draw.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Cluster size; `None` lets each seed pick 3, 5 or 7.
    pub nodes: Option<usize>,
    /// Steps (events) of the chaos phase, after which the network heals, crashed nodes
    /// restart and faults stop.
    pub chaos_steps: u64,
    /// When true, each seed randomises fault probabilities and network and core settings
    /// around these values ("swarm testing"), so that different seeds stress different
    /// mixes of faults.
    pub swarm: bool,
    /// The protocol core's settings.
    pub core: CoreConfig,
    /// Latency and clock settings.
    pub network: NetworkConfig,
    /// Fault probabilities.
    pub faults: FaultConfig,
    /// Client proposals.
    pub workload: WorkloadConfig,
    /// After the heal, a leader must be elected and commit a proposal on every node
    /// within this many ticks, or the run fails the liveness check.
    pub liveness_bound_ticks: u64,
    /// Check liveness after the heal (when false, the run simply ends at the bound).
    pub check_liveness: bool,
    /// A node's service snapshots its state (and the core compacts its log) once this
    /// many entries were applied since the last snapshot; 0 never snapshots.
    pub snapshot_every: u64,
    /// Invariants (by [`name`](crate::InvariantKind::name)) that are not checked.
    pub disabled_invariants: Vec<String>,
}

/// Latency and clock settings of the simulated network.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Length of one tick (the core's unit of time), in virtual microseconds.
    pub tick_us: Micros,
    /// Smallest one-way message latency.
    pub latency_min_us: Micros,
    /// Largest one-way message latency (without faults).
    pub latency_max_us: Micros,
    /// Each node's tick period differs from `tick_us` by up to this many parts per
    /// million (clock drift).
    pub drift_ppm: u64,
    /// Largest time between persisting a `Ready` and sending its messages, when the
    /// send is deferred (see [`FaultConfig::sync_lag`]).
    pub fsync_max_us: Micros,
    /// Lease reads (`ReadMode::Lease`) with this lease duration; 0: ReadIndex.
    pub lease_us: Micros,
    /// In lease mode, every node's clock is off true (virtual) time by up to this much,
    /// and jumps within that bound; the lease's configured uncertainty.
    pub clock_uncertainty_us: Micros,
}

/// Probabilities of faults. Message faults apply to every message independently;
/// cluster faults are drawn per tick of virtual time.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// A message is lost.
    pub drop: f64,
    /// A message is delivered twice (the copy at an independent time).
    pub duplicate: f64,
    /// A message is held back for up to `delay_max_ticks`.
    pub delay: f64,
    /// A message skips the FIFO order of its link (it may overtake earlier ones).
    pub reorder: f64,
    /// Largest extra delay of a delayed message, in ticks.
    pub delay_max_ticks: u64,
    /// Per tick: a new partition replaces the current one.
    pub partition: f64,
    /// Which kinds of partition may be drawn.
    pub partition_kinds: Vec<PartitionKind>,
    /// Per tick: the network heals.
    pub heal: f64,
    /// Per tick: a live node crashes.
    pub crash: f64,
    /// Probability that a crash picks the leader (when there is one) rather than a
    /// random live node.
    pub crash_leader_bias: f64,
    /// A crashed node restarts after 0 to this many ticks.
    pub max_down_ticks: u64,
    /// Probability that a `Ready`'s messages wait for a separate flush event after its
    /// writes were issued: the window in which a crash can land between persist and send.
    pub sync_lag: f64,
    /// When a crash lands in that window, probability that the written-but-unsynced
    /// batch is lost too (it is never lost once its messages were sent).
    pub lose_unsynced: f64,
    /// Probability that a node whose write is unsynced (see `sync_lag`) crashes when the
    /// sync was due, in its place: power lost during the fsync. The window in which a
    /// leader that sent entries before its own write was durable (thesis §10.2.1) can
    /// lose them.
    pub crash_in_sync: f64,
}

/// The kinds of network partition the simulator can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    /// A random non-empty proper subset is cut off from the rest, both ways.
    RandomSplit,
    /// The current leader (or a random node) is cut off from everyone.
    IsolateLeader,
    /// Two halves cannot talk, but one "bridge" node talks to both.
    Bridge,
    /// One node can hear but not speak, or speak but not hear.
    OneWay,
}

impl PartitionKind {
    /// The kind's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::RandomSplit => "split",
            PartitionKind::IsolateLeader => "isolate",
            PartitionKind::Bridge => "bridge",
            PartitionKind::OneWay => "oneway",
        }
    }

    /// Every kind.
    pub const ALL: [PartitionKind; 4] = [
        PartitionKind::RandomSplit,
        PartitionKind::IsolateLeader,
        PartitionKind::Bridge,
        PartitionKind::OneWay,
    ];
}

/// How clients propose commands.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Mean number of proposal events per tick.
    pub proposals_per_tick: f64,
    /// Probability that a proposal goes to the leader (when there is one) rather than to
    /// a random node.
    pub leader_bias: f64,
    /// Commands per proposal event: 1 to this many.
    pub max_batch: u32,
    /// Mean number of linearizable reads (ReadIndex) per tick, sent to the leader or a
    /// random node like proposals.
    pub reads_per_tick: f64,
    /// Keys of the simulated store: with 0, a read depends on the whole state machine;
    /// with `k > 0`, command `c` writes key `c % k` and each read asks for one key, so
    /// that in lease mode a new leader can answer it under the lease it inherits when no
    /// limbo entry touches that key (LeaseGuard's inherited reads).
    pub keys: u32,
    /// Mean number of membership events per tick (docs/TESTING.md): add a learner,
    /// promote, remove, replace one voter by single-server steps, move the voters to an
    /// arbitrary set by joint consensus, transfer leadership. 0 (the default) keeps the
    /// cluster's configuration fixed and adds no spare nodes, so that runs are as they
    /// were before membership events existed.
    pub membership_per_tick: f64,
    /// With membership events on: nodes that start outside the configuration, empty,
    /// and may join (ids after the initial voters').
    pub spare_nodes: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: None,
            chaos_steps: 3000,
            swarm: true,
            core: CoreConfig::default(),
            network: NetworkConfig::default(),
            faults: FaultConfig::default(),
            workload: WorkloadConfig::default(),
            liveness_bound_ticks: 400,
            check_liveness: true,
            snapshot_every: 40,
            disabled_invariants: Vec::new(),
        }
    }
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            tick_us: 10_000,
            latency_min_us: 100,
            latency_max_us: 3_000,
            drift_ppm: 20_000,
            fsync_max_us: 2_000,
            lease_us: 0,
            clock_uncertainty_us: 0,
        }
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            drop: 0.03,
            duplicate: 0.03,
            delay: 0.03,
            reorder: 0.03,
            delay_max_ticks: 40,
            partition: 0.02,
            partition_kinds: PartitionKind::ALL.to_vec(),
            heal: 0.04,
            crash: 0.02,
            crash_leader_bias: 0.5,
            max_down_ticks: 40,
            sync_lag: 0.2,
            lose_unsynced: 0.5,
            crash_in_sync: 0.0,
        }
    }
}

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> Self {
        FaultConfig {
            drop: 0.0,
            duplicate: 0.0,
            delay: 0.0,
            reorder: 0.0,
            partition: 0.0,
            partition_kinds: Vec::new(),
            heal: 0.0,
            crash: 0.0,
            sync_lag: 0.0,
            lose_unsynced: 0.0,
            ..FaultConfig::default()
        }
    }
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            proposals_per_tick: 0.5,
            leader_bias: 0.8,
            max_batch: 3,
            reads_per_tick: 0.3,
            keys: 0,
            membership_per_tick: 0.0,
            spare_nodes: 2,
        }
    }
}

/// A setting that is out of range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid simulator configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl SimConfig {
    /// Checks that every setting is in range and says which one is not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError(s));
        if let Some(n) = self.nodes {
            if n == 0 || n > 63 {
                return bad(format!("nodes must be between 1 and 63, not {n}"));
            }
        }
        let f = &self.faults;
        let w = &self.workload;
        for (name, p) in [
            ("drop", f.drop),
            ("duplicate", f.duplicate),
            ("delay", f.delay),
            ("reorder", f.reorder),
            ("partition", f.partition),
            ("heal", f.heal),
            ("crash", f.crash),
            ("crash_leader_bias", f.crash_leader_bias),
            ("sync_lag", f.sync_lag),
            ("lose_unsynced", f.lose_unsynced),
            ("crash_in_sync", f.crash_in_sync),
            ("leader_bias", w.leader_bias),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} must be a probability in [0, 1], not {p}"));
            }
        }
        if !(0.0..=1000.0).contains(&w.proposals_per_tick) {
            return bad(format!(
                "proposals_per_tick must be in [0, 1000], not {}",
                w.proposals_per_tick
            ));
        }
        if !(0.0..=1000.0).contains(&w.reads_per_tick) {
            return bad(format!(
                "reads_per_tick must be in [0, 1000], not {}",
                w.reads_per_tick
            ));
        }
        if !(0.0..=1000.0).contains(&w.membership_per_tick) {
            return bad(format!(
                "membership_per_tick must be in [0, 1000], not {}",
                w.membership_per_tick
            ));
        }
        if self.total_nodes() > 63 {
            return bad(format!(
                "nodes and spare nodes together must be at most 63, not {}",
                self.total_nodes()
            ));
        }
        if w.max_batch == 0 {
            return bad("max_batch must be at least 1".into());
        }
        let n = &self.network;
        if n.tick_us == 0 {
            return bad("tick_us must be positive".into());
        }
        if n.latency_min_us > n.latency_max_us {
            return bad("latency_min_us exceeds latency_max_us".into());
        }
        if n.drift_ppm >= 500_000 {
            return bad("drift_ppm must be below 500000".into());
        }
        if self.liveness_bound_ticks == 0 {
            return bad("liveness_bound_ticks must be positive".into());
        }
        for name in &self.disabled_invariants {
            if crate::InvariantKind::from_name(name).is_none() {
                return bad(format!(
                    "unknown invariant {name:?} (known: {})",
                    crate::InvariantKind::ALL
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        self.core_config()
            .validate()
            .map_err(|e| ConfigError(format!("core: {e}")))
    }

    /// True when the run has membership events (and spare nodes).
    pub fn membership_on(&self) -> bool {
        self.workload.membership_per_tick > 0.0
    }

    /// Every simulated node: the initial voters (`nodes`, 3 when unset) and, with
    /// membership events on, the spare nodes.
    pub fn total_nodes(&self) -> usize {
        let spares = if self.membership_on() {
            self.workload.spare_nodes
        } else {
            0
        };
        self.nodes.unwrap_or(3) + spares
    }

    /// The cores' settings: `core`, with lease reads when `network.lease_us` is set.
    pub fn core_config(&self) -> CoreConfig {
        let mut core = self.core.clone();
        let n = &self.network;
        if n.lease_us > 0 {
            core.read_mode = ReadMode::Lease {
                duration: n.lease_us,
                uncertainty: n.clock_uncertainty_us,
                units_per_tick: n.tick_us,
            };
        }
        core
    }

    /// The concrete settings of one seed: the cluster size is fixed and, with `swarm`,
    /// the fault mix, latencies and core limits are drawn from `rng`. The result has
    /// `swarm` off and `nodes` set, so running it again reproduces the same run.
    pub fn resolve(&self, rng: &mut SharedRng) -> SimConfig {
        let mut c = self.clone();
        let nodes = match self.nodes {
            Some(n) => n,
            None => [3, 5, 7][rng.gen_range(0..3)],
        };
        c.nodes = Some(nodes);
        if !self.swarm {
            return c;
        }
        c.swarm = false;
        // Each probability is switched off, halved, kept or doubled.
        let scale = |p: f64, rng: &mut SharedRng| -> f64 {
            let k = [0.0, 0.5, 1.0, 2.0][rng.gen_range(0..4)];
            (p * k).min(1.0)
        };
        let f = &mut c.faults;
        f.drop = scale(f.drop, rng);
        f.duplicate = scale(f.duplicate, rng);
        f.delay = scale(f.delay, rng);
        f.reorder = scale(f.reorder, rng);
        f.partition = scale(f.partition, rng);
        f.heal = scale(f.heal, rng).max(f.partition / 4.0);
        // Sometimes a crash storm: crashes ten times as often.
        f.crash = if rng.gen_bool(0.2) {
            (f.crash * 10.0).min(1.0)
        } else {
            scale(f.crash, rng)
        };
        f.sync_lag = scale(f.sync_lag, rng);
        f.lose_unsynced = [0.0, f.lose_unsynced, 1.0][rng.gen_range(0..3)];
        f.max_down_ticks = [0, f.max_down_ticks / 4, f.max_down_ticks][rng.gen_range(0..3)];
        f.delay_max_ticks = [f.delay_max_ticks / 8, f.delay_max_ticks][rng.gen_range(0..2)].max(1);
        let kinds: Vec<PartitionKind> = f
            .partition_kinds
            .iter()
            .copied()
            .filter(|_| rng.gen_bool(0.7))
            .collect();
        if !kinds.is_empty() {
            f.partition_kinds = kinds;
        }
        let n = &mut c.network;
        n.latency_max_us = [
            n.latency_max_us / 4,
            n.latency_max_us,
            n.latency_max_us * 4,
            n.tick_us * 3,
        ][rng.gen_range(0..4)]
        .max(n.latency_min_us);
        let core = &mut c.core;
        core.heartbeat_ticks = rng.gen_range(1..=3);
        core.election_timeout_min = core.election_timeout_min.max(2 * core.heartbeat_ticks);
        core.election_timeout_max = core.election_timeout_min + [5, 10, 20][rng.gen_range(0..3)];
        core.max_msg_bytes = [24, 100, 1 << 20][rng.gen_range(0..3)];
        core.max_inflight_msgs = [1, 4, 64][rng.gen_range(0..3)];
        core.snapshot_chunk_bytes = [5, 16, core.snapshot_chunk_bytes][rng.gen_range(0..3)];
        c.snapshot_every = [0, c.snapshot_every / 4, c.snapshot_every][rng.gen_range(0..3)];
        let w = &mut c.workload;
        w.proposals_per_tick =
            [0.1, w.proposals_per_tick, 2.0 * w.proposals_per_tick][rng.gen_range(0..3)];
        // Half the seeds without reads: a read makes a new leader commit an entry of its
        // term at once (the no-op), which hides the old-term commit bugs of Figure 8.
        w.reads_per_tick =
            [0.0, 0.0, w.reads_per_tick, 4.0 * w.reads_per_tick][rng.gen_range(0..4)];
        // Pre-vote and check-quorum (on by default) are each off in one seed of four, so
        // that the classic election keeps being explored too. Drawn last, so that the
        // draws above are what they were before these settings existed.
        let core = &mut c.core;
        core.pre_vote = core.pre_vote && rng.gen_bool(0.75);
        core.check_quorum = core.check_quorum && rng.gen_bool(0.75);
        // The leader's parallel write (off by default, so that fixed-seed runs stay as
        // they were) is on in half the seeds.
        core.leader_parallel_write = core.leader_parallel_write || rng.gen_bool(0.5);
        c.faults.crash_in_sync = [c.faults.crash_in_sync, 0.05, 0.3][rng.gen_range(0..3)];
        // Lease mode: timers are not trusted (LeaseGuard's safety does not rest on them),
        // so some seeds tick far off true time, and some clocks are exact. Drawn only in
        // lease mode, after everything else, so ReadIndex seeds stay as they were.
        let n = &mut c.network;
        if n.lease_us > 0 {
            n.drift_ppm = [n.drift_ppm, 200_000, 450_000][rng.gen_range(0..3)];
            n.clock_uncertainty_us =
                [0, n.clock_uncertainty_us / 2, n.clock_uncertainty_us][rng.gen_range(0..3)];
            // The configured lease, or the longest the election timeout allows.
            let timeout = u64::from(c.core.election_timeout_min) * n.tick_us;
            let longest = timeout.saturating_sub(n.clock_uncertainty_us + 1);
            if rng.gen_bool(0.5) && longest > n.clock_uncertainty_us {
                n.lease_us = longest;
            }
            // Keyed reads (inherited leases) in two seeds of three.
            c.workload.keys = [c.workload.keys, 2, 8][rng.gen_range(0..3)];
        }
        // Membership events: on in two seeds of three when asked for (at the rate asked or
        // four times it), off in the others. Drawn only when asked for, after everything
        // else, so that seeds without them run as they did before.
        let w = &mut c.workload;
        if w.membership_per_tick > 0.0 {
            w.membership_per_tick =
                [0.0, w.membership_per_tick, 4.0 * w.membership_per_tick][rng.gen_range(0..3)];
            // A removed server that never learns of its removal campaigns with ever
            // higher terms: without pre-vote or leader stickiness it deposes every leader
            // (docs/MEMBERSHIP.md), so membership seeds keep at least pre-vote.
            if w.membership_per_tick > 0.0 && !c.core.check_quorum {
                c.core.pre_vote = true;
            }
        }
        c
    }

    /// Sets one setting by name, as `section.field` (`faults.crash`, `network.latency_max_us`,
    /// `core.max_inflight_msgs`, `core.pre_vote`, `workload.proposals_per_tick`) or a top-level field
    /// (`chaos_steps`, `snapshot_every`, `liveness_bound_ticks`). With `swarm`, several of
    /// these are only the base the per-seed draw scales or replaces.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| ConfigError(format!("{key}: cannot parse {v:?}")))
        }
        let f = &mut self.faults;
        let n = &mut self.network;
        let c = &mut self.core;
        let w = &mut self.workload;
        match key {
            "chaos_steps" => self.chaos_steps = num(key, value)?,
            "snapshot_every" => self.snapshot_every = num(key, value)?,
            "liveness_bound_ticks" => self.liveness_bound_ticks = num(key, value)?,
            "faults.drop" => f.drop = num(key, value)?,
            "faults.duplicate" => f.duplicate = num(key, value)?,
            "faults.delay" => f.delay = num(key, value)?,
            "faults.reorder" => f.reorder = num(key, value)?,
            "faults.delay_max_ticks" => f.delay_max_ticks = num(key, value)?,
            "faults.partition" => f.partition = num(key, value)?,
            "faults.heal" => f.heal = num(key, value)?,
            "faults.crash" => f.crash = num(key, value)?,
            "faults.crash_leader_bias" => f.crash_leader_bias = num(key, value)?,
            "faults.max_down_ticks" => f.max_down_ticks = num(key, value)?,
            "faults.sync_lag" => f.sync_lag = num(key, value)?,
            "faults.lose_unsynced" => f.lose_unsynced = num(key, value)?,
            "faults.crash_in_sync" => f.crash_in_sync = num(key, value)?,
            "network.tick_us" => n.tick_us = num(key, value)?,
            "network.latency_min_us" => n.latency_min_us = num(key, value)?,
            "network.latency_max_us" => n.latency_max_us = num(key, value)?,
            "network.drift_ppm" => n.drift_ppm = num(key, value)?,
            "network.fsync_max_us" => n.fsync_max_us = num(key, value)?,
            "network.lease_us" => n.lease_us = num(key, value)?,
            "network.clock_uncertainty_us" => n.clock_uncertainty_us = num(key, value)?,
            "core.election_timeout_min" => c.election_timeout_min = num(key, value)?,
            "core.election_timeout_max" => c.election_timeout_max = num(key, value)?,
            "core.heartbeat_ticks" => c.heartbeat_ticks = num(key, value)?,
            "core.max_msg_bytes" => c.max_msg_bytes = num(key, value)?,
            "core.max_inflight_msgs" => c.max_inflight_msgs = num(key, value)?,
            "core.max_inflight_bytes" => c.max_inflight_bytes = num(key, value)?,
            "core.snapshot_chunk_bytes" => c.snapshot_chunk_bytes = num(key, value)?,
            "core.pre_vote" => c.pre_vote = num(key, value)?,
            "core.check_quorum" => c.check_quorum = num(key, value)?,
            "core.leader_parallel_write" => c.leader_parallel_write = num(key, value)?,
            "workload.proposals_per_tick" => w.proposals_per_tick = num(key, value)?,
            "workload.leader_bias" => w.leader_bias = num(key, value)?,
            "workload.max_batch" => w.max_batch = num(key, value)?,
            "workload.reads_per_tick" => w.reads_per_tick = num(key, value)?,
            "workload.keys" => w.keys = num(key, value)?,
            "workload.membership_per_tick" => w.membership_per_tick = num(key, value)?,
            "workload.spare_nodes" => w.spare_nodes = num(key, value)?,
            "faults.partition_kinds" => {
                let mut kinds = Vec::new();
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match PartitionKind::ALL.into_iter().find(|k| k.name() == name) {
                        Some(k) => kinds.push(k),
                        None => {
                            return Err(ConfigError(format!(
                                "unknown partition kind {name:?} (known: split, isolate, bridge, oneway)"
                            )))
                        }
                    }
                }
                f.partition_kinds = kinds;
            }
            _ => return Err(ConfigError(format!("unknown setting {key:?}"))),
        }
        Ok(())
    }

    /// Command-line flags of `raft-sim` that reproduce exactly these settings (with
    /// `--no-swarm`): what a shrunk run prints so that it can be replayed.
    pub fn cli_flags(&self) -> String {
        let f = &self.faults;
        let n = &self.network;
        let c = &self.core;
        let w = &self.workload;
        let mut out = String::from("--no-swarm");
        if let Some(nodes) = self.nodes {
            out.push_str(&format!(" --nodes {nodes}"));
        }
        out.push_str(&format!(" --steps {}", self.chaos_steps));
        let kinds: Vec<&str> = f.partition_kinds.iter().map(|k| k.name()).collect();
        let sets: Vec<(&str, String)> = vec![
            ("snapshot_every", self.snapshot_every.to_string()),
            (
                "liveness_bound_ticks",
                self.liveness_bound_ticks.to_string(),
            ),
            ("faults.drop", f.drop.to_string()),
            ("faults.duplicate", f.duplicate.to_string()),
            ("faults.delay", f.delay.to_string()),
            ("faults.reorder", f.reorder.to_string()),
            ("faults.delay_max_ticks", f.delay_max_ticks.to_string()),
            ("faults.partition", f.partition.to_string()),
            ("faults.partition_kinds", kinds.join(",")),
            ("faults.heal", f.heal.to_string()),
            ("faults.crash", f.crash.to_string()),
            ("faults.crash_leader_bias", f.crash_leader_bias.to_string()),
            ("faults.max_down_ticks", f.max_down_ticks.to_string()),
            ("faults.sync_lag", f.sync_lag.to_string()),
            ("faults.lose_unsynced", f.lose_unsynced.to_string()),
            ("faults.crash_in_sync", f.crash_in_sync.to_string()),
            ("network.tick_us", n.tick_us.to_string()),
            ("network.latency_min_us", n.latency_min_us.to_string()),
            ("network.latency_max_us", n.latency_max_us.to_string()),
            ("network.drift_ppm", n.drift_ppm.to_string()),
            ("network.fsync_max_us", n.fsync_max_us.to_string()),
            ("network.lease_us", n.lease_us.to_string()),
            (
                "network.clock_uncertainty_us",
                n.clock_uncertainty_us.to_string(),
            ),
            (
                "core.election_timeout_min",
                c.election_timeout_min.to_string(),
            ),
            (
                "core.election_timeout_max",
                c.election_timeout_max.to_string(),
            ),
            ("core.heartbeat_ticks", c.heartbeat_ticks.to_string()),
            ("core.max_msg_bytes", c.max_msg_bytes.to_string()),
            ("core.max_inflight_msgs", c.max_inflight_msgs.to_string()),
            ("core.max_inflight_bytes", c.max_inflight_bytes.to_string()),
            (
                "core.snapshot_chunk_bytes",
                c.snapshot_chunk_bytes.to_string(),
            ),
            (
                "workload.proposals_per_tick",
                w.proposals_per_tick.to_string(),
            ),
            ("workload.leader_bias", w.leader_bias.to_string()),
            ("workload.max_batch", w.max_batch.to_string()),
            ("workload.reads_per_tick", w.reads_per_tick.to_string()),
            ("workload.keys", w.keys.to_string()),
            (
                "workload.membership_per_tick",
                w.membership_per_tick.to_string(),
            ),
            ("workload.spare_nodes", w.spare_nodes.to_string()),
        ];
        for (k, v) in sets {
            out.push_str(&format!(" --set {k}={v}"));
        }
        if !self.check_liveness {
            out.push_str(" --no-liveness");
        }
        for d in &self.disabled_invariants {
            out.push_str(&format!(" --disable {d}"));
        }
        out
    }

    /// True unless `kind` is listed in `disabled_invariants`.
    pub fn checks(&self, kind: crate::InvariantKind) -> bool {
        !self.disabled_invariants.iter().any(|n| n == kind.name())
    }
}

impl fmt::Display for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = &self.faults;
        let n = &self.network;
        let c = &self.core;
        let w = &self.workload;
        writeln!(
            f,
            "nodes={} chaos_steps={} swarm={} liveness_bound={} ticks",
            self.nodes.map_or("3|5|7".to_string(), |n| n.to_string()),
            self.chaos_steps,
            self.swarm,
            self.liveness_bound_ticks
        )?;
        writeln!(
            f,
            "core: election {}..={} ticks, heartbeat {} ticks, max_msg_bytes {}, max_inflight_msgs {}, pre_vote {}, check_quorum {}, leader_parallel_write {}",
            c.election_timeout_min,
            c.election_timeout_max,
            c.heartbeat_ticks,
            c.max_msg_bytes,
            c.max_inflight_msgs,
            c.pre_vote,
            c.check_quorum,
            c.leader_parallel_write
        )?;
        writeln!(
            f,
            "network: tick {}us, latency {}..={}us, drift {}ppm, fsync <= {}us",
            n.tick_us, n.latency_min_us, n.latency_max_us, n.drift_ppm, n.fsync_max_us
        )?;
        if n.lease_us > 0 {
            writeln!(
                f,
                "reads: lease {}us, clocks within {}us of true time",
                n.lease_us, n.clock_uncertainty_us
            )?;
        }
        writeln!(
            f,
            "messages: drop {:.3} dup {:.3} delay {:.3} (<= {} ticks) reorder {:.3}",
            x.drop, x.duplicate, x.delay, x.delay_max_ticks, x.reorder
        )?;
        writeln!(
            f,
            "per tick: partition {:.3} {:?} heal {:.3} crash {:.3} (leader bias {:.2}, down <= {} ticks); sync_lag {:.2} lose_unsynced {:.2} crash_in_sync {:.2}",
            x.partition,
            x.partition_kinds,
            x.heal,
            x.crash,
            x.crash_leader_bias,
            x.max_down_ticks,
            x.sync_lag,
            x.lose_unsynced,
            x.crash_in_sync
        )?;
        write!(
            f,
            "workload: {:.2} proposals/tick, {:.2} reads/tick ({}), leader bias {:.2}, batch <= {}; snapshot every {} applied entries (chunks of {} bytes)",
            w.proposals_per_tick,
            w.reads_per_tick,
            match w.keys {
                0 => "whole state".to_string(),
                k => format!("one of {k} keys"),
            },
            w.leader_bias,
            w.max_batch,
            self.snapshot_every,
            c.snapshot_chunk_bytes
        )?;
        if self.membership_on() {
            write!(
                f,
                "\nmembership: {:.3} events/tick, {} spare node(s)",
                w.membership_per_tick, w.spare_nodes
            )?;
        }
        if !self.disabled_invariants.is_empty() {
            write!(f, "\ndisabled invariants: {:?}", self.disabled_invariants)?;
        }
        Ok(())
    }
}

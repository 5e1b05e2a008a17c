//! # raft-sim
//!
//! A deterministic simulator for [`raft_core`]: N cores (3, 5 or 7) in one thread, a
//! virtual clock, and one seeded ChaCha8 generator from which everything random is drawn
//! — fault schedules, latencies, client proposals and the cores' own election timeouts.
//! The same seed therefore gives the same run, byte for byte.
//!
//! Each [`Simulator::step`] delivers one [`Event`]: a tick on one node, a message, a
//! client proposal, or a cluster fault (partition, heal, crash, restart). Message faults
//! (drop, delay, duplicate, reorder) strike messages as they are sent. After every step
//! the [`Checker`] runs every [`Invariant`] (see [`InvariantKind`]) and the run stops at
//! the first [`Violation`]. After `chaos_steps` steps the network heals, every node
//! restarts and faults stop; a leader must then commit a proposal on every node within
//! [`SimConfig::liveness_bound_ticks`] ticks.
//!
//! ```
//! use raft_sim::{run_seed, SimConfig, TraceMode};
//! let report = run_seed(7, &SimConfig::default(), TraceMode::Ring(100)).unwrap();
//! assert!(report.stats.counts.steps > 0);
//! if report.violation().is_some() {
//!     // The seed, the violation, the settings, the cluster and the last events.
//!     println!("{}", report.failure_report(60));
//! }
//! ```
//!
//! The driver follows raft-core's contract: for each `Ready` it persists (hard state,
//! truncation, entries) to the node's [`Storage`], then sends the messages, then applies
//! the committed entries. A crash loses everything in memory; with
//! [`FaultConfig::lose_unsynced`] it also loses a batch that was written but whose
//! messages were not yet sent (a crash between persist and send).

#![warn(missing_docs)]

mod config;
mod event;
mod invariant;
mod network;
mod rng;
mod runner;
mod sim;
mod storage;
mod timeline;
mod trace;
mod world;

pub use crate::config::{
    ConfigError, FaultConfig, Micros, NetworkConfig, PartitionKind, SimConfig, WorkloadConfig,
};
pub use crate::event::{Event, EventQueue, Fault, Partition};
pub use crate::invariant::{Checker, Invariant, InvariantKind, Observation, Violation};
pub use crate::network::Network;
pub use crate::rng::SharedRng;
pub use crate::runner::{run_seed, shrink, SeedReport, Summary};
pub use crate::sim::{decode_cmd, encode_cmd, Counters, FaultCounts, Outcome, RunStats, Simulator};
pub use crate::storage::Storage;
pub use crate::timeline::{record_timeline, timeline_html, timeline_svg};
pub use crate::trace::{
    Fate, LostReason, MembershipOp, MsgSummary, NodeState, ProposeResult, ReadStage, ReadySummary,
    Trace, TraceKind, TraceMode, TraceRecord,
};
pub use crate::world::{
    decode_snapshot, digest_step, encode_snapshot, show_membership, Chosen, Core, Ledger, Recorded,
    SimNode, World, DIGEST_INIT,
};

/// The raft-core bugs planted in this build by `--cfg raft_bug="NAME"` (empty in a normal
/// build; only `check-planted-bugs.sh` sets it).
pub fn planted_bugs() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(raft_bug = "commit-old-term") {
        v.push("commit-old-term");
    }
    if cfg!(raft_bug = "double-vote") {
        v.push("double-vote");
    }
    if cfg!(raft_bug = "no-election-restriction") {
        v.push("no-election-restriction");
    }
    if cfg!(raft_bug = "truncate-on-stale-append") {
        v.push("truncate-on-stale-append");
    }
    if cfg!(raft_bug = "forget-vote") {
        v.push("forget-vote");
    }
    if cfg!(raft_bug = "install-stale-snapshot") {
        v.push("install-stale-snapshot");
    }
    if cfg!(raft_bug = "pre-vote-raises-term") {
        v.push("pre-vote-raises-term");
    }
    if cfg!(raft_bug = "ignore-check-quorum") {
        v.push("ignore-check-quorum");
    }
    if cfg!(raft_bug = "read-without-heartbeat") {
        v.push("read-without-heartbeat");
    }
    if cfg!(raft_bug = "read-before-noop") {
        v.push("read-before-noop");
    }
    if cfg!(raft_bug = "leader-counts-unpersisted") {
        v.push("leader-counts-unpersisted");
    }
    if cfg!(raft_bug = "lease-ignores-uncertainty") {
        v.push("lease-ignores-uncertainty");
    }
    if cfg!(raft_bug = "no-deferred-commit") {
        v.push("no-deferred-commit");
    }
    if cfg!(raft_bug = "inherited-read-in-limbo") {
        v.push("inherited-read-in-limbo");
    }
    if cfg!(raft_bug = "lease-longer-than-timeout") {
        v.push("lease-longer-than-timeout");
    }
    if cfg!(raft_bug = "joint-new-majority-only") {
        v.push("joint-new-majority-only");
    }
    if cfg!(raft_bug = "config-on-commit") {
        v.push("config-on-commit");
    }
    if cfg!(raft_bug = "learner-votes") {
        v.push("learner-votes");
    }
    v
}

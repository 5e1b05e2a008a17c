//! Invariants about traffic rather than state: what the safety invariants cannot see. A
//! leader that sends every snapshot chunk a hundred times, or floods a follower past its
//! window, is still correct, and useless over a real network.

use super::{id, Invariant, InvariantKind, Observation};
use crate::config::SimConfig;
use crate::world::World;
use raft_core::{Index, Message, Term};
use std::collections::BTreeMap;

/// Every leader's accounting of messages in flight to each follower stays within
/// `max_inflight_msgs`.
pub(super) struct FlowWindow {
    window: usize,
}

impl FlowWindow {
    pub(super) fn new(cfg: &SimConfig) -> Self {
        FlowWindow {
            window: cfg.core.max_inflight_msgs,
        }
    }
}

impl Invariant for FlowWindow {
    fn name(&self) -> &'static str {
        InvariantKind::FlowWindow.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let Observation::Stepped { node } = *obs else {
            return Ok(());
        };
        let Some(core) = world.nodes[node].core().filter(|c| c.is_leader()) else {
            return Ok(());
        };
        for peer in core.peers() {
            if let Some(pr) = core.progress(*peer) {
                if pr.inflight_count() > self.window {
                    return Err(format!(
                        "n{} has {} messages in flight to n{peer}, window {}",
                        id(node),
                        pr.inflight_count(),
                        self.window
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One transfer: a leader, in one term, sending one snapshot to one follower.
struct Transfer {
    chunks: u64,
    /// Virtual time of the first chunk.
    started_us: u64,
    /// Faults on the pair's links (and crashes of either node) when the transfer began.
    trouble_at_start: u64,
}

/// Chunks sent per transfer are bounded by `2 × size in chunks + 2`, plus, for every
/// fault on the link between the two nodes (a message dropped, duplicated, delayed,
/// reordered, lost to a partition, or a crash of either node), one window and one chunk
/// more, plus one chunk per two heartbeat intervals the transfer lasts (the leader
/// resends the first unconfirmed chunk after two silent intervals, which a round trip
/// longer than that produces without any fault). Before the fix, every heartbeat started
/// another whole stream of chunks.
pub(super) struct SnapshotTraffic {
    chunk: u64,
    /// Two heartbeat intervals, in virtual microseconds (with the clocks' drift).
    resend_period_us: u64,
    window: u64,
    /// Faults so far per unordered pair of nodes (lower index first).
    trouble: BTreeMap<(usize, usize), u64>,
    transfers: BTreeMap<(usize, usize, Term, Index), Transfer>,
    nodes: usize,
}

impl SnapshotTraffic {
    pub(super) fn new(cfg: &SimConfig, nodes: usize) -> Self {
        SnapshotTraffic {
            chunk: cfg.core.snapshot_chunk_bytes.max(1) as u64,
            resend_period_us: (2 * u64::from(cfg.core.heartbeat_ticks) * cfg.network.tick_us)
                .saturating_mul(95)
                / 100,
            window: cfg.core.max_inflight_msgs as u64,
            trouble: BTreeMap::new(),
            transfers: BTreeMap::new(),
            nodes,
        }
    }

    fn pair(a: usize, b: usize) -> (usize, usize) {
        (a.min(b), a.max(b))
    }

    fn disturb(&mut self, a: usize, b: usize) {
        *self.trouble.entry(Self::pair(a, b)).or_default() += 1;
    }
}

impl Invariant for SnapshotTraffic {
    fn name(&self) -> &'static str {
        InvariantKind::SnapshotTraffic.name()
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::Crashed { node, .. } | Observation::Restarted { node } => {
                for other in 0..self.nodes {
                    if other != node {
                        self.disturb(node, other);
                    }
                }
                Ok(())
            }
            Observation::Lost { env } => {
                self.disturb(env.from as usize - 1, env.to as usize - 1);
                Ok(())
            }
            Observation::Sent {
                node,
                env,
                disturbed,
            } => {
                let to = env.to as usize - 1;
                // A fault on this very message counts for the transfer it belongs to, even
                // when the message is the transfer's first.
                if disturbed {
                    self.disturb(node, to);
                }
                let Message::InstallSnapshot { term, meta, .. } = &env.msg else {
                    return Ok(());
                };
                let Some(core) = world.nodes[node].core() else {
                    return Ok(());
                };
                let len = core.snapshot().data.len() as u64;
                let size_in_chunks = len.div_ceil(self.chunk).max(1);
                let trouble = self
                    .trouble
                    .get(&Self::pair(node, to))
                    .copied()
                    .unwrap_or(0);
                let t = self
                    .transfers
                    .entry((node, to, *term, meta.index))
                    .or_insert(Transfer {
                        chunks: 0,
                        started_us: world.now,
                        trouble_at_start: trouble - u64::from(disturbed),
                    });
                t.chunks += 1;
                let faults = trouble - t.trouble_at_start;
                let resends = (world.now - t.started_us) / self.resend_period_us.max(1) + 1;
                let allowed = 2 * size_in_chunks + 2 + faults * (self.window + 1) + resends;
                if t.chunks > allowed {
                    return Err(format!(
                        "n{} sent {} chunks of its {size_in_chunks}-chunk snapshot {}@{} to n{} \
                         in term {term}, with {faults} faults on their link, in {} ms \
                         (allowed {allowed})",
                        id(node),
                        t.chunks,
                        meta.index,
                        meta.term,
                        id(to),
                        (world.now - t.started_us) / 1000
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

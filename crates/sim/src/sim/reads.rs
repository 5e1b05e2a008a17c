//! Simulated clients' linearizable reads (ReadIndex, or lease reads in lease mode): issued to the leader or a random
//! node, answered by the node's state machine once it has applied the read index, and
//! checked by the `linearizable-read` invariant against the committed log.

use super::{Phase, Simulator};
use crate::config::Micros;
use crate::event::Event;
use crate::invariant::{Observation, Violation};
use crate::trace::{ReadStage, TraceKind};
use crate::world::ReadKey;
use raft_core::{FailedRead, NodeId, ReadState};
use rand::Rng;

impl Simulator {
    pub(super) fn schedule_read(&mut self) {
        let rate = self.cfg.workload.reads_per_tick;
        if rate <= 0.0 {
            return;
        }
        let mean = ((self.cfg.network.tick_us as f64) / rate).max(1.0) as Micros;
        let at = self.world.now + self.rng.gen_range(1..=2 * mean);
        self.queue.push(at, Event::Read);
    }

    /// A client asks one node for a read.
    pub(super) fn read(&mut self) -> Result<(), Violation> {
        if self.phase != Phase::Chaos {
            return Ok(());
        }
        self.schedule_read();
        let n = self.world.nodes.len();
        let bias = self.cfg.workload.leader_bias;
        let node = match self.current_leader() {
            Some(l) if self.chance(bias) => l,
            _ => self.rng.gen_range(0..n),
        };
        let ctx = self.next_read;
        self.next_read += 1;
        self.stats.counts.reads += 1;
        let keys = u64::from(self.cfg.workload.keys);
        let key = (keys > 0).then(|| ReadKey {
            key: self.rng.gen_range(0..keys),
            keys,
        });
        self.flush_unsent(node)?;
        let max = self.world.ledger.max_index();
        let must_see = key.map_or(max, |k| self.world.ledger.last_write(k, max));
        self.set_clock(node);
        self.observe(Observation::ReadStarted { node, ctx, key })?;
        let (leased, asked) = match self.world.nodes[node].core.as_mut() {
            // A keyed read is answered at once under any lease that covers its key
            // (inherited ones included); the others under the leader's own lease, inside
            // `read_index`.
            Some(core) => match key.and_then(|k| core.lease_read_for(|data| k.touches(data))) {
                Some(index) => {
                    if core.limbo().is_some() {
                        self.stats.counts.reads_inherited += 1;
                    }
                    (Some(index), true)
                }
                None => {
                    let own = core.lease_read().is_some_and(|l| l.limbo.is_none());
                    if own && key.is_none() {
                        self.stats.counts.reads_leased += 1;
                    }
                    (None, core.read_index(ctx).is_ok())
                }
            },
            None => (None, false),
        };
        if leased.is_some() {
            self.stats.counts.reads_leased += 1;
        }
        let stage = if asked {
            ReadStage::Asked { must_see }
        } else {
            ReadStage::Refused
        };
        self.record(TraceKind::Read {
            node: node as NodeId + 1,
            ctx,
            stage,
        });
        if !asked {
            return self.observe(Observation::ReadFailed { ctx });
        }
        if let Some(index) = leased {
            self.record(TraceKind::Read {
                node: node as NodeId + 1,
                ctx,
                stage: ReadStage::Confirmed { index },
            });
            self.world.nodes[node].reads.push((ctx, index));
            return self.answer_reads(node);
        }
        self.after_input(node)
    }

    /// Takes the read outcomes of one `Ready` of `node`.
    pub(super) fn take_reads(
        &mut self,
        node: usize,
        confirmed: Vec<ReadState>,
        failed: Vec<FailedRead>,
    ) -> Result<(), Violation> {
        for f in failed {
            self.record(TraceKind::Read {
                node: node as NodeId + 1,
                ctx: f.ctx,
                stage: ReadStage::Failed,
            });
            self.observe(Observation::ReadFailed { ctx: f.ctx })?;
        }
        for r in confirmed {
            self.record(TraceKind::Read {
                node: node as NodeId + 1,
                ctx: r.ctx,
                stage: ReadStage::Confirmed { index: r.index },
            });
            self.world.nodes[node].reads.push((r.ctx, r.index));
        }
        Ok(())
    }

    /// Answers the reads of `node` whose read index its state machine has reached.
    pub(super) fn answer_reads(&mut self, node: usize) -> Result<(), Violation> {
        let nd = &mut self.world.nodes[node];
        if nd.reads.is_empty() {
            return Ok(());
        }
        let applied = nd.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut nd.reads)
            .into_iter()
            .partition(|(_, index)| *index <= applied);
        nd.reads = waiting;
        for (ctx, _) in ready {
            self.stats.counts.reads_answered += 1;
            self.record(TraceKind::Read {
                node: node as NodeId + 1,
                ctx,
                stage: ReadStage::Answered { applied },
            });
            self.observe(Observation::ReadAnswered { node, ctx, applied })?;
        }
        Ok(())
    }

    /// `node` crashed: its reads are never answered.
    pub(super) fn drop_reads(&mut self, node: usize) -> Result<(), Violation> {
        for (ctx, _) in std::mem::take(&mut self.world.nodes[node].reads) {
            self.observe(Observation::ReadFailed { ctx })?;
        }
        Ok(())
    }
}

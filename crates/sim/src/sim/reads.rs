//! Simulated clients' linearizable reads (ReadIndex, or lease reads in lease mode): issued to the leader or a random
//! node, answered by the node's state machine once it has applied the read index, and
//! checked by the `linearizable-read` invariant against the committed log.

use super::{Phase, Simulator};
use crate::event::Event;
use crate::invariant::{Observation, Violation};
use crate::trace::{ReadStage, TraceKind};
use crate::world::ReadKey;
use raft_core::{FailedRead, NodeId, ReadState};
use rand::Rng;

impl Simulator {
    pub(super) fn schedule_read(&mut self) {
        self.schedule_at_rate(self.cfg.workload.reads_per_tick, Event::Read);
    }

    /// A client asks one node for a read.
    pub(super) fn read(&mut self) -> Result<(), Violation> {
        if self.phase != Phase::Chaos {
            return Ok(());
        }
        self.schedule_read();
        let node = self.client_target();
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
        // A keyed read is answered at once under any lease that covers its key (inherited
        // ones included); the others go through `read_index`, which answers under the
        // leader's own lease without a round.
        let (leased, asked, under_lease, inherited) = match self.world.nodes[node].core.as_mut() {
            Some(core) => {
                let leased = key.and_then(|k| core.lease_read_for(|data| k.touches(data)));
                let inherited = leased.is_some() && core.limbo().is_some();
                let own = core.lease_read().is_some_and(|l| l.limbo.is_none());
                let asked = leased.is_some() || core.read_index(ctx).is_ok();
                (leased, asked, leased.is_some() || own, inherited)
            }
            None => (None, false, false, false),
        };
        self.stats.counts.reads_leased += u64::from(under_lease);
        self.stats.counts.reads_inherited += u64::from(inherited);
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

//! Reads (ReadIndex, leases) against the committed log, at each read's real-time interval.

use super::{id, Invariant, Observation};
use crate::world::World;
use raft_core::Index;
use std::collections::BTreeMap;

/// A read must reflect every write committed before it began, and nothing that was not
/// committed by the time it was answered. "Committed" is what the ledger knows: some
/// node's commit index covered it (the weakest notion a client can have observed: a
/// write acknowledged to a client was committed on the node that acknowledged it).
/// The state a read returns is the answering node's state machine at its applied index,
/// whose content `state-machine-safety` already ties to the ledger; here only the index
/// is checked against the interval. A read of one key must see only the writes of that
/// key committed before it began: an inherited lease read may be answered from before a
/// limbo entry that writes another key.
#[derive(Default)]
pub(crate) struct LinearizableRead {
    /// Read id -> highest index known committed when it began.
    started: BTreeMap<u64, Index>,
}

impl Invariant for LinearizableRead {
    fn name(&self) -> &'static str {
        "linearizable-read"
    }

    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        match *obs {
            Observation::ReadStarted { ctx, key, .. } => {
                let max = world.ledger.max_index();
                let must_see = key.map_or(max, |k| world.ledger.last_write(k, max));
                self.started.insert(ctx, must_see);
            }
            Observation::ReadAnswered { node, ctx, applied } => {
                let Some(must_see) = self.started.remove(&ctx) else {
                    return Err(format!("n{} answered read r{ctx}, never asked", id(node)));
                };
                if applied < must_see {
                    return Err(format!(
                        "n{} answered read r{ctx} from its state at index {applied}, but \
                         index {must_see} (which writes what it reads) was committed before \
                         the read began (stale read)",
                        id(node)
                    ));
                }
                let committed = world.ledger.max_index();
                if applied > committed {
                    return Err(format!(
                        "n{} answered read r{ctx} from index {applied}, beyond the highest \
                         committed index {committed}",
                        id(node)
                    ));
                }
            }
            Observation::ReadFailed { ctx } => {
                self.started.remove(&ctx);
            }
            _ => {}
        }
        Ok(())
    }
}

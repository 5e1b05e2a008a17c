//! The driver's hand-over while a write is unsynced, as the runtime does it: the part of
//! a `Ready` that needs no write (`RaftCore::take_ready_while_writing`) is carried out at
//! once, and entries the node already holds durable are applied without waiting for the
//! write in flight. Both must keep the service's order: nothing is applied past what the
//! unsynced write holds back (a snapshot to restore, or entries it makes durable).

use super::Simulator;
use crate::invariant::Violation;
use raft_core::Entry;

impl Simulator {
    /// With a write unsynced (leader parallel write only: otherwise the driver syncs
    /// before each input), takes and carries out what needs no write.
    pub(super) fn while_writing(&mut self, node: usize) -> Result<(), Violation> {
        let nd = &mut self.world.nodes[node];
        let holds_applies = nd
            .unsent
            .as_ref()
            .is_some_and(|u| u.restore.is_some() || !u.committed.is_empty());
        let room = if holds_applies { 0 } else { usize::MAX };
        let ready = match nd.core.as_mut() {
            Some(core) if core.has_ready_while_writing() => core.take_ready_while_writing(room),
            _ => return Ok(()),
        };
        self.take_reads(node, ready.read_states, ready.failed_reads)?;
        for env in ready.early_messages {
            self.send(node, env)?;
        }
        self.apply_durable(node, ready.committed)
    }

    /// Applies entries committed and durable on this node before its unsynced write ends.
    pub(super) fn apply_durable(
        &mut self,
        node: usize,
        committed: Vec<Entry>,
    ) -> Result<(), Violation> {
        let Some(last) = committed.last().map(|e| e.index) else {
            return Ok(());
        };
        // Durable here and committed: decided, whatever happens to the unsynced write
        // (commits past it are recorded when that write syncs, as a leader alone may
        // count what it holds).
        self.record_commits_through(node, last)?;
        for entry in committed {
            self.apply(node, entry)?;
        }
        self.maybe_schedule_compaction(node);
        self.answer_reads(node)
    }
}

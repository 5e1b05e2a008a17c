//! Every node's log at an instant, rebuilt from its log writes ([`LogOp`]s) as the page's
//! log view does, and the instants where a log was repaired.

use crate::{At, LogOp, NodeId, Run, StateChange};

/// One node's log at an instant: the snapshot it starts after and its entries' terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogAt {
    /// Last index the snapshot covers (0: none).
    pub base: u64,
    /// Term of that entry.
    pub base_term: u64,
    /// Terms of entries `base + 1`, `base + 2`, ….
    pub terms: Vec<u64>,
}

impl LogAt {
    /// The last index.
    pub fn last_index(&self) -> u64 {
        self.base + self.terms.len() as u64
    }

    /// Applies one write (the same rules as the page's script).
    fn apply(&mut self, op: &LogOp) {
        if op.reset {
            let (b, t) = op.snapshot.unwrap_or((0, 0));
            *self = LogAt {
                base: b,
                base_term: t,
                terms: op.terms.clone(),
            };
            return;
        }
        if op.truncate_from > 0 {
            self.keep_before(op.truncate_from);
        }
        if let Some((si, st)) = op.snapshot {
            let k = si.saturating_sub(self.base) as usize;
            self.terms = if si > self.base && k <= self.terms.len() && self.terms[k - 1] == st {
                self.terms[k..].to_vec()
            } else {
                Vec::new()
            };
            self.base = si;
            self.base_term = st;
        }
        if !op.terms.is_empty() {
            self.keep_before(op.first);
            self.terms.extend_from_slice(&op.terms);
        }
    }

    /// Removes the entries from `index` on.
    fn keep_before(&mut self, index: u64) {
        let keep = index.saturating_sub(1).saturating_sub(self.base) as usize;
        self.terms.truncate(keep);
    }
}

/// `node`'s log at virtual time `t_us` (every write made at or before it).
pub fn log_at(run: &Run, node: NodeId, t_us: u64) -> LogAt {
    let mut log = LogAt::default();
    for op in run
        .logs
        .iter()
        .filter(|o| o.node == node && o.at.time_us <= t_us)
    {
        log.apply(op);
    }
    log
}

/// `node`'s last state at or before `t_us`, if any (and if it is not down then).
pub fn state_at(run: &Run, node: NodeId, t_us: u64) -> Option<&StateChange> {
    let down = run.crashes.iter().any(|c| {
        c.node == node && c.start.time_us <= t_us && c.end.map(|e| t_us < e.time_us) != Some(false)
    });
    if down {
        return None;
    }
    run.states
        .iter()
        .rev()
        .find(|s| s.node == node && s.at.time_us <= t_us)
}

/// Where a node's log was repaired: a write that removed entries the node held (a
/// truncation, as a new leader overwrites a follower's conflicting suffix).
pub fn log_repairs(run: &Run) -> Vec<At> {
    let mut logs: std::collections::BTreeMap<NodeId, LogAt> = Default::default();
    let mut out = Vec::new();
    for op in &run.logs {
        let log = logs.entry(op.node).or_default();
        if !op.reset && op.truncate_from > 0 && op.truncate_from <= log.last_index() {
            out.push(op.at);
        }
        log.apply(op);
    }
    out
}

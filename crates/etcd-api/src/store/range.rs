//! Reads: the current state, or a past revision rebuilt by undoing the retained changes
//! made after it.

use std::collections::BTreeMap;

use super::keys::KeyRange;
use super::types::{Event, KeyValue, RangeRequest, RangeResult, SortOrder, SortTarget};
use super::Store;
use crate::EtcdError;

impl Store {
    /// Serves a range at the current revision or, within the retained window, a past one.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResult, EtcdError> {
        super::validate::check_range(req)?;
        self.range_with_pending(req, &[])
    }

    /// A range inside a write in progress: `pending` are the write's changes so far, which
    /// the live map already holds and a past read must undo.
    pub(super) fn range_with_pending(
        &self,
        req: &RangeRequest,
        pending: &[Event],
    ) -> Result<RangeResult, EtcdError> {
        let at = self.check_read_revision(req.revision)?;
        let range = KeyRange::new(&req.key, &req.range_end);
        // A read at the current revision sees a transaction's own earlier writes, as in
        // etcd; an explicit revision sees the state that revision names.
        if req.revision <= 0 || (at == self.revision && pending.is_empty()) {
            return Ok(select(req, range.scan(&self.kvs).map(|(_, kv)| kv)));
        }
        let mut view: BTreeMap<Vec<u8>, KeyValue> = range
            .scan(&self.kvs)
            .map(|(k, kv)| (k.clone(), kv.clone()))
            .collect();
        let newer = self
            .history
            .iter()
            .rev()
            .take_while(|g| g.revision > at)
            .flat_map(|g| g.events.iter().rev());
        // Undo newest first, so the oldest change after `at` has the last word.
        for ev in pending.iter().rev().chain(newer) {
            if range.contains(&ev.kv.key) {
                match &ev.prev_kv {
                    Some(prev) => view.insert(ev.kv.key.clone(), prev.clone()),
                    None => view.remove(&ev.kv.key),
                };
            }
        }
        Ok(select(req, view.values()))
    }

    /// The revision a read at `revision` (0 or less: current) is served at, or etcd's
    /// error when it is outside the retained window.
    pub(super) fn check_read_revision(&self, revision: i64) -> Result<i64, EtcdError> {
        if revision <= 0 {
            return Ok(self.revision);
        }
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        if revision < self.compact_revision {
            return Err(EtcdError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        Ok(revision)
    }
}

/// Applies count, filters, sort, limit and keys_only to the keys of a range, as etcd does:
/// `count` is every key of the range, `more` tells that the limit cut the result.
fn select<'a>(req: &RangeRequest, kvs: impl Iterator<Item = &'a KeyValue>) -> RangeResult {
    let filtered = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    let order = match (req.sort_order, req.sort_target) {
        (SortOrder::None, SortTarget::Key) => SortOrder::None,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    let sorted = !(order == SortOrder::None
        || (order == SortOrder::Ascend && req.sort_target == SortTarget::Key));
    let limit = usize::try_from(req.limit).unwrap_or(0);
    // Without filters or sorting, keys come in order: one past the limit tells `more`.
    let keep_at_most = if filtered || sorted || limit == 0 {
        usize::MAX
    } else {
        limit + 1
    };
    let passes = |kv: &KeyValue| {
        (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
            && (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
            && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
            && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
    };
    let mut count = 0i64;
    let mut out = Vec::new();
    for kv in kvs {
        count += 1;
        if !req.count_only && out.len() < keep_at_most && passes(kv) {
            out.push(kv.clone());
        }
    }
    if sorted {
        match req.sort_target {
            SortTarget::Key => out.sort_by(|a, b| a.key.cmp(&b.key)),
            SortTarget::Version => out.sort_by_key(|kv| kv.version),
            SortTarget::Create => out.sort_by_key(|kv| kv.create_revision),
            SortTarget::Mod => out.sort_by_key(|kv| kv.mod_revision),
            SortTarget::Value => out.sort_by(|a, b| a.value.cmp(&b.value)),
        }
        if order == SortOrder::Descend {
            out.reverse();
        }
    }
    let mut more = false;
    if limit > 0 && out.len() > limit {
        out.truncate(limit);
        more = true;
    }
    if req.keys_only {
        for kv in &mut out {
            kv.value.clear();
        }
    }
    RangeResult {
        kvs: out,
        more,
        count,
    }
}

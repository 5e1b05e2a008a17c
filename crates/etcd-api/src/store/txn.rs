//! Transactions: compares evaluated against the state before the transaction (nested ones
//! too, as etcd does), then the chosen branches run with one shared revision.

use super::keys::KeyRange;
use super::types::{
    Compare, CompareResult, CompareTarget, KeyValue, RequestOp, ResponseOp, TxnRequest, TxnResult,
};
use super::{Store, Write};
use crate::EtcdError;
use std::cmp::Ordering;

impl Store {
    /// Whether every compare holds in the current state.
    fn compares_hold(&self, compares: &[Compare]) -> bool {
        compares.iter().all(|c| self.compare_holds(c))
    }

    fn compare_holds(&self, c: &Compare) -> bool {
        let mut kvs = KeyRange::new(&c.key, &c.range_end)
            .scan(&self.kvs)
            .map(|(_, kv)| kv)
            .peekable();
        if kvs.peek().is_none() {
            // A missing key has no value to compare, and zeros for its numbers.
            return !matches!(c.target, CompareTarget::Value(_))
                && compare_kv(c, &KeyValue::default());
        }
        kvs.all(|kv| compare_kv(c, kv))
    }

    /// The branch taken by `t` and by every transaction nested in the taken branches, in
    /// the order execution meets them.
    fn txn_path(&self, t: &TxnRequest, path: &mut Vec<bool>) {
        let ok = self.compares_hold(&t.compare);
        path.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            if let RequestOp::Txn(inner) = op {
                self.txn_path(inner, path);
            }
        }
    }

    /// Checks what could fail in the taken branches before anything changes, so that a
    /// failing transaction leaves no trace.
    fn check_path(
        &self,
        t: &TxnRequest,
        path: &mut impl Iterator<Item = bool>,
    ) -> Result<(), EtcdError> {
        let ok = path.next().unwrap_or(false);
        for op in if ok { &t.success } else { &t.failure } {
            match op {
                RequestOp::Range(r) => {
                    self.check_read_revision(r.revision)?;
                }
                RequestOp::Put(p) => {
                    if p.lease != 0 && !self.leases.contains_key(&p.lease) {
                        return Err(EtcdError::LeaseNotFound);
                    }
                }
                RequestOp::Delete(_) => {}
                RequestOp::Txn(inner) => self.check_path(inner, path)?,
            }
        }
        Ok(())
    }
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord == Ordering::Equal,
        CompareResult::Greater => ord == Ordering::Greater,
        CompareResult::Less => ord == Ordering::Less,
        CompareResult::NotEqual => ord != Ordering::Equal,
    }
}

impl Write<'_> {
    pub(super) fn txn(&mut self, t: &TxnRequest) -> Result<TxnResult, EtcdError> {
        let mut path = Vec::new();
        self.store.txn_path(t, &mut path);
        self.store.check_path(t, &mut path.iter().copied())?;
        Ok(self.run_txn(t, &mut path.into_iter()))
    }

    fn run_txn(&mut self, t: &TxnRequest, path: &mut impl Iterator<Item = bool>) -> TxnResult {
        let succeeded = path.next().unwrap_or(false);
        let mut responses = Vec::new();
        for op in if succeeded { &t.success } else { &t.failure } {
            let response = match op {
                RequestOp::Range(r) => ResponseOp::Range(
                    self.store
                        .range_with_pending(r, &self.events)
                        // Checked before the transaction began; a range cannot fail here.
                        .unwrap_or_default(),
                ),
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)),
                RequestOp::Delete(d) => ResponseOp::Delete(self.delete(d)),
                RequestOp::Txn(inner) => ResponseOp::Txn(self.run_txn(inner, path)),
            };
            responses.push(response);
        }
        TxnResult {
            succeeded,
            responses,
        }
    }
}

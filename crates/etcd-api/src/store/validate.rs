//! Checks of a request's shape that need no state (etcd runs them before proposing):
//! empty keys, too many operations, a key written twice in one transaction branch, and
//! the options this store does not implement.

use std::collections::BTreeSet;

use super::keys::KeyRange;
use super::types::{Command, DeleteRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};
use crate::EtcdError;

/// Checks a command's shape; `max_txn_ops` bounds the compares and the operations of each
/// branch of every transaction (etcd's `--max-txn-ops`, 128 by default).
pub fn check_command(cmd: &Command, max_txn_ops: usize) -> Result<(), EtcdError> {
    match cmd {
        Command::Put(p) => check_put(p),
        Command::DeleteRange(d) => check_delete(d),
        Command::Txn(t) => check_txn(t, max_txn_ops).map(|_| ()),
        Command::Compact { .. }
        | Command::LeaseGrant { .. }
        | Command::LeaseRevoke { .. }
        | Command::LeaseExpire { .. } => Ok(()),
    }
}

/// Checks a range's shape.
pub fn check_range(r: &RangeRequest) -> Result<(), EtcdError> {
    if r.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

fn check_put(p: &PutRequest) -> Result<(), EtcdError> {
    if p.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    if p.ignore_value {
        return Err(EtcdError::Unimplemented(
            "etcdserver: put with ignore_value is not supported".into(),
        ));
    }
    if p.ignore_lease {
        return Err(EtcdError::Unimplemented(
            "etcdserver: put with ignore_lease is not supported".into(),
        ));
    }
    Ok(())
}

fn check_delete(d: &DeleteRequest) -> Result<(), EtcdError> {
    if d.key.is_empty() {
        return Err(EtcdError::EmptyKey);
    }
    Ok(())
}

/// The keys a branch may put, for the duplicate check of the enclosing branch.
type Puts = BTreeSet<Vec<u8>>;

fn check_txn(t: &TxnRequest, max_ops: usize) -> Result<Puts, EtcdError> {
    if t.compare.len() > max_ops || t.success.len() > max_ops || t.failure.len() > max_ops {
        return Err(EtcdError::TooManyOps);
    }
    if t.compare.iter().any(|c| c.key.is_empty()) {
        return Err(EtcdError::EmptyKey);
    }
    let mut puts = check_branch(&t.success, max_ops)?;
    // Only one branch runs, so the two may write the same keys.
    puts.extend(check_branch(&t.failure, max_ops)?);
    Ok(puts)
}

fn check_branch(ops: &[RequestOp], max_ops: usize) -> Result<Puts, EtcdError> {
    let mut puts = Puts::new();
    let mut deletes = Vec::new();
    for op in ops {
        match op {
            RequestOp::Range(r) => check_range(r)?,
            RequestOp::Put(p) => {
                check_put(p)?;
                if !puts.insert(p.key.clone()) {
                    return Err(EtcdError::DuplicateKey);
                }
            }
            RequestOp::Delete(d) => {
                check_delete(d)?;
                deletes.push(d);
            }
            RequestOp::Txn(inner) => {
                for k in check_txn(inner, max_ops)? {
                    if !puts.insert(k) {
                        return Err(EtcdError::DuplicateKey);
                    }
                }
            }
        }
    }
    for d in deletes {
        let range = KeyRange::new(&d.key, &d.range_end);
        if puts.iter().any(|k| range.contains(k)) {
            return Err(EtcdError::DuplicateKey);
        }
    }
    Ok(puts)
}

//! The store's own request, response and command types: the etcd API's shapes, free of
//! protobuf, serializable so that commands travel through the replicated log.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A key with its value and revision metadata (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The revision of the key's last creation.
    pub create_revision: i64,
    /// The revision of the key's last modification.
    pub mod_revision: i64,
    /// Modifications since the last creation (1 after a create).
    pub version: i64,
    /// The value.
    pub value: Vec<u8>,
    /// The lease the key is attached to, or 0.
    pub lease: i64,
}

/// Whether an event wrote or deleted its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// The key was created or modified.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change of one key. The store always records `prev_kv` (it needs it to read past
/// revisions); watchers that did not ask for it get it stripped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change; for a delete, only `key` and `mod_revision` are set.
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev_kv: Option<KeyValue>,
}

/// All events of one write transaction, which share one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionEvents {
    /// The revision the write created.
    pub revision: i64,
    /// The changes, in the order the transaction made them.
    pub events: Vec<Event>,
}

/// The order of a range's results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    /// No order requested (keys ascending, unless a sort target is given).
    #[default]
    None,
    /// Ascending.
    Ascend,
    /// Descending.
    Descend,
}

/// The field a range's results are sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    /// The key.
    #[default]
    Key,
    /// The version.
    Version,
    /// The create revision.
    Create,
    /// The mod revision.
    Mod,
    /// The value.
    Value,
}

/// A read of one key or a range of keys (etcd's `RangeRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    /// The first key (or the only key when `range_end` is empty).
    pub key: Vec<u8>,
    /// The end of the range, exclusive; empty for a single key; `[0]` for every key from
    /// `key` on.
    pub range_end: Vec<u8>,
    /// The most keys to return; 0 for no limit.
    pub limit: i64,
    /// The revision to read at; 0 or less for the current one.
    pub revision: i64,
    /// The order of the results.
    pub sort_order: SortOrder,
    /// What the results are sorted by.
    pub sort_target: SortTarget,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only the count.
    pub count_only: bool,
    /// Keep only keys with at least this mod revision (0: no bound).
    pub min_mod_revision: i64,
    /// Keep only keys with at most this mod revision (0: no bound).
    pub max_mod_revision: i64,
    /// Keep only keys with at least this create revision (0: no bound).
    pub min_create_revision: i64,
    /// Keep only keys with at most this create revision (0: no bound).
    pub max_create_revision: i64,
}

/// The result of a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResult {
    /// The keys found (empty when `count_only`).
    pub kvs: Vec<KeyValue>,
    /// Whether `limit` cut the result short.
    pub more: bool,
    /// The number of keys in the range.
    pub count: i64,
}

/// A write of one key (etcd's `PutRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The lease to attach the key to, or 0 for none.
    pub lease: i64,
    /// Return the previous key/value.
    pub prev_kv: bool,
    /// Keep the current value (not supported: the store answers Unimplemented).
    pub ignore_value: bool,
    /// Keep the current lease (not supported: the store answers Unimplemented).
    pub ignore_lease: bool,
}

/// The result of a put.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResult {
    /// The previous key/value, if asked for and the key existed.
    pub prev_kv: Option<KeyValue>,
}

/// A delete of one key or a range (etcd's `DeleteRangeRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRequest {
    /// The first key (or the only one).
    pub key: Vec<u8>,
    /// The end of the range, as in [`RangeRequest::range_end`].
    pub range_end: Vec<u8>,
    /// Return the deleted key/values.
    pub prev_kv: bool,
}

/// The result of a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// The number of keys deleted.
    pub deleted: i64,
    /// The deleted key/values, if asked for.
    pub prev_kvs: Vec<KeyValue>,
}

/// How a compare relates the key's field to the given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    /// Field == value.
    Equal,
    /// Field > value.
    Greater,
    /// Field < value.
    Less,
    /// Field != value.
    NotEqual,
}

/// The field a compare looks at, with the value to compare it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The version (0 for a missing key).
    Version(i64),
    /// The create revision (0 for a missing key).
    Create(i64),
    /// The mod revision (0 for a missing key).
    Mod(i64),
    /// The value (a missing key fails every value compare).
    Value(Vec<u8>),
    /// The lease (0 for a missing key or one without lease).
    Lease(i64),
}

/// One condition of a transaction (etcd's `Compare`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    /// The key compared.
    pub key: Vec<u8>,
    /// With a range end, every key of the range must satisfy the compare.
    pub range_end: Vec<u8>,
    /// The relation.
    pub result: CompareResult,
    /// The field and the value.
    pub target: CompareTarget,
}

/// One operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    /// A read.
    Range(RangeRequest),
    /// A write.
    Put(PutRequest),
    /// A delete.
    Delete(DeleteRequest),
    /// A nested transaction.
    Txn(TxnRequest),
}

/// The result of one operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    /// A read's result.
    Range(RangeResult),
    /// A write's result.
    Put(PutResult),
    /// A delete's result.
    Delete(DeleteResult),
    /// A nested transaction's result.
    Txn(TxnResult),
}

/// A transaction: if every compare holds, run `success`, else `failure` (etcd's `TxnRequest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    /// The conditions.
    pub compare: Vec<Compare>,
    /// The operations run when all conditions hold.
    pub success: Vec<RequestOp>,
    /// The operations run otherwise.
    pub failure: Vec<RequestOp>,
}

/// The result of a transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResult {
    /// Whether the success branch ran.
    pub succeeded: bool,
    /// The results of the branch that ran, in order.
    pub responses: Vec<ResponseOp>,
}

/// A state-changing command, applied by every replica in log order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Write one key.
    Put(PutRequest),
    /// Delete a key or range.
    DeleteRange(DeleteRequest),
    /// Run a transaction (all its writes share one revision).
    Txn(TxnRequest),
    /// Forget the history before `revision`.
    Compact {
        /// The new compaction revision.
        revision: i64,
    },
    /// Create a lease; `id` 0 lets the store choose one.
    LeaseGrant {
        /// The wanted ID, or 0.
        id: i64,
        /// The time to live in seconds, as asked.
        ttl: i64,
    },
    /// Delete a lease and, at one revision, every key attached to it (a client's request).
    LeaseRevoke {
        /// The lease.
        id: i64,
    },
    /// The same effect as a revoke, decided by the leader when the lease's time ran out;
    /// replicated so that every replica deletes the same keys at the same revision.
    LeaseExpire {
        /// The lease.
        id: i64,
    },
}

/// What a successfully applied command returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// The put's result.
    Put(PutResult),
    /// The delete's result.
    DeleteRange(DeleteResult),
    /// The transaction's result.
    Txn(TxnResult),
    /// The compaction took place.
    Compact,
    /// The lease that was granted.
    LeaseGrant {
        /// Its ID.
        id: i64,
        /// Its TTL in seconds (raised to the store's minimum).
        ttl: i64,
    },
    /// The lease was revoked or expired.
    LeaseRevoke,
}

/// A command's outcome: the store's revision after it and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The store's revision after the command (the response header's revision).
    pub revision: i64,
    /// The command's output or its (deterministic) error.
    pub output: Result<CommandOutput, crate::EtcdError>,
    /// The events the command created, for watchers; `None` when it changed no key.
    pub events: Option<Arc<RevisionEvents>>,
}

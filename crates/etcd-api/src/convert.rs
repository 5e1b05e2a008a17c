//! Conversions between the protobuf messages and the store's types. Unknown enum values
//! fall back to etcd's defaults (proto3 semantics: an unknown enum reads as its zero).

use crate::proto::etcdserverpb as pb;
use crate::proto::mvccpb;
use crate::store::{
    Compare, CompareResult, CompareTarget, DeleteRequest, DeleteResult, Event, EventKind, KeyValue,
    PutRequest, PutResult, RangeRequest, RangeResult, RequestOp, ResponseOp, SortOrder, SortTarget,
    TxnRequest, TxnResult,
};

/// Fills a response header; the revision comes from the operation, the rest from the node.
pub(crate) type Header = pb::ResponseHeader;

impl From<KeyValue> for mvccpb::KeyValue {
    fn from(kv: KeyValue) -> Self {
        mvccpb::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

/// The protobuf form of an event, with `prev_kv` only when the watcher asked for it.
pub(crate) fn event(e: &Event, with_prev: bool) -> mvccpb::Event {
    mvccpb::Event {
        r#type: match e.kind {
            EventKind::Put => mvccpb::event::EventType::Put as i32,
            EventKind::Delete => mvccpb::event::EventType::Delete as i32,
        },
        kv: Some(e.kv.clone().into()),
        prev_kv: if with_prev {
            e.prev_kv.clone().map(Into::into)
        } else {
            None
        },
    }
}

impl From<pb::RangeRequest> for RangeRequest {
    fn from(r: pb::RangeRequest) -> Self {
        use pb::range_request::{SortOrder as O, SortTarget as T};
        RangeRequest {
            sort_order: match r.sort_order() {
                O::None => SortOrder::None,
                O::Ascend => SortOrder::Ascend,
                O::Descend => SortOrder::Descend,
            },
            sort_target: match r.sort_target() {
                T::Key => SortTarget::Key,
                T::Version => SortTarget::Version,
                T::Create => SortTarget::Create,
                T::Mod => SortTarget::Mod,
                T::Value => SortTarget::Value,
            },
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        }
    }
}

impl From<pb::PutRequest> for PutRequest {
    fn from(p: pb::PutRequest) -> Self {
        PutRequest {
            key: p.key,
            value: p.value,
            lease: p.lease,
            prev_kv: p.prev_kv,
            ignore_value: p.ignore_value,
            ignore_lease: p.ignore_lease,
        }
    }
}

impl From<pb::DeleteRangeRequest> for DeleteRequest {
    fn from(d: pb::DeleteRangeRequest) -> Self {
        DeleteRequest {
            key: d.key,
            range_end: d.range_end,
            prev_kv: d.prev_kv,
        }
    }
}

impl From<pb::Compare> for Compare {
    fn from(c: pb::Compare) -> Self {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
        let result = match c.result() {
            R::Equal => CompareResult::Equal,
            R::Greater => CompareResult::Greater,
            R::Less => CompareResult::Less,
            R::NotEqual => CompareResult::NotEqual,
        };
        // As in etcd, the target field decides what is compared; a union holding another
        // field compares against zero.
        let int = |want: fn(&U) -> Option<i64>| c.target_union.as_ref().and_then(want).unwrap_or(0);
        let target = match c.target() {
            T::Version => CompareTarget::Version(int(|u| match u {
                U::Version(v) => Some(*v),
                _ => None,
            })),
            T::Create => CompareTarget::Create(int(|u| match u {
                U::CreateRevision(v) => Some(*v),
                _ => None,
            })),
            T::Mod => CompareTarget::Mod(int(|u| match u {
                U::ModRevision(v) => Some(*v),
                _ => None,
            })),
            T::Lease => CompareTarget::Lease(int(|u| match u {
                U::Lease(v) => Some(*v),
                _ => None,
            })),
            T::Value => CompareTarget::Value(match &c.target_union {
                Some(U::Value(v)) => v.clone(),
                _ => Vec::new(),
            }),
        };
        Compare {
            key: c.key,
            range_end: c.range_end,
            result,
            target,
        }
    }
}

impl From<pb::TxnRequest> for TxnRequest {
    fn from(t: pb::TxnRequest) -> Self {
        let ops = |ops: Vec<pb::RequestOp>| ops.into_iter().filter_map(request_op).collect();
        TxnRequest {
            compare: t.compare.into_iter().map(Into::into).collect(),
            success: ops(t.success),
            failure: ops(t.failure),
        }
    }
}

/// An operation of a transaction; an empty `RequestOp` (no operation set) is skipped, as
/// etcd does.
fn request_op(op: pb::RequestOp) -> Option<RequestOp> {
    use pb::request_op::Request as R;
    Some(match op.request? {
        R::RequestRange(r) => RequestOp::Range(r.into()),
        R::RequestPut(p) => RequestOp::Put(p.into()),
        R::RequestDeleteRange(d) => RequestOp::Delete(d.into()),
        R::RequestTxn(t) => RequestOp::Txn(t.into()),
    })
}

/// The protobuf range response.
pub(crate) fn range_response(r: RangeResult, header: Header) -> pb::RangeResponse {
    pb::RangeResponse {
        header: Some(header),
        kvs: r.kvs.into_iter().map(Into::into).collect(),
        more: r.more,
        count: r.count,
    }
}

/// The protobuf put response.
pub(crate) fn put_response(r: PutResult, header: Header) -> pb::PutResponse {
    pb::PutResponse {
        header: Some(header),
        prev_kv: r.prev_kv.map(Into::into),
    }
}

/// The protobuf delete response.
pub(crate) fn delete_response(r: DeleteResult, header: Header) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: Some(header),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(Into::into).collect(),
    }
}

/// The protobuf transaction response; nested responses carry the same header.
pub(crate) fn txn_response(r: TxnResult, header: Header) -> pb::TxnResponse {
    use pb::response_op::Response as R;
    let responses = r
        .responses
        .into_iter()
        .map(|op| pb::ResponseOp {
            response: Some(match op {
                ResponseOp::Range(x) => R::ResponseRange(range_response(x, header)),
                ResponseOp::Put(x) => R::ResponsePut(put_response(x, header)),
                ResponseOp::Delete(x) => R::ResponseDeleteRange(delete_response(x, header)),
                ResponseOp::Txn(x) => R::ResponseTxn(txn_response(x, header)),
            }),
        })
        .collect();
    pb::TxnResponse {
        header: Some(header),
        succeeded: r.succeeded,
        responses,
    }
}

//! Unit tests of every store operation and error.

mod kv;
mod lease;
mod txn;

use super::*;

pub(super) fn put(key: &str, value: &str) -> Command {
    Command::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}

pub(super) fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

pub(super) fn get(s: &Store, key: &str) -> Option<KeyValue> {
    s.range(&RangeRequest {
        key: key.into(),
        ..Default::default()
    })
    .unwrap()
    .kvs
    .pop()
}

pub(super) fn range(s: &Store, key: &str, end: &str) -> RangeRequest {
    let _ = s;
    RangeRequest {
        key: key.into(),
        range_end: end.into(),
        ..Default::default()
    }
}

pub(super) fn keys(r: &RangeResult) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

pub(super) fn ok(s: &mut Store, cmd: Command) -> CommandOutput {
    s.apply(&cmd).output.unwrap()
}

pub(super) fn err(s: &mut Store, cmd: Command) -> EtcdError {
    let before = s.clone();
    let e = s.apply(&cmd).output.unwrap_err();
    assert_eq!(*s, before, "a failed command changed the store");
    e
}

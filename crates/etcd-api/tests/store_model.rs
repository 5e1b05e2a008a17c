//! Property test: the store against a plain model (a map of key -> value, version, create
//! and mod revision, plus a copy of the whole map at every revision), over random puts,
//! deletes of ranges, compare-and-set transactions, past reads and snapshot round trips.

use std::collections::BTreeMap;

use etcd_api::store::{
    Command, CommandOutput, Compare, CompareResult, CompareTarget, DeleteRequest, PutRequest,
    RangeRequest, RequestOp, Store, StoreConfig, TxnRequest,
};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    value: Vec<u8>,
    create: i64,
    modified: i64,
    version: i64,
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8, u8),
    CasVersion(u8, i64, u8),
    ReadAt(u8),
    Snapshot,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        1 => (0u8..6, 0u8..3).prop_map(|(k, w)| Op::Delete(k, w)),
        2 => (0u8..6, 0i64..4, any::<u8>()).prop_map(|(k, ver, v)| Op::CasVersion(k, ver, v)),
        1 => (0u8..20).prop_map(Op::ReadAt),
        1 => Just(Op::Snapshot),
    ]
}

const WINDOW: usize = 8;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut store = Store::new(StoreConfig { history_limit: WINDOW, min_lease_ttl: 1 });
        let mut model: BTreeMap<Vec<u8>, Entry> = BTreeMap::new();
        let mut rev = 1i64;
        // The model's state at every revision.
        let mut at: BTreeMap<i64, BTreeMap<Vec<u8>, Entry>> = BTreeMap::new();
        at.insert(1, model.clone());
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    let a = store.apply(&Command::Put(PutRequest { key: key(k), value: vec![v], ..Default::default() }));
                    prop_assert!(a.output.is_ok());
                    rev += 1;
                    let e = model.entry(key(k)).or_insert(Entry { value: vec![], create: rev, modified: 0, version: 0 });
                    e.value = vec![v];
                    e.modified = rev;
                    e.version += 1;
                }
                Op::Delete(k, width) => {
                    let (from, to) = (key(k), key(k + width));
                    let end = if width == 0 { vec![] } else { to.clone() };
                    let a = store.apply(&Command::DeleteRange(DeleteRequest { key: from.clone(), range_end: end, prev_kv: false }));
                    let doomed: Vec<_> = model.keys().filter(|x| if width == 0 { **x == from } else { **x >= from && **x < to }).cloned().collect();
                    let Ok(CommandOutput::DeleteRange(d)) = a.output else { panic!("{:?}", a.output) };
                    prop_assert_eq!(d.deleted as usize, doomed.len());
                    if !doomed.is_empty() {
                        rev += 1;
                    }
                    for x in doomed {
                        model.remove(&x);
                    }
                }
                Op::CasVersion(k, ver, v) => {
                    let txn = TxnRequest {
                        compare: vec![Compare { key: key(k), range_end: vec![], result: CompareResult::Equal, target: CompareTarget::Version(ver) }],
                        success: vec![RequestOp::Put(PutRequest { key: key(k), value: vec![v], ..Default::default() })],
                        failure: vec![RequestOp::Range(RangeRequest { key: key(k), ..Default::default() })],
                    };
                    let a = store.apply(&Command::Txn(txn));
                    let Ok(CommandOutput::Txn(t)) = a.output else { panic!("{:?}", a.output) };
                    let current = model.get(&key(k)).map_or(0, |e| e.version);
                    prop_assert_eq!(t.succeeded, current == ver);
                    if t.succeeded {
                        rev += 1;
                        let e = model.entry(key(k)).or_insert(Entry { value: vec![], create: rev, modified: 0, version: 0 });
                        e.value = vec![v];
                        e.modified = rev;
                        e.version += 1;
                    }
                }
                Op::ReadAt(back) => {
                    let want = rev - i64::from(back);
                    let r = store.range(&RangeRequest { key: vec![0], range_end: vec![0], revision: want, ..Default::default() });
                    if want <= 0 {
                        // 0 and below mean "current".
                        prop_assert!(r.is_ok());
                    } else if want < store.compact_revision() {
                        prop_assert!(r.is_err());
                    } else {
                        let got: BTreeMap<Vec<u8>, Entry> = r.unwrap().kvs.into_iter().map(|kv| (kv.key, Entry { value: kv.value, create: kv.create_revision, modified: kv.mod_revision, version: kv.version })).collect();
                        prop_assert_eq!(&got, &at[&want]);
                    }
                }
                Op::Snapshot => {
                    let bytes = postcard::to_allocvec(&store).unwrap();
                    let back: Store = postcard::from_bytes(&bytes).unwrap();
                    prop_assert_eq!(&back, &store);
                    store = back;
                }
            }
            prop_assert_eq!(store.revision(), rev);
            at.insert(rev, model.clone());
            // The window: the last WINDOW revisions that changed something stay readable.
            prop_assert!(store.compact_revision() <= (rev - WINDOW as i64 + 1).max(0));
            let now: BTreeMap<Vec<u8>, Entry> = store.range(&RangeRequest { key: vec![0], range_end: vec![0], ..Default::default() }).unwrap().kvs.into_iter().map(|kv| (kv.key, Entry { value: kv.value, create: kv.create_revision, modified: kv.mod_revision, version: kv.version })).collect();
            prop_assert_eq!(&now, &model);
        }
    }
}

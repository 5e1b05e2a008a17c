//! Puts, ranges, deletes, past revisions, compaction and history.

use super::super::*;
use super::*;

#[test]
fn revisions_versions_and_create_revision() {
    let mut s = Store::default();
    assert_eq!(s.revision(), 1);
    let a = s.apply(&put("a", "1"));
    assert_eq!(a.revision, 2);
    ok(&mut s, put("a", "2"));
    ok(&mut s, put("b", "x"));
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    assert_eq!(kv.value, b"2");
    ok(
        &mut s,
        Command::DeleteRange(DeleteRequest {
            key: "a".into(),
            ..Default::default()
        }),
    );
    assert_eq!(s.revision(), 5);
    ok(&mut s, put("a", "3"));
    let kv = get(&s, "a").unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (6, 6, 1));
}

#[test]
fn put_returns_prev_kv_only_when_asked() {
    let mut s = Store::default();
    ok(&mut s, put("k", "old"));
    let out = ok(
        &mut s,
        Command::Put(PutRequest {
            prev_kv: true,
            ..put_req("k", "new")
        }),
    );
    let CommandOutput::Put(PutResult {
        prev_kv: Some(prev),
    }) = out
    else {
        panic!("no prev_kv: {out:?}")
    };
    assert_eq!(prev.value, b"old");
    let out = ok(&mut s, put("k", "newer"));
    assert_eq!(out, CommandOutput::Put(PutResult { prev_kv: None }));
    let out = ok(
        &mut s,
        Command::Put(PutRequest {
            prev_kv: true,
            ..put_req("fresh", "v")
        }),
    );
    assert_eq!(out, CommandOutput::Put(PutResult { prev_kv: None }));
}

#[test]
fn put_options_not_implemented_and_empty_key() {
    let mut s = Store::default();
    let e = err(
        &mut s,
        Command::Put(PutRequest {
            ignore_value: true,
            ..put_req("k", "")
        }),
    );
    assert!(matches!(e, EtcdError::Unimplemented(_)));
    assert_eq!(e.code(), tonic::Code::Unimplemented);
    let e = err(
        &mut s,
        Command::Put(PutRequest {
            ignore_lease: true,
            ..put_req("k", "")
        }),
    );
    assert!(matches!(e, EtcdError::Unimplemented(_)));
    assert_eq!(err(&mut s, put("", "v")), EtcdError::EmptyKey);
    assert_eq!(
        s.range(&RangeRequest::default()).unwrap_err(),
        EtcdError::EmptyKey
    );
    assert_eq!(
        err(&mut s, Command::DeleteRange(DeleteRequest::default())),
        EtcdError::EmptyKey
    );
}

#[test]
fn ranges_prefix_all_limit_count_keys_only() {
    let mut s = Store::default();
    for k in ["a", "b/1", "b/2", "b/3", "c"] {
        ok(&mut s, put(k, &format!("v-{k}")));
    }
    assert_eq!(
        keys(&s.range(&range(&s, "b/", "b0")).unwrap()),
        ["b/1", "b/2", "b/3"]
    );
    let all = s.range(&range(&s, "\0", "\0")).unwrap();
    assert_eq!(all.count, 5);
    let from_b = s.range(&range(&s, "b", "\0")).unwrap();
    assert_eq!(keys(&from_b), ["b/1", "b/2", "b/3", "c"]);
    let limited = s
        .range(&RangeRequest {
            limit: 2,
            ..range(&s, "\0", "\0")
        })
        .unwrap();
    assert_eq!(
        (keys(&limited), limited.more, limited.count),
        (vec!["a".to_string(), "b/1".into()], true, 5)
    );
    let exact = s
        .range(&RangeRequest {
            limit: 5,
            ..range(&s, "\0", "\0")
        })
        .unwrap();
    assert!(!exact.more);
    let counted = s
        .range(&RangeRequest {
            count_only: true,
            ..range(&s, "b/", "b0")
        })
        .unwrap();
    assert_eq!((counted.kvs.len(), counted.count), (0, 3));
    let bare = s
        .range(&RangeRequest {
            keys_only: true,
            ..range(&s, "a", "")
        })
        .unwrap();
    assert_eq!((bare.kvs[0].value.len(), bare.kvs[0].version), (0, 1));
    assert!(s.range(&range(&s, "c", "a")).unwrap().kvs.is_empty());
    assert_eq!(get(&s, "zz"), None);
}

#[test]
fn ranges_sort_and_filter() {
    let mut s = Store::default();
    ok(&mut s, put("a", "3")); // rev 2
    ok(&mut s, put("b", "1")); // rev 3
    ok(&mut s, put("c", "2")); // rev 4
    ok(&mut s, put("a", "4")); // rev 5
    let all = |order, target| RangeRequest {
        sort_order: order,
        sort_target: target,
        ..range(&s, "\0", "\0")
    };
    let r = s.range(&all(SortOrder::Descend, SortTarget::Key)).unwrap();
    assert_eq!(keys(&r), ["c", "b", "a"]);
    let r = s.range(&all(SortOrder::Ascend, SortTarget::Value)).unwrap();
    assert_eq!(keys(&r), ["b", "c", "a"]);
    let r = s.range(&all(SortOrder::None, SortTarget::Mod)).unwrap();
    assert_eq!(
        keys(&r),
        ["b", "c", "a"],
        "NONE with a target sorts ascending"
    );
    let r = s
        .range(&all(SortOrder::Descend, SortTarget::Create))
        .unwrap();
    assert_eq!(keys(&r), ["c", "b", "a"]);
    let r = s
        .range(&all(SortOrder::Descend, SortTarget::Version))
        .unwrap();
    assert_eq!(keys(&r)[0], "a");
    let r = s
        .range(&RangeRequest {
            limit: 1,
            ..all(SortOrder::Descend, SortTarget::Mod)
        })
        .unwrap();
    assert_eq!((keys(&r), r.more), (vec!["a".to_string()], true));
    let r = s
        .range(&RangeRequest {
            min_mod_revision: 4,
            ..range(&s, "\0", "\0")
        })
        .unwrap();
    assert_eq!((keys(&r), r.count), (vec!["a".to_string(), "c".into()], 3));
    let r = s
        .range(&RangeRequest {
            max_create_revision: 3,
            min_create_revision: 3,
            ..range(&s, "\0", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["b"]);
}

#[test]
fn delete_range_with_prev_kvs_and_no_op_delete_keeps_revision() {
    let mut s = Store::default();
    for k in ["p/1", "p/2", "q"] {
        ok(&mut s, put(k, "v"));
    }
    let rev = s.revision();
    let out = ok(
        &mut s,
        Command::DeleteRange(DeleteRequest {
            key: "p/".into(),
            range_end: "p0".into(),
            prev_kv: true,
        }),
    );
    let CommandOutput::DeleteRange(d) = out else {
        panic!()
    };
    assert_eq!((d.deleted, d.prev_kvs.len()), (2, 2));
    assert_eq!(s.revision(), rev + 1, "one revision for the whole delete");
    let out = s.apply(&Command::DeleteRange(DeleteRequest {
        key: "nothing".into(),
        ..Default::default()
    }));
    assert_eq!(out.revision, rev + 1, "deleting nothing makes no revision");
    assert!(out.events.is_none());
    assert_eq!(s.len(), 1);
}

#[test]
fn reads_at_past_revisions_within_the_window() {
    let mut s = Store::new(StoreConfig {
        history_limit: 3,
        min_lease_ttl: 1,
    });
    ok(&mut s, put("k", "1")); // 2
    ok(&mut s, put("k", "2")); // 3
    ok(&mut s, put("j", "x")); // 4
    ok(
        &mut s,
        Command::DeleteRange(DeleteRequest {
            key: "k".into(),
            ..Default::default()
        }),
    ); // 5
    assert_eq!(s.compact_revision(), 3, "the window holds revisions 3..=5");
    let at = |s: &Store, rev: i64| {
        s.range(&RangeRequest {
            revision: rev,
            ..range(s, "\0", "\0")
        })
    };
    let r3 = at(&s, 3).unwrap();
    assert_eq!(keys(&r3), ["k"]);
    assert_eq!(r3.kvs[0].value, b"2");
    assert_eq!(keys(&at(&s, 4).unwrap()), ["j", "k"]);
    assert_eq!(keys(&at(&s, 5).unwrap()), ["j"]);
    assert_eq!(
        at(&s, 2).unwrap_err(),
        EtcdError::Compacted {
            compact_revision: 3
        }
    );
    assert_eq!(at(&s, 6).unwrap_err(), EtcdError::FutureRevision);
    assert_eq!(EtcdError::FutureRevision.code(), tonic::Code::OutOfRange);
    assert_eq!(
        EtcdError::Compacted {
            compact_revision: 3
        }
        .to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
}

#[test]
fn compaction() {
    let mut s = Store::default();
    for i in 0..5 {
        ok(&mut s, put("k", &i.to_string())); // revs 2..=6
    }
    assert_eq!(
        err(&mut s, Command::Compact { revision: 7 }),
        EtcdError::FutureRevision
    );
    ok(&mut s, Command::Compact { revision: 4 });
    assert_eq!(s.revision(), 6, "compaction makes no revision");
    assert_eq!(
        err(&mut s, Command::Compact { revision: 4 }),
        EtcdError::Compacted {
            compact_revision: 4
        }
    );
    assert_eq!(
        s.history_from(3).unwrap_err(),
        EtcdError::Compacted {
            compact_revision: 4
        }
    );
    let h = s.history_from(4).unwrap();
    assert_eq!(h.iter().map(|g| g.revision).collect::<Vec<_>>(), [4, 5, 6]);
    let r = s
        .range(&RangeRequest {
            revision: 4,
            ..range(&s, "k", "")
        })
        .unwrap();
    assert_eq!(r.kvs[0].value, b"2");
}

#[test]
fn history_records_events_with_prev_kv() {
    let mut s = Store::default();
    ok(&mut s, put("k", "1"));
    ok(&mut s, put("k", "2"));
    ok(
        &mut s,
        Command::DeleteRange(DeleteRequest {
            key: "k".into(),
            ..Default::default()
        }),
    );
    let h = s.history_from(0).unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[1].events[0].prev_kv.as_ref().unwrap().value, b"1");
    let del = &h[2].events[0];
    assert_eq!(del.kind, EventKind::Delete);
    assert_eq!(
        (del.kv.mod_revision, del.kv.version, del.kv.create_revision),
        (4, 0, 0)
    );
    assert_eq!(s.history_from(4).unwrap().len(), 1);
    assert!(s.history_from(100).unwrap().is_empty());
}

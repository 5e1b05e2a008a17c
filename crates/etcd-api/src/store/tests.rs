//! Unit tests of every store operation and error.

use super::*;

fn put(key: &str, value: &str) -> Command {
    Command::Put(PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    })
}

fn put_req(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn get(s: &Store, key: &str) -> Option<KeyValue> {
    s.range(&RangeRequest {
        key: key.into(),
        ..Default::default()
    })
    .unwrap()
    .kvs
    .pop()
}

fn range(s: &Store, key: &str, end: &str) -> RangeRequest {
    let _ = s;
    RangeRequest {
        key: key.into(),
        range_end: end.into(),
        ..Default::default()
    }
}

fn keys(r: &RangeResult) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn ok(s: &mut Store, cmd: Command) -> CommandOutput {
    s.apply(&cmd).output.unwrap()
}

fn err(s: &mut Store, cmd: Command) -> EtcdError {
    let before = s.clone();
    let e = s.apply(&cmd).output.unwrap_err();
    assert_eq!(*s, before, "a failed command changed the store");
    e
}

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

fn cmp(key: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare {
        key: key.into(),
        range_end: vec![],
        result,
        target,
    }
}

#[test]
fn txn_compares_on_every_target() {
    let mut s = Store::default();
    ok(&mut s, put("k", "b")); // rev 2
    ok(&mut s, put("k", "b")); // rev 3, version 2
    use CompareResult::*;
    use CompareTarget::*;
    let cases = [
        (cmp("k", Equal, Value("b".into())), true),
        (cmp("k", Greater, Value("a".into())), true),
        (cmp("k", Less, Value("a".into())), false),
        (cmp("k", NotEqual, Value("b".into())), false),
        (cmp("k", Equal, Version(2)), true),
        (cmp("k", Greater, Version(2)), false),
        (cmp("k", Equal, Create(2)), true),
        (cmp("k", Less, Mod(4)), true),
        (cmp("k", Equal, Lease(0)), true),
        (cmp("missing", Equal, Version(0)), true),
        (cmp("missing", Equal, Create(0)), true),
        (cmp("missing", Equal, Value(vec![])), false),
        (cmp("missing", NotEqual, Value("x".into())), false),
        (
            Compare {
                range_end: "l".into(),
                ..cmp("a", Greater, Mod(0))
            },
            true,
        ),
        (
            Compare {
                range_end: "l".into(),
                ..cmp("a", Equal, Mod(2))
            },
            false,
        ),
    ];
    for (c, expect) in cases {
        let out = ok(
            &mut s,
            Command::Txn(TxnRequest {
                compare: vec![c.clone()],
                ..Default::default()
            }),
        );
        let CommandOutput::Txn(t) = out else { panic!() };
        assert_eq!(t.succeeded, expect, "{c:?}");
    }
    assert_eq!(s.revision(), 3, "read-only transactions make no revision");
}

#[test]
fn txn_branches_share_one_revision_and_see_their_writes() {
    let mut s = Store::default();
    ok(&mut s, put("x", "0"));
    let txn = TxnRequest {
        compare: vec![cmp(
            "x",
            CompareResult::Equal,
            CompareTarget::Value("0".into()),
        )],
        success: vec![
            RequestOp::Put(put_req("a", "1")),
            RequestOp::Put(PutRequest {
                prev_kv: true,
                ..put_req("x", "1")
            }),
            RequestOp::Range(range(&s, "a", "")),
            RequestOp::Range(RangeRequest {
                revision: 2,
                ..range(&s, "x", "")
            }),
            RequestOp::Delete(DeleteRequest {
                key: "zz".into(),
                ..Default::default()
            }),
        ],
        failure: vec![RequestOp::Put(put_req("failed", "1"))],
    };
    let a = s.apply(&Command::Txn(txn.clone()));
    assert_eq!(a.revision, 3);
    let Ok(CommandOutput::Txn(t)) = a.output else {
        panic!()
    };
    assert!(t.succeeded);
    let ResponseOp::Range(r) = &t.responses[2] else {
        panic!()
    };
    assert_eq!(
        r.kvs[0].mod_revision, 3,
        "a range sees the transaction's own put"
    );
    let ResponseOp::Range(old) = &t.responses[3] else {
        panic!()
    };
    assert_eq!(old.kvs[0].value, b"0", "a range at revision 2 does not");
    let ResponseOp::Put(p) = &t.responses[1] else {
        panic!()
    };
    assert_eq!(p.prev_kv.as_ref().unwrap().value, b"0");
    assert_eq!(a.events.unwrap().events.len(), 2);
    // The same transaction now fails its compare and takes the failure branch.
    let Ok(CommandOutput::Txn(t)) = s.apply(&Command::Txn(txn)).output else {
        panic!()
    };
    assert!(!t.succeeded);
    assert!(get(&s, "failed").is_some());
    assert_eq!(s.revision(), 4);
}

#[test]
fn nested_txn_compares_see_the_state_before_the_transaction() {
    let mut s = Store::default();
    let inner = TxnRequest {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(0))],
        success: vec![RequestOp::Put(put_req("inner-saw-no-a", "1"))],
        failure: vec![],
    };
    let outer = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Put(put_req("a", "1")), RequestOp::Txn(inner)],
        failure: vec![],
    };
    ok(&mut s, Command::Txn(outer));
    assert!(get(&s, "inner-saw-no-a").is_some());
    assert_eq!(s.revision(), 2);
}

#[test]
fn txn_errors_change_nothing() {
    let mut s = Store::default();
    ok(&mut s, put("k", "v"));
    let bad_lease = TxnRequest {
        success: vec![
            RequestOp::Put(put_req("a", "1")),
            RequestOp::Put(PutRequest {
                lease: 99,
                ..put_req("b", "1")
            }),
        ],
        ..Default::default()
    };
    assert_eq!(
        err(&mut s, Command::Txn(bad_lease)),
        EtcdError::LeaseNotFound
    );
    let future = TxnRequest {
        success: vec![
            RequestOp::Put(put_req("a", "1")),
            RequestOp::Range(RangeRequest {
                revision: 50,
                ..range(&s, "k", "")
            }),
        ],
        ..Default::default()
    };
    assert_eq!(err(&mut s, Command::Txn(future)), EtcdError::FutureRevision);
    let dup = TxnRequest {
        success: vec![
            RequestOp::Put(put_req("a", "1")),
            RequestOp::Put(put_req("a", "2")),
        ],
        ..Default::default()
    };
    assert_eq!(err(&mut s, Command::Txn(dup)), EtcdError::DuplicateKey);
    let put_in_delete = TxnRequest {
        success: vec![
            RequestOp::Put(put_req("a/1", "1")),
            RequestOp::Delete(DeleteRequest {
                key: "a/".into(),
                range_end: "a0".into(),
                prev_kv: false,
            }),
        ],
        ..Default::default()
    };
    assert_eq!(
        err(&mut s, Command::Txn(put_in_delete)),
        EtcdError::DuplicateKey
    );
    let both_branches = TxnRequest {
        success: vec![RequestOp::Put(put_req("a", "1"))],
        failure: vec![RequestOp::Put(put_req("a", "2"))],
        ..Default::default()
    };
    ok(&mut s, Command::Txn(both_branches));
    let many = TxnRequest {
        success: (0..3)
            .map(|i| RequestOp::Put(put_req(&format!("m{i}"), "v")))
            .collect(),
        ..Default::default()
    };
    assert_eq!(
        validate::check_command(&Command::Txn(many.clone()), 2),
        Err(EtcdError::TooManyOps)
    );
    assert_eq!(validate::check_command(&Command::Txn(many), 3), Ok(()));
    let empty_compare = TxnRequest {
        compare: vec![cmp("", CompareResult::Equal, CompareTarget::Version(0))],
        ..Default::default()
    };
    assert_eq!(
        err(&mut s, Command::Txn(empty_compare)),
        EtcdError::EmptyKey
    );
}

#[test]
fn leases_grant_attach_revoke_and_expire() {
    let mut s = Store::new(StoreConfig {
        history_limit: 100,
        min_lease_ttl: 5,
    });
    let out = ok(&mut s, Command::LeaseGrant { id: 0, ttl: 1 });
    assert_eq!(
        out,
        CommandOutput::LeaseGrant { id: 1, ttl: 5 },
        "TTL raised to the minimum"
    );
    ok(&mut s, Command::LeaseGrant { id: 2, ttl: 60 });
    assert_eq!(
        err(&mut s, Command::LeaseGrant { id: 2, ttl: 60 }),
        EtcdError::LeaseExists
    );
    assert_eq!(
        err(
            &mut s,
            Command::LeaseGrant {
                id: 7,
                ttl: MAX_LEASE_TTL + 1
            }
        ),
        EtcdError::LeaseTtlTooLarge
    );
    let out = ok(&mut s, Command::LeaseGrant { id: 0, ttl: 10 });
    assert_eq!(
        out,
        CommandOutput::LeaseGrant { id: 3, ttl: 10 },
        "chosen IDs skip used ones"
    );
    assert_eq!(s.revision(), 1, "granting makes no revision");
    assert_eq!(
        err(
            &mut s,
            Command::Put(PutRequest {
                lease: 9,
                ..put_req("k", "v")
            })
        ),
        EtcdError::LeaseNotFound
    );
    for k in ["a", "b", "c"] {
        ok(
            &mut s,
            Command::Put(PutRequest {
                lease: 1,
                ..put_req(k, "v")
            }),
        );
    }
    ok(
        &mut s,
        Command::Put(PutRequest {
            lease: 2,
            ..put_req("c", "moved")
        }),
    );
    ok(&mut s, put("b", "detached"));
    assert_eq!(s.lease(1).unwrap().keys.len(), 1);
    assert_eq!(get(&s, "c").unwrap().lease, 2);
    let before = s.revision();
    let a = s.apply(&Command::LeaseRevoke { id: 1 });
    assert_eq!(a.revision, before + 1);
    assert_eq!(a.events.unwrap().events.len(), 1);
    assert!(get(&s, "a").is_none() && get(&s, "b").is_some());
    assert_eq!(
        err(&mut s, Command::LeaseRevoke { id: 1 }),
        EtcdError::LeaseNotFound
    );
    ok(
        &mut s,
        Command::Put(PutRequest {
            lease: 2,
            ..put_req("d", "v")
        }),
    );
    let a = s.apply(&Command::LeaseExpire { id: 2 });
    let group = a.events.unwrap();
    assert_eq!(group.events.len(), 2, "c and d deleted at one revision");
    assert!(group
        .events
        .iter()
        .all(|e| e.kind == EventKind::Delete && e.kv.mod_revision == a.revision));
    assert_eq!(
        err(&mut s, Command::LeaseExpire { id: 2 }),
        EtcdError::LeaseNotFound
    );
    ok(&mut s, Command::LeaseRevoke { id: 3 });
    assert_eq!(s.leases().count(), 0);
}

#[test]
fn snapshot_round_trip_is_exact() {
    let mut s = Store::new(StoreConfig {
        history_limit: 4,
        min_lease_ttl: 1,
    });
    ok(&mut s, Command::LeaseGrant { id: 0, ttl: 9 });
    for i in 0..10 {
        ok(
            &mut s,
            Command::Put(PutRequest {
                lease: i % 2,
                ..put_req(&format!("k{}", i % 3), "v")
            }),
        );
    }
    let bytes = postcard::to_allocvec(&s).unwrap();
    let back: Store = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, s);
}

//! Transactions: compares, branches, nesting and errors.

use super::super::*;
use super::*;

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

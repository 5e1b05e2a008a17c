//! Property test: two replicas applying the same random commands (puts with and without
//! leases, deletes, transactions, lease grants, revokes and expiries, compactions), one of
//! them restored from a snapshot of itself at a random point, return the same outputs and
//! end in the same state; and the lease bookkeeping stays consistent after every command
//! (a key names its lease exactly when that lease lists the key).

use etcd_api::store::{
    Command, Compare, CompareResult, CompareTarget, DeleteRequest, PutRequest, RangeRequest,
    RequestOp, Store, StoreConfig, TxnRequest,
};
use proptest::prelude::*;

fn key(k: u8) -> Vec<u8> {
    vec![b'k', b'0' + k]
}

fn command() -> impl Strategy<Value = Command> {
    let put = (0u8..5, 0i64..4).prop_map(|(k, lease)| {
        Command::Put(PutRequest {
            key: key(k),
            value: vec![k],
            lease,
            ..Default::default()
        })
    });
    prop_oneof![
        4 => put,
        1 => (0u8..5, any::<bool>()).prop_map(|(k, range)| Command::DeleteRange(DeleteRequest {
            key: key(k),
            range_end: if range { vec![0] } else { vec![] },
            prev_kv: true,
        })),
        2 => (0u8..5, 0i64..3, 0i64..4).prop_map(|(k, version, lease)| Command::Txn(TxnRequest {
            compare: vec![Compare {
                key: key(k),
                range_end: vec![],
                result: CompareResult::Equal,
                target: CompareTarget::Version(version),
            }],
            success: vec![RequestOp::Put(PutRequest { key: key(k), value: vec![9], lease, ..Default::default() })],
            failure: vec![RequestOp::Delete(DeleteRequest { key: key((k + 1) % 5), range_end: vec![], prev_kv: false })],
        })),
        1 => (0i64..4).prop_map(|id| Command::LeaseGrant { id, ttl: 5 }),
        1 => (1i64..4).prop_map(|id| Command::LeaseRevoke { id }),
        1 => (1i64..4).prop_map(|id| Command::LeaseExpire { id }),
        1 => (0i64..30).prop_map(|revision| Command::Compact { revision }),
    ]
}

fn check_leases(s: &Store) -> Result<(), TestCaseError> {
    let all = s
        .range(&RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        })
        .unwrap();
    for kv in &all.kvs {
        if kv.lease != 0 {
            let lease = s.lease(kv.lease);
            prop_assert!(
                lease.is_some_and(|l| l.keys.contains(&kv.key)),
                "{kv:?} not in its lease"
            );
        }
    }
    for (id, lease) in s.leases() {
        for k in &lease.keys {
            prop_assert_eq!(s.get(k).map(|kv| kv.lease), Some(id));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn replicas_agree(cmds in proptest::collection::vec(command(), 1..80), restore_at in 0usize..80) {
        let config = StoreConfig { history_limit: 16, min_lease_ttl: 1 };
        let mut a = Store::new(config.clone());
        let mut b = Store::new(config);
        for (i, cmd) in cmds.iter().enumerate() {
            if i == restore_at {
                b = postcard::from_bytes(&postcard::to_allocvec(&b).unwrap()).unwrap();
            }
            let (ra, rb) = (a.apply(cmd), b.apply(cmd));
            prop_assert_eq!(&ra, &rb);
            if let Some(events) = &ra.events {
                prop_assert_eq!(events.revision, ra.revision);
                prop_assert!(events.events.iter().all(|e| e.kv.mod_revision == ra.revision));
            }
            check_leases(&a)?;
        }
        prop_assert_eq!(a, b);
    }
}

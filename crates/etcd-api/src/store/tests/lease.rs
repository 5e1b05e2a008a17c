//! Leases and snapshots.

use super::super::*;
use super::*;

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

//! Lease timing of the in-memory backend in virtual time (tokio's paused clock), so the
//! deadlines are exact: keep-alives hold a lease past its TTL, and it expires one TTL after
//! the last renewal, deleting its keys at one revision.

use std::time::Duration;

use etcd_api::backend::EtcdBackend;
use etcd_api::mem::MemBackend;
use etcd_api::store::{Command, CommandOutput, PutRequest, StoreConfig};
use etcd_api::EtcdError;
use tokio::time::advance;

#[tokio::test(start_paused = true)]
async fn keep_alive_holds_a_lease_and_expiry_follows_the_last_renewal() {
    let b = MemBackend::new(StoreConfig {
        history_limit: 100,
        min_lease_ttl: 1,
    });
    let granted = b
        .propose(Command::LeaseGrant { id: 0, ttl: 2 })
        .await
        .unwrap();
    let Ok(CommandOutput::LeaseGrant { id, ttl: 2 }) = granted.output else {
        panic!("{granted:?}")
    };
    for k in ["a", "b"] {
        let put = PutRequest {
            key: k.into(),
            value: b"v".to_vec(),
            lease: id,
            ..Default::default()
        };
        b.propose(Command::Put(put)).await.unwrap().output.unwrap();
    }
    // Renewed every 1.5 s, the 2 s lease lives through 6 s.
    for _ in 0..4 {
        advance(Duration::from_millis(1500)).await;
        assert_eq!(b.expire_due_leases(), 0);
        assert_eq!(b.lease_keep_alive(id).await, Ok(2));
        assert_eq!(b.lease_remaining(id).await, Ok(Some(2)));
    }
    assert_eq!(b.store().len(), 2);
    // Then left alone: still there just before its deadline, gone at it.
    advance(Duration::from_millis(1999)).await;
    assert_eq!(b.lease_remaining(id).await, Ok(Some(0)));
    assert_eq!(b.expire_due_leases(), 0);
    let revision = b.store().revision();
    advance(Duration::from_millis(1)).await;
    assert_eq!(b.expire_due_leases(), 1);
    let store = b.store();
    assert!(store.is_empty());
    assert_eq!(
        store.revision(),
        revision + 1,
        "both keys deleted at one revision"
    );
    assert!(store.lease(id).is_none());
    assert_eq!(b.lease_keep_alive(id).await, Err(EtcdError::LeaseNotFound));
    assert_eq!(b.lease_remaining(id).await, Ok(None));
}

#[tokio::test(start_paused = true)]
async fn a_revoked_lease_is_not_expired_again() {
    let b = MemBackend::new(StoreConfig::default());
    b.propose(Command::LeaseGrant { id: 7, ttl: 5 })
        .await
        .unwrap()
        .output
        .unwrap();
    b.propose(Command::LeaseRevoke { id: 7 })
        .await
        .unwrap()
        .output
        .unwrap();
    advance(Duration::from_secs(10)).await;
    assert_eq!(b.expire_due_leases(), 0);
}

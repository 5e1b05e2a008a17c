//! `raft-wal inspect` and `verify` on a real directory, healthy and damaged.

use raft_core::{Bytes, Entry, HardState};
use raft_storage::{Storage, WriteBatch};
use raft_wal::fs::StdFs;
use raft_wal::inspect::{inspect, verify};
use raft_wal::{segment_name, LogOptions, WalOptions, WalStorage};

/// Small segments: the default 64 MiB would write far more than these tests need.
fn opts(cluster: u64, node: u64) -> WalOptions {
    WalOptions {
        log: LogOptions {
            segment_size: 64 << 10,
            ..LogOptions::default()
        },
        ..WalOptions::new(cluster, node)
    }
}

#[test]
fn inspect_describes_and_verify_refuses_damage() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("n");
    let mut s = WalStorage::open(&dir, opts(5, 2)).expect("open");
    let es: Vec<Entry> = (1..=10)
        .map(|i| Entry::new(3, i, Bytes::from(vec![1u8; 50])))
        .collect();
    s.write(WriteBatch {
        hard_state: Some(HardState {
            term: 3,
            vote: Some(2),
        }),
        entries: &es,
        ..Default::default()
    })
    .expect("write");
    drop(s);
    let report = inspect(&StdFs, &dir).expect("inspect");
    assert!(report.contains("cluster 5 node 2"), "{report}");
    assert!(report.contains("index 1..=10, term 3..=3"), "{report}");
    assert!(report.contains("term 3 vote Some(2)"), "{report}");
    verify(&StdFs, &dir).expect("healthy directory verifies");

    // Damage the first entry's payload: verify names the segment and the offset.
    let seg = dir.join(segment_name(0));
    let mut bytes = std::fs::read(&seg).expect("read");
    let at = bytes
        .windows(50)
        .position(|w| w == [1u8; 50])
        .expect("payload");
    bytes[at + 10] ^= 0x10;
    std::fs::write(&seg, &bytes).expect("write");
    let err = verify(&StdFs, &dir)
        .expect_err("damage is found")
        .to_string();
    assert!(
        err.contains("seg-0000000000000000.wal") && err.contains("offset"),
        "{err}"
    );
    // And opening refuses with a typed error instead of dropping the entries.
    assert!(WalStorage::open(&dir, opts(5, 2)).is_err());
    // Another node's directory is refused by name.
    let other = root.path().join("m");
    drop(WalStorage::open(&other, opts(5, 2)).expect("open"));
    let err = WalStorage::open(&other, opts(5, 3))
        .err()
        .expect("wrong node refused")
        .to_string();
    assert!(
        err.contains("belongs to cluster 5 node 2, not cluster 5 node 3"),
        "{err}"
    );
}

#[test]
fn another_format_version_is_refused_by_name() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("n");
    drop(WalStorage::open(&dir, opts(1, 1)).expect("open"));
    let seg = dir.join(segment_name(0));
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[8] = 9; // version
    let crc = crc32c::crc32c(&bytes[0..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, &bytes).expect("write");
    let err = WalStorage::open(&dir, opts(1, 1)).err().expect("refused");
    assert!(
        matches!(err, raft_wal::WalError::UnsupportedVersion { found: 9, .. }),
        "{err}"
    );
}

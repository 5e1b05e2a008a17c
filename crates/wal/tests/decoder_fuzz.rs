//! Arbitrary bytes through the record scanner and through a whole recovery: errors are
//! fine, panics are not.
//!
//! Longer: `PROPTEST_CASES=100000 cargo test -p raft-wal --test decoder_fuzz --release`.

mod common;

use common::faultfs::FaultFs;
use proptest::prelude::*;
use raft_core::{Bytes, Entry};
use raft_storage::{Storage, WriteBatch};
use raft_wal::format::{encode_segment_header, Identity};
use raft_wal::fs::FileSystem;
use raft_wal::recovery::scan_segment;
use raft_wal::{LogOptions, Preallocate, WalOptions, WalStorage};
use std::path::Path;
use std::sync::Arc;

const ID: Identity = Identity {
    cluster_id: 1,
    node_id: 1,
};

fn opts() -> WalOptions {
    WalOptions {
        log: LogOptions {
            segment_size: 1024,
            group_commit: false,
            preallocate: Preallocate::Inline,
        },
        ..WalOptions::new(1, 1)
    }
}

/// A valid small segment to mutate.
fn valid_segment() -> Vec<u8> {
    let fs = FaultFs::new();
    let mut s = WalStorage::open_with(Arc::new(fs.clone()), Path::new("/d"), opts()).expect("open");
    for i in 1..=5u64 {
        let e = Entry::new(1, i, Bytes::from(vec![i as u8; 30]));
        s.write(WriteBatch {
            entries: &[e],
            ..Default::default()
        })
        .expect("write");
    }
    fs.contents(&Path::new("/d").join(raft_wal::segment_name(0)))
        .expect("segment")
}

fn recover_from(bytes: Vec<u8>) {
    let fs = FaultFs::new();
    let path = Path::new("/d").join(raft_wal::segment_name(0));
    let f = fs.create(&path).expect("create");
    f.write_at(&bytes, 0).expect("write");
    if let Ok(s) = WalStorage::open_with(Arc::new(fs), Path::new("/d"), opts()) {
        let _ = s.restore();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scanner_never_panics(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut buf = encode_segment_header(ID, 0).to_vec();
        buf.extend_from_slice(&body);
        let _ = scan_segment(Path::new("x"), &buf, |_| Ok(()));
        let _ = scan_segment(Path::new("x"), &body, |_| Ok(()));
    }

    #[test]
    fn recovery_of_random_segment_never_panics(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut buf = encode_segment_header(ID, 0).to_vec();
        buf.extend_from_slice(&body);
        recover_from(buf);
        recover_from(body);
    }

    #[test]
    fn recovery_of_mutated_segment_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut seg = valid_segment();
        for (at, v) in edits {
            let i = at.index(seg.len());
            seg[i] = v;
        }
        let keep = cut.index(seg.len() + 1);
        let mut shorter = seg.clone();
        shorter.truncate(keep);
        recover_from(seg);
        recover_from(shorter);
    }
}

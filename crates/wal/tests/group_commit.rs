//! Group commit under real threads: many writers share one `Wal`; every append that
//! returned is durable (it survives a crash that drops all unsynced writes), across
//! segment rolls, whichever thread happened to lead each sync.

mod common;

use common::faultfs::{CrashMode, FaultFs};
use raft_wal::format::{Identity, RecordType};
use raft_wal::recovery::{list, scan};
use raft_wal::{LogOptions, Preallocate, Wal};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

#[test]
fn every_returned_append_is_durable() {
    let fs = FaultFs::new();
    let dir = Path::new("/wal");
    let id = Identity {
        cluster_id: 1,
        node_id: 1,
    };
    let wal = Arc::new(
        Wal::create(
            Arc::new(fs.clone()),
            dir,
            id,
            LogOptions {
                segment_size: 8 << 10,
                group_commit: true,
                preallocate: Preallocate::Background,
            },
            Vec::new(),
        )
        .expect("create"),
    );
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                for i in 0..60u8 {
                    let payload = [t, i, 0xEE, 0xEE];
                    wal.append(&[(RecordType::Entries, &payload[..])])
                        .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    drop(wal);
    let after = fs.crash(CrashMode::DropUnsynced);
    let listing = list(&after, dir).expect("list");
    assert!(listing.segments.len() > 1, "the log rolled over segments");
    let mut seen = BTreeSet::new();
    let summary = scan(&after, dir, &listing, Some(id), false, |_, buf, frames| {
        for f in frames {
            let p = &buf[f.payload.0..f.payload.1];
            assert!(seen.insert((p[0], p[1])), "record written once");
        }
        Ok(())
    })
    .expect("scan");
    assert_eq!(summary.torn, None);
    assert_eq!(seen.len(), 8 * 60, "every acknowledged append survived");
}

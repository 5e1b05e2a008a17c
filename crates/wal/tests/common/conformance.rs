//! One suite for every `Storage`: each check takes a factory that opens the storage, and
//! a `reopen` that gives the storage as it would be after a restart (for `MemStorage`,
//! the same shared state; for `WalStorage`, a fresh open of its directory).

use raft_core::{Bytes, Entry, HardState, Snapshot, SnapshotMeta};
use raft_storage::{Storage, StorageError, WriteBatch};

/// How a suite gets storages.
pub trait Harness {
    /// The storage under test.
    type S: Storage;
    /// A fresh, empty storage.
    fn fresh(&mut self) -> Self::S;
    /// The same storage after a restart (the old handle is dropped first).
    fn reopen(&mut self, s: Self::S) -> Self::S;
}

pub fn e(index: u64, term: u64) -> Entry {
    Entry::new(term, index, Bytes::from(format!("cmd-{index}-{term}")))
}

fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to).map(|i| e(i, term)).collect()
}

fn append<S: Storage>(s: &mut S, es: &[Entry]) {
    s.write(WriteBatch {
        entries: es,
        ..Default::default()
    })
    .expect("append");
}

fn size_of(es: &[Entry]) -> u64 {
    17 + es.iter().map(|e| e.size() as u64).sum::<u64>()
}

/// Runs every check.
pub fn run_all<H: Harness>(h: &mut H) {
    appends_and_hard_state(h);
    truncation(h);
    snapshot_keeps_or_drops(h);
    compaction_and_sizes(h);
    rejects_gaps(h);
    many_batches_survive_reopen(h);
    batch_larger_than_a_segment(h);
}

pub fn appends_and_hard_state<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let r = s.restore().expect("restore");
    assert_eq!(r.hard_state, HardState::default());
    assert!(r.entries.is_empty());
    let hs = HardState {
        term: 3,
        vote: Some(2),
    };
    let es = entries(1, 5, 1);
    s.write(WriteBatch {
        hard_state: Some(hs),
        entries: &es,
        ..Default::default()
    })
    .expect("write");
    assert_eq!(s.raft_state_size(), size_of(&es));
    let s = h.reopen(s);
    let r = s.restore().expect("restore");
    assert_eq!(r.hard_state, hs);
    assert_eq!(r.entries, es);
    assert_eq!(s.raft_state_size(), size_of(&es));
}

pub fn truncation<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 6, 1));
    let new = entries(4, 5, 2);
    s.write(WriteBatch {
        truncate_from: Some(4),
        entries: &new,
        ..Default::default()
    })
    .expect("truncate");
    let mut want = entries(1, 3, 1);
    want.extend(new);
    assert_eq!(s.restore().expect("restore").entries, want);
    assert_eq!(s.raft_state_size(), size_of(&want));
    // A truncation alone, then reopen.
    s.write(WriteBatch {
        truncate_from: Some(2),
        ..Default::default()
    })
    .expect("truncate");
    let s = h.reopen(s);
    assert_eq!(s.restore().expect("restore").entries, entries(1, 1, 1));
    assert_eq!(s.raft_state_size(), size_of(&entries(1, 1, 1)));
}

pub fn snapshot_keeps_or_drops<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 3, 1));
    append(&mut s, &entries(4, 6, 2));
    let snap = Snapshot {
        meta: SnapshotMeta { index: 4, term: 2 },
        data: Bytes::from_static(b"state through 4"),
    };
    s.write(WriteBatch {
        snapshot: Some(&snap),
        ..Default::default()
    })
    .expect("snapshot");
    let s2 = h.reopen(s);
    let r = s2.restore().expect("restore");
    assert_eq!(r.snapshot, snap.meta);
    assert_eq!(r.snapshot_data, snap.data);
    assert_eq!(r.entries, entries(5, 6, 2));
    assert_eq!(s2.snapshot_size(), snap.data.len() as u64);
    assert_eq!(s2.raft_state_size(), size_of(&entries(5, 6, 2)));
    // A snapshot that disagrees with the log replaces all of it.
    let mut s = s2;
    let other = Snapshot {
        meta: SnapshotMeta { index: 6, term: 7 },
        data: Bytes::from_static(b"other"),
    };
    s.write(WriteBatch {
        snapshot: Some(&other),
        entries: &entries(7, 7, 7),
        ..Default::default()
    })
    .expect("snapshot");
    let s = h.reopen(s);
    let r = s.restore().expect("restore");
    assert_eq!(r.snapshot, other.meta);
    assert_eq!(r.snapshot_data, other.data);
    assert_eq!(r.entries, entries(7, 7, 7));
}

pub fn compaction_and_sizes<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    for i in 0..20 {
        append(&mut s, &entries(i * 10 + 1, i * 10 + 10, 1));
    }
    let snap = Snapshot {
        meta: SnapshotMeta {
            index: 155,
            term: 1,
        },
        data: Bytes::from(vec![7u8; 1000]),
    };
    s.write(WriteBatch {
        snapshot: Some(&snap),
        hard_state: Some(HardState {
            term: 1,
            vote: None,
        }),
        ..Default::default()
    })
    .expect("snapshot");
    let live = entries(156, 200, 1);
    assert_eq!(s.raft_state_size(), size_of(&live));
    assert_eq!(s.snapshot_size(), 1000);
    let s = h.reopen(s);
    let r = s.restore().expect("restore");
    assert_eq!(r.entries, live);
    assert_eq!(s.raft_state_size(), size_of(&live));
    assert_eq!(s.snapshot_size(), 1000);
}

pub fn rejects_gaps<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    append(&mut s, &entries(1, 2, 1));
    let err = s.write(WriteBatch {
        entries: &entries(4, 4, 1),
        ..Default::default()
    });
    assert!(matches!(err, Err(StorageError::InvalidWrite(_))), "{err:?}");
    let s = h.reopen(s);
    assert_eq!(s.restore().expect("restore").entries, entries(1, 2, 1));
}

pub fn many_batches_survive_reopen<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let mut want = Vec::new();
    for i in 1..=300u64 {
        let term = 1 + i / 100;
        let es = entries(i, i, term);
        s.write(WriteBatch {
            hard_state: (i % 50 == 0).then_some(HardState {
                term,
                vote: Some(i % 3),
            }),
            entries: &es,
            ..Default::default()
        })
        .expect("write");
        want.extend(es);
    }
    let s = h.reopen(s);
    let r = s.restore().expect("restore");
    assert_eq!(r.entries, want);
    assert_eq!(
        r.hard_state,
        HardState {
            term: 4,
            vote: Some(0)
        }
    );
}

/// One batch bigger than a (small) WAL segment: it gets a segment of its own, sized to fit.
pub fn batch_larger_than_a_segment<H: Harness>(h: &mut H) {
    let mut s = h.fresh();
    let big: Vec<Entry> = (1..=200)
        .map(|i| Entry::new(1, i, Bytes::from(vec![i as u8; 100])))
        .collect();
    append(&mut s, &big);
    append(&mut s, &entries(201, 203, 1));
    let s = h.reopen(s);
    let r = s.restore().expect("restore");
    assert_eq!(r.entries.len(), 203);
    assert_eq!(&r.entries[..200], &big[..]);
    assert_eq!(s.raft_state_size(), size_of(&r.entries));
}

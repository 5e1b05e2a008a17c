//! Simulated crashes on the fault-injecting file system, driven by random seeds: the
//! process dies at a random file operation, the unsynced writes are dropped or persisted
//! up to a tear at a random byte, or a synced bit rots. Recovery must return a state that
//! was durable at a sync point at or after the last acknowledged write, or refuse with an
//! error that names the damage.
//!
//! More cases: `PROPTEST_CASES=5000 cargo test -p raft-wal --test crash --release`.

mod common;

use common::faultfs::{CrashMode, FaultFs};
use proptest::prelude::*;
use raft_core::{Bytes, Entry, HardState, RestoredState, Snapshot, SnapshotMeta};
use raft_storage::{MemStorage, Storage, WriteBatch};
use raft_wal::{LogOptions, Preallocate, WalError, WalOptions, WalStorage};
use rand::Rng;
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const DIR: &str = "/node";

fn opts() -> WalOptions {
    WalOptions {
        log: LogOptions {
            segment_size: 2048,
            group_commit: true,
            preallocate: Preallocate::Inline,
        },
        ..WalOptions::new(1, 2)
    }
}

fn open(fs: &FaultFs) -> Result<WalStorage, WalError> {
    WalStorage::open_with(Arc::new(fs.clone()), Path::new(DIR), opts())
}

/// An owned batch, valid for the model's current state.
#[derive(Clone, Debug, Default)]
struct Batch {
    hard_state: Option<HardState>,
    snapshot: Option<Snapshot>,
    truncate_from: Option<u64>,
    entries: Vec<Entry>,
}

impl Batch {
    fn as_write(&self) -> WriteBatch<'_> {
        WriteBatch {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref(),
            truncate_from: self.truncate_from,
            entries: &self.entries,
        }
    }
}

fn data(rng: &mut ChaCha8Rng, max: usize) -> Bytes {
    let n = rng.gen_range(0..=max);
    Bytes::from((0..n).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>())
}

fn random_batch(rng: &mut ChaCha8Rng, state: &RestoredState) -> Batch {
    let snap = state.snapshot.index;
    let last = snap + state.entries.len() as u64;
    let term_of = |i: u64| {
        if i == snap {
            state.snapshot.term
        } else {
            state.entries[(i - snap - 1) as usize].term
        }
    };
    let term = state.hard_state.term.max(1);
    let mut b = Batch::default();
    let appends = |rng: &mut ChaCha8Rng, from: u64, term: u64| -> Vec<Entry> {
        let k = rng.gen_range(1..=6u64);
        (from..from + k)
            .map(|index| Entry::new(term, index, data(rng, 150)))
            .collect()
    };
    match rng.gen_range(0..10) {
        0 => {
            b.hard_state = Some(HardState {
                term: term + 1,
                vote: rng.gen_bool(0.5).then(|| rng.gen_range(0..3)),
            });
            b.entries = appends(rng, last + 1, term + 1);
        }
        1 if last > snap => {
            let from = rng.gen_range(snap + 1..=last);
            b.hard_state = Some(HardState {
                term: term + 1,
                vote: None,
            });
            b.truncate_from = Some(from);
            b.entries = appends(rng, from, term + 1);
        }
        2 if last > snap => {
            let index = rng.gen_range(snap + 1..=last);
            b.snapshot = Some(Snapshot {
                meta: SnapshotMeta {
                    index,
                    term: term_of(index),
                },
                data: data(rng, 300),
            });
        }
        3 => {
            // A snapshot from a leader, disagreeing with (or beyond) the log.
            let index = last + rng.gen_range(0..3);
            b.hard_state = Some(HardState {
                term: term + 1,
                vote: None,
            });
            b.snapshot = Some(Snapshot {
                meta: SnapshotMeta {
                    index: index.max(snap + 1),
                    term: term + 1,
                },
                data: data(rng, 300),
            });
        }
        4 if last > snap => b.truncate_from = Some(rng.gen_range(snap + 1..=last)),
        _ => b.entries = appends(rng, last + 1, term),
    }
    b
}

/// Runs random batches until the process dies (or `ops` batches are done). Returns every
/// acknowledged state (index 0 = empty) and the state the failed batch would have made.
fn run(fs: &FaultFs, seed: u64, ops: usize) -> (Vec<RestoredState>, Option<RestoredState>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = MemStorage::new();
    let mut states = vec![model.restore().expect("model")];
    let Ok(mut wal) = open(fs) else {
        return (states, None);
    };
    for _ in 0..ops {
        let b = random_batch(&mut rng, states.last().expect("state"));
        let mut next = model.deep_copy();
        next.write(b.as_write())
            .expect("model accepts its own batch");
        let after = next.restore().expect("model");
        match wal.write(b.as_write()) {
            Ok(()) => {
                model = next;
                states.push(after);
            }
            Err(_) => return (states, Some(after)),
        }
    }
    (states, None)
}

fn recovered(fs: &FaultFs) -> Result<RestoredState, String> {
    let s = open(fs).map_err(|e| e.to_string())?;
    s.restore().map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Dies at a random operation; unsynced writes dropped or torn: nothing acknowledged
    /// is lost, nothing never written appears, and the repaired directory reopens again.
    #[test]
    fn crash_recovers_a_synced_state(
        seed in any::<u64>(),
        die_at in 0u64..600,
        tear in any::<bool>(),
        keep in 0usize..8,
        tear_at in 0usize..400,
    ) {
        let fs = FaultFs::new();
        fs.die_after(die_at);
        let (states, failed) = run(&fs, seed, 80);
        let mode = if tear { CrashMode::Tear { keep, tear_at } } else { CrashMode::DropUnsynced };
        let after = fs.crash(mode);
        let got = recovered(&after).map_err(TestCaseError::fail)?;
        let acked = states.last().expect("state");
        prop_assert!(
            &got == acked || Some(&got) == failed.as_ref(),
            "recovered {:?} entries (snapshot {:?}), acknowledged {:?} (snapshot {:?})",
            got.entries.len(), got.snapshot, acked.entries.len(), acked.snapshot
        );
        // Recovery is repeatable: the repaired directory gives the same state again.
        let again = recovered(&after).map_err(TestCaseError::fail)?;
        prop_assert_eq!(again, got);
    }

    /// A bit flipped anywhere in the records or headers of a synced directory: recovery
    /// refuses with an error naming the damage, or (if the bit was in nothing that
    /// recovery uses) returns exactly the acknowledged state. Never anything else.
    #[test]
    fn bit_rot_is_refused_or_harmless(
        seed in any::<u64>(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let fs = FaultFs::new();
        let (states, failed) = run(&fs, seed, 40);
        prop_assert!(failed.is_none());
        let after = fs.crash(CrashMode::DropUnsynced);
        let files: Vec<PathBuf> = after.paths();
        let path = which.get(&files).clone();
        let bytes = after.contents(&path).expect("file");
        let used = bytes.iter().rposition(|&b| b != 0).map_or(1, |p| p + 1);
        after.flip_bit(&path, at.index(used), bit);
        match open(&after).and_then(|s| s.restore().map_err(|e| WalError::InvalidWrite(e.to_string()))) {
            Ok(got) => prop_assert_eq!(&got, states.last().expect("state")),
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(
                    matches!(e, WalError::Corrupt { .. } | WalError::UnsupportedVersion { .. }
                        | WalError::WrongIdentity { .. } | WalError::Inconsistent { .. }),
                    "unexpected error kind: {}", msg
                );
            }
        }
    }
}

/// A torn tail is repaired on open, and a damaged record followed by valid ones is
/// refused with its file and offset: the two cases side by side on one log.
#[test]
fn torn_tail_repaired_but_mid_log_damage_refused() {
    let fs = FaultFs::new();
    let (states, _) = run(&fs, 42, 5);
    let good = states.last().expect("state").clone();
    // An unsynced write after the last ack, torn: recovery drops it.
    let mut wal = open(&fs).expect("open");
    fs.die_after(1);
    let extra = random_batch(&mut ChaCha8Rng::seed_from_u64(1), &good);
    let _ = wal.write(extra.as_write());
    let torn = fs.crash(CrashMode::Tear {
        keep: 0,
        tear_at: 20,
    });
    assert_eq!(recovered(&torn).expect("torn tail is repaired"), good);
    // A flipped bit in the first record after the checkpoint: refused, with the place.
    let seg = PathBuf::from(DIR).join(raft_wal::segment_name(0));
    let bytes = torn.contents(&seg).expect("segment");
    let first_user_record = 40 + 2 * 17 + 1 + 4; // header, checkpoint (hard state, marker)
    assert!(bytes.len() > first_user_record + 40);
    torn.flip_bit(&seg, first_user_record + 30, 3);
    let err = open(&torn).err().expect("refused");
    let msg = err.to_string();
    assert!(matches!(err, WalError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("seg-0000000000000000.wal") && msg.contains("offset"),
        "{msg}"
    );
}

/// The generator reaches every kind of batch and the log crosses segments and deletes
/// them: the property tests above are not vacuous.
#[test]
fn workload_exercises_segments_and_snapshots() {
    let fs = FaultFs::new();
    let (states, failed) = run(&fs, 7, 200);
    assert!(failed.is_none());
    assert_eq!(states.len(), 201);
    let last = states.last().expect("state");
    assert!(last.snapshot.index > 0, "a snapshot was taken");
    let segs: Vec<_> = fs
        .paths()
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".wal"))
        .collect();
    let first = segs
        .first()
        .expect("segment")
        .to_string_lossy()
        .into_owned();
    assert!(
        !first.ends_with(&raft_wal::segment_name(0)),
        "old segments were deleted: {segs:?}"
    );
    assert!(fs.ops() > 500, "ops {}", fs.ops());
    assert_eq!(
        recovered(&fs.crash(CrashMode::DropUnsynced)).expect("recover"),
        *last
    );
}

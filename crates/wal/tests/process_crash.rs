//! A real process writes through `WalStorage` and reports each batch once `write` has
//! returned (so it is synced); the parent kills it with SIGKILL at random moments,
//! reopens the directory and checks that every reported batch is there, in order.
//!
//! The child is this test executable re-invoked with `RAFT_WAL_CRASH_CHILD_DIR` set, so
//! that it runs only `crash_child`. The default run kills 20 times; `#[ignore]`d
//! `sigkill_many_times` kills 200 times (`RAFT_WAL_CRASH_KILLS=N` changes either):
//! `cargo test -p raft-wal --test process_crash -- --ignored`.

use raft_core::{Bytes, Entry, HardState, Snapshot, SnapshotMeta};
use raft_storage::{Storage, WriteBatch};
use raft_wal::{LogOptions, Preallocate, WalOptions, WalStorage};
use rand::Rng;
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CHILD_ENV: &str = "RAFT_WAL_CRASH_CHILD_DIR";

fn opts() -> WalOptions {
    WalOptions {
        log: LogOptions {
            segment_size: 64 << 10,
            group_commit: true,
            preallocate: Preallocate::Background,
        },
        ..WalOptions::new(3, 0)
    }
}

fn payload(index: u64) -> Bytes {
    Bytes::from(format!(
        "entry-{index}-{}",
        "x".repeat((index % 97) as usize)
    ))
}

fn snapshot_data(index: u64) -> Bytes {
    Bytes::from(format!("state-through-{index}"))
}

/// The child's work: append forever, snapshot now and then, report each synced batch.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return; // Not a child: nothing to do.
    };
    let mut s = WalStorage::open(&dir, opts()).expect("child opens");
    let r = s.restore().expect("child restores");
    let mut last = r.snapshot.index + r.entries.len() as u64;
    let mut term = r.hard_state.term + 1;
    let mut out = std::io::stdout().lock();
    for batch in 0u64..1_000_000 {
        let n = 1 + batch % 8;
        let entries: Vec<Entry> = (last + 1..=last + n)
            .map(|index| Entry::new(term, index, payload(index)))
            .collect();
        let snap = (batch % 40 == 39 && last > 10).then(|| Snapshot {
            meta: SnapshotMeta {
                index: last - 5,
                term,
            },
            data: snapshot_data(last - 5),
        });
        let hs = (batch % 25 == 0).then_some(HardState {
            term,
            vote: Some(0),
        });
        s.write(WriteBatch {
            hard_state: hs,
            snapshot: snap.as_ref(),
            truncate_from: None,
            entries: &entries,
        })
        .expect("child writes");
        last += n;
        writeln!(out, "ack {last}").expect("stdout");
        out.flush().expect("stdout");
        if batch % 25 == 0 {
            term += 1;
        }
    }
}

/// Kills the child on every path out of the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Checks the directory holds a contiguous log of the child's entries through at least
/// `acked`; returns the last index.
fn check(dir: &Path, acked: u64) -> u64 {
    let s = WalStorage::open(dir, opts()).expect("reopen after SIGKILL");
    let r = s.restore().expect("restore");
    if r.snapshot.index > 0 {
        assert_eq!(r.snapshot_data, snapshot_data(r.snapshot.index));
    }
    for (i, e) in r.entries.iter().enumerate() {
        let index = r.snapshot.index + 1 + i as u64;
        assert_eq!(e.index, index, "entries in order, without gaps");
        assert_eq!(e.data, payload(index), "entry {index} intact");
    }
    let last = r.snapshot.index + r.entries.len() as u64;
    assert!(
        last >= acked,
        "acknowledged through {acked}, recovered through {last}"
    );
    last
}

fn kill_loop(kills: u32, seed: u64) {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("node");
    let exe = std::env::current_exe().expect("test executable");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut acked = 0;
    for round in 0..kills {
        let mut child = KillOnDrop(
            Command::new(&exe)
                .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn child"),
        );
        let stdout = child.0.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line
                    .strip_prefix("ack ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait for a first acknowledgement (generous bound), then kill at a random moment.
        let first = rx.recv_timeout(Duration::from_secs(60));
        assert!(
            first.is_ok(),
            "round {round}: the child acknowledged nothing"
        );
        std::thread::sleep(Duration::from_micros(rng.gen_range(0..30_000)));
        drop(child); // SIGKILL, then reap.
        let _ = reader.join();
        let seen: Vec<u64> = first.into_iter().chain(rx.try_iter()).collect();
        acked = seen.into_iter().fold(acked, u64::max);
        let last = check(&dir, acked);
        assert!(last >= acked);
    }
    assert!(acked > 0);
}

#[test]
fn sigkill_at_random_moments() {
    let kills = std::env::var("RAFT_WAL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    kill_loop(kills, 1);
}

#[test]
#[ignore = "200 kills; run in CI with --ignored"]
fn sigkill_many_times() {
    let kills = std::env::var("RAFT_WAL_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    kill_loop(kills, 2);
}

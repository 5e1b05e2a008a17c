//! WAL benchmark: the machine's fdatasync floor, then synced append latency and throughput
//! of `raft-wal`, then recovery time. Prints a table; no assertions.
//!
//! `cargo bench -p raft-wal` (add `-- --quick` for fewer samples).
//! `RAFT_WAL_BENCH_RECOVERY_MIB=1024` sets the size of the recovered log (default 128).
//! `RAFT_WAL_BENCH_DIR` picks the directory (default: cargo's target tmp dir).

use raft_core::{Bytes, Entry};
use raft_storage::{Storage, WriteBatch};
use raft_wal::format::{Identity, RecordType};
use raft_wal::fs::{FileSystem, StdFs};
use raft_wal::{LogOptions, Wal, WalOptions, WalStorage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ENTRY_BYTES: usize = 100;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Stats {
    p50: Duration,
    p99: Duration,
    entries_per_s: f64,
}

fn stats(mut lat: Vec<Duration>, entries: u64, wall: Duration) -> Stats {
    lat.sort_unstable();
    Stats {
        p50: pct(&lat, 0.5),
        p99: pct(&lat, 0.99),
        entries_per_s: entries as f64 / wall.as_secs_f64(),
    }
}

fn row(name: &str, s: &Stats) {
    println!(
        "| {name} | {:.0} | {:.0} | {:.0} |",
        us(s.p50),
        us(s.p99),
        s.entries_per_s
    );
}

/// fdatasync of a 4 KiB write into a preallocated (zero-filled, synced) file.
fn floor(dir: &Path, n: usize) -> Stats {
    let path = dir.join("floor.dat");
    let fs = StdFs;
    let f = fs.create(&path).expect("create");
    let size = (n as u64 + 1) * 4096;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let k = (size - at).min(zeros.len() as u64);
        f.write_at(&zeros[..k as usize], at).expect("fill");
        at += k;
    }
    f.sync_all().expect("sync");
    fs.sync_dir(dir).expect("sync dir");
    let block = vec![7u8; 4096];
    let mut lat = Vec::with_capacity(n);
    let t0 = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        f.write_at(&block, i as u64 * 4096).expect("write");
        f.sync_data().expect("sync");
        lat.push(t.elapsed());
    }
    let wall = t0.elapsed();
    let _ = fs.remove(&path);
    stats(lat, n as u64, wall)
}

fn entries(from: u64, n: usize) -> Vec<Entry> {
    (from..from + n as u64)
        .map(|index| {
            Entry::new(
                1,
                index,
                Bytes::from(vec![(index % 251) as u8; ENTRY_BYTES]),
            )
        })
        .collect()
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Sequential `WalStorage::write` of `batch` entries per write.
fn storage_seq(dir: &Path, batch: usize, group_commit: bool, n: usize) -> Stats {
    let d = fresh(dir, "seq");
    let opts = WalOptions {
        log: LogOptions {
            segment_size: 64 << 20,
            group_commit,
            ..LogOptions::default()
        },
        ..WalOptions::new(1, 1)
    };
    let mut s = WalStorage::open(&d, opts).expect("open");
    let mut lat = Vec::with_capacity(n);
    let mut next = 1;
    let t0 = Instant::now();
    for _ in 0..n {
        let es = entries(next, batch);
        next += batch as u64;
        let t = Instant::now();
        s.write(WriteBatch {
            entries: &es,
            ..Default::default()
        })
        .expect("write");
        lat.push(t.elapsed());
    }
    let wall = t0.elapsed();
    drop(s);
    let _ = std::fs::remove_dir_all(&d);
    stats(lat, n as u64 * batch as u64, wall)
}

/// `threads` writers appending to one shared `Wal`, `batch` entries per append.
fn wal_concurrent(
    dir: &Path,
    batch: usize,
    group_commit: bool,
    threads: usize,
    per_thread: usize,
) -> Stats {
    let d = fresh(dir, "conc");
    let wal = Arc::new(
        Wal::create(
            Arc::new(StdFs),
            &d,
            Identity {
                cluster_id: 1,
                node_id: 1,
            },
            LogOptions {
                segment_size: 64 << 20,
                group_commit,
                ..LogOptions::default()
            },
            Vec::new(),
        )
        .expect("create"),
    );
    let payload = postcard::to_allocvec(&entries(1, batch)).expect("encode");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let wal = wal.clone();
            let payload = payload.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per_thread);
                for _ in 0..per_thread {
                    let t = Instant::now();
                    wal.append(&[(RecordType::Entries, &payload[..])])
                        .expect("append");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.join().expect("writer"));
    }
    let wall = t0.elapsed();
    drop(wal);
    let _ = std::fs::remove_dir_all(&d);
    stats(lat, (threads * per_thread * batch) as u64, wall)
}

/// Writes about `mib` MiB of log (batches of 256 entries of 100 B), then times
/// open (recovery) and restore (reading every entry back).
fn recovery(dir: &Path, mib: u64) -> (Duration, Duration, usize) {
    let d = fresh(dir, "recovery");
    let opts = WalOptions::new(1, 1);
    let mut s = WalStorage::open(&d, opts).expect("open");
    let mut next = 1;
    let target = mib << 20;
    let mut written = 0u64;
    while written < target {
        let es = entries(next, 256);
        next += 256;
        written += 256 * (ENTRY_BYTES as u64 + 10);
        s.write(WriteBatch {
            entries: &es,
            ..Default::default()
        })
        .expect("write");
    }
    drop(s);
    let t = Instant::now();
    let s = WalStorage::open(&d, opts).expect("recover");
    let open = t.elapsed();
    let t = Instant::now();
    let r = s.restore().expect("restore");
    let restore = t.elapsed();
    let n = r.entries.len();
    drop(s);
    let _ = std::fs::remove_dir_all(&d);
    (open, restore, n)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = std::env::var("RAFT_WAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wal-bench"));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let n = if quick { 200 } else { 1000 };

    println!("## fdatasync floor vs single-entry synced append, alternating (3 rounds)\n");
    println!(
        "| round | floor p50 µs | floor p99 µs | WAL 1×100 B p50 µs | WAL p99 µs | ratio p50 |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for round in 1..=3 {
        let f = floor(&dir, n);
        let w = storage_seq(&dir, 1, true, n);
        println!(
            "| {round} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
            us(f.p50),
            us(f.p99),
            us(w.p50),
            us(w.p99),
            w.p50.as_secs_f64() / f.p50.as_secs_f64()
        );
    }

    println!("\n## WalStorage::write, one writer (entries of 100 B)\n");
    println!("| configuration | p50 µs | p99 µs | entries/s |");
    println!("| --- | --- | --- | --- |");
    for &gc in &[false, true] {
        for &batch in &[1usize, 16, 256] {
            let s = storage_seq(&dir, batch, gc, n / 2);
            row(
                &format!(
                    "batch {batch}, group commit {}",
                    if gc { "on" } else { "off" }
                ),
                &s,
            );
        }
    }

    println!("\n## Wal::append, 16 concurrent writers (entries of 100 B)\n");
    println!("| configuration | p50 µs | p99 µs | entries/s |");
    println!("| --- | --- | --- | --- |");
    let per = if quick { 20 } else { 100 };
    for &gc in &[false, true] {
        for &batch in &[1usize, 16, 256] {
            let s = wal_concurrent(&dir, batch, gc, 16, per);
            row(
                &format!(
                    "16 writers, batch {batch}, group commit {}",
                    if gc { "on" } else { "off" }
                ),
                &s,
            );
        }
    }

    let mib = std::env::var("RAFT_WAL_BENCH_RECOVERY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 16 } else { 128 });
    let (open, restore, entries) = recovery(&dir, mib);
    println!("\n## Recovery of a {mib} MiB log ({entries} entries of 100 B)\n");
    println!(
        "open (scan, CRC check, index rebuild): {:.2} s; restore (read every entry back): {:.2} s",
        open.as_secs_f64(),
        restore.as_secs_f64()
    );
}

//! What `raft-wal inspect` and `raft-wal verify` print: a data directory's segments,
//! records, terms and index ranges, read without changing anything.

use crate::error::WalError;
use crate::format::{Frame, RecordType, SnapshotMarker};
use crate::fs::FileSystem;
use crate::recovery;
use raft_core::{Entry, HardState};
use std::fmt::Write as _;
use std::path::Path;

/// Counts and ranges of one segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentReport {
    /// Sequence number.
    pub seq: u64,
    /// Batches and records of each type (entries, hard state, truncate, snapshot).
    pub batches: u64,
    /// Records per type, in [`RecordType`] order.
    pub records: [u64; 4],
    /// Entries held (live or not).
    pub entries: u64,
    /// Lowest and highest entry index.
    pub index_range: Option<(u64, u64)>,
    /// Lowest and highest term of an entry.
    pub term_range: Option<(u64, u64)>,
    /// Offset after the last complete batch.
    pub end: u64,
}

/// Reads the directory (without repairing anything) and describes it. Fails like
/// recovery would, with the file and offset of a damaged record.
pub fn inspect(fs: &dyn FileSystem, dir: &Path) -> Result<String, WalError> {
    let listing = recovery::list(fs, dir)?;
    let mut segments: Vec<SegmentReport> = Vec::new();
    let mut last_hs = HardState::default();
    let mut markers = Vec::new();
    let summary = recovery::scan(fs, dir, &listing, None, false, |seq, buf, frames| {
        if segments.last().map(|s| s.seq) != Some(seq) {
            segments.push(SegmentReport {
                seq,
                ..Default::default()
            });
        }
        let Some(s) = segments.last_mut() else {
            return Ok(());
        };
        s.batches += 1;
        for f in frames {
            count(s, f, buf, &mut last_hs, &mut markers);
            s.end = f.end() as u64;
        }
        Ok(())
    })?;
    let mut out = String::new();
    let id = summary.identity;
    let _ = writeln!(
        out,
        "directory {}: {} segment(s), {} snapshot file(s){}",
        dir.display(),
        listing.segments.len(),
        listing.snapshots.len(),
        id.map(|i| format!(", cluster {} node {}", i.cluster_id, i.node_id))
            .unwrap_or_default()
    );
    for s in &segments {
        let _ = writeln!(
            out,
            "  {}: {} batches; records: {} entries, {} hard state, {} truncate, {} snapshot; \
             {} entries, index {}, term {}; data ends at {}",
            crate::wal::segment_name(s.seq),
            s.batches,
            s.records[0],
            s.records[1],
            s.records[2],
            s.records[3],
            s.entries,
            range(s.index_range),
            range(s.term_range),
            s.end
        );
    }
    for seq in &listing.snapshots {
        let _ = writeln!(out, "  {}", crate::snapshot::snapshot_name(*seq));
    }
    let _ = writeln!(
        out,
        "last hard state: term {} vote {:?}",
        last_hs.term, last_hs.vote
    );
    if let Some(m) = markers.last() {
        let m: &SnapshotMarker = m;
        let _ = writeln!(
            out,
            "last snapshot record: index {} term {} file {:?}",
            m.meta.index, m.meta.term, m.file
        );
    }
    if let Some(t) = &summary.torn {
        let _ = writeln!(
            out,
            "torn final write in {} at offset {} (data to {}): {} (recovery discards it)",
            crate::wal::segment_name(t.seq),
            t.offset,
            t.data_end,
            t.reason
        );
    }
    for name in &listing.temporary {
        let _ = writeln!(
            out,
            "  leftover temporary file {name} (recovery removes it)"
        );
    }
    Ok(out)
}

fn count(
    s: &mut SegmentReport,
    f: &Frame,
    buf: &[u8],
    hs: &mut HardState,
    markers: &mut Vec<SnapshotMarker>,
) {
    let payload = &buf[f.payload.0..f.payload.1];
    s.records[f.kind as usize - 1] += 1;
    match f.kind {
        RecordType::Entries => {
            if let Ok(entries) = postcard::from_bytes::<Vec<Entry>>(payload) {
                for e in &entries {
                    s.entries += 1;
                    widen(&mut s.index_range, e.index);
                    widen(&mut s.term_range, e.term);
                }
            }
        }
        RecordType::HardState => {
            if let Ok(h) = postcard::from_bytes(payload) {
                *hs = h;
            }
        }
        RecordType::Snapshot => {
            if let Ok(m) = postcard::from_bytes(payload) {
                markers.push(m);
            }
        }
        RecordType::Truncate => {}
    }
}

fn widen(r: &mut Option<(u64, u64)>, v: u64) {
    *r = Some(r.map_or((v, v), |(a, b)| (a.min(v), b.max(v))));
}

fn range(r: Option<(u64, u64)>) -> String {
    r.map_or("-".into(), |(a, b)| format!("{a}..={b}"))
}

/// Runs recovery read-only over `dir`: every CRC, the log's consistency with its snapshot,
/// and the snapshot file's checksum. Changes nothing.
pub fn verify(fs: &dyn FileSystem, dir: &Path) -> Result<(), WalError> {
    crate::storage::verify_dir(fs, dir)
}

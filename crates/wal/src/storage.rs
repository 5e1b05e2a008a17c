//! [`WalStorage`]: the durable [`Storage`] over the segmented log and snapshot files.

use crate::entries;
use crate::error::WalError;
use crate::format::{Frame, Identity, RecordType, SnapshotMarker};
use crate::fs::{FileSystem, StdFs, WalFile};
use crate::index::{LogIndex, Run};
use crate::recovery::{self, Listing};
use crate::snapshot::{self, snapshot_name};
use crate::wal::{encode_batch, LogOptions, Wal};
use raft_core::{Entry, HardState, RestoredState, SnapshotMeta};
use raft_storage::{Storage, StorageError, WriteBatch};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes the hard state counts for in [`Storage::raft_state_size`] (as in `MemStorage`).
const HARD_STATE_SIZE: u64 = 17;

/// How to open a data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// The cluster the node belongs to: a directory of another cluster is refused.
    pub cluster_id: u64,
    /// The node: a directory of another node is refused.
    pub node_id: u64,
    /// Segment size and group commit.
    pub log: LogOptions,
}

impl WalOptions {
    /// Default log options for `node_id` of `cluster_id`.
    pub fn new(cluster_id: u64, node_id: u64) -> Self {
        WalOptions {
            cluster_id,
            node_id,
            log: LogOptions::default(),
        }
    }

    fn identity(&self) -> Identity {
        Identity {
            cluster_id: self.cluster_id,
            node_id: self.node_id,
        }
    }
}

/// A Raft node's durable state in a directory: a segmented WAL and snapshot files.
///
/// Every [`write`](Storage::write) is one WAL batch with one `fdatasync` (plus, when it
/// carries a snapshot, the snapshot file's own sync before it). Memory holds the hard
/// state, the snapshot's position and one index item per entries record; entries and
/// snapshot data are read back from disk by [`restore`](Storage::restore).
pub struct WalStorage {
    wal: Wal,
    identity: Identity,
    hard_state: HardState,
    snapshot: SnapshotMeta,
    snapshot_file: Option<u64>,
    snapshot_size: u64,
    next_snapshot_seq: u64,
    log: LogIndex,
    /// Set when a durable batch could not be mirrored in memory; see `write_batch`.
    poisoned: Option<String>,
}

/// What replay accumulates.
#[derive(Default)]
struct Replay {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    snapshot_file: Option<u64>,
    log: LogIndex,
    seen_checkpoint: bool,
}

impl WalStorage {
    /// Opens (or creates) the data directory `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Self, WalError> {
        Self::open_with(Arc::new(StdFs), dir.as_ref(), opts)
    }

    /// Opens (or creates) `dir` over the given file layer: recovers what is there,
    /// repairing a torn final write and refusing corruption.
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        opts: WalOptions,
    ) -> Result<Self, WalError> {
        let identity = opts.identity();
        fs.create_dir_all(dir).map_err(WalError::io(dir))?;
        let listing = recovery::list(&*fs, dir)?;
        for name in &listing.temporary {
            let path = dir.join(name);
            fs.remove(&path).map_err(WalError::io(&path))?;
        }
        if listing.segments.is_empty() {
            if !listing.snapshots.is_empty() {
                return Err(WalError::Inconsistent {
                    dir: dir.to_owned(),
                    reason: "snapshot files but no WAL segment".into(),
                });
            }
            let s = WalStorage {
                wal: Wal::create(
                    fs,
                    dir,
                    identity,
                    opts.log,
                    checkpoint_frames(HardState::default(), SnapshotMeta::default(), None),
                )?,
                identity,
                hard_state: HardState::default(),
                snapshot: SnapshotMeta::default(),
                snapshot_file: None,
                snapshot_size: 0,
                next_snapshot_seq: 0,
                log: LogIndex::default(),
                poisoned: None,
            };
            return Ok(s);
        }
        let (r, (seq, pos), _) = replay(&*fs, dir, &listing, Some(identity), true)?;
        let mut s = WalStorage {
            wal: Wal::resume(
                fs,
                dir,
                identity,
                opts.log,
                Vec::new(),
                listing.segments[0],
                seq,
                pos,
            )?,
            identity,
            hard_state: r.hard_state,
            snapshot: r.snapshot,
            snapshot_file: r.snapshot_file,
            snapshot_size: 0,
            next_snapshot_seq: listing.snapshots.last().map_or(0, |s| s + 1),
            log: r.log,
            poisoned: None,
        };
        if let Some(file) = s.snapshot_file {
            s.snapshot_size = s.read_snapshot_data(file)?.len() as u64;
        }
        // Snapshot files the log does not name: a newer one whose marker never became
        // durable, or an older one whose removal a crash interrupted.
        for &seq in &listing.snapshots {
            if Some(seq) != s.snapshot_file {
                let path = dir.join(snapshot_name(seq));
                s.wal.fs().remove(&path).map_err(WalError::io(&path))?;
            }
        }
        s.wal.set_checkpoint(s.checkpoint());
        Ok(s)
    }

    /// The underlying log.
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.wal.dir()
    }

    fn read_snapshot_data(&self, file: u64) -> Result<raft_core::Bytes, WalError> {
        snapshot::read(
            &**self.wal.fs(),
            self.wal.dir(),
            self.identity,
            file,
            self.snapshot,
        )
    }

    /// The frames that start every new segment: hard state and current snapshot.
    fn checkpoint(&self) -> Vec<u8> {
        checkpoint_frames(self.hard_state, self.snapshot, self.snapshot_file)
    }

    fn write_batch(&mut self, batch: WriteBatch<'_>) -> Result<(), WalError> {
        // Check everything before changing anything, as MemStorage does.
        let (base, kept_suffix) = match batch.snapshot {
            Some(snap) => {
                let holds = snap.meta.index > self.snapshot.index
                    && self.log.term_at(snap.meta.index) == Some(snap.meta.term);
                (snap.meta.index, holds)
            }
            None => (self.snapshot.index, true),
        };
        let surviving_last = if kept_suffix {
            self.log.last().unwrap_or(base).max(base)
        } else {
            base
        };
        let keep_last = match batch.truncate_from {
            Some(from) => from.saturating_sub(1).max(base).min(surviving_last),
            None => surviving_last,
        };
        if let Some(first) = batch.entries.first() {
            if first.index != keep_last + 1 {
                return Err(WalError::InvalidWrite(format!(
                    "append at index {} but the log continues at {}",
                    first.index,
                    keep_last + 1
                )));
            }
        }
        for w in batch.entries.windows(2) {
            if w[1].index != w[0].index + 1 {
                return Err(WalError::InvalidWrite(format!(
                    "entries {} and {} are not contiguous",
                    w[0].index, w[1].index
                )));
            }
        }

        // The snapshot file is durable before the record that names it.
        let mut marker = None;
        if let Some(snap) = batch.snapshot {
            let file = (!snap.data.is_empty()).then_some(self.next_snapshot_seq);
            if let Some(seq) = file {
                snapshot::write(&**self.wal.fs(), self.wal.dir(), self.identity, seq, snap)?;
                self.next_snapshot_seq += 1;
            }
            marker = Some(SnapshotMarker {
                meta: snap.meta,
                file,
                kept_suffix,
                checkpoint: false,
            });
        }

        let mut payloads: Vec<(RecordType, Vec<u8>)> = Vec::new();
        if let Some(hs) = &batch.hard_state {
            payloads.push((RecordType::HardState, encode(hs)));
        }
        if let Some(m) = &marker {
            payloads.push((RecordType::Snapshot, encode(m)));
        }
        if let Some(from) = batch.truncate_from {
            payloads.push((RecordType::Truncate, encode(&from)));
        }
        // One record per run of one term, so that the index keeps one term per run.
        let groups: Vec<&[Entry]> = batch.entries.chunk_by(|a, b| a.term == b.term).collect();
        for g in &groups {
            payloads.push((RecordType::Entries, encode(g)));
        }
        let records: Vec<(RecordType, &[u8])> =
            payloads.iter().map(|(k, p)| (*k, &p[..])).collect();
        let appended = self.wal.append(&records)?;

        // Durable. Mirroring it in memory can still fail (reading back a record to
        // clip it); the memory would then disagree with the disk, so the storage refuses
        // every later write until it is reopened (recovery rebuilds memory from disk).
        let r = self.mirror(batch, marker, &appended, groups.len());
        if let Err(e) = &r {
            self.poisoned = Some(e.to_string());
        }
        r
    }

    /// Applies a durable batch to the in-memory state, then removes what a new snapshot
    /// made obsolete.
    fn mirror(
        &mut self,
        batch: WriteBatch<'_>,
        marker: Option<SnapshotMarker>,
        appended: &crate::wal::Appended,
        entry_records: usize,
    ) -> Result<(), WalError> {
        if let Some(hs) = batch.hard_state {
            self.hard_state = hs;
        }
        let old_file = self.snapshot_file;
        if let (Some(m), Some(snap)) = (marker, batch.snapshot) {
            apply_marker(&self.wal, &mut self.log, m)?;
            self.snapshot = m.meta;
            self.snapshot_file = m.file;
            self.snapshot_size = snap.data.len() as u64;
        }
        if let Some(from) = batch.truncate_from {
            let wal = &self.wal;
            self.log
                .truncate_from(from, &mut |r: &Run| sizes_of(wal, r))?;
        }
        let first_entry_record = appended.offsets.len() - entry_records;
        let groups = batch.entries.chunk_by(|a, b| a.term == b.term);
        for (g, &offset) in groups.zip(&appended.offsets[first_entry_record..]) {
            self.log
                .push(run_of(g, appended.seq, offset))
                .map_err(WalError::InvalidWrite)?;
        }
        if batch.hard_state.is_some() || marker.is_some() {
            self.wal.set_checkpoint(self.checkpoint());
        }
        if marker.is_some() {
            // The new snapshot is durable and named by a durable record: what it
            // replaces can go.
            if let Some(old) = old_file.filter(|&old| Some(old) != self.snapshot_file) {
                let path = self.wal.dir().join(snapshot_name(old));
                self.wal.fs().remove(&path).map_err(WalError::io(&path))?;
            }
            let keep_from = self.log.oldest_seq().unwrap_or(u64::MAX);
            self.wal.remove_segments_before(keep_from)?;
        }
        Ok(())
    }

    fn restore_state(&self) -> Result<RestoredState, WalError> {
        let snapshot_data = match self.snapshot_file {
            Some(file) => self.read_snapshot_data(file)?,
            None => raft_core::Bytes::new(),
        };
        let mut entries = Vec::new();
        let mut cache: Option<(u64, Arc<dyn WalFile>)> = None;
        for run in self.log.runs() {
            let payload =
                raft_core::Bytes::from(self.wal.read_payload(&mut cache, run.seq, run.offset)?);
            let record =
                entries::decode_range(&payload, run.first, run.last).map_err(|reason| {
                    WalError::Corrupt {
                        path: self.wal.dir().join(crate::wal::segment_name(run.seq)),
                        offset: run.offset,
                        reason,
                    }
                })?;
            entries.extend(record);
        }
        Ok(RestoredState {
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            snapshot_data,
            entries,
        })
    }
}

impl Storage for WalStorage {
    /// Every write waits for fdatasync: the runtime runs it on tokio's blocking pool.
    const BLOCKING: bool = true;

    fn restore(&self) -> Result<RestoredState, StorageError> {
        Ok(self.restore_state()?)
    }

    fn write(&mut self, batch: WriteBatch<'_>) -> Result<(), StorageError> {
        if let Some(why) = &self.poisoned {
            return Err(WalError::Failed(why.clone()).into());
        }
        if batch.is_empty() {
            return Ok(());
        }
        Ok(self.write_batch(batch)?)
    }

    fn raft_state_size(&self) -> u64 {
        HARD_STATE_SIZE + self.log.bytes()
    }

    fn snapshot_size(&self) -> u64 {
        self.snapshot_size
    }
}

fn checkpoint_frames(hs: HardState, snapshot: SnapshotMeta, file: Option<u64>) -> Vec<u8> {
    let hs = encode(&hs);
    let marker = encode(&SnapshotMarker {
        meta: snapshot,
        file,
        kept_suffix: true,
        checkpoint: true,
    });
    encode_batch(&[
        (RecordType::HardState, &hs[..]),
        (RecordType::Snapshot, &marker[..]),
    ])
}

fn encode<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_allocvec(v).unwrap_or_default()
}

pub(crate) fn decode<'a, T: serde::Deserialize<'a>>(b: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(b).map_err(|e| format!("undecodable record payload: {e}"))
}

fn run_of(entries: &[Entry], seq: u64, offset: u64) -> Run {
    let first = entries.first().map_or(0, |e| e.index);
    Run {
        first,
        last: entries.last().map_or(0, |e| e.index),
        term: entries.first().map_or(0, |e| e.term),
        record_first: first,
        seq,
        offset,
        bytes: entries.iter().map(|e| e.size() as u64).sum(),
    }
}

fn sizes_of(wal: &Wal, run: &Run) -> Result<Vec<u64>, WalError> {
    let mut cache = None;
    let payload = wal.read_payload(&mut cache, run.seq, run.offset)?;
    entries::sizes(&payload).map_err(|reason| WalError::Corrupt {
        path: wal.dir().join(crate::wal::segment_name(run.seq)),
        offset: run.offset,
        reason,
    })
}

fn apply_marker(wal: &Wal, log: &mut LogIndex, m: SnapshotMarker) -> Result<(), WalError> {
    if m.kept_suffix {
        log.compact_to(m.meta.index, &mut |r: &Run| sizes_of(wal, r))
    } else {
        log.clear();
        Ok(())
    }
}

/// Replayed state, the append position (segment, offset) and the identity found.
type Replayed = (Replay, (u64, u64), Option<Identity>);

/// Rebuilds the state from the segments.
fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    listing: &Listing,
    identity: Option<Identity>,
    repair: bool,
) -> Result<Replayed, WalError> {
    let mut r = Replay::default();
    let summary = recovery::scan(fs, dir, listing, identity, repair, |seq, buf, frames| {
        replay_batch(&mut r, fs, dir, seq, buf, frames)
    })?;
    let inconsistent = |reason: String| WalError::Inconsistent {
        dir: dir.to_owned(),
        reason,
    };
    if let Some(first) = r.log.first() {
        if first != r.snapshot.index + 1 {
            return Err(inconsistent(format!(
                "the log starts at {first} but the snapshot ends at {}",
                r.snapshot.index
            )));
        }
    }
    if !r.seen_checkpoint {
        return Err(inconsistent("no segment checkpoint found".into()));
    }
    let tail = summary
        .tail
        .ok_or_else(|| inconsistent("no segment".into()))?;
    Ok((r, tail, summary.identity))
}

/// Recovers `dir` read-only (no repair, no removal) and checks the snapshot file the log
/// names: what `raft-wal verify` runs.
pub(crate) fn verify_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(), WalError> {
    let listing = recovery::list(fs, dir)?;
    let (r, _, identity) = replay(fs, dir, &listing, None, false)?;
    if let (Some(file), Some(identity)) = (r.snapshot_file, identity) {
        snapshot::read(fs, dir, identity, file, r.snapshot)?;
    }
    Ok(())
}

fn replay_batch(
    r: &mut Replay,
    fs: &dyn FileSystem,
    dir: &Path,
    seq: u64,
    buf: &[u8],
    frames: &[Frame],
) -> Result<(), WalError> {
    let path: PathBuf = dir.join(crate::wal::segment_name(seq));
    for f in frames {
        let corrupt = |reason: String| WalError::Corrupt {
            path: path.clone(),
            offset: f.offset as u64,
            reason,
        };
        let payload = &buf[f.payload.0..f.payload.1];
        match f.kind {
            RecordType::HardState => r.hard_state = decode(payload).map_err(corrupt)?,
            RecordType::Truncate => {
                let from: u64 = decode(payload).map_err(corrupt)?;
                r.log
                    .truncate_from(from, &mut |run: &Run| sizes_in(fs, dir, buf, seq, run))?;
            }
            RecordType::Snapshot => {
                let m: SnapshotMarker = decode(payload).map_err(corrupt)?;
                if m.checkpoint && r.seen_checkpoint {
                    // A restatement of the state replay already has.
                    if (m.meta, m.file) != (r.snapshot, r.snapshot_file) {
                        return Err(corrupt(format!(
                            "segment checkpoint names snapshot {:?} (file {:?}) but the log \
                             before it ends with {:?} (file {:?})",
                            m.meta, m.file, r.snapshot, r.snapshot_file
                        )));
                    }
                    continue;
                }
                r.seen_checkpoint = true;
                if m.kept_suffix {
                    r.log.compact_to(m.meta.index, &mut |run: &Run| {
                        sizes_in(fs, dir, buf, seq, run)
                    })?;
                } else {
                    r.log.clear();
                }
                r.snapshot = m.meta;
                r.snapshot_file = m.file;
            }
            RecordType::Entries => {
                let sum = entries::summarize(payload).map_err(corrupt)?;
                if r.log.last().is_none() && sum.first <= r.snapshot.index {
                    return Err(corrupt(format!(
                        "entries from {} behind the snapshot at {}",
                        sum.first, r.snapshot.index
                    )));
                }
                r.log
                    .push(Run {
                        first: sum.first,
                        last: sum.last,
                        term: sum.term,
                        record_first: sum.first,
                        seq,
                        offset: f.offset as u64,
                        bytes: sum.bytes,
                    })
                    .map_err(corrupt)?;
            }
        }
    }
    Ok(())
}

/// Entry sizes of a run's record during replay: from the segment being scanned when the
/// record is in it, else from disk.
fn sizes_in(
    fs: &dyn FileSystem,
    dir: &Path,
    buf: &[u8],
    seq: u64,
    run: &Run,
) -> Result<Vec<u64>, WalError> {
    let path = dir.join(crate::wal::segment_name(run.seq));
    let payload = if run.seq == seq {
        let at = run.offset as usize;
        match crate::format::next_frame(buf, at, buf.len()) {
            crate::format::Scan::Frame(f) => buf[f.payload.0..f.payload.1].to_vec(),
            _ => {
                return Err(WalError::Corrupt {
                    path,
                    offset: run.offset,
                    reason: "indexed record no longer readable".into(),
                })
            }
        }
    } else {
        let file = fs.open(&path).map_err(WalError::io(&path))?;
        recovery::read_record(&*file, &path, run.offset)?
    };
    entries::sizes(&payload).map_err(|reason| WalError::Corrupt {
        path,
        offset: run.offset,
        reason,
    })
}

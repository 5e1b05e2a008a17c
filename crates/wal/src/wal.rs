//! The segmented log itself: appends batches of records into preallocated segments and
//! makes them durable with one `fdatasync` per batch, shared between concurrent callers
//! (group commit).
//!
//! Group commit is leader/follower: a caller writes its batch under the lock, then waits
//! until the durable position passes its own end. If no sync is in flight it becomes the
//! leader: it syncs everything written so far (its batch and any that arrived meanwhile)
//! without holding the lock, publishes the new durable position and wakes the others.

use crate::error::WalError;
use crate::format::{
    encode_frame, encode_segment_header, Identity, RecordType, SEGMENT_HEADER_LEN,
};
use crate::fs::{zero_fill, FileSystem, WalFile};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Tuning of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Bytes of each segment file, preallocated when it is created. A batch larger than
    /// this gets a segment of its own, sized to fit.
    pub segment_size: u64,
    /// Share one `fdatasync` among the callers whose batches were written while a sync
    /// was in flight. Off, every batch is synced on its own, under the lock.
    pub group_commit: bool,
    /// How the next segment's file is zero-filled ahead of need.
    pub preallocate: Preallocate,
}

/// When the spare file for the next segment is zero-filled and synced (the costly part of
/// creating a segment). When the log rolls, the spare only gets its header and checkpoint
/// and is renamed into place, so the append that rolls does not pay for the fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preallocate {
    /// In a background thread, started when a segment comes into use.
    Background,
    /// In the calling thread, right after a segment comes into use: the same file
    /// operations in a fixed order, for deterministic fault-injection tests.
    Inline,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_size: 64 << 20,
            group_commit: true,
            preallocate: Preallocate::Background,
        }
    }
}

type SpareResult = Result<(Arc<dyn WalFile>, u64), WalError>;

/// The next segment's file, zero-filled under a temporary name.
enum Spare {
    Ready(u64, SpareResult),
    Pending(u64, std::thread::JoinHandle<SpareResult>),
}

impl Spare {
    /// Waits for the spare of segment `seq`, if that is what this is.
    fn take(self, seq: u64) -> Option<(Arc<dyn WalFile>, u64)> {
        let (s, r) = match self {
            Spare::Ready(s, r) => (s, r),
            Spare::Pending(s, h) => (s, h.join().unwrap_or_else(|_| Err(spare_panicked()))),
        };
        match r {
            Ok(f) if s == seq => Some(f),
            Ok(_) => None,
            Err(e) => {
                // Not fatal: the segment is then created the slow way.
                tracing::warn!(error = %e, "preparing a spare WAL segment failed");
                None
            }
        }
    }
}

fn spare_panicked() -> WalError {
    WalError::Failed("the thread preparing a spare segment panicked".into())
}

/// Where a batch landed: its segment and the offset of each of its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Sequence number of the segment.
    pub seq: u64,
    /// Offset of each record's frame in the segment, in batch order.
    pub offsets: Vec<u64>,
}

/// File name of segment `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("seg-{seq:016x}.wal")
}

struct State {
    seq: u64,
    file: Arc<dyn WalFile>,
    size: u64,
    pos: u64,
    /// Bytes written since opening, over all segments; `synced` trails it.
    written: u64,
    synced: u64,
    syncing: bool,
    failed: Option<String>,
    /// Frames written at the start of every new segment (see `SnapshotMarker::checkpoint`).
    checkpoint: Vec<u8>,
    oldest_seq: u64,
    spare: Option<Spare>,
}

/// A segmented write-ahead log, safe to share between threads (`Send + Sync`).
pub struct Wal {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    identity: Identity,
    opts: LogOptions,
    state: Mutex<State>,
    synced_cv: Condvar,
}

impl Wal {
    /// Starts a new log in `dir` (which must hold no segment), writing `checkpoint`
    /// frames at the start of its first segment.
    pub fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        identity: Identity,
        opts: LogOptions,
        checkpoint: Vec<u8>,
    ) -> Result<Wal, WalError> {
        fs.create_dir_all(dir).map_err(WalError::io(dir))?;
        let (file, size, pos) =
            create_segment(&*fs, dir, identity, 0, opts.segment_size, &checkpoint, 0)?;
        let wal = Wal::from_parts(fs, dir, identity, opts, checkpoint, 0, 0, file, size, pos);
        wal.prepare_spare(&mut wal.lock());
        Ok(wal)
    }

    /// Continues an existing log at `pos` of its last segment `seq`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn resume(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        identity: Identity,
        opts: LogOptions,
        checkpoint: Vec<u8>,
        oldest_seq: u64,
        seq: u64,
        pos: u64,
    ) -> Result<Wal, WalError> {
        let path = dir.join(segment_name(seq));
        let file = fs.open(&path).map_err(WalError::io(&path))?;
        let size = file.len().map_err(WalError::io(&path))?;
        let wal = Wal::from_parts(
            fs, dir, identity, opts, checkpoint, oldest_seq, seq, file, size, pos,
        );
        wal.prepare_spare(&mut wal.lock());
        Ok(wal)
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        identity: Identity,
        opts: LogOptions,
        checkpoint: Vec<u8>,
        oldest_seq: u64,
        seq: u64,
        file: Arc<dyn WalFile>,
        size: u64,
        pos: u64,
    ) -> Wal {
        Wal {
            fs,
            dir: dir.to_owned(),
            identity,
            opts,
            state: Mutex::new(State {
                seq,
                file,
                size,
                pos,
                written: 0,
                synced: 0,
                syncing: false,
                failed: None,
                checkpoint,
                oldest_seq,
                spare: None,
            }),
            synced_cv: Condvar::new(),
        }
    }

    /// Starts preparing the spare file of the segment after `seq`.
    fn prepare_spare(&self, st: &mut State) {
        let seq = st.seq + 1;
        let (fs, dir, size) = (self.fs.clone(), self.dir.clone(), self.opts.segment_size);
        st.spare = Some(match self.opts.preallocate {
            Preallocate::Inline => Spare::Ready(seq, create_spare(&*fs, &dir, seq, size)),
            Preallocate::Background => Spare::Pending(
                seq,
                std::thread::spawn(move || create_spare(&*fs, &dir, seq, size)),
            ),
        });
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation of State completes before anything can panic, so a poisoned
        // lock still guards consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `records` as one batch and returns once they are durable. The batch is
    /// atomic on recovery: all of its records, or none.
    pub fn append(&self, records: &[(RecordType, &[u8])]) -> Result<Appended, WalError> {
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.1.len() + 17).sum());
        let mut rel = Vec::with_capacity(records.len());
        for (i, (kind, payload)) in records.iter().enumerate() {
            rel.push(buf.len() as u64);
            encode_frame(&mut buf, *kind, i + 1 == records.len(), payload);
        }
        let mut st = self.lock();
        if let Some(why) = &st.failed {
            return Err(WalError::Failed(why.clone()));
        }
        // A batch never straddles two segments, so one sync of one file covers it.
        if st.pos + buf.len() as u64 + 1 > st.size {
            self.roll(&mut st, buf.len() as u64)?;
        }
        let offset = st.pos;
        if let Err(e) = st.file.write_at(&buf, offset) {
            st.failed = Some(format!("write failed: {e}"));
            return Err(WalError::io(self.dir.join(segment_name(st.seq)))(e));
        }
        st.pos += buf.len() as u64;
        st.written += buf.len() as u64;
        let mine = st.written;
        let appended = Appended {
            seq: st.seq,
            offsets: rel.into_iter().map(|r| offset + r).collect(),
        };
        if self.opts.group_commit {
            self.wait_durable(st, mine)?;
        } else {
            let r = st.file.sync_data();
            self.after_sync(&mut st, mine, r)?;
        }
        Ok(appended)
    }

    fn wait_durable<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        mine: u64,
    ) -> Result<(), WalError> {
        loop {
            if st.synced >= mine {
                return Ok(());
            }
            if let Some(why) = &st.failed {
                return Err(WalError::Failed(why.clone()));
            }
            if st.syncing {
                st = self.synced_cv.wait(st).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.syncing = true;
            let target = st.written;
            let file = st.file.clone();
            drop(st);
            let r = file.sync_data();
            st = self.lock();
            st.syncing = false;
            let r = self.after_sync(&mut st, target, r);
            self.synced_cv.notify_all();
            r?;
        }
    }

    fn after_sync(
        &self,
        st: &mut State,
        target: u64,
        r: std::io::Result<()>,
    ) -> Result<(), WalError> {
        match r {
            Ok(()) => {
                st.synced = st.synced.max(target);
                Ok(())
            }
            Err(e) => {
                st.failed = Some(format!("fdatasync failed: {e}"));
                Err(WalError::io(self.dir.join(segment_name(st.seq)))(e))
            }
        }
    }

    /// Closes the current segment (synced, so that only the last segment can ever hold
    /// a torn write) and starts the next one.
    fn roll(&self, st: &mut State, need: u64) -> Result<(), WalError> {
        if st.synced < st.written {
            let r = st.file.sync_data();
            let written = st.written;
            self.after_sync(st, written, r)?;
        }
        let seq = st.seq + 1;
        let start = (SEGMENT_HEADER_LEN + st.checkpoint.len()) as u64;
        let spare = st
            .spare
            .take()
            .and_then(|s| s.take(seq))
            .filter(|&(_, size)| size > start + need);
        let made = match spare {
            Some((file, size)) => activate_spare(
                &*self.fs,
                &self.dir,
                self.identity,
                seq,
                file,
                size,
                &st.checkpoint,
            ),
            None => create_segment(
                &*self.fs,
                &self.dir,
                self.identity,
                seq,
                self.opts.segment_size,
                &st.checkpoint,
                need,
            ),
        };
        let (file, size, pos) =
            made.inspect_err(|e| st.failed = Some(format!("creating a segment failed: {e}")))?;
        st.seq = seq;
        st.file = file;
        st.size = size;
        st.pos = pos;
        self.prepare_spare(st);
        Ok(())
    }

    /// Replaces the frames written at the start of each new segment.
    pub(crate) fn set_checkpoint(&self, frames: Vec<u8>) {
        self.lock().checkpoint = frames;
    }

    /// Sequence number of the segment being appended to.
    pub fn current_seq(&self) -> u64 {
        self.lock().seq
    }

    /// Deletes every segment older than `seq` (never the current one), oldest first, so
    /// that a crash in the middle leaves a contiguous run of segments.
    pub(crate) fn remove_segments_before(&self, seq: u64) -> Result<(), WalError> {
        let (from, to) = {
            let st = self.lock();
            (st.oldest_seq, seq.min(st.seq))
        };
        if from >= to {
            return Ok(());
        }
        for s in from..to {
            let path = self.dir.join(segment_name(s));
            self.fs.remove(&path).map_err(WalError::io(&path))?;
            self.lock().oldest_seq = s + 1;
        }
        self.fs.sync_dir(&self.dir).map_err(WalError::io(&self.dir))
    }

    /// Reads back the payload of the record at `offset` of segment `seq`, checking it.
    pub(crate) fn read_payload(
        &self,
        cache: &mut Option<(u64, Arc<dyn WalFile>)>,
        seq: u64,
        offset: u64,
    ) -> Result<Vec<u8>, WalError> {
        let path = self.dir.join(segment_name(seq));
        let file = match cache {
            Some((s, f)) if *s == seq => f.clone(),
            _ => {
                let f = self.fs.open(&path).map_err(WalError::io(&path))?;
                *cache = Some((seq, f.clone()));
                f
            }
        };
        crate::recovery::read_record(&*file, &path, offset)
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file layer.
    pub(crate) fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        // Let a background fill finish, so that it does not race with the next open of
        // the directory (which removes leftover temporary files).
        let spare = self
            .state
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .spare
            .take();
        if let Some(Spare::Pending(_, h)) = spare {
            let _ = h.join();
        }
    }
}

fn tmp_name(seq: u64) -> String {
    format!("{}.tmp", segment_name(seq))
}

/// Zero-fills and syncs the spare file of segment `seq`, under its temporary name.
fn create_spare(fs: &dyn FileSystem, dir: &Path, seq: u64, size: u64) -> SpareResult {
    let tmp = dir.join(tmp_name(seq));
    let file = fs.create(&tmp).map_err(WalError::io(&tmp))?;
    zero_fill(&*file, 0, size)
        .and_then(|()| file.sync_all())
        .map_err(WalError::io(&tmp))?;
    Ok((file, size))
}

/// Turns a spare into segment `seq`: header and checkpoint written and synced, renamed
/// into place, directory synced.
fn activate_spare(
    fs: &dyn FileSystem,
    dir: &Path,
    identity: Identity,
    seq: u64,
    file: Arc<dyn WalFile>,
    size: u64,
    checkpoint: &[u8],
) -> Result<(Arc<dyn WalFile>, u64, u64), WalError> {
    let tmp = dir.join(tmp_name(seq));
    file.write_at(&encode_segment_header(identity, seq), 0)
        .and_then(|()| file.write_at(checkpoint, SEGMENT_HEADER_LEN as u64))
        .and_then(|()| file.sync_all())
        .map_err(WalError::io(&tmp))?;
    let path = dir.join(segment_name(seq));
    fs.rename(&tmp, &path).map_err(WalError::io(&path))?;
    fs.sync_dir(dir).map_err(WalError::io(dir))?;
    Ok((file, size, (SEGMENT_HEADER_LEN + checkpoint.len()) as u64))
}

/// Creates segment `seq`: zero-filled to its full size under a temporary name, header and
/// checkpoint written, synced, renamed into place, directory synced. A crash leaves either
/// no segment or a complete one. Returns the file, its size and the first free offset.
fn create_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    identity: Identity,
    seq: u64,
    segment_size: u64,
    checkpoint: &[u8],
    need: u64,
) -> Result<(Arc<dyn WalFile>, u64, u64), WalError> {
    let start = (SEGMENT_HEADER_LEN + checkpoint.len()) as u64;
    let size = segment_size.max(start + need + 1);
    let path = dir.join(segment_name(seq));
    let tmp = dir.join(tmp_name(seq));
    let io = WalError::io(&tmp);
    let file = fs.create(&tmp).map_err(WalError::io(&tmp))?;
    (|| {
        zero_fill(&*file, 0, size)?;
        file.write_at(&encode_segment_header(identity, seq), 0)?;
        file.write_at(checkpoint, SEGMENT_HEADER_LEN as u64)?;
        file.sync_all()
    })()
    .map_err(io)?;
    fs.rename(&tmp, &path).map_err(WalError::io(&path))?;
    fs.sync_dir(dir).map_err(WalError::io(dir))?;
    Ok((file, size, start))
}

/// Encodes `records` as one batch of frames (the last one marked end-of-batch).
pub(crate) fn encode_batch(records: &[(RecordType, &[u8])]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (i, (kind, payload)) in records.iter().enumerate() {
        encode_frame(&mut buf, *kind, i + 1 == records.len(), payload);
    }
    buf
}

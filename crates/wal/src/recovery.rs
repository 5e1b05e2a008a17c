//! Reading a data directory back: which files it holds, and every segment's batches in
//! order, with torn-tail detection and repair and refusal of corruption.

use crate::error::WalError;
use crate::format::{
    any_valid_frame_after, data_end, decode_segment_header, next_frame, u32_at, Frame,
    HeaderProblem, Identity, Scan, END_MARKER, FORMAT_VERSION, FRAME_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use crate::fs::{read_all, FileSystem, WalFile};
use crate::wal::segment_name;
use std::path::Path;

/// The files of a data directory, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    /// Segment sequence numbers, ascending.
    pub segments: Vec<u64>,
    /// Snapshot file sequence numbers, ascending.
    pub snapshots: Vec<u64>,
    /// Leftover temporary files (a crash while creating a segment or a snapshot).
    pub temporary: Vec<String>,
}

/// Sorts the files of `dir` by kind; other files are ignored.
pub fn list(fs: &dyn FileSystem, dir: &Path) -> Result<Listing, WalError> {
    let mut l = Listing::default();
    for name in fs.list(dir).map_err(WalError::io(dir))? {
        if name.ends_with(".tmp") {
            l.temporary.push(name);
        } else if let Some(seq) = parse_name(&name, "seg-", ".wal") {
            l.segments.push(seq);
        } else if let Some(seq) = parse_name(&name, "snap-", ".snap") {
            l.snapshots.push(seq);
        }
    }
    l.segments.sort_unstable();
    l.snapshots.sort_unstable();
    l.temporary.sort();
    Ok(l)
}

fn parse_name(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A torn tail found in the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment.
    pub seq: u64,
    /// Offset of the first byte of the incomplete batch (the log continues here).
    pub offset: u64,
    /// Offset after the last non-zero byte.
    pub data_end: u64,
    /// What was found.
    pub reason: String,
}

/// What a scan of all segments found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanSummary {
    /// Identity found in the headers.
    pub identity: Option<Identity>,
    /// Last segment and the offset after its last complete batch.
    pub tail: Option<(u64, u64)>,
    /// A torn final write, if any.
    pub torn: Option<TornTail>,
}

/// Reads every segment in order and hands each complete batch to `on_batch` (segment
/// sequence number, the segment's bytes, the batch's frames). With `expected`, a segment of
/// another identity is refused. With `repair`, a torn tail is zeroed and synced.
pub fn scan(
    fs: &dyn FileSystem,
    dir: &Path,
    listing: &Listing,
    expected: Option<Identity>,
    repair: bool,
    mut on_batch: impl FnMut(u64, &[u8], &[Frame]) -> Result<(), WalError>,
) -> Result<ScanSummary, WalError> {
    let mut summary = ScanSummary {
        identity: expected,
        tail: None,
        torn: None,
    };
    for (i, &seq) in listing.segments.iter().enumerate() {
        if i > 0 && listing.segments[i - 1] + 1 != seq {
            return Err(WalError::Inconsistent {
                dir: dir.to_owned(),
                reason: format!("segment {} is missing", listing.segments[i - 1] + 1),
            });
        }
        let path = dir.join(segment_name(seq));
        let buf = read_all(fs, &path).map_err(WalError::io(&path))?;
        let identity = check_header(&path, &buf, seq, summary.identity)?;
        summary.identity = Some(identity);
        let is_last = i + 1 == listing.segments.len();
        let (end, torn) = scan_segment(&path, &buf, |frames| on_batch(seq, &buf, frames))?;
        if let Some((offset, reason)) = torn {
            let data_end = data_end(&buf) as u64;
            if !is_last {
                return Err(WalError::Corrupt {
                    path,
                    offset,
                    reason: format!("{reason} in a segment that is not the last one"),
                });
            }
            tracing::warn!(file = %path.display(), offset, data_end, %reason,
                "torn final write in the WAL; discarding it");
            if repair {
                let file = fs.open(&path).map_err(WalError::io(&path))?;
                crate::fs::zero_fill(&*file, offset, data_end)
                    .and_then(|()| file.sync_data())
                    .map_err(WalError::io(&path))?;
            }
            summary.torn = Some(TornTail {
                seq,
                offset,
                data_end,
                reason,
            });
        }
        summary.tail = Some((seq, end));
    }
    Ok(summary)
}

fn check_header(
    path: &Path,
    buf: &[u8],
    seq: u64,
    expected: Option<Identity>,
) -> Result<Identity, WalError> {
    let corrupt = |reason: &str| WalError::Corrupt {
        path: path.to_owned(),
        offset: 0,
        reason: reason.to_owned(),
    };
    let h = decode_segment_header(buf).map_err(|p| match p {
        HeaderProblem::Short => corrupt("file shorter than a segment header"),
        HeaderProblem::BadMagic => corrupt("not a WAL segment (bad magic number)"),
        HeaderProblem::BadChecksum => corrupt("segment header checksum mismatch"),
    })?;
    if h.version != FORMAT_VERSION {
        return Err(WalError::UnsupportedVersion {
            path: path.to_owned(),
            found: h.version,
            supported: FORMAT_VERSION,
        });
    }
    if let Some(expected) = expected {
        if h.identity != expected {
            return Err(WalError::WrongIdentity {
                path: path.to_owned(),
                expected,
                found: h.identity,
            });
        }
    }
    if h.seq != seq {
        return Err(corrupt(&format!(
            "header says segment {} but the file name says {seq}",
            h.seq
        )));
    }
    Ok(h.identity)
}

/// Scans one segment's frames. Returns the offset after the last complete batch and, if
/// the segment ends in a torn write, where the incomplete batch starts and why.
pub fn scan_segment(
    path: &Path,
    buf: &[u8],
    mut on_batch: impl FnMut(&[Frame]) -> Result<(), WalError>,
) -> Result<(u64, Option<(u64, String)>), WalError> {
    let end = data_end(buf);
    let mut at = SEGMENT_HEADER_LEN;
    let mut batch_start = at;
    let mut batch: Vec<Frame> = Vec::new();
    let torn = loop {
        match next_frame(buf, at, end) {
            Scan::Frame(f) => {
                at = f.end();
                batch.push(f);
                if f.end_of_batch {
                    on_batch(&batch)?;
                    batch.clear();
                    batch_start = at;
                }
            }
            Scan::End if end > at => {
                // Bytes after the log's end: harmless noise, unless a valid record is there.
                if let Some(p) = any_valid_frame_after(buf, at + 1, end) {
                    return Err(WalError::Corrupt {
                        path: path.to_owned(),
                        offset: at as u64,
                        reason: format!("zeroed record header followed by a valid record at {p}"),
                    });
                }
                break Some("non-zero bytes after the end of the log".to_owned());
            }
            Scan::End if !batch.is_empty() => break Some("incomplete batch".to_owned()),
            Scan::End => break None,
            Scan::Torn(reason) => break Some(reason),
            Scan::Corrupt(reason) => {
                return Err(WalError::Corrupt {
                    path: path.to_owned(),
                    offset: at as u64,
                    reason,
                })
            }
        }
    };
    Ok((batch_start as u64, torn.map(|r| (batch_start as u64, r))))
}

/// Reads and checks the record at `offset` of an open segment; returns its payload.
pub(crate) fn read_record(
    file: &dyn WalFile,
    path: &Path,
    offset: u64,
) -> Result<Vec<u8>, WalError> {
    let corrupt = |reason: &str| WalError::Corrupt {
        path: path.to_owned(),
        offset,
        reason: reason.to_owned(),
    };
    let mut h = [0u8; FRAME_HEADER_LEN];
    file.read_exact_at(&mut h, offset)
        .map_err(WalError::io(path))?;
    if crc32c::crc32c(&h[0..8]) != u32_at(&h, 8) {
        return Err(corrupt("record header checksum mismatch on read-back"));
    }
    let len = u32_at(&h, 0) as usize;
    let mut payload = vec![0u8; len + 1];
    file.read_exact_at(&mut payload, offset + FRAME_HEADER_LEN as u64)
        .map_err(WalError::io(path))?;
    if payload.pop() != Some(END_MARKER)
        || crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), &payload) != u32_at(&h, 12)
    {
        return Err(corrupt("record checksum mismatch on read-back"));
    }
    Ok(payload)
}

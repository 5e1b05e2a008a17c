//! The byte layout of segment files and records, and the scanner that reads them back and
//! tells a torn tail (a crash in the middle of a write) from corruption.
//!
//! Segment header (`SEGMENT_HEADER_LEN` = 40 bytes, little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `b"RAFTWAL\0"` |
//! | 8 | 1 | format version ([`FORMAT_VERSION`]) |
//! | 9 | 3 | zero |
//! | 12 | 8 | cluster id |
//! | 20 | 8 | node id |
//! | 28 | 8 | segment sequence number |
//! | 36 | 4 | CRC-32C of bytes 0..36 |
//!
//! Record frame (`FRAME_OVERHEAD` = 17 bytes + payload):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | payload length `L` |
//! | 4 | 1 | type (low 7 bits, [`RecordType`]) and end-of-batch flag (bit 7) |
//! | 5 | 3 | zero |
//! | 8 | 4 | header CRC-32C of bytes 0..8 |
//! | 12 | 4 | record CRC-32C of bytes 0..8 (length, type) followed by the payload |
//! | 16 | L | payload (postcard) |
//! | 16+L | 1 | end marker `0xA5` |
//!
//! Segments are zero-filled when created, so the log ends at the first all-zero header.
//! The header CRC makes the length trustworthy on its own; the non-zero end marker makes a
//! complete record end in a non-zero byte. Together they tell the two failure kinds apart:
//! a torn write leaves a prefix of the frame followed by zeros, so the data ends before the
//! frame's end marker; a flipped bit leaves the frame's full extent in place.

use serde::{Deserialize, Serialize};

/// Magic number at the start of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"RAFTWAL\0";
/// Magic number at the start of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"RAFTSNP\0";
/// The on-disk format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 2;
/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 40;
/// Bytes of a frame's header.
pub const FRAME_HEADER_LEN: usize = 16;
/// Bytes a frame adds to its payload (header and end marker).
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_LEN + 1;
/// The byte that ends every frame. Several bits are set, so that one flipped bit cannot
/// turn it into the zero of an unwritten byte.
pub const END_MARKER: u8 = 0xA5;
const END_OF_BATCH: u8 = 0x80;

/// The kinds of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum RecordType {
    /// Log entries, contiguous, all of one term (payload: `Vec<Entry>`).
    Entries = 1,
    /// Term and vote (payload: `HardState`).
    HardState = 2,
    /// Remove entries at this index and after (payload: `u64`).
    Truncate = 3,
    /// A durable snapshot file now holds the state through an index (payload: [`SnapshotMarker`]).
    Snapshot = 4,
}

impl RecordType {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(RecordType::Entries),
            2 => Some(RecordType::HardState),
            3 => Some(RecordType::Truncate),
            4 => Some(RecordType::Snapshot),
            _ => None,
        }
    }
}

/// Payload of a [`RecordType::Snapshot`] record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMarker {
    /// Where the snapshot ends.
    pub meta: raft_core::SnapshotMeta,
    /// Sequence number of the snapshot file, `None` when there is no snapshot data.
    pub file: Option<u64>,
    /// Whether the entries after `meta.index` were kept (the log held `meta.index` with
    /// `meta.term`); otherwise every entry was dropped. Recorded, not recomputed, so that
    /// replay from any segment takes the same decision.
    pub kept_suffix: bool,
    /// True for the copy written at the start of every segment: it restates the current
    /// snapshot (so older segments can be deleted) and changes nothing when replayed
    /// after the segment before it.
    pub checkpoint: bool,
}

/// Identity of a data directory: every segment and snapshot file carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The cluster this node belongs to.
    pub cluster_id: u64,
    /// This node.
    pub node_id: u64,
}

/// A decoded segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version found.
    pub version: u8,
    /// Whose segment it is.
    pub identity: Identity,
    /// Its sequence number.
    pub seq: u64,
}

/// Why a segment header could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Shorter than a header.
    Short,
    /// Not a segment file.
    BadMagic,
    /// Header checksum mismatch.
    BadChecksum,
}

/// Encodes a segment header.
pub fn encode_segment_header(identity: Identity, seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8] = FORMAT_VERSION;
    h[12..20].copy_from_slice(&identity.cluster_id.to_le_bytes());
    h[20..28].copy_from_slice(&identity.node_id.to_le_bytes());
    h[28..36].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..36]);
    h[36..40].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Decodes a segment header; the version is returned, not checked.
pub fn decode_segment_header(buf: &[u8]) -> Result<SegmentHeader, HeaderProblem> {
    let h = buf.get(..SEGMENT_HEADER_LEN).ok_or(HeaderProblem::Short)?;
    if h[0..8] != SEGMENT_MAGIC {
        return Err(HeaderProblem::BadMagic);
    }
    if crc32c::crc32c(&h[0..36]) != u32_at(h, 36) {
        return Err(HeaderProblem::BadChecksum);
    }
    Ok(SegmentHeader {
        version: h[8],
        identity: Identity {
            cluster_id: u64_at(h, 12),
            node_id: u64_at(h, 20),
        },
        seq: u64_at(h, 28),
    })
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Appends one frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, kind: RecordType, end_of_batch: bool, payload: &[u8]) {
    let mut h = [0u8; FRAME_HEADER_LEN];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[4] = kind as u8 | if end_of_batch { END_OF_BATCH } else { 0 };
    let hcrc = crc32c::crc32c(&h[0..8]);
    h[8..12].copy_from_slice(&hcrc.to_le_bytes());
    let rcrc = crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload);
    h[12..16].copy_from_slice(&rcrc.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    out.push(END_MARKER);
}

/// A frame found by [`next_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Record type.
    pub kind: RecordType,
    /// Last record of its batch.
    pub end_of_batch: bool,
    /// Offset of the frame in its buffer.
    pub offset: usize,
    /// Payload range in the buffer.
    pub payload: (usize, usize),
}

impl Frame {
    /// Offset just after the frame.
    pub fn end(&self) -> usize {
        self.payload.1 + 1
    }
}

/// What lies at an offset of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A valid frame.
    Frame(Frame),
    /// An all-zero header, or too few bytes left for one: nothing was written here.
    End,
    /// The frame is incomplete and only zeros follow the data: the mark a crash in the
    /// middle of a write leaves.
    Torn(String),
    /// The frame is damaged while data continues to its full extent: corruption.
    Corrupt(String),
}

/// Reads the frame at `at`. `data_end` is the offset after the last non-zero byte of `buf`.
pub fn next_frame(buf: &[u8], at: usize, data_end: usize) -> Scan {
    let Some(h) = buf.get(at..at + FRAME_HEADER_LEN) else {
        return if data_end <= at {
            Scan::End
        } else {
            Scan::Corrupt("data too close to the end of the segment for a frame".into())
        };
    };
    if h.iter().all(|&b| b == 0) {
        return Scan::End;
    }
    if crc32c::crc32c(&h[0..8]) != u32_at(h, 8) {
        // A torn header leaves only zeros after it; a damaged one is followed by its data.
        return if data_end <= at + FRAME_HEADER_LEN {
            Scan::Torn("incomplete record header".into())
        } else {
            Scan::Corrupt("record header checksum mismatch".into())
        };
    }
    let len = u32_at(h, 0) as usize;
    let Some(kind) = RecordType::from_u8(h[4] & !END_OF_BATCH) else {
        return Scan::Corrupt(format!("unknown record type {}", h[4] & !END_OF_BATCH));
    };
    if h[5..8] != [0, 0, 0] {
        return Scan::Corrupt("non-zero padding in record header".into());
    }
    let payload_end = at + FRAME_HEADER_LEN + len;
    if payload_end >= buf.len() {
        return Scan::Corrupt(format!("record of {len} bytes runs past the segment's end"));
    }
    let payload = &buf[at + FRAME_HEADER_LEN..payload_end];
    let crc_ok = crc32c::crc32c_append(crc32c::crc32c(&h[0..8]), payload) == u32_at(h, 12);
    if crc_ok && buf[payload_end] == END_MARKER {
        return Scan::Frame(Frame {
            kind,
            end_of_batch: h[4] & END_OF_BATCH != 0,
            offset: at,
            payload: (at + FRAME_HEADER_LEN, payload_end),
        });
    }
    if data_end <= payload_end {
        Scan::Torn("record cut short".into())
    } else if crc_ok {
        Scan::Corrupt("record end marker damaged".into())
    } else {
        Scan::Corrupt("record checksum mismatch".into())
    }
}

/// Whether any valid frame starts anywhere in `buf[from..]`: used to refuse a damaged
/// record that has valid records after it.
pub fn any_valid_frame_after(buf: &[u8], from: usize, data_end: usize) -> Option<usize> {
    (from..data_end).find(|&at| matches!(next_frame(buf, at, data_end), Scan::Frame(_)))
}

/// Offset after the last non-zero byte of `buf` (0 if all zero).
pub fn data_end(buf: &[u8]) -> usize {
    buf.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)
}

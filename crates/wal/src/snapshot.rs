//! Snapshot files: written whole under a temporary name, synced, renamed into place and
//! the directory synced, so that a snapshot file that exists under its final name is
//! complete. A snapshot counts only once a WAL record names it (see `SnapshotMarker`).
//!
//! Layout (little-endian), header of `SNAPSHOT_HEADER_LEN` = 60 bytes, then the data:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `b"RAFTSNP\0"` |
//! | 8 | 1 | format version |
//! | 9 | 3 | zero |
//! | 12 | 8 | cluster id |
//! | 20 | 8 | node id |
//! | 28 | 8 | last included index |
//! | 36 | 8 | last included term |
//! | 44 | 8 | data length |
//! | 52 | 4 | CRC-32C of the data |
//! | 56 | 4 | CRC-32C of bytes 0..56 |

use crate::error::WalError;
use crate::format::{u32_at, u64_at, Identity, FORMAT_VERSION, SNAPSHOT_MAGIC};
use crate::fs::{read_all, FileSystem};
use raft_core::{Bytes, Snapshot, SnapshotMeta};
use std::path::Path;

/// Bytes of a snapshot file's header.
pub const SNAPSHOT_HEADER_LEN: usize = 60;

/// File name of snapshot file `seq`.
pub fn snapshot_name(seq: u64) -> String {
    format!("snap-{seq:016x}.snap")
}

/// Writes snapshot file `seq` durably (see the module documentation).
pub(crate) fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    identity: Identity,
    seq: u64,
    snap: &Snapshot,
) -> Result<(), WalError> {
    let mut h = [0u8; SNAPSHOT_HEADER_LEN];
    h[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    h[8] = FORMAT_VERSION;
    h[12..20].copy_from_slice(&identity.cluster_id.to_le_bytes());
    h[20..28].copy_from_slice(&identity.node_id.to_le_bytes());
    h[28..36].copy_from_slice(&snap.meta.index.to_le_bytes());
    h[36..44].copy_from_slice(&snap.meta.term.to_le_bytes());
    h[44..52].copy_from_slice(&(snap.data.len() as u64).to_le_bytes());
    h[52..56].copy_from_slice(&crc32c::crc32c(&snap.data).to_le_bytes());
    let hcrc = crc32c::crc32c(&h[0..56]);
    h[56..60].copy_from_slice(&hcrc.to_le_bytes());

    let path = dir.join(snapshot_name(seq));
    let tmp = dir.join(format!("{}.tmp", snapshot_name(seq)));
    let file = fs.create(&tmp).map_err(WalError::io(&tmp))?;
    file.write_at(&h, 0)
        .and_then(|()| file.write_at(&snap.data, SNAPSHOT_HEADER_LEN as u64))
        .and_then(|()| file.sync_all())
        .map_err(WalError::io(&tmp))?;
    fs.rename(&tmp, &path).map_err(WalError::io(&path))?;
    fs.sync_dir(dir).map_err(WalError::io(dir))
}

/// Reads and checks snapshot file `seq`; it must belong to `identity` and end at `meta`.
pub(crate) fn read(
    fs: &dyn FileSystem,
    dir: &Path,
    identity: Identity,
    seq: u64,
    meta: SnapshotMeta,
) -> Result<Bytes, WalError> {
    let path = dir.join(snapshot_name(seq));
    let buf = read_all(fs, &path).map_err(WalError::io(&path))?;
    let corrupt = |offset: u64, reason: String| WalError::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };
    let h = buf
        .get(..SNAPSHOT_HEADER_LEN)
        .ok_or_else(|| corrupt(0, "file shorter than a snapshot header".into()))?;
    if h[0..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a snapshot file (bad magic number)".into()));
    }
    if crc32c::crc32c(&h[0..56]) != u32_at(h, 56) {
        return Err(corrupt(0, "snapshot header checksum mismatch".into()));
    }
    if h[8] != FORMAT_VERSION {
        return Err(WalError::UnsupportedVersion {
            path: path.clone(),
            found: h[8],
            supported: FORMAT_VERSION,
        });
    }
    let found = Identity {
        cluster_id: u64_at(h, 12),
        node_id: u64_at(h, 20),
    };
    if found != identity {
        return Err(WalError::WrongIdentity {
            path: path.clone(),
            expected: identity,
            found,
        });
    }
    let stored = SnapshotMeta {
        index: u64_at(h, 28),
        term: u64_at(h, 36),
    };
    if stored != meta {
        return Err(corrupt(
            28,
            format!("snapshot file ends at {stored:?} but the log says {meta:?}"),
        ));
    }
    let data = &buf[SNAPSHOT_HEADER_LEN..];
    if data.len() as u64 != u64_at(h, 44) || crc32c::crc32c(data) != u32_at(h, 52) {
        return Err(corrupt(
            SNAPSHOT_HEADER_LEN as u64,
            "snapshot data length or checksum mismatch".into(),
        ));
    }
    Ok(Bytes::copy_from_slice(data))
}

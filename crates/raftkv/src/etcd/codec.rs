//! What the etcd state machine writes: log entries (a command with the proposal it
//! answers, or a change of the member table) and snapshots (the whole store and the
//! member table), postcard after a format byte.
//!
//! Format byte 1: a command [`Entry`], or a snapshot of the store alone (written before
//! the member table existed; read as a store with an empty table). Format byte 2: a
//! [`MemberChange`] entry, or a snapshot of the store and the member table.

use super::members::{MemberChange, MemberTable};
use etcd_api::store::{Command, Store};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The first byte of every entry and snapshot this module writes.
pub const FORMAT_VERSION: u8 = 1;

/// One log entry: the command every replica applies, and which proposal it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The proposing process's incarnation (random per start), so that a restarted node
    /// never mistakes a replayed entry of its former life for one of its new proposals;
    /// 0 when nobody waits for the entry (the leader's lease expiries).
    pub origin: u64,
    /// The proposal's number within its incarnation.
    pub seq: u64,
    /// The command.
    pub command: Command,
}

/// The format byte of member-table entries and of snapshots that carry the table.
pub const MEMBERS_FORMAT: u8 = 2;

/// A decoded log entry of the etcd state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A store command.
    Command(Entry),
    /// A change of the member table.
    Member(MemberChange),
}

/// Encodes a member-table change as a log entry.
pub fn encode_member(change: &MemberChange) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![MEMBERS_FORMAT];
    out.extend(postcard::to_stdvec(change)?);
    Ok(out)
}

/// Decodes a log entry of either kind.
pub fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    match bytes.first() {
        Some(&MEMBERS_FORMAT) => Ok(Record::Member(postcard::from_bytes(&bytes[1..])?)),
        _ => decode::<Entry>(bytes).map(Record::Command),
    }
}

/// Encodes a snapshot: the store and the member table.
pub fn encode_snapshot(store: &Store, members: &MemberTable) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![MEMBERS_FORMAT];
    out.extend(postcard::to_stdvec(&(store, members))?);
    Ok(out)
}

/// Decodes a snapshot of either format (one without a table gives an empty one).
pub fn decode_snapshot(bytes: &[u8]) -> Result<(Store, MemberTable), CodecError> {
    match bytes.first() {
        Some(&MEMBERS_FORMAT) => Ok(postcard::from_bytes(&bytes[1..])?),
        _ => Ok((decode::<Store>(bytes)?, MemberTable::default())),
    }
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Nothing to decode.
    #[error("empty entry")]
    Empty,
    /// Written by another version of this format.
    #[error("unknown format version {0}")]
    Version(u8),
    /// postcard refused.
    #[error(transparent)]
    Postcard(#[from] postcard::Error),
}

/// Encodes `value` after the format-version byte.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    out.extend(postcard::to_stdvec(value)?);
    Ok(out)
}

/// Decodes what [`encode`] wrote.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, rest) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(CodecError::Version(version));
    }
    Ok(postcard::from_bytes(rest)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etcd_api::store::{PutRequest, Store, StoreConfig};

    #[test]
    fn entries_and_snapshots_round_trip_and_bad_bytes_are_errors() {
        let e = Entry {
            origin: 7,
            seq: 3,
            command: Command::Put(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..PutRequest::default()
            }),
        };
        let bytes = encode(&e).expect("encodes");
        assert_eq!(decode::<Entry>(&bytes).expect("decodes"), e);
        let mut store = Store::new(StoreConfig::default());
        store.apply(&e.command);
        let snap = encode(&store).expect("encodes");
        assert_eq!(decode::<Store>(&snap).expect("decodes"), store);
        assert!(matches!(decode::<Entry>(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode::<Entry>(&[9, 0]),
            Err(CodecError::Version(9))
        ));
        assert!(decode::<Entry>(&[FORMAT_VERSION, 0xff]).is_err());
    }

    #[test]
    fn member_entries_and_both_snapshot_formats_decode() {
        let e = Entry {
            origin: 1,
            seq: 1,
            command: Command::Compact { revision: 1 },
        };
        let bytes = encode(&e).expect("encodes");
        assert_eq!(decode_record(&bytes).expect("decodes"), Record::Command(e));
        let change = MemberChange::Add {
            id: 4,
            peer: "127.0.0.1:7004".into(),
        };
        let bytes = encode_member(&change).expect("encodes");
        assert_eq!(
            decode_record(&bytes).expect("decodes"),
            Record::Member(change.clone())
        );
        let store = Store::new(StoreConfig::default());
        let mut table = MemberTable::default();
        table.apply(&change);
        let snap = encode_snapshot(&store, &table).expect("encodes");
        assert_eq!(
            decode_snapshot(&snap).expect("decodes"),
            (store.clone(), table)
        );
        let old = encode(&store).expect("encodes");
        assert_eq!(
            decode_snapshot(&old).expect("decodes"),
            (store, MemberTable::default())
        );
        assert!(decode_record(&[MEMBERS_FORMAT, 0xff]).is_err());
    }
}

//! What the etcd state machine writes: log entries (a command with the proposal it
//! answers) and snapshots (the whole store), postcard after a format-version byte.

use etcd_api::store::Command;
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
}

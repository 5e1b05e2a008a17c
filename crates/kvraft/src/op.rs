//! Operations, requests and replies, input limits, and the log-command encoding.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The version byte that starts every encoded log command and snapshot.
///
/// Version 2: log commands carry their leader's time stamp ([`LogCommand`]), operations
/// include [`Op::OpenSession`], and snapshots hold sessions (last write and last
/// activity) instead of every client's last reply. Version 1 is not read.
pub const FORMAT_VERSION: u8 = 2;

/// One key/value operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Reads the key's value (`""` if it was never written).
    Get {
        /// The key.
        key: String,
    },
    /// Replaces the key's value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Appends to the key's value (a missing key counts as `""`).
    Append {
        /// The key.
        key: String,
        /// What to append.
        value: String,
    },
    /// Opens the client's session (or keeps it alive), so that its writes can be applied
    /// exactly once; a write from a client without a session is refused
    /// ([`ServerError::SessionExpired`]). The [`Clerk`](crate::Clerk) sends it by itself
    /// before its first write.
    OpenSession,
    /// Removes the key (reading it afterwards gives `""`). A write: applied exactly once.
    Delete {
        /// The key.
        key: String,
    },
}

impl Op {
    /// The key the operation touches (`None` for [`Op::OpenSession`]).
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } | Op::Delete { key } => {
                Some(key)
            }
            Op::OpenSession => None,
        }
    }

    /// The argument of a put or append; `None` for the others.
    pub fn value(&self) -> Option<&str> {
        match self {
            Op::Get { .. } | Op::OpenSession | Op::Delete { .. } => None,
            Op::Put { value, .. } | Op::Append { value, .. } => Some(value),
        }
    }

    /// True for a put, an append or a delete: the operations applied exactly once.
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Put { .. } | Op::Append { .. } | Op::Delete { .. })
    }
}

/// A client's request: an operation, numbered by its client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvRequest {
    /// The client's id (random, 64 bits). Its session is opened by an
    /// [`Op::OpenSession`] request; gets need no session.
    pub client_id: u64,
    /// The client's sequence number for this request: increasing from one request to the
    /// next. A retry carries the same number, which is how a duplicated write is
    /// recognised.
    pub seq: u64,
    /// The operation.
    pub op: Op,
}

/// A request as it is written in the Raft log: with the time at which the leader
/// proposed it, from which every replica derives the same session expiry (see
/// [`KvStateMachine`](crate::KvStateMachine)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCommand {
    /// The proposing leader's clock, in milliseconds (see
    /// [`KvConfig::clock_origin_ms`](crate::KvConfig::clock_origin_ms)).
    pub stamp_ms: u64,
    /// The client's request.
    pub req: KvRequest,
}

/// The result of an applied operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpOutput {
    /// A get's value.
    Value(String),
    /// A put, append or delete was applied.
    Done,
}

/// Why a request is invalid. Such a request is never proposed, and retrying it cannot
/// help.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum InputError {
    /// Keys must not be empty.
    #[error("the key is empty")]
    EmptyKey,
    /// The key is longer than [`Limits::max_key_bytes`].
    #[error("the key is {len} bytes long, over the limit of {max}")]
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The put's or append's argument is longer than [`Limits::max_value_bytes`].
    #[error("the value is {len} bytes long, over the limit of {max}")]
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// A server's answer when it did not apply the request for the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ServerError {
    /// This server is not the leader, or stopped being the leader (or changed term)
    /// before the request committed; try another. `leader_hint` is the id of the leader
    /// it knows of, if any.
    #[error("not the leader (hint: {leader_hint:?})")]
    WrongLeader {
        /// The leader this server knows of.
        leader_hint: Option<u64>,
    },
    /// The request did not commit within the server's time limit (for example, the
    /// server leads a minority partition without knowing it). It may still commit; a
    /// retry is safe.
    #[error("the request did not commit in time")]
    Timeout,
    /// The server is shutting down or has been killed.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The request is invalid; retrying cannot help.
    #[error("invalid request: {0}")]
    Invalid(#[from] InputError),
    /// The client has already had a newer write applied: the clerk has moved on, so
    /// this one is not applied. Only two clerks sharing an id can see this.
    #[error("request {seq} is older than the client's latest applied write {latest}")]
    Stale {
        /// The request's sequence number.
        seq: u64,
        /// The client's latest applied write sequence number.
        latest: u64,
    },
    /// The client has no session: it was idle for longer than the session time-to-live
    /// ([`KvConfig::session_ttl`](crate::KvConfig::session_ttl)) and its session
    /// expired, or it never opened one. The write was not applied now; if it is a retry,
    /// an earlier copy may or may not have been applied, which can no longer be told.
    #[error("the client's session has expired (or was never opened); the write was not applied")]
    SessionExpired,
    /// The server could not submit the request (an internal failure; the text says
    /// which). Another server may succeed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A server's reply to a [`KvRequest`].
pub type KvReply = Result<OpOutput, ServerError>;

/// Size limits on client input. Checked by the clerk before sending and by the server
/// before proposing.
///
/// The value limit applies to the argument of one put or append; a key's stored value
/// may grow past it through many appends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes (default 4 KiB).
    pub max_key_bytes: usize,
    /// Longest put or append argument, in bytes (default 1 MiB).
    pub max_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 4 << 10,
            max_value_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// Checks `op` against the limits: the key must be non-empty and within
    /// `max_key_bytes`, the value within `max_value_bytes`.
    pub fn check(&self, op: &Op) -> Result<(), InputError> {
        let Some(key) = op.key() else {
            return Ok(());
        };
        if key.is_empty() {
            return Err(InputError::EmptyKey);
        }
        if key.len() > self.max_key_bytes {
            return Err(InputError::KeyTooLarge {
                len: key.len(),
                max: self.max_key_bytes,
            });
        }
        if let Some(value) = op.value() {
            if value.len() > self.max_value_bytes {
                return Err(InputError::ValueTooLarge {
                    len: value.len(),
                    max: self.max_value_bytes,
                });
            }
        }
        Ok(())
    }
}

/// Why bytes could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Nothing to decode.
    #[error("empty input")]
    Empty,
    /// The data was written in a format this build does not know.
    #[error("unknown format version {0} (this build reads {FORMAT_VERSION})")]
    UnknownVersion(u8),
    /// postcard failed.
    #[error("postcard: {0}")]
    Postcard(#[from] postcard::Error),
}

/// Encodes a Raft log command: [`FORMAT_VERSION`], then postcard.
pub fn encode_command(cmd: &LogCommand) -> Result<Bytes, CodecError> {
    encode_versioned(cmd)
}

/// Decodes a log command written by [`encode_command`].
pub fn decode_command(data: &[u8]) -> Result<LogCommand, CodecError> {
    decode_versioned(data)
}

pub(crate) fn encode_versioned<T: Serialize>(value: &T) -> Result<Bytes, CodecError> {
    let out = postcard::to_extend(value, vec![FORMAT_VERSION])?;
    Ok(Bytes::from(out))
}

pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(data: &[u8]) -> Result<T, CodecError> {
    match data.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(CodecError::UnknownVersion(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_with_a_version_byte() {
        let req = LogCommand {
            stamp_ms: 1_700_000_000_000,
            req: KvRequest {
                client_id: u64::MAX,
                seq: 7,
                op: Op::Append {
                    key: "k".into(),
                    value: "x 1 2 y".into(),
                },
            },
        };
        let bytes = encode_command(&req).expect("encodes");
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode_command(&bytes).expect("decodes"), req);
        assert!(matches!(
            decode_command(&[1, 0, 0]),
            Err(CodecError::UnknownVersion(1))
        ));
        assert!(matches!(decode_command(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode_command(&[99, 1, 2]),
            Err(CodecError::UnknownVersion(99))
        ));
        assert!(matches!(
            decode_command(&[FORMAT_VERSION, 0xff]),
            Err(CodecError::Postcard(_))
        ));
    }

    #[test]
    fn limits_reject_bad_input_with_a_typed_answer() {
        let limits = Limits {
            max_key_bytes: 3,
            max_value_bytes: 5,
        };
        let get = |k: &str| Op::Get { key: k.into() };
        let put = |k: &str, v: &str| Op::Put {
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(limits.check(&get("")), Err(InputError::EmptyKey));
        assert_eq!(
            limits.check(&get("abcd")),
            Err(InputError::KeyTooLarge { len: 4, max: 3 })
        );
        assert_eq!(
            limits.check(&put("k", "123456")),
            Err(InputError::ValueTooLarge { len: 6, max: 5 })
        );
        assert_eq!(limits.check(&put("k", "12345")), Ok(()));
        assert_eq!(limits.check(&get("abc")), Ok(()));
        assert_eq!(limits.check(&Op::OpenSession), Ok(()));
    }
}

//! The replicated state: the data and the exactly-once table.

use crate::op::{decode_versioned, encode_versioned, CodecError, KvRequest, Op, OpOutput};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the exactly-once table remembers about one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The sequence number of the client's last applied request.
    pub last_seq: u64,
    /// That request's reply, returned again to a retry of it.
    pub last_reply: OpOutput,
}

/// The key/value state machine every replica applies the log to.
///
/// Deterministic: the same commands in the same order give the same state on every
/// replica. Ordered maps throughout, so that its snapshot bytes are a function of its
/// contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStateMachine {
    data: BTreeMap<String, String>,
    clients: BTreeMap<u64, ClientRecord>,
}

/// What applying one request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied now, with this reply.
    Fresh(OpOutput),
    /// A retry of the client's last applied request: not applied again; its reply.
    Duplicate(OpOutput),
    /// Older than the client's last applied request: not applied.
    Stale {
        /// The client's last applied sequence number.
        latest: u64,
    },
}

impl KvStateMachine {
    /// An empty store with an empty exactly-once table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key` (`""` if it was never written).
    pub fn get(&self, key: &str) -> &str {
        self.data.get(key).map_or("", String::as_str)
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key has a value.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What the exactly-once table holds for `client_id`.
    pub fn client(&self, client_id: u64) -> Option<&ClientRecord> {
        self.clients.get(&client_id)
    }

    /// Number of clients in the exactly-once table.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Applies `req` exactly once: a request not newer than its client's last applied
    /// one changes nothing. A client never seen before is registered.
    pub fn apply(&mut self, req: &KvRequest) -> Applied {
        if let Some(rec) = self.clients.get(&req.client_id) {
            if req.seq == rec.last_seq {
                return Applied::Duplicate(rec.last_reply.clone());
            }
            if req.seq < rec.last_seq {
                return Applied::Stale {
                    latest: rec.last_seq,
                };
            }
        }
        let reply = self.execute(&req.op);
        self.clients.insert(
            req.client_id,
            ClientRecord {
                last_seq: req.seq,
                last_reply: reply.clone(),
            },
        );
        Applied::Fresh(reply)
    }

    fn execute(&mut self, op: &Op) -> OpOutput {
        match op {
            Op::Get { key } => OpOutput::Value(self.get(key).to_owned()),
            Op::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                OpOutput::Done
            }
            Op::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                OpOutput::Done
            }
        }
    }

    /// The whole state (data and exactly-once table) as snapshot bytes: a
    /// format-version byte, then postcard.
    pub fn encode(&self) -> Result<Bytes, CodecError> {
        encode_versioned(self)
    }

    /// Reads a state written by [`encode`](Self::encode).
    pub fn decode(data: &[u8]) -> Result<Self, CodecError> {
        decode_versioned(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(client_id: u64, seq: u64, op: Op) -> KvRequest {
        KvRequest { client_id, seq, op }
    }
    fn append(k: &str, v: &str) -> Op {
        Op::Append {
            key: k.into(),
            value: v.into(),
        }
    }
    fn get(k: &str) -> Op {
        Op::Get { key: k.into() }
    }

    #[test]
    fn missing_keys_read_empty_and_ops_apply() {
        let mut sm = KvStateMachine::new();
        assert_eq!(
            sm.apply(&req(1, 1, get("a"))),
            Applied::Fresh(OpOutput::Value(String::new()))
        );
        assert_eq!(
            sm.apply(&req(1, 2, append("a", "x"))),
            Applied::Fresh(OpOutput::Done)
        );
        assert_eq!(
            sm.apply(&req(1, 3, append("a", "y"))),
            Applied::Fresh(OpOutput::Done)
        );
        assert_eq!(sm.get("a"), "xy");
        let put = Op::Put {
            key: "a".into(),
            value: "z".into(),
        };
        sm.apply(&req(2, 1, put));
        assert_eq!(sm.get("a"), "z");
        assert_eq!(sm.clients(), 2);
    }

    #[test]
    fn a_request_is_applied_at_most_once() {
        let mut sm = KvStateMachine::new();
        sm.apply(&req(7, 1, append("k", "a")));
        assert_eq!(
            sm.apply(&req(7, 1, append("k", "a"))),
            Applied::Duplicate(OpOutput::Done)
        );
        assert_eq!(sm.get("k"), "a");
        sm.apply(&req(7, 2, get("k")));
        sm.apply(&req(7, 3, append("k", "b")));
        // A late copy of an older request is refused.
        assert_eq!(
            sm.apply(&req(7, 1, append("k", "a"))),
            Applied::Stale { latest: 3 }
        );
        assert_eq!(sm.get("k"), "ab");
        // A retried get returns the value it read the first time.
        sm.apply(&req(8, 1, get("k")));
        sm.apply(&req(7, 4, append("k", "c")));
        assert_eq!(
            sm.apply(&req(8, 1, get("k"))),
            Applied::Duplicate(OpOutput::Value("ab".into()))
        );
    }

    #[test]
    fn snapshots_carry_the_exactly_once_table() {
        let mut sm = KvStateMachine::new();
        sm.apply(&req(3, 1, append("k", "a")));
        let bytes = sm.encode().expect("encodes");
        let mut restored = KvStateMachine::decode(&bytes).expect("decodes");
        assert_eq!(restored, sm);
        assert_eq!(
            restored.apply(&req(3, 1, append("k", "a"))),
            Applied::Duplicate(OpOutput::Done)
        );
        assert_eq!(restored.get("k"), "a");
        assert!(KvStateMachine::decode(&[]).is_err());
        assert!(KvStateMachine::decode(&[0, 1]).is_err());
    }
}

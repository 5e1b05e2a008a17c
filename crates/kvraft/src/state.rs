//! The replicated state: the data and the client sessions (the exactly-once table).
//!
//! # Sessions
//!
//! Exactly-once applies to writes (put, append) only. A get changes nothing, so a retried
//! get simply reads again, which is still linearizable: the table needs only each
//! client's last *write* sequence number (its reply is always [`OpOutput::Done`], so
//! nothing else is stored) and the time of its last activity.
//!
//! A client opens its session with [`Op::OpenSession`] before its first write; a write
//! from a client without a session is refused with [`Applied::SessionExpired`] and not
//! applied. Sessions of clients idle for longer than the session time-to-live expire, as
//! in the Raft thesis (§6.3): the decision is made from the log alone, so every replica
//! drops the same sessions at the same point of the log. Each command carries the time
//! at which its leader proposed it ([`crate::LogCommand::stamp_ms`]); the state machine's
//! clock is the largest stamp applied so far (so it never goes back, whichever leader's
//! clock is late), and whenever that clock has moved a sixteenth of the time-to-live past
//! the last sweep, every session idle for longer than the time-to-live is dropped. A
//! session thus lives between `ttl` and `ttl + ttl/16` after its last activity.
//!
//! A client whose session expired and that retries a write gets
//! [`Applied::SessionExpired`] rather than a second application: whether the first copy
//! was applied cannot be known any more, so the client must be told (the clerk returns
//! [`ClerkError::SessionExpired`](crate::ClerkError::SessionExpired)). The only way a
//! write could still be applied twice is a copy of the client's `OpenSession` delayed
//! in the network for longer than the time-to-live and delivered just before a copy of
//! one of its writes, equally delayed.

use crate::op::{decode_versioned, encode_versioned, CodecError, KvRequest, Op, OpOutput};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the exactly-once table remembers about one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The sequence number of the client's last applied write (or of the request that
    /// opened its session, if it has not written since).
    pub last_write_seq: u64,
    /// The state machine's clock (milliseconds, see [`KvStateMachine::now_ms`]) when the
    /// client was last active.
    pub last_active_ms: u64,
}

/// The key/value state machine every replica applies the log to.
///
/// Deterministic: the same commands in the same order give the same state on every
/// replica (given the same session time-to-live). Ordered maps throughout, so that its
/// snapshot bytes are a function of its contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStateMachine {
    data: BTreeMap<String, String>,
    clients: BTreeMap<u64, ClientRecord>,
    /// The largest command stamp applied so far.
    now_ms: u64,
    /// The clock at the last expiry sweep.
    last_sweep_ms: u64,
    /// Not part of the state: the same on every replica by configuration.
    #[serde(skip, default = "default_ttl_ms")]
    ttl_ms: u64,
    /// The last write applied and its term (for the `double-apply` planted bug only).
    #[cfg(kv_bug = "double-apply")]
    #[serde(skip)]
    last_write: Option<(u64, Op)>,
}

fn default_ttl_ms() -> u64 {
    duration_ms(crate::server::DEFAULT_SESSION_TTL)
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Default for KvStateMachine {
    fn default() -> Self {
        KvStateMachine {
            data: BTreeMap::new(),
            clients: BTreeMap::new(),
            now_ms: 0,
            last_sweep_ms: 0,
            ttl_ms: default_ttl_ms(),
            #[cfg(kv_bug = "double-apply")]
            last_write: None,
        }
    }
}

/// What applying one request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied now, with this reply.
    Fresh(OpOutput),
    /// A retry of the client's last applied write: not applied again; its reply.
    Duplicate(OpOutput),
    /// A write older than the client's last applied write: not applied.
    Stale {
        /// The client's last applied write sequence number.
        latest: u64,
    },
    /// A write from a client with no session (it expired, or was never opened): not
    /// applied.
    SessionExpired,
}

impl KvStateMachine {
    /// An empty store with no sessions and the default session time-to-live.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose sessions expire after `ttl` without activity.
    pub fn with_session_ttl(ttl: Duration) -> Self {
        let mut sm = Self::default();
        sm.set_session_ttl(ttl);
        sm
    }

    /// Sets the session time-to-live (it is configuration, not state: a snapshot does not
    /// carry it, so set it again after [`decode`](Self::decode)).
    pub fn set_session_ttl(&mut self, ttl: Duration) {
        self.ttl_ms = duration_ms(ttl);
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

    /// Number of open sessions.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// The state machine's clock: the largest command stamp applied (milliseconds).
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Applies `req`, proposed at `stamp_ms` (its leader's clock), in log term `term`:
    /// advances the clock, expires idle sessions, then applies the request (a write
    /// exactly once). `term` matters only to the `double-apply` planted bug.
    pub fn apply(&mut self, req: &KvRequest, stamp_ms: u64, term: u64) -> Applied {
        let _ = term;
        self.advance(stamp_ms);
        #[cfg(kv_bug = "double-apply")]
        self.planted_double_apply(term);
        let now = self.now_ms;
        match &req.op {
            Op::Get { .. } => {
                if let Some(rec) = self.clients.get_mut(&req.client_id) {
                    rec.last_active_ms = now;
                }
                Applied::Fresh(self.execute(&req.op))
            }
            Op::OpenSession => {
                self.clients
                    .entry(req.client_id)
                    .and_modify(|rec| rec.last_active_ms = now)
                    .or_insert(ClientRecord {
                        last_write_seq: req.seq,
                        last_active_ms: now,
                    });
                Applied::Fresh(OpOutput::Done)
            }
            Op::Put { .. } | Op::Append { .. } | Op::Delete { .. } => {
                let Some(rec) = self.clients.get_mut(&req.client_id) else {
                    return Applied::SessionExpired;
                };
                rec.last_active_ms = now;
                // The planted bug `no-dedup` forgets the check: every copy is applied.
                if cfg!(not(kv_bug = "no-dedup")) {
                    if req.seq == rec.last_write_seq {
                        return Applied::Duplicate(OpOutput::Done);
                    }
                    if req.seq < rec.last_write_seq {
                        return Applied::Stale {
                            latest: rec.last_write_seq,
                        };
                    }
                }
                rec.last_write_seq = req.seq;
                #[cfg(kv_bug = "double-apply")]
                {
                    self.last_write = Some((term, req.op.clone()));
                }
                Applied::Fresh(self.execute(&req.op))
            }
        }
    }

    /// The planted bug `double-apply`: the first command of a new term applies the
    /// previous term's last write once more (as a new leader replaying its predecessor's
    /// last entry would).
    #[cfg(kv_bug = "double-apply")]
    fn planted_double_apply(&mut self, term: u64) {
        if let Some((t, op)) = self.last_write.take() {
            if term > t {
                self.execute(&op);
            } else {
                self.last_write = Some((t, op));
            }
        }
    }

    /// Moves the clock to `stamp_ms` if that is later, and drops the idle sessions once
    /// the clock has moved `ttl/16` since the last sweep.
    fn advance(&mut self, stamp_ms: u64) {
        self.now_ms = self.now_ms.max(stamp_ms);
        if self.now_ms.saturating_sub(self.last_sweep_ms) < (self.ttl_ms / 16).max(1) {
            return;
        }
        self.last_sweep_ms = self.now_ms;
        let (now, ttl) = (self.now_ms, self.ttl_ms);
        self.clients
            .retain(|_, rec| now.saturating_sub(rec.last_active_ms) <= ttl);
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
            Op::Delete { key } => {
                self.data.remove(key);
                OpOutput::Done
            }
            Op::OpenSession => OpOutput::Done,
        }
    }

    /// The whole state (data, sessions, clock) as snapshot bytes: a format-version byte,
    /// then postcard.
    pub fn encode(&self) -> Result<Bytes, CodecError> {
        encode_versioned(self)
    }

    /// Reads a state written by [`encode`](Self::encode), with the default session
    /// time-to-live (see [`set_session_ttl`](Self::set_session_ttl)).
    pub fn decode(data: &[u8]) -> Result<Self, CodecError> {
        decode_versioned(data)
    }
}

#[cfg(test)]
mod tests;

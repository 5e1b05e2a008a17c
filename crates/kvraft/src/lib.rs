//! # kvraft
//!
//! A fault-tolerant key/value service replicated with Raft: linearizable, with
//! exactly-once semantics for every client operation.
//!
//! - [`KvStateMachine`]: the replicated state. String keys and values; `Get`, `Put` and
//!   `Append`; a key never written reads as `""`. Beside the data it keeps the
//!   *exactly-once table*: for each client id, the sequence number of the last request
//!   applied and its reply. A request whose sequence number is not newer than the
//!   client's last is never applied again. The table is part of every snapshot.
//! - [`KvServer`]: one replica. It submits every client operation, reads included,
//!   through the Raft log (so a Get never returns stale data, even from a leader that
//!   has been partitioned away without knowing it) and answers once the operation is
//!   applied. A pending request is answered with an error as soon as the server sees
//!   that it cannot complete here (its term changed, it lost leadership, another entry
//!   landed at the request's index, or a time limit passed), so nothing waits forever.
//!   It snapshots when the persisted Raft state reaches `maxraftstate` bytes
//!   ([`KvConfig::max_raft_state`], none when unset) and restores from snapshots, on
//!   restart and when the leader sends one.
//! - [`Clerk`]: the client. It has its own random 64-bit id and numbers its requests;
//!   it finds the leader by itself, remembers it, and retries on timeouts and
//!   wrong-leader answers for as long as it takes. [`BlockingClerk`] wraps it for
//!   callers outside the async runtime.
//!
//! The server is reached through any transport: the tests serve it on the simulated
//! [`labrpc`] network ([`KV_METHOD`] for client requests, [`RAFT_METHOD`] for Raft's
//! own messages, both on one labrpc server); a clerk talks to servers through
//! [`KvEnd`], implemented for [`labrpc::ClientEnd`].
//!
//! # Bad input
//!
//! A request is checked against [`Limits`] by the clerk before it is sent and by the
//! server before it is proposed; what fails gets a typed [`InputError`] (empty key, key
//! or value over its limit) and the service keeps running. A client id the service has
//! never seen is not an error: the client is registered when its first request is
//! applied. A request older than the client's latest (possible only if two clerks share
//! an id) is answered with [`ServerError::Stale`] and not applied.
//!
//! # Wire and storage formats
//!
//! Requests, replies, log commands and snapshots are encoded with postcard (serde).
//! Log commands and snapshots start with a format-version byte ([`FORMAT_VERSION`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clerk;
mod op;
mod server;
mod state;

pub use clerk::{BlockingClerk, Clerk, ClerkConfig, ClerkError, KvEnd};
pub use op::{
    decode_command, encode_command, CodecError, InputError, KvReply, KvRequest, Limits, LogCommand,
    Op, OpOutput, ServerError, FORMAT_VERSION,
};
pub use server::{KvConfig, KvServer, KvServerError, ServerStats};
pub use state::{Applied, ClientRecord, KvStateMachine};

/// The labrpc method name under which a server serves client requests ([`KvRequest`] in,
/// [`KvReply`] out).
pub const KV_METHOD: &str = "KV.Op";

/// The labrpc method name under which a server serves Raft's messages
/// ([`raft::Envelope`] in, `Option<Envelope>` out), beside [`KV_METHOD`].
pub const RAFT_METHOD: &str = "Raft.Message";

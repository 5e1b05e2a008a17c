//! # kvraft
//!
//! A fault-tolerant key/value service replicated with Raft: linearizable, with
//! exactly-once semantics for every client operation.
//!
//! - [`KvStateMachine`]: the replicated state. String keys and values; `Get`, `Put` and
//!   `Append`; a key never written reads as `""`. Beside the data it keeps the client
//!   *sessions* (the exactly-once table): for each client with an open session, the
//!   sequence number of its last applied write and the time of its last activity. A
//!   write whose sequence number is not newer than the client's last is never applied
//!   again; gets are not deduplicated (a retried get reads again, still linearizable).
//!   Sessions idle for longer than [`KvConfig::session_ttl`] expire, decided from the
//!   leaders' time stamps in the log so that every replica drops the same ones (see
//!   [`KvStateMachine`] for the rules). The sessions are part of every snapshot.
//! - [`KvServer`]: one replica. It submits every write through the Raft log and answers
//!   once it is applied; a Get does not touch the log: the server asks Raft for a read
//!   index (ReadIndex: the leader confirms with a majority that it still leads; a
//!   follower forwards), waits until it has applied that index and reads its own state
//!   (so a Get never returns stale data, even from a leader that has been partitioned
//!   away without knowing it; see `docs/READS.md`). A pending request is answered with an error as soon as the server sees
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
//! The service names no network: whatever carries requests serves [`KvServer::handle`]
//! to clients and the Raft peer's `handle` to the other replicas, and a clerk talks to
//! servers through any [`KvEnd`]. The tests use the simulated `labrpc` network (a
//! dev-dependency only); `raftkv` serves it over TCP. A wrong-leader answer names the
//! leader the server believes in, and the clerk goes there next when it can.
//!
//! # Bad input
//!
//! A request is checked against [`Limits`] by the clerk before it is sent and by the
//! server before it is proposed; what fails gets a typed [`InputError`] (empty key, key
//! or value over its limit) and the service keeps running. A client opens its session
//! with [`Op::OpenSession`] (the [`Clerk`] does it before its first write); a write from
//! a client without a session (never opened, or expired) is answered
//! [`ServerError::SessionExpired`] and not applied, so that a retry arriving after its
//! session expired can never be applied a second time. A write older than the client's
//! latest (possible only if two clerks share an id) is answered [`ServerError::Stale`]
//! and not applied.
//!
//! # Wire and storage formats
//!
//! Requests, replies, log commands and snapshots are encoded with postcard (serde).
//! Log commands ([`LogCommand`]: the request and its leader's time stamp) and snapshots
//! start with a format-version byte ([`FORMAT_VERSION`]).
//!
//! # Planted bugs
//!
//! `crates/kvraft/check-planted-bugs.sh` builds this crate with
//! `RUSTFLAGS='--cfg kv_bug="NAME"'` (`get-local`, `no-dedup`, `double-apply`) to show the
//! test suite catches each; without that flag (never set by a cargo feature) none of that
//! code exists.

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

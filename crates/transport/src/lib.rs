//! # raft-transport
//!
//! The real peer transport of the Raft runtime: framed TCP between the members of a
//! cluster, with a handshake, lazy long-lived connections, reconnect with backoff and
//! jitter, bounded per-peer queues and pipelining.
//!
//! - [`TcpTransport`] implements [`raft::Transport`]: the runtime's calls to a peer go out
//!   on one connection per peer, many in flight at once, matched to their responses by id.
//! - [`PeerServer`] / [`serve_peers`] accept the other members' connections and hand each
//!   request to a [`Handler`] (the node's `Raft::handle`), concurrently.
//! - [`frame`] is the wire format (length-delimited, versioned postcard frames) and the
//!   [`Hello`] handshake, shared with the client protocol.
//!
//! ## Wire format
//!
//! Every frame is a 4-byte big-endian length (of what follows), one format-version byte
//! ([`frame::FORMAT_VERSION`], today 1), then a postcard-encoded body. A frame longer than
//! [`TransportConfig::max_frame`] is refused from its length prefix alone.
//!
//! A connection opens with the connecting side's [`Hello`] frame — magic
//! `b"RAFT"`, format version, cluster id (u64), sender node id (u64), role (`Peer` or
//! `Client`) — answered by one [`HelloReply`] frame: `Accepted`, or
//! `Refused { reason }` followed by the close. A connection that sends no valid hello
//! within the handshake timeout is closed.
//!
//! On a peer connection the connecting node then writes [`wire::PeerRequest`]
//! `{ id, envelope }` frames and the accepting node answers each with one
//! [`wire::PeerResponse`] `{ id, envelope: Option<Envelope> }` frame, in the order the
//! answers are ready. Every envelope is checked on receipt (`Message::validate`, `from`
//! and `to` match the connection, requests one way and responses the other); anything
//! malformed closes the connection with a log line. A connection is one-way in purpose:
//! each pair of nodes uses two, one opened by each side.
//!
//! ## Backpressure
//!
//! Each peer has a queue of [`TransportConfig::queue_depth`] calls. A call to a peer whose
//! queue is full returns `None` at once (counted in [`PeerStats::dropped_backpressure`]):
//! the core treats it as a lost message and sends again later, so a heartbeat under load
//! is dropped, never queued without bound. While a peer is unreachable (between connection
//! attempts) every call to it returns `None` at once. One writer per connection writes
//! frames whole and in queue order, so a heartbeat behind a snapshot chunk waits for at
//! most that one frame. On the server, at most
//! [`TransportConfig::max_concurrent_requests`] requests per connection are in the handler;
//! beyond that the server stops reading that connection and TCP pushes back.
//!
//! The wire format and policy are also described in `docs/TRANSPORT.md`.
#![warn(missing_docs)]

mod backoff;
mod client;
mod config;
pub mod frame;
pub mod server;
mod stats;
pub mod wire;

pub use client::TcpTransport;
pub use config::{ConfigError, TransportConfig, FRAME_OVERHEAD, MAX_FRAME, MIN_FRAME};
pub use frame::{FrameError, FramedConn, HandshakeError, Hello, HelloReply, Role};
pub use server::{serve_peers, Accept, Handler, PeerServer};
pub use stats::PeerStats;
pub use tokio_util::sync::CancellationToken;

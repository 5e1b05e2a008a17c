//! The messages of a peer connection after its handshake.
//!
//! The connecting node writes [`PeerRequest`]s, the accepting node writes
//! [`PeerResponse`]s, each one frame. Every request gets exactly one response with the
//! same `id`, in whatever order the handler finishes them: responses are matched to
//! requests by id, so many requests are in flight on one connection at once.

use raft_core::Envelope;
use serde::{Deserialize, Serialize};

/// A Raft request (RequestVote, AppendEntries, InstallSnapshot) from the connecting node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRequest {
    /// Chosen by the sender, unique on this connection.
    pub id: u64,
    /// The message; `from` must be the node id of the handshake.
    pub envelope: Envelope,
}

/// The answer to the [`PeerRequest`] with the same `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerResponse {
    /// The request's id.
    pub id: u64,
    /// The receiver's response, or `None` when it has none (dead, overloaded, refused):
    /// an explicit "no answer", so the caller need not wait for its timeout.
    pub envelope: Option<Envelope>,
}

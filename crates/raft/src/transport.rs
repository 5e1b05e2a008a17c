//! How the runtime reaches other peers.

use futures::future::BoxFuture;
use raft_core::{Envelope, NodeId};

/// Request/response delivery of protocol messages to other peers.
///
/// The runtime calls [`call`](Transport::call) for every request the core sends
/// (RequestVote, AppendEntries) and steps the response, if one comes back, into the core.
/// `None` means no answer, for whatever reason: lost request, lost reply, dead peer. On
/// the receiving side, whatever serves the transport hands requests to
/// [`Raft::handle`](crate::Raft::handle) and returns its answer.
pub trait Transport: Send + Sync + 'static {
    /// Delivers `msg` to peer `to` and returns its response, or `None`.
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>>;
}

//! What the runtime's benchmarks share: a transport that is a function call.

use futures::future::BoxFuture;
use raft::{Envelope, NodeId, Raft, Transport};
use std::sync::{Arc, OnceLock};

/// Delivers messages by calling the peer's handler directly: no network, no
/// serialization, so that a benchmark measures the protocol and the runtime alone.
/// Peers are indexed by id; the registry is filled once every peer exists.
pub struct Local {
    /// Every peer of the cluster, at the position of its id.
    pub peers: Arc<OnceLock<Vec<Raft>>>,
}

impl Transport for Local {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let peer = self.peers.get().and_then(|p| p.get(to as usize)).cloned();
        Box::pin(async move { peer?.handle(msg).await })
    }
}

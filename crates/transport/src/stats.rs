//! Per-peer counters of the outbound transport.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of one peer's counters, as [`TcpTransport::stats`](crate::TcpTransport::stats)
/// returns them. Counters only grow (over the transport's lifetime).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Bytes of requests written to the peer (length prefixes included).
    pub bytes_sent: u64,
    /// Bytes of responses read from the peer (length prefixes included).
    pub bytes_received: u64,
    /// Requests written to the peer.
    pub messages_sent: u64,
    /// Responses read from the peer.
    pub messages_received: u64,
    /// Connections established (handshake accepted), the first one included.
    pub connects: u64,
    /// Connections established after the first: how often the link came back.
    pub reconnects: u64,
    /// Connection attempts that failed (refused, unreachable, handshake refused).
    pub connect_failures: u64,
    /// Calls that returned `None` at once because the peer's send queue was full.
    pub dropped_backpressure: u64,
    /// Calls that returned `None` because the peer was unreachable (during backoff, or
    /// when a connection attempt or the connection failed under them).
    pub dropped_unreachable: u64,
    /// Whether a connection to the peer is up right now.
    pub connected: bool,
}

#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) messages_received: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) dropped_backpressure: AtomicU64,
    pub(crate) dropped_unreachable: AtomicU64,
    pub(crate) connected: AtomicBool,
}

pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> PeerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let connects = get(&self.connects);
        PeerStats {
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            messages_sent: get(&self.messages_sent),
            messages_received: get(&self.messages_received),
            connects,
            reconnects: connects.saturating_sub(1),
            connect_failures: get(&self.connect_failures),
            dropped_backpressure: get(&self.dropped_backpressure),
            dropped_unreachable: get(&self.dropped_unreachable),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

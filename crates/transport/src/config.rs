//! The transport's settings and their validation.

use crate::frame::DEFAULT_MAX_FRAME;
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The smallest `max_frame` accepted: a handshake and an empty AppendEntries must fit.
pub const MIN_FRAME: usize = 1024;
/// The largest `max_frame` accepted: what a 4-byte length prefix can describe, capped
/// at 1 GiB so that one frame cannot take over a small machine's memory.
pub const MAX_FRAME: usize = 1 << 30;

/// Bytes of a frame that are not entry or snapshot data, at most: the version byte, the
/// request id, the envelope's ids and the message's fixed fields, with room to spare.
pub const FRAME_OVERHEAD: usize = 1024;

/// Settings of one node's peer transport: its outbound [`TcpTransport`](crate::TcpTransport)
/// and its [`PeerServer`](crate::PeerServer) read the same struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// The cluster's id: a connection from another cluster is refused.
    pub cluster_id: u64,
    /// This node's id.
    pub node_id: NodeId,
    /// Every member's peer address. This node's own entry may be present (it is ignored
    /// when calling); an id absent from the map is unknown: calls to it return `None` and
    /// its connections are refused.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Largest frame (version byte + body) sent or accepted. Must exceed the runtime's
    /// largest message (its `max_msg_bytes` and `snapshot_chunk_bytes`) with room for the
    /// envelope: a message over it is not sent (the call returns `None`).
    pub max_frame: usize,
    /// Calls that may wait to be written to one peer. When the queue is full a call
    /// returns `None` at once (counted in `dropped_backpressure`).
    pub queue_depth: usize,
    /// How long a call waits for its response, from the moment it is made.
    pub call_timeout: Duration,
    /// How long establishing a TCP connection may take.
    pub connect_timeout: Duration,
    /// How long either side waits for the other's part of the handshake; an inbound
    /// connection that sends no valid hello within it is closed.
    pub handshake_timeout: Duration,
    /// First wait after a failed connection attempt; doubled after each further failure.
    pub backoff_initial: Duration,
    /// Longest wait between connection attempts.
    pub backoff_max: Duration,
    /// Requests from one inbound connection that may be in the handler at once; beyond
    /// it the server stops reading that connection until one finishes (TCP then pushes
    /// back on the sender).
    pub max_concurrent_requests: usize,
    /// Inbound connections the peer server holds at once (handshaking or serving); one
    /// more is closed as soon as it is accepted, so a flood of connections cannot exhaust
    /// file descriptors or memory.
    pub max_inbound_connections: usize,
}

impl TransportConfig {
    /// Settings with the defaults below for everything but the identity and the peers.
    ///
    /// Defaults: 16 MiB frames, 1024 queued calls per peer, 1 s per call, 1 s to connect,
    /// 2 s for the handshake, backoff from 50 ms up to 2 s, 256 concurrent requests per
    /// inbound connection, 256 inbound connections.
    pub fn new(cluster_id: u64, node_id: NodeId, peers: BTreeMap<NodeId, SocketAddr>) -> Self {
        TransportConfig {
            cluster_id,
            node_id,
            peers,
            max_frame: DEFAULT_MAX_FRAME,
            queue_depth: 1024,
            call_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            max_concurrent_requests: 256,
            max_inbound_connections: 256,
        }
    }

    /// Checks every setting; the error names the first unusable one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&self.max_frame) {
            return Err(ConfigError::MaxFrame(self.max_frame));
        }
        if self.queue_depth == 0 {
            return Err(ConfigError::Zero("queue_depth"));
        }
        if self.max_concurrent_requests == 0 {
            return Err(ConfigError::Zero("max_concurrent_requests"));
        }
        if self.max_inbound_connections == 0 {
            return Err(ConfigError::Zero("max_inbound_connections"));
        }
        for (name, d) in [
            ("call_timeout", self.call_timeout),
            ("connect_timeout", self.connect_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.backoff_initial > self.backoff_max {
            return Err(ConfigError::Backoff {
                initial: self.backoff_initial,
                max: self.backoff_max,
            });
        }
        let mut seen: BTreeMap<SocketAddr, NodeId> = BTreeMap::new();
        for (&id, &addr) in &self.peers {
            if let Some(&first) = seen.get(&addr) {
                return Err(ConfigError::DuplicateAddress {
                    first,
                    second: id,
                    addr,
                });
            }
            seen.insert(addr, id);
        }
        Ok(())
    }

    /// Checks that every message the runtime with `raft` settings sends fits in a frame:
    /// an AppendEntries of `max_msg_bytes` (the core counts 16 bytes an entry for what
    /// postcard may encode in up to 25, hence the factor 2) and a snapshot chunk. A single
    /// entry larger than `max_msg_bytes` is still sent alone: the service must refuse
    /// commands over [`max_command_bytes`](Self::max_command_bytes).
    pub fn validate_for(&self, raft: &raft::Config) -> Result<(), ConfigError> {
        self.validate()?;
        let needed = raft
            .max_msg_bytes
            .saturating_mul(2)
            .max(raft.snapshot_chunk_bytes)
            .saturating_add(FRAME_OVERHEAD);
        if self.max_frame < needed {
            return Err(ConfigError::FrameTooSmall {
                max_frame: self.max_frame,
                needed,
            });
        }
        Ok(())
    }

    /// The largest command a service should accept: one entry holding it fits in a frame.
    pub fn max_command_bytes(&self) -> usize {
        self.max_frame.saturating_sub(FRAME_OVERHEAD)
    }
}

/// An unusable [`TransportConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_frame` is outside [`MIN_FRAME`]`..=`[`MAX_FRAME`].
    #[error("max_frame {0} is outside {MIN_FRAME}..={MAX_FRAME}")]
    MaxFrame(usize),
    /// A count or duration that must be positive is zero.
    #[error("{0} must be positive")]
    Zero(&'static str),
    /// The backoff starts above its cap.
    #[error("backoff_initial {initial:?} exceeds backoff_max {max:?}")]
    Backoff {
        /// The configured first wait.
        initial: Duration,
        /// The configured cap.
        max: Duration,
    },
    /// Two peers share one address.
    #[error("peers {first} and {second} share the address {addr}")]
    DuplicateAddress {
        /// The lower id.
        first: NodeId,
        /// The higher id.
        second: NodeId,
        /// The shared address.
        addr: SocketAddr,
    },
    /// `max_frame` cannot carry the runtime's largest messages.
    #[error("max_frame {max_frame} is too small for the runtime's messages (needs {needed})")]
    FrameTooSmall {
        /// The configured limit.
        max_frame: usize,
        /// What the runtime's settings need.
        needed: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> BTreeMap<NodeId, SocketAddr> {
        (1..=3)
            .map(|i| (i, SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16))))
            .collect()
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(TransportConfig::new(1, 1, peers()).validate(), Ok(()));
    }

    #[test]
    fn the_default_frame_carries_the_default_runtime_and_a_small_one_does_not() {
        let mut c = TransportConfig::new(1, 1, peers());
        assert_eq!(c.validate_for(&raft::Config::default()), Ok(()));
        c.max_frame = 1 << 20;
        assert!(matches!(
            c.validate_for(&raft::Config::default()),
            Err(ConfigError::FrameTooSmall { .. })
        ));
        assert_eq!(c.max_command_bytes(), (1 << 20) - FRAME_OVERHEAD);
    }

    #[test]
    fn each_unusable_setting_is_named() {
        let base = TransportConfig::new(1, 1, peers());
        let with = |f: &dyn Fn(&mut TransportConfig)| {
            let mut c = base.clone();
            f(&mut c);
            c.validate()
        };
        assert_eq!(with(&|c| c.max_frame = 10), Err(ConfigError::MaxFrame(10)));
        assert_eq!(
            with(&|c| c.queue_depth = 0),
            Err(ConfigError::Zero("queue_depth"))
        );
        assert_eq!(
            with(&|c| c.call_timeout = Duration::ZERO),
            Err(ConfigError::Zero("call_timeout"))
        );
        assert!(matches!(
            with(&|c| c.backoff_initial = Duration::from_secs(10)),
            Err(ConfigError::Backoff { .. })
        ));
        let dup = with(&|c| {
            let a = c.peers[&1];
            c.peers.insert(3, a);
        });
        assert!(matches!(
            dup,
            Err(ConfigError::DuplicateAddress {
                first: 1,
                second: 3,
                ..
            })
        ));
    }
}

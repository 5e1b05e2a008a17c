//! The native client protocol: what a client and a server say to each other after the
//! handshake (`raft_transport`'s `Hello` with role `Client`), on its frames.
//!
//! Every request carries an id chosen by the client, and its response carries the same
//! id; a server may answer requests of one connection out of order. Key/value operations
//! are kvraft's [`KvRequest`] and [`KvReply`] unchanged (client id and sequence number,
//! so a retried write is applied exactly once), and a wrong-leader answer comes with the
//! leader's id and client address when the server knows them.

use kvraft::{KvReply, KvRequest};
use raft::NodeId;
use serde::{Deserialize, Serialize};

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client; echoed in the response.
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// A key/value operation.
    Kv(KvRequest),
    /// The node's state ([`NodeStatus`]).
    Status,
    /// Whether the node serves ([`Health`]).
    Health,
}

/// A server's response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (0 when the request could not be read).
    pub id: u64,
    /// The answer.
    pub body: ResponseBody,
}

/// A server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseBody {
    /// The outcome of a key/value operation; `leader` accompanies a wrong-leader answer.
    Kv {
        /// kvraft's reply.
        reply: KvReply,
        /// The leader the server believes in, when the reply is `WrongLeader`.
        leader: Option<Member>,
    },
    /// The node's state.
    Status(NodeStatus),
    /// The node's health.
    Health(Health),
    /// The request could not be served (it did not decode, for instance); the
    /// connection is closed after this.
    Error(String),
}

/// A node of the cluster as clients see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its Raft id.
    pub id: NodeId,
    /// Where it serves clients, if configured.
    pub client_addr: Option<String>,
}

/// What `raftkv status` shows of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub id: NodeId,
    /// `leader`, `follower` or `candidate`.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: u64,
    /// Index applied by the key/value service.
    pub applied_index: u64,
    /// Last index in the log.
    pub last_log_index: u64,
    /// Last index in the snapshot (0: none).
    pub snapshot_index: u64,
    /// Bytes of persisted Raft state (log and hard state).
    pub log_bytes: u64,
    /// Every node of the cluster, with its client address.
    pub members: Vec<Member>,
}

/// A node's health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// True while the node serves (not shutting down, its Raft peer alive).
    pub serving: bool,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
}

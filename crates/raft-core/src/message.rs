//! The messages peers exchange (Figure 2's RPCs, each split into request and response).

use crate::types::{Entry, Index, NodeId, SnapshotMeta, Term};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A message with its sender and receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending peer.
    pub from: NodeId,
    /// The receiving peer.
    pub to: NodeId,
    /// The content.
    pub msg: Message,
}

/// Why a follower refused an AppendEntries, so that the leader can skip back a whole
/// term at a time ("fast log back-up", §5.3 of the extended paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectHint {
    /// The term of the follower's entry at the rejected `prev_log_index`, or `None` when
    /// the follower's log does not reach that index.
    pub conflict_term: Option<Term>,
    /// The first index the follower holds for `conflict_term` (meaningless when it is `None`).
    pub first_index_of_term: Index,
    /// The follower's last log index.
    pub last_index: Index,
}

/// One protocol message. Requests (`RequestVote`, `AppendEntries`) are answered by exactly
/// one response to their sender, so that a driver can carry them over request/response RPC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A candidate asks for a vote.
    RequestVote {
        /// The candidate's term.
        term: Term,
        /// Index of the candidate's last log entry (§5.4.1).
        last_log_index: Index,
        /// Term of the candidate's last log entry (§5.4.1).
        last_log_term: Term,
    },
    /// The answer to `RequestVote`.
    RequestVoteResponse {
        /// The voter's current term, for the candidate to update itself.
        term: Term,
        /// True when the vote was granted.
        granted: bool,
    },
    /// The leader replicates entries or, with none, sends a heartbeat.
    AppendEntries {
        /// The leader's term.
        term: Term,
        /// Index of the entry just before `entries`.
        prev_log_index: Index,
        /// Term of that entry.
        prev_log_term: Term,
        /// Entries to store, possibly none.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: Index,
    },
    /// The answer to `AppendEntries`.
    AppendEntriesResponse {
        /// The follower's current term.
        term: Term,
        /// On success: the last index known to match the leader's log. On rejection: the
        /// `prev_log_index` that did not match (so stale rejections can be recognised).
        index: Index,
        /// `None` on success; the back-up hint on rejection.
        reject: Option<RejectHint>,
    },
    /// The leader sends one chunk of its snapshot to a follower that needs entries the
    /// leader has compacted away.
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// The entry the snapshot ends with.
        meta: SnapshotMeta,
        /// Where this chunk starts in the snapshot's data.
        offset: u64,
        /// The chunk.
        data: Bytes,
        /// True for the last chunk.
        done: bool,
    },
    /// The answer to `InstallSnapshot`.
    InstallSnapshotResponse {
        /// The follower's current term.
        term: Term,
        /// The snapshot this answers for.
        meta: SnapshotMeta,
        /// The offset the follower expects next (the whole length once installed).
        next_offset: u64,
        /// True once the follower holds the snapshot (or already had everything in it).
        installed: bool,
    },
}

impl Message {
    /// The term the message was sent in.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. } => *term,
        }
    }

    /// True for messages that answer a request rather than ask for something.
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Message::RequestVoteResponse { .. }
                | Message::AppendEntriesResponse { .. }
                | Message::InstallSnapshotResponse { .. }
        )
    }
}

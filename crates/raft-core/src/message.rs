//! The messages peers exchange (Figure 2's RPCs, each split into request and response).

use crate::types::{Entry, Index, NodeId, SnapshotMeta, Term};
use crate::CoreError;
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

/// One protocol message. Requests (`RequestVote`, `AppendEntries`, `InstallSnapshot`,
/// `ReadHeartbeat`) are answered at once by exactly one response to their sender, so that
/// a driver can carry them over request/response RPC. `ReadIndex` and `ReadIndexResponse`
/// are one-way (see [`Message::expects_response`]): the leader answers a forwarded read
/// only after a round of heartbeats, with a message of its own.
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
        /// The offset of the chunk this answers, so that the leader can tell an answer to
        /// the chunk it is waiting for from a duplicated or delayed one.
        offset: u64,
        /// The offset the follower expects next (the whole length once installed).
        next_offset: u64,
        /// True once the follower holds the snapshot (or already had everything in it).
        installed: bool,
    },
    /// A node whose election timer fired asks whether it could win an election (pre-vote,
    /// thesis §9.6). Neither sending nor receiving it changes anyone's term or vote.
    /// (The pre-vote kinds come last so that the encoding of the others is unchanged.)
    PreVote {
        /// The term the sender would campaign in: its current term plus one. The receiver
        /// does not adopt it.
        term: Term,
        /// Index of the sender's last log entry.
        last_log_index: Index,
        /// Term of the sender's last log entry.
        last_log_term: Term,
    },
    /// The answer to `PreVote`.
    PreVoteResponse {
        /// When granted, the term of the request (so that the sender can match it to its
        /// round without adopting anything); when refused, the voter's current term (a
        /// sender behind it adopts it, as from any other message).
        term: Term,
        /// True when the voter would grant a vote in that term.
        granted: bool,
    },
    /// The leader confirms it is still the leader, for the reads of round `ctx`
    /// (ReadIndex, §6.4 of the thesis). A follower treats it as a heartbeat.
    ReadHeartbeat {
        /// The leader's term.
        term: Term,
        /// The read round, echoed in the answer.
        ctx: u64,
    },
    /// The answer to `ReadHeartbeat`.
    ReadHeartbeatResponse {
        /// The follower's current term: the leader's own if it still follows it.
        term: Term,
        /// The round answered.
        ctx: u64,
    },
    /// A follower forwards a read to the leader it knows (one-way).
    ReadIndex {
        /// The follower's term.
        term: Term,
        /// The follower's identifier of the read, echoed in the answer.
        ctx: u64,
    },
    /// The leader's answer to a forwarded read, once confirmed or given up (one-way).
    ReadIndexResponse {
        /// The sender's term.
        term: Term,
        /// The read answered.
        ctx: u64,
        /// The read index, or `None` when the sender is not (or stopped being) the leader.
        index: Option<Index>,
    },
    /// Leadership transfer (thesis §3.10): the leader tells the target, whose log it has
    /// brought up to date, to campaign at once (one-way). (The transfer kinds come last
    /// so that the encoding of the others is unchanged.)
    TimeoutNow {
        /// The leader's term.
        term: Term,
    },
    /// A `RequestVote` from a candidate that campaigns because the leader asked it to
    /// (after `TimeoutNow`): voters that heard from that leader recently answer it anyway
    /// (leader stickiness is for disruptive candidates, not for the leader's own choice).
    /// Answered with `RequestVoteResponse`.
    TransferVote {
        /// The candidate's term.
        term: Term,
        /// Index of the candidate's last log entry.
        last_log_index: Index,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
}

/// The largest index, term or byte offset a message may carry. No log comes near it (at a
/// million entries a second it takes 146,000 years); refusing larger values keeps every
/// `+ 1` on a value from the network from overflowing.
pub const MAX_WIRE_VALUE: u64 = u64::MAX >> 2;

impl Message {
    /// Checks what can be checked without the receiver's state: every index, term and
    /// offset within [`MAX_WIRE_VALUE`], entries numbered `prev_log_index + 1, + 2, …` with
    /// terms that never decrease nor exceed the sender's term, a snapshot that ends at an
    /// entry. [`RaftCore::step`](crate::RaftCore::step) refuses a message that fails.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |what: String| Err(CoreError::MalformedMessage(what));
        let term = self.term();
        let in_range = |name: &str, v: u64| -> Result<(), CoreError> {
            if v > MAX_WIRE_VALUE {
                return Err(CoreError::MalformedMessage(format!(
                    "{name} {v} exceeds {MAX_WIRE_VALUE}"
                )));
            }
            Ok(())
        };
        in_range("term", term)?;
        match self {
            Message::RequestVote {
                last_log_index,
                last_log_term,
                ..
            }
            | Message::TransferVote {
                last_log_index,
                last_log_term,
                ..
            } => {
                in_range("last_log_index", *last_log_index)?;
                if *last_log_term > term {
                    return bad(format!("last_log_term {last_log_term} exceeds term {term}"));
                }
            }
            Message::PreVote {
                last_log_index,
                last_log_term,
                ..
            } => {
                in_range("last_log_index", *last_log_index)?;
                if *last_log_term >= term {
                    // The sender's log cannot hold an entry of the term it has not
                    // campaigned in yet.
                    return bad(format!(
                        "pre-vote for term {term} with last_log_term {last_log_term}"
                    ));
                }
            }
            Message::RequestVoteResponse { .. } | Message::PreVoteResponse { .. } => {}
            Message::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                ..
            } => {
                in_range("prev_log_index", *prev_log_index)?;
                in_range("leader_commit", *leader_commit)?;
                if *prev_log_term > term {
                    return bad(format!("prev_log_term {prev_log_term} exceeds term {term}"));
                }
                if entries.len() as u64 > MAX_WIRE_VALUE - prev_log_index {
                    return bad("entries run past the largest index".into());
                }
                let mut last_term = *prev_log_term;
                for (i, e) in entries.iter().enumerate() {
                    let expected = prev_log_index + 1 + i as u64;
                    if e.index != expected {
                        return bad(format!("entry {i} has index {}, not {expected}", e.index));
                    }
                    if e.term < last_term || e.term > term {
                        return bad(format!(
                            "entry {} has term {} after term {last_term} in a term-{term} message",
                            e.index, e.term
                        ));
                    }
                    last_term = e.term;
                }
            }
            Message::AppendEntriesResponse { index, reject, .. } => {
                in_range("index", *index)?;
                if let Some(hint) = reject {
                    in_range("hint.last_index", hint.last_index)?;
                    in_range("hint.first_index_of_term", hint.first_index_of_term)?;
                    in_range("hint.conflict_term", hint.conflict_term.unwrap_or(0))?;
                }
            }
            Message::InstallSnapshot {
                meta, offset, data, ..
            } => {
                in_range("snapshot index", meta.index)?;
                in_range("offset", *offset)?;
                if meta.index == 0 || meta.term == 0 || meta.term > term {
                    return bad(format!(
                        "snapshot ({}, {}) does not end at an entry of term <= {term}",
                        meta.index, meta.term
                    ));
                }
                if data.len() as u64 > MAX_WIRE_VALUE - offset {
                    return bad("chunk runs past the largest offset".into());
                }
            }
            Message::InstallSnapshotResponse {
                meta,
                offset,
                next_offset,
                ..
            } => {
                in_range("snapshot index", meta.index)?;
                in_range("offset", *offset)?;
                in_range("next_offset", *next_offset)?;
            }
            Message::ReadHeartbeat { .. }
            | Message::ReadHeartbeatResponse { .. }
            | Message::ReadIndex { .. }
            | Message::TimeoutNow { .. } => {}
            Message::ReadIndexResponse { index, .. } => {
                in_range("read index", index.unwrap_or(0))?;
            }
        }
        Ok(())
    }

    /// The term the message was sent in.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::RequestVoteResponse { term, .. }
            | Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendEntriesResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::InstallSnapshotResponse { term, .. }
            | Message::ReadHeartbeat { term, .. }
            | Message::ReadHeartbeatResponse { term, .. }
            | Message::ReadIndex { term, .. }
            | Message::ReadIndexResponse { term, .. }
            | Message::TimeoutNow { term }
            | Message::TransferVote { term, .. } => *term,
        }
    }

    /// True when receiving the message makes a node with a lower term adopt its term.
    /// A pre-vote request never does, nor does a granted pre-vote (its term is the one
    /// the requester is about to campaign in, not one anybody holds); a refused pre-vote
    /// carries the voter's own term, which does.
    pub fn raises_term(&self) -> bool {
        match self {
            Message::PreVote { .. } => false,
            Message::PreVoteResponse { granted, .. } => !granted,
            _ => true,
        }
    }

    /// True for messages that answer a request rather than ask for something.
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Message::RequestVoteResponse { .. }
                | Message::PreVoteResponse { .. }
                | Message::AppendEntriesResponse { .. }
                | Message::InstallSnapshotResponse { .. }
                | Message::ReadHeartbeatResponse { .. }
        )
    }

    /// True for a leader's replication requests, which promise nothing about what the
    /// sender has persisted: with [`CoreConfig::leader_parallel_write`](crate::CoreConfig)
    /// they may leave before the leader's own write is durable (thesis §10.2.1). Votes,
    /// acknowledgements and every other response speak for persisted state and never may.
    pub fn may_precede_persist(&self) -> bool {
        matches!(
            self,
            Message::AppendEntries { .. }
                | Message::InstallSnapshot { .. }
                | Message::ReadHeartbeat { .. }
        )
    }

    /// True for requests the receiver answers at once with exactly one response (a
    /// request/response transport waits for it). False for responses and for the one-way
    /// `ReadIndex` and `ReadIndexResponse`, which a transport delivers without waiting for
    /// an answer.
    pub fn expects_response(&self) -> bool {
        matches!(
            self,
            Message::RequestVote { .. }
                | Message::TransferVote { .. }
                | Message::PreVote { .. }
                | Message::AppendEntries { .. }
                | Message::InstallSnapshot { .. }
                | Message::ReadHeartbeat { .. }
        )
    }
}

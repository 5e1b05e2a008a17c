//! What happened, step by step, in a form cheap to record and readable to print.

use crate::config::Micros;
use crate::event::Fault;
use raft_core::{
    ConfChange, HardState, Index, Message, NodeId, RejectHint, Role, SnapshotMeta, Term,
};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;

/// A compact, copyable summary of a protocol message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgSummary {
    /// `RequestVote`, or `PreVote` when `pre`.
    Vote {
        /// A pre-vote (which changes no term).
        pre: bool,
        /// Candidate's term.
        term: Term,
        /// Candidate's last log index.
        last_index: Index,
        /// Candidate's last log term.
        last_term: Term,
    },
    /// `RequestVoteResponse`, or `PreVoteResponse` when `pre`.
    VoteResp {
        /// An answer to a pre-vote.
        pre: bool,
        /// Voter's term.
        term: Term,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// `AppendEntries`.
    Append {
        /// Leader's term.
        term: Term,
        /// Index before the entries.
        prev_index: Index,
        /// Term at `prev_index`.
        prev_term: Term,
        /// Number of entries carried.
        entries: u32,
        /// Term of the last entry carried (0 when none).
        last_term: Term,
        /// Leader's commit index.
        commit: Index,
    },
    /// `AppendEntriesResponse`.
    AppendResp {
        /// Follower's term.
        term: Term,
        /// Matched index, or the rejected `prev_log_index`.
        index: Index,
        /// The rejection hint, when rejected.
        reject: Option<RejectHint>,
    },
    /// `InstallSnapshot` (one chunk).
    Snap {
        /// Leader's term.
        term: Term,
        /// The snapshot's last entry.
        meta: SnapshotMeta,
        /// Where the chunk starts.
        offset: u64,
        /// Chunk length.
        len: u64,
        /// Last chunk.
        done: bool,
    },
    /// `InstallSnapshotResponse`.
    SnapResp {
        /// Follower's term.
        term: Term,
        /// The snapshot answered for.
        meta: SnapshotMeta,
        /// Offset of the chunk answered.
        offset: u64,
        /// Offset expected next.
        next_offset: u64,
        /// Installed.
        installed: bool,
    },
    /// `ReadHeartbeat` (a read round).
    ReadBeat {
        /// Leader's term.
        term: Term,
        /// The round.
        round: u64,
    },
    /// `ReadHeartbeatResponse`.
    ReadBeatResp {
        /// Follower's term.
        term: Term,
        /// The round answered.
        round: u64,
    },
    /// `ReadIndex` (a forwarded read).
    ReadFwd {
        /// Follower's term.
        term: Term,
        /// The read's identifier.
        ctx: u64,
    },
    /// `ReadIndexResponse`.
    ReadFwdResp {
        /// Sender's term.
        term: Term,
        /// The read's identifier.
        ctx: u64,
        /// The read index, or `None` when refused.
        index: Option<Index>,
    },
    /// `TimeoutNow` (leadership transfer).
    TimeoutNow {
        /// Leader's term.
        term: Term,
    },
}

impl From<&Message> for MsgSummary {
    fn from(m: &Message) -> Self {
        match m {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => MsgSummary::Vote {
                pre: false,
                term: *term,
                last_index: *last_log_index,
                last_term: *last_log_term,
            },
            Message::RequestVoteResponse { term, granted } => MsgSummary::VoteResp {
                pre: false,
                term: *term,
                granted: *granted,
            },
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => MsgSummary::Vote {
                pre: true,
                term: *term,
                last_index: *last_log_index,
                last_term: *last_log_term,
            },
            Message::PreVoteResponse { term, granted } => MsgSummary::VoteResp {
                pre: true,
                term: *term,
                granted: *granted,
            },
            Message::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => MsgSummary::Append {
                term: *term,
                prev_index: *prev_log_index,
                prev_term: *prev_log_term,
                entries: entries.len() as u32,
                last_term: entries.last().map_or(0, |e| e.term),
                commit: *leader_commit,
            },
            Message::AppendEntriesResponse {
                term,
                index,
                reject,
            } => MsgSummary::AppendResp {
                term: *term,
                index: *index,
                reject: *reject,
            },
            Message::InstallSnapshot {
                term,
                meta,
                offset,
                data,
                done,
            } => MsgSummary::Snap {
                term: *term,
                meta: *meta,
                offset: *offset,
                len: data.len() as u64,
                done: *done,
            },
            Message::InstallSnapshotResponse {
                term,
                meta,
                offset,
                next_offset,
                installed,
            } => MsgSummary::SnapResp {
                term: *term,
                meta: *meta,
                offset: *offset,
                next_offset: *next_offset,
                installed: *installed,
            },
            Message::ReadHeartbeat { term, ctx } => MsgSummary::ReadBeat {
                term: *term,
                round: *ctx,
            },
            Message::ReadHeartbeatResponse { term, ctx } => MsgSummary::ReadBeatResp {
                term: *term,
                round: *ctx,
            },
            Message::ReadIndex { term, ctx } => MsgSummary::ReadFwd {
                term: *term,
                ctx: *ctx,
            },
            Message::ReadIndexResponse { term, ctx, index } => MsgSummary::ReadFwdResp {
                term: *term,
                ctx: *ctx,
                index: *index,
            },
            // A transfer's vote request is summarised as a vote request.
            Message::TransferVote {
                term,
                last_log_index,
                last_log_term,
            } => MsgSummary::Vote {
                pre: false,
                term: *term,
                last_index: *last_log_index,
                last_term: *last_log_term,
            },
            Message::TimeoutNow { term } => MsgSummary::TimeoutNow { term: *term },
        }
    }
}

impl fmt::Display for MsgSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MsgSummary::Vote {
                pre,
                term,
                last_index,
                last_term,
            } => {
                let kind = if pre { "PreVote" } else { "RequestVote" };
                write!(f, "{kind}(t{term} last {last_index}@{last_term})")
            }
            MsgSummary::VoteResp { pre, term, granted } => {
                let g = if granted { "granted" } else { "refused" };
                let kind = if pre { "PreVoteResp" } else { "Vote" };
                write!(f, "{kind}(t{term} {g})")
            }
            MsgSummary::Append {
                term,
                prev_index,
                prev_term,
                entries,
                last_term,
                commit,
            } => {
                if entries == 0 {
                    write!(
                        f,
                        "Heartbeat(t{term} prev {prev_index}@{prev_term} commit {commit})"
                    )
                } else {
                    write!(
                        f,
                        "Append(t{term} prev {prev_index}@{prev_term} +{entries} ..{}@{last_term} commit {commit})",
                        prev_index + Index::from(entries)
                    )
                }
            }
            MsgSummary::AppendResp {
                term,
                index,
                reject: None,
            } => write!(f, "AppendOk(t{term} match {index})"),
            MsgSummary::AppendResp {
                term,
                index,
                reject: Some(h),
            } => match h.conflict_term {
                Some(ct) => write!(
                    f,
                    "AppendReject(t{term} at {index}: conflict t{ct} from {}, last {})",
                    h.first_index_of_term, h.last_index
                ),
                None => write!(
                    f,
                    "AppendReject(t{term} at {index}: log ends at {})",
                    h.last_index
                ),
            },
            MsgSummary::Snap {
                term,
                meta,
                offset,
                len,
                done,
            } => write!(
                f,
                "InstallSnapshot(t{term} ..{}@{} bytes {offset}..{}{})",
                meta.index,
                meta.term,
                offset + len,
                if done { " done" } else { "" }
            ),
            MsgSummary::SnapResp {
                term,
                meta,
                offset,
                next_offset,
                installed,
            } => write!(
                f,
                "SnapshotAck(t{term} ..{}@{} chunk@{offset} {})",
                meta.index,
                meta.term,
                if installed {
                    "installed".to_string()
                } else {
                    format!("next byte {next_offset}")
                }
            ),
            MsgSummary::ReadBeat { term, round } => write!(f, "ReadHeartbeat(t{term} #{round})"),
            MsgSummary::ReadBeatResp { term, round } => {
                write!(f, "ReadHeartbeatAck(t{term} #{round})")
            }
            MsgSummary::ReadFwd { term, ctx } => write!(f, "ReadIndex(t{term} r{ctx})"),
            MsgSummary::ReadFwdResp { term, ctx, index } => match index {
                Some(i) => write!(f, "ReadIndexOk(t{term} r{ctx} at {i})"),
                None => write!(f, "ReadIndexRefused(t{term} r{ctx})"),
            },
            MsgSummary::TimeoutNow { term } => write!(f, "TimeoutNow(t{term})"),
        }
    }
}

/// The stages of a simulated client's read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadStage {
    /// Asked for; `must_see` is the highest index known committed at that moment.
    Asked {
        /// Every write up to it must be visible to the read.
        must_see: Index,
    },
    /// The node refused at once (no leader known, or down).
    Refused,
    /// The core confirmed it with this read index.
    Confirmed {
        /// The read index.
        index: Index,
    },
    /// Answered from the state machine at this applied index.
    Answered {
        /// The applied index the answer reflects.
        applied: Index,
    },
    /// Given up by the core.
    Failed,
}

/// What a message fault did to a message at send time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost.
    Dropped,
    /// Held back for a long time.
    Delayed,
    /// Sent outside its link's FIFO order.
    Reordered,
    /// Sent twice.
    Duplicated,
}

/// Why a message was not delivered when its time came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// The link was cut by a partition.
    Partition,
    /// The receiver was down.
    Down,
}

/// One node's observable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeState {
    /// Role.
    pub role: Role,
    /// Term and vote.
    pub hard: HardState,
    /// Commit index.
    pub commit: Index,
    /// Last log index.
    pub last_index: Index,
    /// Last log term.
    pub last_term: Term,
    /// Last index applied since the node (re)started.
    pub applied: Index,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "LEADER",
        };
        write!(f, "{role} t{}", self.hard.term)?;
        if let Some(v) = self.hard.vote {
            write!(f, " vote n{v}")?;
        }
        write!(
            f,
            " commit {} applied {} log ..{}@{}",
            self.commit, self.applied, self.last_index, self.last_term
        )
    }
}

/// A summary of one `Ready` as the driver carried it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadySummary {
    /// Hard state persisted, if any.
    pub hard_state: Option<HardState>,
    /// Snapshot persisted, if any.
    pub snapshot: Option<SnapshotMeta>,
    /// Truncation point, if any.
    pub truncate_from: Option<Index>,
    /// First and last index appended, if any.
    pub appended: Option<(Index, Index)>,
    /// Messages to send.
    pub messages: u32,
    /// Snapshot the state machine loads, if any.
    pub restore: Option<SnapshotMeta>,
    /// First and last index to apply, if any.
    pub committed: Option<(Index, Index)>,
    /// The send (and apply) waits for a later flush.
    pub deferred: bool,
}

impl fmt::Display for ReadySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(hs) = self.hard_state {
            parts.push(match hs.vote {
                Some(v) => format!("persist t{} vote n{v}", hs.term),
                None => format!("persist t{} no vote", hs.term),
            });
        }
        if let Some(m) = self.snapshot {
            parts.push(format!("persist snapshot ..{}@{}", m.index, m.term));
        }
        if let Some(t) = self.truncate_from {
            parts.push(format!("truncate {t}.."));
        }
        if let Some((a, b)) = self.appended {
            parts.push(format!("append {a}..={b}"));
        }
        if self.messages > 0 {
            parts.push(format!("send {}", self.messages));
        }
        if let Some(m) = self.restore {
            parts.push(format!("load snapshot ..{}@{}", m.index, m.term));
        }
        if let Some((a, b)) = self.committed {
            parts.push(format!("apply {a}..={b}"));
        }
        if self.deferred {
            parts.push("(send deferred until flush)".into());
        }
        write!(f, "{}", parts.join(", "))
    }
}

/// Result of one proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeResult {
    /// Accepted at this index and term.
    Accepted(Index, Term),
    /// The node is not the leader.
    NotLeader,
    /// The node is down.
    Down,
}

/// What one trace record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// A node's clock ticked.
    Tick {
        /// The node.
        node: NodeId,
    },
    /// A message was delivered.
    Deliver {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Content.
        msg: MsgSummary,
    },
    /// A message reached its delivery time but was not delivered.
    Lost {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Content.
        msg: MsgSummary,
        /// Why.
        why: LostReason,
    },
    /// A message fault was applied at send time.
    Faulted {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Content.
        msg: MsgSummary,
        /// What happened to it.
        fate: Fate,
    },
    /// A client proposed a command.
    Propose {
        /// Node asked.
        node: NodeId,
        /// Command id.
        cmd: u64,
        /// Outcome.
        result: ProposeResult,
    },
    /// A client's linearizable read (ReadIndex), at one of its stages.
    Read {
        /// Node asked.
        node: NodeId,
        /// Read id.
        ctx: u64,
        /// What happened to it.
        stage: ReadStage,
    },
    /// A node carried out a `Ready`.
    Ready {
        /// The node.
        node: NodeId,
        /// What it did.
        ready: ReadySummary,
    },
    /// A node's state after a step that changed it.
    State {
        /// The node.
        node: NodeId,
        /// Its state.
        state: NodeState,
    },
    /// A deferred `Ready` was sent and applied.
    Flush {
        /// The node.
        node: NodeId,
    },
    /// A client received a commit acknowledgement.
    Acked {
        /// Node that answered.
        node: NodeId,
        /// Command id.
        cmd: u64,
        /// Index of the entry.
        index: Index,
    },
    /// The service snapshotted its state and compacted the log.
    Compact {
        /// The node.
        node: NodeId,
        /// Last index the snapshot covers.
        index: Index,
    },
    /// A membership event: a configuration change or a leadership transfer asked of a
    /// node.
    Membership {
        /// Node asked.
        node: NodeId,
        /// What was asked.
        op: MembershipOp,
        /// The configuration entry's index and term (`None` for a transfer, or a change
        /// that was already made), or why the node refused.
        outcome: Result<Option<(Index, Term)>, String>,
    },
    /// A cluster fault.
    Fault(Fault),
    /// End of the chaos phase: network healed, every node restarted, faults stopped.
    Heal,
    /// The liveness check succeeded.
    Live {
        /// Ticks from the heal.
        ticks: u64,
    },
}

/// One line of the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    /// Step number (1-based) in which it happened.
    pub step: u64,
    /// Virtual time.
    pub time_us: Micros,
    /// What happened.
    pub what: TraceKind,
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{:<6} {:>4}.{:06}s  ",
            self.step,
            self.time_us / 1_000_000,
            self.time_us % 1_000_000
        )?;
        match &self.what {
            TraceKind::Tick { node } => write!(f, "n{node} tick"),
            TraceKind::Deliver { from, to, msg } => write!(f, "n{to} <- n{from} {msg}"),
            TraceKind::Lost { from, to, msg, why } => {
                let why = match why {
                    LostReason::Partition => "link cut",
                    LostReason::Down => "receiver down",
                };
                write!(f, "   lost n{from} -> n{to} {msg} ({why})")
            }
            TraceKind::Faulted {
                from,
                to,
                msg,
                fate,
            } => {
                let fate = match fate {
                    Fate::Dropped => "DROPPED",
                    Fate::Delayed => "DELAYED",
                    Fate::Reordered => "REORDERED",
                    Fate::Duplicated => "DUPLICATED",
                };
                write!(f, "   {fate} n{from} -> n{to} {msg}")
            }
            TraceKind::Propose { node, cmd, result } => match result {
                ProposeResult::Accepted(i, t) => {
                    write!(f, "n{node} client proposes c{cmd}: accepted at {i}@{t}")
                }
                ProposeResult::NotLeader => {
                    write!(f, "n{node} client proposes c{cmd}: not leader")
                }
                ProposeResult::Down => write!(f, "n{node} client proposes c{cmd}: node down"),
            },
            TraceKind::Read { node, ctx, stage } => match stage {
                ReadStage::Asked { must_see } => {
                    write!(
                        f,
                        "n{node} client reads r{ctx} (committed so far: {must_see})"
                    )
                }
                ReadStage::Refused => write!(f, "n{node} client reads r{ctx}: refused"),
                ReadStage::Confirmed { index } => {
                    write!(f, "   n{node} read r{ctx} confirmed at read index {index}")
                }
                ReadStage::Answered { applied } => {
                    write!(
                        f,
                        "   n{node} answers read r{ctx} from applied index {applied}"
                    )
                }
                ReadStage::Failed => write!(f, "   n{node} read r{ctx} failed"),
            },
            TraceKind::Ready { node, ready } => write!(f, "   n{node} {ready}"),
            TraceKind::State { node, state } => write!(f, "   n{node} is {state}"),
            TraceKind::Flush { node } => write!(f, "n{node} flush (send + apply)"),
            TraceKind::Acked { node, cmd, index } => {
                write!(f, "   n{node} acks c{cmd} committed at {index}")
            }
            TraceKind::Compact { node, index } => {
                write!(
                    f,
                    "n{node} service snapshots through {index}, compacting the log"
                )
            }
            TraceKind::Membership { node, op, outcome } => {
                write!(f, "n{node} MEMBERSHIP {op}: ")?;
                match outcome {
                    Ok(Some((i, t))) => write!(f, "accepted at {i}@{t}"),
                    Ok(None) => write!(f, "accepted"),
                    Err(e) => write!(f, "refused ({e})"),
                }
            }
            TraceKind::Fault(fault) => write!(f, "FAULT {fault}"),
            TraceKind::Heal => write!(
                f,
                "HEAL: network healed, all nodes up, faults stop; liveness clock starts"
            ),
            TraceKind::Live { ticks } => write!(f, "LIVE after {ticks} ticks"),
        }
    }
}

/// A membership event the simulator asks of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipOp {
    /// One configuration step.
    Change(ConfChange),
    /// Move the voters to exactly this set (one step, or joint consensus).
    Voters(BTreeSet<NodeId>),
    /// Hand leadership to this voter.
    Transfer(NodeId),
}

impl fmt::Display for MembershipOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &BTreeSet<NodeId>| {
            s.iter()
                .map(|i| format!("n{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            MembershipOp::Change(ConfChange::AddLearner(id)) => write!(f, "add learner n{id}"),
            MembershipOp::Change(ConfChange::AddVoter(id)) => write!(f, "add voter n{id}"),
            MembershipOp::Change(ConfChange::Remove(id)) => write!(f, "remove n{id}"),
            MembershipOp::Change(ConfChange::EnterJoint(v)) => {
                write!(f, "enter joint, voters {{{}}}", set(v))
            }
            MembershipOp::Change(ConfChange::LeaveJoint) => write!(f, "leave joint"),
            MembershipOp::Voters(v) => write!(f, "move voters to {{{}}}", set(v)),
            MembershipOp::Transfer(id) => write!(f, "transfer leadership to n{id}"),
        }
    }
}

/// How much of the trace to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Nothing (fastest).
    Off,
    /// The last `n` records.
    Ring(usize),
    /// Everything.
    Full,
}

/// The recorded trace.
#[derive(Clone, Debug)]
pub struct Trace {
    mode: TraceMode,
    records: VecDeque<TraceRecord>,
    dropped: u64,
}

impl Trace {
    /// An empty trace kept according to `mode`.
    pub fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            records: VecDeque::new(),
            dropped: 0,
        }
    }

    /// True when records are kept at all (callers skip building them otherwise).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.mode != TraceMode::Off
    }

    /// Adds a record.
    #[inline]
    pub fn push(&mut self, step: u64, time_us: Micros, what: TraceKind) {
        match self.mode {
            TraceMode::Off => {}
            TraceMode::Ring(n) => {
                if self.records.len() >= n.max(1) {
                    self.records.pop_front();
                    self.dropped += 1;
                }
                self.records.push_back(TraceRecord {
                    step,
                    time_us,
                    what,
                });
            }
            TraceMode::Full => self.records.push_back(TraceRecord {
                step,
                time_us,
                what,
            }),
        }
    }

    /// The records kept, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &TraceRecord> {
        self.records.iter()
    }

    /// How many older records a ring discarded.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The last `last` records, one per line, leaving out ticks that changed nothing
    /// (a tick is kept when the same step did something else too).
    pub fn render_compact(&self, last: usize) -> String {
        let recs: Vec<&TraceRecord> = self.records.iter().collect();
        let mut kept: Vec<&TraceRecord> = Vec::new();
        let mut i = 0;
        while i < recs.len() {
            let mut j = i;
            while j < recs.len() && recs[j].step == recs[i].step {
                j += 1;
            }
            let idle_tick = j - i == 1 && matches!(recs[i].what, TraceKind::Tick { .. });
            if !idle_tick {
                kept.extend_from_slice(&recs[i..j]);
            }
            i = j;
        }
        let skip = kept.len().saturating_sub(last);
        let mut s = String::new();
        if skip > 0 || self.dropped > 0 {
            s.push_str("...\n");
        }
        for r in &kept[skip..] {
            s.push_str(&r.to_string());
            s.push('\n');
        }
        s
    }

    /// The kept records, one per line.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if self.dropped > 0 {
            s.push_str(&format!(
                "... ({} earlier records not kept)\n",
                self.dropped
            ));
        }
        for r in &self.records {
            s.push_str(&r.to_string());
            s.push('\n');
        }
        s
    }
}

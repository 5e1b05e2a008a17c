//! # raft-viz
//!
//! A small data model of one run of a Raft cluster ([`Run`]: nodes, their role, term,
//! commit and applied index over time, the messages between them, crashes, partitions,
//! snapshots and an optional invariant violation) and [`render_html`], which draws it as
//! one self-contained HTML file: inline SVG, CSS and a little JavaScript for zoom, pan,
//! tooltips, filters and jumps. Nothing in the file refers to the network.
//! [`render_svg`] draws the same run as one static SVG for documents, with the log view
//! at chosen instants.
//!
//! The output is a function of the input only (no clock, no hash-ordered maps, fixed
//! float formatting), so the same run gives byte-identical HTML.
//!
//! This crate knows nothing of the simulator or the tester: they convert their own
//! traces into a [`Run`].
//!
//! ```
//! use raft_viz::{At, Role, Run, StateChange};
//! let mut run = Run::new("example", vec![1, 2, 3]);
//! run.states.push(StateChange {
//!     at: At { step: 1, time_us: 1_000 },
//!     node: 1,
//!     role: Role::Leader,
//!     term: 1,
//!     commit: 0,
//!     applied: 0,
//! });
//! run.end = At { step: 10, time_us: 50_000 };
//! let html = raft_viz::render_html(&run);
//! assert_eq!(html.matches("<g class=\"lane\"").count(), 3);
//! ```

#![warn(missing_docs)]

mod logs;
mod render;
mod static_svg;

pub use crate::logs::{log_at, log_repairs, state_at, LogAt};
pub use crate::render::render_html;
pub use crate::static_svg::render_svg;

/// A node's identifier, as the protocol numbers it (1-based in the simulator).
pub type NodeId = u64;

/// A point of a run: the step (one event per step) and the virtual time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    /// Step number.
    pub step: u64,
    /// Virtual time in microseconds.
    pub time_us: u64,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows a leader.
    Follower,
    /// Asks for votes.
    Candidate,
    /// Leads its term.
    Leader,
}

impl Role {
    /// Lower-case name, used as a CSS class.
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

/// A node's observable state from `at` on (until its next change or crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// When.
    pub at: At,
    /// Which node.
    pub node: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: u64,
    /// Its commit index.
    pub commit: u64,
    /// The last index its state machine applied.
    pub applied: u64,
}

/// A protocol message's kind (one filter checkbox each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MsgKind {
    /// `RequestVote`.
    Vote,
    /// `RequestVote` response.
    VoteResp,
    /// `AppendEntries` carrying entries.
    Append,
    /// `AppendEntries` without entries.
    Heartbeat,
    /// `AppendEntries` response.
    AppendResp,
    /// `InstallSnapshot`.
    Snapshot,
    /// `InstallSnapshot` response.
    SnapshotResp,
}

impl MsgKind {
    /// Every kind, in display order.
    pub const ALL: [MsgKind; 7] = [
        MsgKind::Vote,
        MsgKind::VoteResp,
        MsgKind::Append,
        MsgKind::Heartbeat,
        MsgKind::AppendResp,
        MsgKind::Snapshot,
        MsgKind::SnapshotResp,
    ];

    /// Short name, used as a CSS class and a filter label.
    pub fn name(self) -> &'static str {
        match self {
            MsgKind::Vote => "vote",
            MsgKind::VoteResp => "vote-resp",
            MsgKind::Append => "append",
            MsgKind::Heartbeat => "heartbeat",
            MsgKind::AppendResp => "append-resp",
            MsgKind::Snapshot => "snapshot",
            MsgKind::SnapshotResp => "snapshot-resp",
        }
    }
}

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Delivered to its receiver.
    Delivered(At),
    /// Reached its delivery time but was not delivered (link cut, receiver down).
    Lost(At, String),
    /// Dropped by a fault when it was sent.
    Dropped,
    /// Still in flight when the run ended.
    InFlight,
}

/// One message (one copy of it: a duplicated message appears twice, the second copy
/// with `duplicate` set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Kind.
    pub kind: MsgKind,
    /// When it was sent.
    pub sent: At,
    /// What became of it.
    pub fate: Fate,
    /// A copy made by a duplication fault.
    pub duplicate: bool,
    /// Sender's term.
    pub term: u64,
    /// The index the message is about (previous index, matched index, snapshot index).
    pub index: u64,
    /// Entries carried.
    pub entries: u32,
    /// Encoded size in bytes.
    pub bytes: u64,
    /// A one-line description of its contents.
    pub detail: String,
}

/// A node down from `start` until `end` (`None`: still down at the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Crash {
    /// The node.
    pub node: NodeId,
    /// When it crashed.
    pub start: At,
    /// When it restarted.
    pub end: Option<At>,
    /// What happened, for the tooltip.
    pub detail: String,
}

/// A network partition in force from `start` until `end` (`None`: until the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpan {
    /// When it began.
    pub start: At,
    /// When it was healed or replaced.
    pub end: Option<At>,
    /// Which links it cuts, in words.
    pub label: String,
    /// Nodes cut off from (some of) the others; their lanes are shaded.
    pub nodes: Vec<NodeId>,
}

/// A snapshot taken by a node's service, or installed from a leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMark {
    /// When.
    pub at: At,
    /// The node.
    pub node: NodeId,
    /// Last index covered.
    pub index: u64,
    /// True when installed from a leader, false when taken locally.
    pub installed: bool,
}

/// A change to one node's durable log, in the order it was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOp {
    /// When.
    pub at: At,
    /// The node.
    pub node: NodeId,
    /// The log was replaced as a whole (e.g. a crash lost a batch): `snapshot` and
    /// `terms` give all of it.
    pub reset: bool,
    /// Entries from this index on were removed before appending (0: none).
    pub truncate_from: u64,
    /// A snapshot written, as (last index, last term): entries it covers are compacted.
    pub snapshot: Option<(u64, u64)>,
    /// Index of the first entry appended.
    pub first: u64,
    /// Terms of the entries appended, in index order.
    pub terms: Vec<u64>,
}

/// The invariant that broke, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViolationMark {
    /// When.
    pub at: At,
    /// The invariant's name.
    pub invariant: String,
    /// What was seen.
    pub message: String,
}

/// One run, ready to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Heading of the page.
    pub title: String,
    /// Lines under the heading (settings, outcome).
    pub notes: Vec<String>,
    /// The nodes, one lane each, in this order.
    pub nodes: Vec<NodeId>,
    /// The last point of the run.
    pub end: At,
    /// State changes, in order of time.
    pub states: Vec<StateChange>,
    /// Messages, in order of sending.
    pub messages: Vec<Message>,
    /// Crash intervals.
    pub crashes: Vec<Crash>,
    /// Partitions.
    pub partitions: Vec<PartitionSpan>,
    /// Snapshots.
    pub snapshots: Vec<SnapshotMark>,
    /// The violation, if the run found one.
    pub violation: Option<ViolationMark>,
    /// Every node's log writes, for the log view (empty: no log view).
    pub logs: Vec<LogOp>,
}

impl Run {
    /// An empty run of `nodes`.
    pub fn new(title: impl Into<String>, nodes: Vec<NodeId>) -> Self {
        Run {
            title: title.into(),
            notes: Vec::new(),
            nodes,
            end: At::default(),
            states: Vec::new(),
            messages: Vec::new(),
            crashes: Vec::new(),
            partitions: Vec::new(),
            snapshots: Vec::new(),
            violation: None,
            logs: Vec::new(),
        }
    }
}

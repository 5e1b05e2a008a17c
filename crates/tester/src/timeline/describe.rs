//! A Raft message as the timeline shows it: kind, term, index, entry count and one line.

use raft::Message;
use raft_viz::MsgKind;

/// What the timeline needs of one message.
pub(crate) struct Described {
    pub(crate) kind: MsgKind,
    pub(crate) term: u64,
    pub(crate) index: u64,
    pub(crate) entries: u32,
    pub(crate) detail: String,
}

/// Kind, term, the index it is about, entries carried and a one-line description.
pub(crate) fn describe(m: &Message) -> Described {
    let (kind, index, entries, detail) = match m {
        Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
        } => (
            MsgKind::Vote,
            *last_log_index,
            0,
            format!("RequestVote t{term} last {last_log_index}@{last_log_term}"),
        ),
        Message::PreVote {
            term,
            last_log_index,
            last_log_term,
        } => (
            MsgKind::Vote,
            *last_log_index,
            0,
            format!("PreVote for t{term} last {last_log_index}@{last_log_term}"),
        ),
        Message::PreVoteResponse { term, granted } => (
            MsgKind::VoteResp,
            0,
            0,
            format!(
                "PreVote reply t{term} {}",
                if *granted { "granted" } else { "refused" }
            ),
        ),
        Message::RequestVoteResponse { term, granted } => (
            MsgKind::VoteResp,
            0,
            0,
            format!(
                "RequestVote reply t{term} {}",
                if *granted { "granted" } else { "refused" }
            ),
        ),
        Message::AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => {
            let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            let kind = if entries.is_empty() {
                MsgKind::Heartbeat
            } else {
                MsgKind::Append
            };
            let what = match (entries.first(), entries.last()) {
                (Some(a), Some(b)) => format!(
                    " entries {}..{} (terms {}..{})",
                    a.index, b.index, a.term, b.term
                ),
                _ => String::new(),
            };
            (
                kind,
                *prev_log_index,
                n,
                format!(
                    "AppendEntries t{term} prev {prev_log_index}@{prev_log_term}{what} commit {leader_commit}"
                ),
            )
        }
        Message::AppendEntriesResponse {
            term,
            index,
            reject,
        } => (
            MsgKind::AppendResp,
            *index,
            0,
            match reject {
                None => format!("AppendEntries reply t{term} ok through {index}"),
                Some(h) => format!(
                    "AppendEntries reply t{term} REJECT at {index} (conflict term {:?} from {}, last {})",
                    h.conflict_term, h.first_index_of_term, h.last_index
                ),
            },
        ),
        // Reads have no kind of their own in the timeline: a confirmation round is drawn
        // as a heartbeat and its answer as an append answer, as in the simulator's pages.
        Message::ReadHeartbeat { term, ctx } => (
            MsgKind::Heartbeat,
            0,
            0,
            format!("ReadHeartbeat t{term} round {ctx}"),
        ),
        Message::ReadHeartbeatResponse { term, ctx } => (
            MsgKind::AppendResp,
            0,
            0,
            format!("ReadHeartbeat reply t{term} round {ctx}"),
        ),
        Message::ReadIndex { term, ctx } => (
            MsgKind::Heartbeat,
            0,
            0,
            format!("ReadIndex (forwarded) t{term} read {ctx}"),
        ),
        Message::ReadIndexResponse { term, ctx, index } => (
            MsgKind::AppendResp,
            index.unwrap_or(0),
            0,
            match index {
                Some(i) => format!("ReadIndex reply t{term} read {ctx} at {i}"),
                None => format!("ReadIndex reply t{term} read {ctx} refused"),
            },
        ),
        Message::TimeoutNow { term } => (MsgKind::Vote, 0, 0, format!("TimeoutNow t{term}")),
        Message::TransferVote {
            term,
            last_log_index,
            last_log_term,
        } => (
            MsgKind::Vote,
            *last_log_index,
            0,
            format!("TransferVote t{term} last {last_log_index}@{last_log_term}"),
        ),
        Message::InstallSnapshot {
            term,
            meta,
            offset,
            data,
            done,
        } => (
            MsgKind::Snapshot,
            meta.index,
            0,
            format!(
                "InstallSnapshot t{term} through {}@{} bytes {}..{}{}",
                meta.index,
                meta.term,
                offset,
                offset + data.len() as u64,
                if *done { " (last)" } else { "" }
            ),
        ),
        Message::InstallSnapshotResponse {
            term,
            meta,
            next_offset,
            installed,
            ..
        } => (
            MsgKind::SnapshotResp,
            meta.index,
            0,
            format!(
                "InstallSnapshot reply t{term} through {} next {next_offset}{}",
                meta.index,
                if *installed { " installed" } else { "" }
            ),
        ),
    };
    Described {
        kind,
        term: m.term(),
        index,
        entries,
        detail,
    }
}

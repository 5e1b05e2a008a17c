//! Golden trace tests, in the style of etcd's datadriven tests: each file of
//! `testdata/*.txt` is a script of commands, each followed by `----` and the output it
//! must produce (every message exchanged, every Ready), then a blank line. A change in
//! behaviour shows up as a diff of messages, so the number of messages a scenario costs
//! is checked too.
//!
//! Run with `RAFT_GOLDEN_REWRITE=1` to rewrite the expected output from what the code does
//! now (then read the diff before committing it).
//!
//! Commands:
//! - `nodes 1 2 3 [chunk=N] [inflight=N] [heartbeat=N] [msg-bytes=N] [pre-vote=off]
//!   [check-quorum=off]` — a fresh cluster; every node's election timeout is 10..20 ticks.
//! - `restart ID [term=N] [log=T,T,...] [snapshot=INDEX@TERM:DATA]` — replaces a node by
//!   one restored from that state (log terms for indices 1.., or after the snapshot).
//! - `campaign ID` — ticks the node until it stands for election (with pre-vote: until it
//!   asks for pre-votes).
//! - `tick ID [N]` — N ticks (default 1).
//! - `propose ID DATA...` — one proposal per word.
//! - `compact ID INDEX DATA` — the service snapshots through INDEX.
//! - `ready [ID]` — takes and prints the Ready of one node (or all), queueing messages.
//! - `deliver [to=ID] [from=ID] [drop] [dup]` — delivers (or drops) the queued messages
//!   that match, in order; `dup` delivers each twice.
//! - `stabilize [drop-to=ID]` — `ready` and `deliver` until nothing is left.
//! - `status ID` — role, term, commit, log bounds and, on a leader, each follower's progress.
//! - `inject FROM TO MESSAGE` — steps a hand-written message (see `parse_message`).

use bytes::Bytes;
use raft_core::{
    CoreConfig, Entry, Envelope, HardState, Message, RaftCore, Ready, RejectHint, RestoredState,
    Role, SnapshotMeta,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::Path;

type Core = RaftCore<ChaCha8Rng>;

struct Cluster {
    cfg: CoreConfig,
    ids: Vec<u64>,
    nodes: BTreeMap<u64, Core>,
    queue: VecDeque<Envelope>,
}

impl Cluster {
    fn new(ids: Vec<u64>, cfg: CoreConfig) -> Cluster {
        let nodes = ids
            .iter()
            .map(|id| (*id, make(*id, &ids, &cfg, RestoredState::default())))
            .collect();
        Cluster {
            cfg,
            ids,
            nodes,
            queue: VecDeque::new(),
        }
    }

    fn node(&mut self, id: u64) -> &mut Core {
        self.nodes
            .get_mut(&id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn ready(&mut self, only: Option<u64>, out: &mut String) -> bool {
        let mut any = false;
        for id in self.ids.clone() {
            if only.is_some_and(|o| o != id) {
                continue;
            }
            let core = self.node(id);
            if !core.has_ready() {
                continue;
            }
            let ready = core.take_ready();
            any = true;
            print_ready(id, &ready, out);
            self.queue.extend(ready.messages);
        }
        any
    }

    fn deliver(
        &mut self,
        to: Option<u64>,
        from: Option<u64>,
        drop: bool,
        dup: bool,
        out: &mut String,
    ) {
        let (chosen, kept): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|e| {
            !matches!(to, Some(t) if t != e.to) && !matches!(from, Some(f) if f != e.from)
        });
        self.queue = kept.into();
        for env in chosen {
            if drop {
                writeln!(out, "dropped {}", fmt_env(&env)).ok();
                continue;
            }
            let copies = if dup { 2 } else { 1 };
            for _ in 0..copies {
                writeln!(out, "{}", fmt_env(&env)).ok();
                let from = env.from;
                if let Err(e) = self.node(env.to).step(from, env.msg.clone()) {
                    writeln!(out, "  refused: {e}").ok();
                }
            }
        }
    }
}

fn make(id: u64, ids: &[u64], cfg: &CoreConfig, restored: RestoredState) -> Core {
    RaftCore::new(
        id,
        ids,
        cfg.clone(),
        restored,
        ChaCha8Rng::seed_from_u64(id),
    )
    .expect("valid core")
}

fn range(entries: &[Entry]) -> String {
    match (entries.first(), entries.last()) {
        (Some(a), Some(b)) if a.index == b.index => format!("{}@{}", a.index, a.term),
        (Some(a), Some(b)) => format!("{}@{}..{}@{}", a.index, a.term, b.index, b.term),
        _ => "-".into(),
    }
}

fn print_ready(id: u64, r: &Ready, out: &mut String) {
    let mut parts = Vec::new();
    if let Some(hs) = r.hard_state {
        let vote = hs.vote.map_or("-".to_string(), |v| v.to_string());
        parts.push(format!("hard=t{}/vote {vote}", hs.term));
    }
    if let Some(s) = &r.snapshot {
        parts.push(format!("snapshot={}@{}", s.meta.index, s.meta.term));
    }
    if let Some(t) = r.truncate_from {
        parts.push(format!("truncate={t}.."));
    }
    if !r.entries.is_empty() {
        parts.push(format!("append={}", range(&r.entries)));
    }
    if let Some(s) = &r.restore {
        let data = String::from_utf8_lossy(&s.data);
        parts.push(format!("restore={}@{}:{data}", s.meta.index, s.meta.term));
    }
    if !r.committed.is_empty() {
        parts.push(format!("apply={}", range(&r.committed)));
    }
    if !r.messages.is_empty() {
        parts.push(format!("send {}", r.messages.len()));
    }
    writeln!(out, "ready {id}: {}", parts.join(" ")).ok();
}

fn fmt_env(e: &Envelope) -> String {
    format!("{}->{} {}", e.from, e.to, fmt_msg(&e.msg))
}

fn fmt_msg(m: &Message) -> String {
    match m {
        Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
        } => format!("RequestVote t{term} last={last_log_index}@{last_log_term}"),
        Message::RequestVoteResponse { term, granted } => {
            format!("Vote t{term} {}", if *granted { "granted" } else { "refused" })
        }
        Message::PreVote {
            term,
            last_log_index,
            last_log_term,
        } => format!("PreVote t{term} last={last_log_index}@{last_log_term}"),
        Message::PreVoteResponse { term, granted } => {
            format!("PreVoteResp t{term} {}", if *granted { "granted" } else { "refused" })
        }
        Message::AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        } => format!(
            "Append t{term} prev={prev_log_index}@{prev_log_term} entries={} commit={leader_commit}",
            range(entries)
        ),
        Message::AppendEntriesResponse {
            term,
            index,
            reject,
        } => match reject {
            None => format!("AppendOk t{term} index={index}"),
            Some(h) => format!(
                "AppendReject t{term} index={index} hint=(term {} first {} last {})",
                h.conflict_term.map_or("-".to_string(), |t| t.to_string()),
                h.first_index_of_term,
                h.last_index
            ),
        },
        Message::InstallSnapshot {
            term,
            meta,
            offset,
            data,
            done,
        } => format!(
            "Snapshot t{term} snap={}@{} offset={offset} data={}{}",
            meta.index,
            meta.term,
            String::from_utf8_lossy(data),
            if *done { " done" } else { "" }
        ),
        Message::InstallSnapshotResponse {
            term,
            meta,
            offset,
            next_offset,
            installed,
        } => format!(
            "SnapshotAck t{term} snap={}@{} offset={offset} next={next_offset}{}",
            meta.index,
            meta.term,
            if *installed { " installed" } else { "" }
        ),
        Message::ReadHeartbeat { term, ctx } => format!("ReadHeartbeat t{term} round={ctx}"),
        Message::ReadHeartbeatResponse { term, ctx } => {
            format!("ReadHeartbeatAck t{term} round={ctx}")
        }
        Message::ReadIndex { term, ctx } => format!("ReadIndex t{term} ctx={ctx}"),
        Message::ReadIndexResponse { term, ctx, index } => match index {
            Some(i) => format!("ReadIndexOk t{term} ctx={ctx} index={i}"),
            None => format!("ReadIndexRefused t{term} ctx={ctx}"),
        },
        Message::TimeoutNow { term } => format!("TimeoutNow t{term}"),
        Message::TransferVote {
            term,
            last_log_index,
            last_log_term,
        } => format!("TransferVote t{term} last={last_log_index}@{last_log_term}"),
    }
}

/// Parses `key=value` arguments and bare words.
fn args(words: &[&str]) -> (Vec<String>, BTreeMap<String, String>) {
    let mut bare = Vec::new();
    let mut kv = BTreeMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => {
                kv.insert(k.to_string(), v.to_string());
            }
            None => bare.push(w.to_string()),
        }
    }
    (bare, kv)
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s}"))
}

/// `inject` messages: `append TERM PREV_INDEX PREV_TERM COMMIT [T,T,...]`,
/// `append-ok TERM INDEX`, `append-reject TERM INDEX LAST`,
/// `snapshot TERM INDEX SNAP_TERM OFFSET DATA [done]`,
/// `snapshot-ack TERM INDEX SNAP_TERM OFFSET NEXT [installed]`.
fn parse_message(w: &[&str]) -> Message {
    match w[0] {
        "append" => {
            let prev = num(w[2]);
            let terms: Vec<u64> = w
                .get(5)
                .map(|s| s.split(',').map(num).collect())
                .unwrap_or_default();
            Message::AppendEntries {
                term: num(w[1]),
                prev_log_index: prev,
                prev_log_term: num(w[3]),
                entries: terms
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Entry::new(*t, prev + 1 + i as u64, Bytes::new()))
                    .collect(),
                leader_commit: num(w[4]),
            }
        }
        "append-ok" => Message::AppendEntriesResponse {
            term: num(w[1]),
            index: num(w[2]),
            reject: None,
        },
        "append-reject" => Message::AppendEntriesResponse {
            term: num(w[1]),
            index: num(w[2]),
            reject: Some(RejectHint {
                conflict_term: None,
                first_index_of_term: 0,
                last_index: num(w[3]),
            }),
        },
        "snapshot" => Message::InstallSnapshot {
            term: num(w[1]),
            meta: SnapshotMeta {
                index: num(w[2]),
                term: num(w[3]),
            },
            offset: num(w[4]),
            data: Bytes::from(w[5].to_string()),
            done: w.get(6) == Some(&"done"),
        },
        "snapshot-ack" => Message::InstallSnapshotResponse {
            term: num(w[1]),
            meta: SnapshotMeta {
                index: num(w[2]),
                term: num(w[3]),
            },
            offset: num(w[4]),
            next_offset: num(w[5]),
            installed: w.get(6) == Some(&"installed"),
        },
        other => panic!("unknown message kind {other}"),
    }
}

fn run_command(cluster: &mut Option<Cluster>, line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (bare, kv) = args(&words[1..]);
    let mut out = String::new();
    if words[0] == "nodes" {
        let cfg = CoreConfig {
            election_timeout_min: 10,
            election_timeout_max: 20,
            heartbeat_ticks: kv.get("heartbeat").map_or(2, |v| num(v) as u32),
            snapshot_chunk_bytes: kv.get("chunk").map_or(1 << 18, |v| num(v) as usize),
            max_inflight_msgs: kv.get("inflight").map_or(64, |v| num(v) as usize),
            max_msg_bytes: kv.get("msg-bytes").map_or(1 << 20, |v| num(v) as usize),
            pre_vote: kv.get("pre-vote").is_none_or(|v| v != "off"),
            check_quorum: kv.get("check-quorum").is_none_or(|v| v != "off"),
            ..CoreConfig::default()
        };
        *cluster = Some(Cluster::new(bare.iter().map(|s| num(s)).collect(), cfg));
        return out;
    }
    let c = cluster.as_mut().expect("`nodes` comes first");
    let id = bare.first().and_then(|s| s.parse::<u64>().ok());
    match words[0] {
        "restart" => {
            let id = id.expect("restart ID");
            let mut restored = RestoredState::default();
            if let Some(t) = kv.get("term") {
                restored.hard_state = HardState {
                    term: num(t),
                    vote: None,
                };
            }
            if let Some(s) = kv.get("snapshot") {
                let (at, data) = s.split_once(':').expect("INDEX@TERM:DATA");
                let (i, t) = at.split_once('@').expect("INDEX@TERM");
                restored.snapshot = SnapshotMeta {
                    index: num(i),
                    term: num(t),
                };
                restored.snapshot_data = Bytes::from(data.to_string());
            }
            if let Some(l) = kv.get("log") {
                let base = restored.snapshot.index;
                restored.entries = l
                    .split(',')
                    .enumerate()
                    .map(|(i, t)| Entry::new(num(t), base + 1 + i as u64, Bytes::new()))
                    .collect();
            }
            let core = make(id, &c.ids, &c.cfg, restored);
            c.nodes.insert(id, core);
        }
        "campaign" => {
            let core = c.node(id.expect("campaign ID"));
            let term = core.term();
            while core.term() == term && core.role() != Role::PreCandidate {
                core.tick();
            }
        }
        "tick" => {
            let n = bare.get(1).map_or(1, |s| num(s));
            let core = c.node(id.expect("tick ID"));
            for _ in 0..n {
                core.tick();
            }
        }
        "propose" => {
            let core = c.node(id.expect("propose ID"));
            for data in &bare[1..] {
                match core.propose(Bytes::from(data.clone())) {
                    Ok((i, t)) => writeln!(out, "proposed {data} at {i}@{t}").ok(),
                    Err(e) => writeln!(out, "refused {data}: {e}").ok(),
                };
            }
        }
        "compact" => {
            let core = c.node(id.expect("compact ID"));
            let r = core.compact(num(&bare[1]), Bytes::from(bare[2].clone()));
            writeln!(out, "{r:?}").ok();
        }
        "ready" => {
            c.ready(id, &mut out);
        }
        "deliver" => {
            let to = kv.get("to").map(|v| num(v));
            let from = kv.get("from").map(|v| num(v));
            let drop = bare.iter().any(|w| w == "drop");
            let dup = bare.iter().any(|w| w == "dup");
            c.deliver(to, from, drop, dup, &mut out);
        }
        "stabilize" => {
            let drop_to = kv.get("drop-to").map(|v| num(v));
            for round in 0.. {
                assert!(round < 1000, "does not stabilize");
                let any = c.ready(None, &mut out);
                if let Some(d) = drop_to {
                    c.deliver(Some(d), None, true, false, &mut out);
                }
                if !any && c.queue.is_empty() {
                    break;
                }
                c.deliver(None, None, false, false, &mut out);
            }
        }
        "status" => {
            let core = c.node(id.expect("status ID"));
            writeln!(
                out,
                "{:?} term={} commit={} log={}..{}",
                core.role(),
                core.term(),
                core.commit_index(),
                core.log().first_index(),
                core.log().last_index()
            )
            .ok();
            for peer in core.peers().to_vec() {
                if let Some(pr) = core.progress(peer) {
                    writeln!(
                        out,
                        "  {peer}: {:?} match={} next={} inflight={}",
                        pr.state(),
                        pr.matched(),
                        pr.next(),
                        pr.inflight_count()
                    )
                    .ok();
                }
            }
        }
        "inject" => {
            let (from, to) = (num(words[1]), num(words[2]));
            let msg = parse_message(&words[3..]);
            if let Err(e) = c.node(to).step(from, msg) {
                writeln!(out, "refused: {e}").ok();
            }
        }
        other => panic!("unknown command {other}"),
    }
    out
}

/// Runs one script; returns the script with the actual output in place of the expected.
fn run_file(text: &str) -> String {
    let mut cluster = None;
    let mut result = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            result.push_str(line);
            result.push('\n');
            continue;
        }
        result.push_str(line);
        result.push('\n');
        assert_eq!(lines.next(), Some("----"), "`----` after `{line}`");
        // Skip the expected output, up to the blank line that ends it.
        while lines.peek().is_some_and(|l| !l.is_empty()) {
            lines.next();
        }
        lines.next();
        result.push_str("----\n");
        result.push_str(&run_command(&mut cluster, line));
        result.push('\n');
    }
    result
}

#[test]
fn golden_traces() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let rewrite = std::env::var_os("RAFT_GOLDEN_REWRITE").is_some();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "golden traces missing in {dir:?}");
    let mut failed = Vec::new();
    for path in files {
        let expected = std::fs::read_to_string(&path).expect("readable trace");
        let actual = run_file(&expected);
        if actual == expected {
            continue;
        }
        if rewrite {
            std::fs::write(&path, &actual).expect("writable trace");
            continue;
        }
        let first_diff = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .find(|(_, (e, a))| e != a)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .unwrap_or_else(|| "lengths differ".into());
        failed.push(format!("{}: {first_diff}", path.display()));
    }
    assert!(
        failed.is_empty(),
        "golden traces differ (RAFT_GOLDEN_REWRITE=1 rewrites them):\n{}",
        failed.join("\n")
    );
}

//! A replayed seed as a [`raft_viz::Run`], to draw as an interactive HTML timeline.
//!
//! The trace says when each message was delivered or lost, but not when it was sent
//! (tracing every send would make every ring trace longer). So the seed is run once
//! more with an observer in the checker that records each send and never objects: the
//! run, its trace and its outcome are exactly those of [`run_seed`](crate::run_seed).
//! Each delivery in the trace is then matched to the earliest pending send with the
//! same link and contents. The same observer records every log write (truncation,
//! snapshot, entries appended) for the log view.

use crate::config::{ConfigError, SimConfig};
use crate::event::{Fault, Partition};
use crate::invariant::{Invariant, Observation};
use crate::runner::{run_seed_with, SeedReport};
use crate::trace::{Fate, LostReason, MsgSummary, NodeState, TraceKind, TraceMode};
use crate::world::World;
use raft_core::Role;
use raft_viz::{At, Crash, LogOp, Message, MsgKind, PartitionSpan, Run, SnapshotMark, StateChange};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// One message as it left its sender.
#[derive(Clone, Debug)]
struct Sent {
    at: At,
    from: u64,
    to: u64,
    msg: MsgSummary,
    bytes: u64,
}

/// What the observer saw.
#[derive(Default)]
struct Recorded {
    sends: Vec<Sent>,
    logs: Vec<LogOp>,
    /// The last node state seen after a step: the trace records a step's states after
    /// the checks, so a step that breaks an invariant has its state only here.
    last_state: Option<(At, u64, NodeState)>,
}

/// Records every send and every log write; never objects, so the run is unchanged.
struct Recorder(Rc<RefCell<Recorded>>);

impl Invariant for Recorder {
    fn name(&self) -> &'static str {
        "timeline-recorder"
    }
    fn observe(&mut self, world: &World, obs: &Observation<'_>) -> Result<(), String> {
        let at = At {
            step: world.step,
            time_us: world.now,
        };
        let mut rec = self.0.borrow_mut();
        match *obs {
            Observation::Sent { env, .. } => rec.sends.push(Sent {
                at,
                from: env.from,
                to: env.to,
                msg: MsgSummary::from(&env.msg),
                bytes: postcard::to_allocvec(&env.msg).map_or(0, |v| v.len() as u64),
            }),
            Observation::Persisted {
                node,
                snapshot,
                truncate_from,
                entries,
                ..
            } if snapshot.is_some() || truncate_from.is_some() || !entries.is_empty() => {
                rec.logs.push(LogOp {
                    at,
                    node: node as u64 + 1,
                    reset: false,
                    truncate_from: truncate_from.unwrap_or(0),
                    snapshot: snapshot.map(|s| (s.meta.index, s.meta.term)),
                    first: entries.first().map_or(0, |e| e.index),
                    terms: entries.iter().map(|e| e.term).collect(),
                })
            }
            Observation::Stepped { node } => {
                if let Some(st) = world.nodes[node].state() {
                    rec.last_state = Some((at, node as u64 + 1, st));
                }
            }
            // A crash that lost an unsynced batch: the log is what the storage kept.
            Observation::Crashed {
                node,
                rolled_back: Some(_),
            } => {
                let st = &world.nodes[node].storage;
                let snap = st.snapshot_meta();
                rec.logs.push(LogOp {
                    at,
                    node: node as u64 + 1,
                    reset: true,
                    truncate_from: 0,
                    snapshot: Some((snap.index, snap.term)),
                    first: snap.index + 1,
                    terms: (snap.index + 1..=st.last_index())
                        .map(|i| st.term(i).unwrap_or(0))
                        .collect(),
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs `seed` under `cfg` with a full trace and returns its report and its timeline.
pub fn record_timeline(seed: u64, cfg: &SimConfig) -> Result<(SeedReport, Run), ConfigError> {
    let recorded = Rc::new(RefCell::new(Recorded::default()));
    let recorder = Recorder(Rc::clone(&recorded));
    let report = run_seed_with(seed, cfg, TraceMode::Full, move |sim| {
        sim.checker_mut().add_first(Box::new(recorder));
    })?;
    let recorded = recorded.take();
    let mut run = to_run(&report, &recorded.sends);
    run.logs = recorded.logs;
    if let (Some(v), Some((at, node, st))) = (report.violation(), recorded.last_state) {
        if at.step == v.step {
            run.states.push(state_change(at, node, &st, st.applied));
        }
    }
    Ok((report, run))
}

/// Runs `seed` under `cfg` and draws it as one self-contained HTML page.
pub fn timeline_html(seed: u64, cfg: &SimConfig) -> Result<(SeedReport, String), ConfigError> {
    let (report, run) = record_timeline(seed, cfg)?;
    Ok((report, raft_viz::render_html(&run)))
}

/// Runs `seed` under `cfg` and draws it as one static SVG (for documents), with the log
/// view just before the first log repair (a truncation of entries a node held), if
/// there is one, and at the end of the run.
pub fn timeline_svg(seed: u64, cfg: &SimConfig) -> Result<(SeedReport, String), ConfigError> {
    let (report, run) = record_timeline(seed, cfg)?;
    let mut at: Vec<u64> = raft_viz::log_repairs(&run)
        .first()
        .map(|a| a.time_us.saturating_sub(1))
        .into_iter()
        .collect();
    at.push(run.end.time_us);
    Ok((report, raft_viz::render_svg(&run, &at)))
}

/// Kind, term, index and entry count of a message.
fn describe(m: &MsgSummary) -> (MsgKind, u64, u64, u32) {
    match *m {
        MsgSummary::Vote {
            term, last_index, ..
        } => (MsgKind::Vote, term, last_index, 0),
        MsgSummary::VoteResp { term, .. } => (MsgKind::VoteResp, term, 0, 0),
        MsgSummary::Append {
            term,
            prev_index,
            entries,
            ..
        } => {
            let kind = if entries == 0 {
                MsgKind::Heartbeat
            } else {
                MsgKind::Append
            };
            (kind, term, prev_index, entries)
        }
        MsgSummary::AppendResp { term, index, .. } => (MsgKind::AppendResp, term, index, 0),
        MsgSummary::Snap { term, meta, .. } => (MsgKind::Snapshot, term, meta.index, 0),
        MsgSummary::SnapResp { term, meta, .. } => (MsgKind::SnapshotResp, term, meta.index, 0),
        // The viewer has no kinds of its own for reads: they draw as heartbeats and
        // answers (the tooltip names them).
        MsgSummary::ReadBeat { term, round } | MsgSummary::ReadFwd { term, ctx: round } => {
            (MsgKind::Heartbeat, term, round, 0)
        }
        MsgSummary::ReadBeatResp { term, round } => (MsgKind::AppendResp, term, round, 0),
        MsgSummary::ReadFwdResp { term, index, .. } => {
            (MsgKind::AppendResp, term, index.unwrap_or(0), 0)
        }
        MsgSummary::TimeoutNow { term } => (MsgKind::Vote, term, 0, 0),
    }
}

fn mask_nodes(mask: u64) -> Vec<u64> {
    (0..64)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| i + 1)
        .collect()
}

/// The nodes whose lanes a partition shades: the side it cuts off.
fn cut_nodes(p: &Partition, n: u64) -> Vec<u64> {
    match *p {
        Partition::Split { side } => {
            let a = mask_nodes(side);
            if a.len() as u64 * 2 <= n {
                a
            } else {
                (1..=n).filter(|x| !a.contains(x)).collect()
            }
        }
        Partition::Isolate { node } | Partition::OneWay { node, .. } => vec![node],
        Partition::Bridge { a, .. } => mask_nodes(a),
    }
}

fn state_change(at: At, node: u64, state: &NodeState, applied: u64) -> StateChange {
    StateChange {
        at,
        node,
        role: match state.role {
            Role::Follower => raft_viz::Role::Follower,
            // The timeline has no band of its own for pre-candidates: they ask for votes
            // too; the term row shows that theirs did not rise.
            Role::PreCandidate | Role::Candidate => raft_viz::Role::Candidate,
            Role::Leader => raft_viz::Role::Leader,
        },
        term: state.hard.term,
        commit: state.commit,
        applied,
    }
}

/// Adds a message in flight, pending on its link.
fn push_send(
    run: &mut Run,
    pending: &mut BTreeMap<(u64, u64), Vec<usize>>,
    summaries: &mut Vec<MsgSummary>,
    s: &Sent,
) {
    let (kind, term, index, entries) = describe(&s.msg);
    pending
        .entry((s.from, s.to))
        .or_default()
        .push(run.messages.len());
    summaries.push(s.msg);
    run.messages.push(Message {
        from: s.from,
        to: s.to,
        kind,
        sent: s.at,
        fate: raft_viz::Fate::InFlight,
        duplicate: false,
        term,
        index,
        entries,
        bytes: s.bytes,
        detail: s.msg.to_string(),
    });
}

fn to_run(report: &SeedReport, sends: &[Sent]) -> Run {
    let n = report.config.total_nodes() as u64;
    let mut run = Run::new(format!("raft-sim seed {}", report.seed), (1..=n).collect());
    run.notes = report
        .config
        .to_string()
        .lines()
        .map(String::from)
        .collect();
    run.notes.push(match &report.outcome {
        Ok(o) => format!("outcome: {o:?}"),
        Err(v) => format!("outcome: {} violated at step {}", v.invariant, v.step),
    });
    // Every node starts as a follower of term 0 with nothing committed.
    for node in 1..=n {
        run.states.push(StateChange {
            at: At::default(),
            node,
            role: raft_viz::Role::Follower,
            term: 0,
            commit: 0,
            applied: 0,
        });
    }
    run.end = At {
        step: report.stats.counts.steps,
        time_us: report.stats.counts.sim_time_us,
    };
    // Messages sent and not yet delivered or lost, per link, as indices into run.messages.
    let mut pending: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
    let mut summaries: Vec<MsgSummary> = Vec::new();
    let mut next_send = 0;
    let mut open_crash: BTreeMap<u64, usize> = BTreeMap::new();
    let mut open_part: Option<usize> = None;
    // Per node: the step of its last Ready applied at once, and the last index it applied.
    let mut applying: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for r in report.trace.records() {
        let at = At {
            step: r.step,
            time_us: r.time_us,
        };
        while next_send < sends.len() && sends[next_send].at.step <= r.step {
            push_send(&mut run, &mut pending, &mut summaries, &sends[next_send]);
            next_send += 1;
        }
        match &r.what {
            TraceKind::Deliver { from, to, msg } | TraceKind::Lost { from, to, msg, .. } => {
                let Some(list) = pending.get_mut(&(*from, *to)) else {
                    continue;
                };
                let found = list
                    .iter()
                    .position(|&i| summaries[i] == *msg && run.messages[i].sent.step < r.step);
                if let Some(pos) = found {
                    let i = list.remove(pos);
                    run.messages[i].fate = match &r.what {
                        TraceKind::Lost { why, .. } => raft_viz::Fate::Lost(
                            at,
                            match why {
                                LostReason::Partition => "link cut by a partition",
                                LostReason::Down => "receiver down",
                            }
                            .to_string(),
                        ),
                        _ => raft_viz::Fate::Delivered(at),
                    };
                }
            }
            TraceKind::Faulted {
                from,
                to,
                msg,
                fate,
            } => {
                let Some(list) = pending.get_mut(&(*from, *to)) else {
                    continue;
                };
                let found = list
                    .iter()
                    .rposition(|&i| summaries[i] == *msg && run.messages[i].sent.step == r.step);
                let Some(pos) = found else { continue };
                let i = list[pos];
                match fate {
                    Fate::Dropped => {
                        list.remove(pos);
                        run.messages[i].fate = raft_viz::Fate::Dropped;
                    }
                    Fate::Duplicated => {
                        let mut copy = run.messages[i].clone();
                        copy.duplicate = true;
                        list.push(run.messages.len());
                        summaries.push(*msg);
                        run.messages.push(copy);
                    }
                    Fate::Delayed => run.messages[i].detail.push_str(" [delayed by a fault]"),
                    Fate::Reordered => run.messages[i].detail.push_str(" [reordered by a fault]"),
                }
            }
            TraceKind::State { node, state } => {
                // The state is traced before the step's Ready is applied; show what the
                // node has applied once the step is over.
                let applied = match applying.get(node) {
                    Some(&(step, last)) if step == r.step => state.applied.max(last),
                    _ => state.applied,
                };
                run.states.push(state_change(at, *node, state, applied));
            }
            TraceKind::Fault(f) => match f {
                Fault::Crash { node, .. } => {
                    open_crash.insert(*node, run.crashes.len());
                    run.crashes.push(Crash {
                        node: *node,
                        start: at,
                        end: None,
                        detail: f.to_string(),
                    });
                }
                Fault::Restart { node } => {
                    if let Some(i) = open_crash.remove(node) {
                        run.crashes[i].end = Some(at);
                    }
                }
                Fault::Partition(p) => {
                    if let Some(i) = open_part.take() {
                        run.partitions[i].end = Some(at);
                    }
                    open_part = Some(run.partitions.len());
                    run.partitions.push(PartitionSpan {
                        start: at,
                        end: None,
                        label: f.to_string(),
                        nodes: cut_nodes(p, n),
                    });
                }
                Fault::HealNetwork => {
                    if let Some(i) = open_part.take() {
                        run.partitions[i].end = Some(at);
                    }
                }
            },
            TraceKind::Heal => {
                if let Some(i) = open_part.take() {
                    run.partitions[i].end = Some(at);
                }
            }
            TraceKind::Compact { node, index } => run.snapshots.push(SnapshotMark {
                at,
                node: *node,
                index: *index,
                installed: false,
            }),
            TraceKind::Ready { node, ready } => {
                if let (Some((_, last)), false) = (ready.committed, ready.deferred) {
                    applying.insert(*node, (r.step, last));
                }
                if let Some(meta) = ready.restore {
                    run.snapshots.push(SnapshotMark {
                        at,
                        node: *node,
                        index: meta.index,
                        installed: true,
                    });
                }
            }
            _ => {}
        }
    }
    for s in &sends[next_send.min(sends.len())..] {
        push_send(&mut run, &mut pending, &mut summaries, s);
    }
    if let Some(v) = report.violation() {
        run.violation = Some(raft_viz::ViolationMark {
            at: At {
                step: v.step,
                time_us: v.time_us,
            },
            invariant: v.invariant.to_string(),
            message: v.detail.clone(),
        });
    }
    run
}

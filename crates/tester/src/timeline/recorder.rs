//! The recorder: turns what the hooks report into a [`raft_viz::Run`] and writes it.

use super::describe::describe;
use crate::wiring::{lock, RAFT_METHOD};
use labrpc::{CallEvent, NetObserver, RpcError};
use raft::{Envelope, Observed, Observer, Role};
use raft_viz::{At, Crash, Fate, LogOp, Message, PartitionSpan, Run, SnapshotMark, StateChange};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Records one cluster's run; cheap to clone (all clones are the same recording).
#[derive(Clone)]
pub(crate) struct Recorder(Arc<Mutex<Rec>>);

/// The calls of one RPC: the request's and the reply's index in `run.messages`.
#[derive(Default)]
struct Call {
    request: Option<usize>,
    reply: Option<usize>,
}

struct Rec {
    file: PathBuf,
    created: Instant,
    step: u64,
    run: Run,
    /// Per peer: the instance whose reports count (its start number), and whether it runs.
    generation: Vec<u64>,
    alive: Vec<bool>,
    connected: Vec<bool>,
    open_crash: Vec<Option<usize>>,
    open_cut: Option<usize>,
    calls: BTreeMap<u64, Call>,
}

impl Rec {
    /// The current instant, one step after the last.
    fn now(&mut self) -> At {
        self.step += 1;
        At {
            step: self.step,
            time_us: u64::try_from(self.created.elapsed().as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// Opens or closes the disconnection span after a change: peers that run and are cut
    /// off. A span that lasted no time (the cluster connecting its peers one by one) is
    /// dropped.
    fn network_changed(&mut self) {
        let cut: Vec<u64> = (0..self.alive.len())
            .filter(|&i| self.alive[i] && !self.connected[i])
            .map(|i| i as u64)
            .collect();
        let same = self
            .open_cut
            .is_some_and(|k| self.run.partitions[k].nodes == cut);
        if same {
            return;
        }
        let at = self.now();
        if let Some(k) = self.open_cut.take() {
            if self.run.partitions[k].start.time_us == at.time_us
                && k + 1 == self.run.partitions.len()
            {
                self.run.partitions.pop();
            } else {
                self.run.partitions[k].end = Some(at);
            }
        }
        if !cut.is_empty() {
            let names: Vec<String> = cut.iter().map(|i| format!("n{i}")).collect();
            self.open_cut = Some(self.run.partitions.len());
            self.run.partitions.push(PartitionSpan {
                start: at,
                end: None,
                label: format!("disconnected from every other peer: {}", names.join(", ")),
                nodes: cut,
            });
        }
    }
}

/// `end-{i}-{j}-g{generation}` (see [`peer_ends`](crate::wiring::peer_ends)): (i, j).
fn peers_of(end: &str) -> Option<(u64, u64)> {
    let mut parts = end.strip_prefix("end-")?.split('-');
    let from = parts.next()?.parse().ok()?;
    let to = parts.next()?.parse().ok()?;
    Some((from, to))
}

impl Recorder {
    /// A recorder for the cluster being built, if its run asked for a timeline.
    pub(crate) fn current(n: usize, created: Instant) -> Option<Recorder> {
        let file = super::current_file()?;
        let mut run = Run::new("raft-tester", (0..n as u64).collect());
        run.notes.push(format!("raft-tester, {n} peers"));
        Some(Recorder(Arc::new(Mutex::new(Rec {
            file,
            created,
            step: 0,
            run,
            generation: vec![0; n],
            alive: vec![false; n],
            connected: vec![false; n],
            open_crash: vec![None; n],
            open_cut: None,
            calls: BTreeMap::new(),
        }))))
    }

    /// The test's description and settings, for the page's heading.
    pub(crate) fn describe_test(&self, title: &str, notes: Vec<String>) {
        let mut r = lock(&self.0);
        r.run.title = title.to_string();
        r.run.notes = notes;
    }

    /// The observer to give the instance of peer `i` started as number `generation`.
    pub(crate) fn peer_observer(&self, i: usize, generation: u64) -> Observer {
        let rec = self.0.clone();
        Observer::new(move |what| {
            let mut r = lock(&rec);
            if r.generation[i] != generation || !r.alive[i] {
                return; // a killed instance still finishing its turn
            }
            let at = r.now();
            let node = i as u64;
            match what {
                Observed::Status {
                    role,
                    term,
                    commit,
                    applied,
                } => r.run.states.push(StateChange {
                    at,
                    node,
                    role: match role {
                        Role::Follower => raft_viz::Role::Follower,
                        // The timeline has no band of its own for pre-candidates,
                        // as in the simulator's pages: they are drawn as candidates.
                        Role::PreCandidate | Role::Candidate => raft_viz::Role::Candidate,
                        Role::Leader => raft_viz::Role::Leader,
                    },
                    term: *term,
                    commit: *commit,
                    applied: *applied,
                }),
                Observed::Restored { snapshot, terms } => r.run.logs.push(LogOp {
                    at,
                    node,
                    reset: true,
                    truncate_from: 0,
                    snapshot: Some((snapshot.index, snapshot.term)),
                    first: snapshot.index + 1,
                    terms: terms.clone(),
                }),
                Observed::Persisted {
                    truncate_from,
                    snapshot,
                    installed,
                    entries,
                } => {
                    if let Some(s) = snapshot {
                        r.run.snapshots.push(SnapshotMark {
                            at,
                            node,
                            index: s.index,
                            installed: *installed,
                        });
                    }
                    r.run.logs.push(LogOp {
                        at,
                        node,
                        reset: false,
                        truncate_from: truncate_from.unwrap_or(0),
                        snapshot: snapshot.map(|s| (s.index, s.term)),
                        first: entries.first().map_or(0, |e| e.0),
                        terms: entries.iter().map(|e| e.1).collect(),
                    });
                }
            }
        })
    }

    /// Peer `i` was crashed by the harness (if it was running).
    pub(crate) fn crashed(&self, i: usize) {
        let mut r = lock(&self.0);
        if !r.alive[i] {
            return;
        }
        r.alive[i] = false;
        let at = r.now();
        r.open_crash[i] = Some(r.run.crashes.len());
        r.run.crashes.push(Crash {
            node: i as u64,
            start: at,
            end: None,
            detail: "crashed by the tester (crash1)".to_string(),
        });
        r.network_changed();
    }

    /// Peer `i` was (re)started as instance number `generation`.
    pub(crate) fn started(&self, i: usize, generation: u64) {
        let mut r = lock(&self.0);
        r.generation[i] = generation;
        r.alive[i] = true;
        let at = r.now();
        if let Some(k) = r.open_crash[i].take() {
            r.run.crashes[k].end = Some(at);
            r.run.crashes[k].detail = "crashed, then restarted from its storage".to_string();
        }
        r.network_changed();
    }

    /// Peer `i` was connected or disconnected.
    pub(crate) fn connected(&self, i: usize, connected: bool) {
        let mut r = lock(&self.0);
        r.connected[i] = connected;
        r.network_changed();
    }

    /// Draws the run as it stands and writes it to its file. `failed`: the test is
    /// panicking, which the page says at the end of the run.
    pub(crate) fn write(&self, failed: bool) {
        let mut r = lock(&self.0);
        let end = r.now();
        r.run.end = end;
        if failed {
            r.run.violation = Some(raft_viz::ViolationMark {
                at: end,
                invariant: "test".to_string(),
                message: "the test failed (panicked) here; its output has the message".to_string(),
            });
        }
        let html = raft_viz::render_html(&r.run);
        let file = r.file.clone();
        drop(r);
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(&file, html) {
            eprintln!("cannot write the timeline {}: {e}", file.display());
        }
    }
}

impl NetObserver for Recorder {
    fn on_call(&self, call: u64, end: &str, event: CallEvent<'_>) {
        let Some((from, to)) = peers_of(end) else {
            return;
        };
        let mut r = lock(&self.0);
        let at = r.now();
        match event {
            CallEvent::Sent {
                method,
                args,
                reachable,
            } => {
                if method != RAFT_METHOD {
                    return;
                }
                let Ok(env) = postcard::from_bytes::<Envelope>(args) else {
                    return;
                };
                let k = r.run.messages.len();
                let mut m = message(from, to, &env, at, args.len());
                if !reachable {
                    // Known lost from the start: no arrow across the time the caller
                    // waits for its timeout.
                    m.fate = Fate::Dropped;
                    m.detail.push_str(" [link cut, or the peer is down]");
                }
                r.run.messages.push(m);
                r.calls.insert(
                    call,
                    Call {
                        request: Some(k),
                        reply: None,
                    },
                );
            }
            CallEvent::Dispatched => {
                if let Some(k) = r.calls.get(&call).and_then(|c| c.request) {
                    r.run.messages[k].fate = Fate::Delivered(at);
                }
            }
            CallEvent::Failed(e) => {
                if let Some(c) = r.calls.remove(&call) {
                    let Some(k) = c.request else { return };
                    if r.run.messages[k].fate == Fate::InFlight {
                        let why = match e {
                            RpcError::Unreachable => "unreachable: link cut, or the peer is down",
                            RpcError::RequestDropped => "dropped by the unreliable network",
                            _ => "not delivered",
                        };
                        r.run.messages[k].fate = Fate::Lost(at, why.to_string());
                    }
                }
            }
            CallEvent::Replied { reply } => {
                if !r.calls.contains_key(&call) {
                    return;
                }
                let Ok(Some(env)) = postcard::from_bytes::<Option<Envelope>>(reply) else {
                    return;
                };
                let k = r.run.messages.len();
                r.run
                    .messages
                    .push(message(to, from, &env, at, reply.len()));
                if let Some(c) = r.calls.get_mut(&call) {
                    c.reply = Some(k);
                }
            }
            CallEvent::ReplyDelivered => {
                if let Some(k) = r.calls.remove(&call).and_then(|c| c.reply) {
                    r.run.messages[k].fate = Fate::Delivered(at);
                }
            }
            CallEvent::ReplyLost(e) => {
                if let Some(k) = r.calls.remove(&call).and_then(|c| c.reply) {
                    r.run.messages[k].fate = match e {
                        RpcError::ReplyDropped => Fate::Dropped,
                        RpcError::ServerDead => {
                            Fate::Lost(at, "the server died or the link was cut".to_string())
                        }
                        _ => Fate::Lost(at, "the caller had stopped waiting".to_string()),
                    };
                }
            }
        }
    }
}

fn message(from: u64, to: u64, env: &Envelope, at: At, bytes: usize) -> Message {
    let d = describe(&env.msg);
    Message {
        from,
        to,
        kind: d.kind,
        sent: at,
        fate: Fate::InFlight,
        duplicate: false,
        term: d.term,
        index: d.index,
        entries: d.entries,
        bytes: bytes as u64,
        detail: d.detail,
    }
}

//! The simulated cluster as the invariants see it: nodes (core + storage) and the ledger
//! of committed entries.

use crate::config::Micros;
use crate::rng::SharedRng;
use crate::storage::Storage;
use crate::trace::NodeState;
use bytes::Bytes;
use raft_core::{Entry, EntryKind, Envelope, Index, Membership, NodeId, RaftCore, Snapshot, Term};

/// The protocol core as the simulator runs it.
pub type Core = RaftCore<SharedRng>;

/// A `Ready` whose writes are issued but whose messages and committed entries wait for a
/// flush: the window in which a crash lands "between persist and send".
#[derive(Debug, Default)]
pub(crate) struct Unsent {
    /// The last entry (or snapshot point) the unsynced write holds, to report once synced.
    pub(crate) durable: Option<(Index, Term)>,
    pub(crate) messages: Vec<Envelope>,
    pub(crate) restore: Option<Snapshot>,
    pub(crate) committed: Vec<Entry>,
}

/// One simulated server: its core while it is up, and its storage, which survives crashes.
pub struct SimNode {
    /// The node's id (its index + 1).
    pub id: NodeId,
    pub(crate) core: Option<Core>,
    /// What the node has persisted.
    pub storage: Storage,
    /// Which life of the node this is (incremented by each crash).
    pub incarnation: u32,
    /// Last index applied since the node last (re)started.
    pub applied: Index,
    /// The state machine: a digest of every command applied, in order (see
    /// [`digest_step`]).
    pub digest: u64,
    pub(crate) commit_seen: Index,
    pub(crate) unsent: Option<Unsent>,
    pub(crate) compact_pending: bool,
    /// Reads the core confirmed, waiting for the state machine to reach their read
    /// index: (read id, read index).
    pub(crate) reads: Vec<(u64, Index)>,
}

impl SimNode {
    pub(crate) fn new(id: NodeId, core: Core) -> Self {
        SimNode {
            id,
            core: Some(core),
            storage: Storage::default(),
            incarnation: 0,
            applied: 0,
            digest: DIGEST_INIT,
            commit_seen: 0,
            unsent: None,
            compact_pending: false,
            reads: Vec::new(),
        }
    }

    /// The running core, or `None` while the node is down.
    pub fn core(&self) -> Option<&Core> {
        self.core.as_ref()
    }

    /// True while the node runs.
    pub fn is_up(&self) -> bool {
        self.core.is_some()
    }

    /// True when the node runs and believes it leads.
    pub fn is_leader(&self) -> bool {
        self.core.as_ref().is_some_and(|c| c.is_leader())
    }

    /// Observable state, while the node is up.
    pub fn state(&self) -> Option<NodeState> {
        let c = self.core.as_ref()?;
        Some(NodeState {
            role: c.role(),
            hard: c.hard_state(),
            commit: c.commit_index(),
            last_index: c.log().last_index(),
            last_term: c.log().last_term(),
            applied: self.applied,
        })
    }
}

/// The digest of an empty state machine.
pub const DIGEST_INIT: u64 = 0xcbf2_9ce4_8422_2325;

/// The simulated service's state transition: folds one applied entry (index, term and
/// command) into the digest of everything applied before it (FNV-1a).
pub fn digest_step(digest: u64, entry: &Entry) -> u64 {
    let mut h = digest;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    entry.index.to_le_bytes().into_iter().for_each(&mut eat);
    entry.term.to_le_bytes().into_iter().for_each(&mut eat);
    entry.data.iter().copied().for_each(&mut eat);
    h
}

/// The service's snapshot of its state through `index`: the index and the digest.
pub fn encode_snapshot(index: Index, digest: u64) -> Bytes {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&index.to_le_bytes());
    v.extend_from_slice(&digest.to_le_bytes());
    Bytes::from(v)
}

/// Decodes [`encode_snapshot`]'s bytes into (index, digest).
pub fn decode_snapshot(data: &[u8]) -> Option<(Index, u64)> {
    let index: [u8; 8] = data.get(..8)?.try_into().ok()?;
    let digest: [u8; 8] = data.get(8..16)?.try_into().ok()?;
    (data.len() == 16).then(|| (u64::from_le_bytes(index), u64::from_le_bytes(digest)))
}

/// The key a simulated read asks for: `key` of `keys` (command `c` writes key `c % keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadKey {
    /// The key read.
    pub key: u64,
    /// How many keys the store has (never 0).
    pub keys: u64,
}

impl ReadKey {
    /// Whether the command `data` writes this key.
    pub fn touches(&self, data: &[u8]) -> bool {
        crate::sim::decode_cmd(data).is_some_and(|c| c % self.keys == self.key)
    }
}

/// An entry known to be committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    /// The entry's term.
    pub term: Term,
    /// The entry's command.
    pub data: Bytes,
    /// Term of the first node seen to commit it (the committing leader's term).
    pub commit_term: Term,
    /// A command, or a configuration (which writes no key).
    pub kind: EntryKind,
}

/// What [`Ledger::record`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// First time this index was seen committed.
    New,
    /// The same entry was already recorded.
    Same,
    /// A different entry was recorded at this index.
    Conflict(Chosen),
}

/// The global map from log index to the entry committed there: the ground truth every
/// node's commits and applies are checked against.
#[derive(Clone, Debug)]
pub struct Ledger {
    chosen: Vec<Option<Chosen>>,
    len: usize,
    /// `digests[i]`: the state machine's digest after applying the committed entries
    /// 1..=i, for the contiguous prefix computed so far.
    digests: Vec<u64>,
    /// The committed configuration entries, by index.
    configs: std::collections::BTreeMap<Index, Membership>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            chosen: Vec::new(),
            len: 0,
            digests: vec![DIGEST_INIT],
            configs: std::collections::BTreeMap::new(),
        }
    }
}

impl Ledger {
    /// The entry committed at `index`, if known.
    pub fn get(&self, index: Index) -> Option<&Chosen> {
        self.chosen.get(index as usize).and_then(|c| c.as_ref())
    }

    /// Records that a node whose term is `term` committed `entry`.
    pub fn record(&mut self, entry: &Entry, term: Term) -> Recorded {
        let i = entry.index as usize;
        if self.chosen.len() <= i {
            self.chosen.resize(i + 1, None);
        }
        match &mut self.chosen[i] {
            Some(c) if c.term == entry.term && c.data == entry.data => {
                c.commit_term = c.commit_term.min(term);
                Recorded::Same
            }
            Some(c) => Recorded::Conflict(c.clone()),
            slot @ None => {
                *slot = Some(Chosen {
                    term: entry.term,
                    data: entry.data.clone(),
                    commit_term: term,
                    kind: entry.kind,
                });
                self.len += 1;
                self.extend_digests();
                if entry.kind == EntryKind::Config {
                    if let Some(m) = Membership::decode(&entry.data) {
                        self.configs.insert(entry.index, m);
                    }
                }
                Recorded::New
            }
        }
    }

    /// The digest a state machine must have after applying the committed entries
    /// 1..=`index`, when all of them are known.
    pub fn digest(&self, index: Index) -> Option<u64> {
        self.digests.get(index as usize).copied()
    }

    fn extend_digests(&mut self) {
        while let Some(Some(c)) = self.chosen.get(self.digests.len()) {
            let i = self.digests.len();
            let e = Entry::new(c.term, i as Index, c.data.clone());
            let d = digest_step(self.digests[i - 1], &e);
            self.digests.push(d);
        }
    }

    /// The highest index up to `upto` known committed whose command writes `key` (0 when
    /// none). Indices not known committed count as not writing it: a read is then held
    /// to less, never to more, than it must see.
    pub fn last_write(&self, key: ReadKey, upto: Index) -> Index {
        (1..=upto.min(self.max_index()))
            .rev()
            .find(|&i| {
                self.get(i)
                    .is_some_and(|c| c.kind == EntryKind::Command && key.touches(&c.data))
            })
            .unwrap_or(0)
    }

    /// The last committed configuration entry: its index and configuration (`None`
    /// while only the bootstrap configuration is committed).
    pub fn last_config(&self) -> Option<(Index, &Membership)> {
        self.configs.iter().next_back().map(|(i, m)| (*i, m))
    }

    /// Highest index known committed (0 when none).
    pub fn max_index(&self) -> Index {
        self.chosen.len().saturating_sub(1) as Index
    }

    /// Number of indices known committed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is known committed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Committed entries in index order, with their index.
    pub fn iter(&self) -> impl Iterator<Item = (Index, &Chosen)> {
        self.chosen
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.as_ref().map(|c| (i as Index, c)))
    }
}

/// The whole simulated cluster.
pub struct World {
    /// The nodes, by index (node id = index + 1).
    pub nodes: Vec<SimNode>,
    /// The configuration the cluster starts with: the initial voters (the spare nodes,
    /// with ids after theirs, start outside it, knowing no configuration).
    pub bootstrap: Membership,
    /// Entries known committed.
    pub ledger: Ledger,
    /// Virtual time.
    pub now: Micros,
    /// Steps taken so far.
    pub step: u64,
}

impl World {
    /// The configuration `node` starts with before its log or snapshot says otherwise:
    /// the bootstrap one for an initial voter, none for a spare node.
    pub fn bootstrap_of(&self, node: usize) -> Membership {
        if self.bootstrap.voters.contains(&(node as NodeId + 1)) {
            self.bootstrap.clone()
        } else {
            Membership::default()
        }
    }

    /// The last configuration known committed (the bootstrap one until a configuration
    /// entry commits).
    pub fn committed_config(&self) -> &Membership {
        self.ledger
            .last_config()
            .map_or(&self.bootstrap, |(_, m)| m)
    }

    /// Number of nodes whose storage holds the entry `index`@`term` (or a snapshot
    /// covering it).
    pub fn holders(&self, index: Index, term: Term) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.storage.holds(index, term))
            .count()
    }

    /// One line per node: its state, or that it is down, and what it persisted.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let st = match n.state() {
                Some(st) => st.to_string(),
                None => "DOWN".to_string(),
            };
            let hs = n.storage.hard_state();
            let snap = n.storage.snapshot_meta();
            let snap = if snap.index > 0 {
                format!(" snapshot ..{}@{}", snap.index, snap.term)
            } else {
                String::new()
            };
            let conf = match n.core() {
                Some(c) if *c.membership() != self.bootstrap || self.has_spares() => {
                    format!(
                        " conf {} (set at {})",
                        show_membership(c.membership()),
                        c.membership_index()
                    )
                }
                _ => String::new(),
            };
            s.push_str(&format!(
                "  n{}: {st}{conf}; disk: t{} vote {:?}{snap} log ..{}@{}\n",
                n.id,
                hs.term,
                hs.vote,
                n.storage.last_index(),
                n.storage.last_term()
            ));
        }
        s
    }

    /// True when some node starts outside the configuration.
    pub fn has_spares(&self) -> bool {
        self.bootstrap.voters.len() < self.nodes.len()
    }
}

/// A configuration as `voters {1,2,3}`, with its learners and its outgoing voters while
/// joint.
pub fn show_membership(m: &Membership) -> String {
    let set = |s: &std::collections::BTreeSet<NodeId>| {
        let ids: Vec<String> = s.iter().map(|i| i.to_string()).collect();
        format!("{{{}}}", ids.join(","))
    };
    let mut out = format!("voters {}", set(&m.voters));
    if let Some(o) = &m.outgoing {
        out.push_str(&format!(" (joint, outgoing {})", set(o)));
    }
    if !m.learners.is_empty() {
        out.push_str(&format!(" learners {}", set(&m.learners)));
    }
    out
}

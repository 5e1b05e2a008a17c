//! The Wing–Gong / Lowe search, partitioned by key and run in parallel.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::history::{History, OpKind, Operation};
use crate::report::FailureReport;

/// How often (in search steps) the search looks at the clock and the cancel flag.
const POLL_INTERVAL: u64 = 1024;

/// The verdict of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Every key's sub-history has a linearization.
    Linearizable,
    /// At least one key's sub-history has no linearization. `key` is the
    /// failing key with the fewest operations (ties broken by key order)
    /// among those the search decided.
    NotLinearizable {
        /// The failing key.
        key: String,
        /// Its history and the longest linearizable prefix found.
        report: Box<FailureReport>,
    },
    /// The time budget ran out before every key was decided and no key was
    /// found to be non-linearizable.
    Unknown {
        /// The keys whose search did not finish (sorted).
        undecided_keys: Vec<String>,
    },
}

impl CheckResult {
    /// Whether the verdict is [`CheckResult::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable)
    }

    /// Whether the verdict is [`CheckResult::NotLinearizable`].
    pub fn is_not_linearizable(&self) -> bool {
        matches!(self, CheckResult::NotLinearizable { .. })
    }

    /// Whether the verdict is [`CheckResult::Unknown`].
    pub fn is_unknown(&self) -> bool {
        matches!(self, CheckResult::Unknown { .. })
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Linearizable => f.write_str("linearizable"),
            CheckResult::NotLinearizable { report, .. } => {
                writeln!(f, "NOT linearizable")?;
                write!(f, "{report}")
            }
            CheckResult::Unknown { undecided_keys } => write!(
                f,
                "unknown (time budget exhausted; {} key(s) undecided)",
                undecided_keys.len()
            ),
        }
    }
}

/// Longest time spent re-searching a failing key without pruning, for a fuller report.
const REPORT_SEARCH: Duration = Duration::from_secs(1);

/// Checks whether `history` is linearizable with respect to a key/value
/// store where every key starts as `""`.
///
/// Keys are checked independently, in parallel on at most
/// [`std::thread::available_parallelism`] threads, smallest partitions
/// first. The whole check stops once `budget` has elapsed; keys not
/// decided by then make the result [`CheckResult::Unknown`] unless some
/// key was already proven non-linearizable. A `Linearizable` or
/// `NotLinearizable` verdict is always definite.
pub fn check(history: &History, budget: Duration) -> CheckResult {
    let deadline = Instant::now().checked_add(budget);

    // Partition by key; order partitions by (size, key) so the smallest
    // failing key can be reported deterministically.
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in history.operations() {
        by_key.entry(op.key.as_str()).or_default().push(op);
    }
    let mut partitions: Vec<(&str, Vec<&Operation>)> = by_key.into_iter().collect();
    partitions.sort_by(|a, b| a.1.len().cmp(&b.1.len()).then(a.0.cmp(b.0)));
    for (_, ops) in &mut partitions {
        ops.sort_by_key(|op| (op.call, op.ret));
    }
    if partitions.is_empty() {
        return CheckResult::Linearizable;
    }

    let next = AtomicUsize::new(0);
    // Index of the smallest failing partition found so far (usize::MAX: none).
    let min_fail = AtomicUsize::new(usize::MAX);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; partitions.len()]);
    let threads = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(partitions.len())
        .max(1);

    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some((_, ops)) = partitions.get(i) else {
            break;
        };
        let stop = || {
            min_fail.load(Ordering::Relaxed) < i || deadline.is_some_and(|d| Instant::now() >= d)
        };
        let outcome = if stop() {
            Outcome::Cancelled
        } else {
            match check_partition(ops, &stop, true) {
                // The verdict stands, but pruning cuts prefixes short: search again without
                // it for the report's longest linearizable prefix, within the same budget.
                // At most a second is spent on that: the verdict is already known.
                Outcome::Fail { longest } => {
                    let until = Instant::now().checked_add(REPORT_SEARCH);
                    let stop_report = || stop() || until.is_some_and(|t| Instant::now() >= t);
                    match check_partition(ops, &stop_report, false) {
                        fail @ Outcome::Fail { .. } => fail,
                        _ => Outcome::Fail { longest },
                    }
                }
                other => other,
            }
        };
        if matches!(outcome, Outcome::Fail { .. }) {
            min_fail.fetch_min(i, Ordering::Relaxed);
        }
        let mut guard = outcomes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = guard.get_mut(i) {
            *slot = Some(outcome);
        }
    };
    thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(worker);
        }
        worker();
    });

    let outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut undecided = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let (key, ops) = &partitions[i];
        match outcome {
            Some(Outcome::Fail { longest }) => {
                // The first failure in (size, key) order is the smallest.
                let report = FailureReport::new(
                    key.to_string(),
                    ops.iter().map(|op| (*op).clone()).collect(),
                    longest,
                );
                return CheckResult::NotLinearizable {
                    key: key.to_string(),
                    report: Box::new(report),
                };
            }
            Some(Outcome::Ok) => {}
            Some(Outcome::Cancelled) | None => undecided.push(key.to_string()),
        }
    }
    if undecided.is_empty() {
        CheckResult::Linearizable
    } else {
        undecided.sort();
        CheckResult::Unknown {
            undecided_keys: undecided,
        }
    }
}

/// The result of searching one partition.
#[derive(Debug, Clone)]
enum Outcome {
    Ok,
    /// No linearization; `longest` is the longest linearizable prefix found
    /// (indices into the partition's operations, in linearization order).
    Fail {
        longest: Vec<usize>,
    },
    Cancelled,
}

/// What one operation does to the interned model state.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Legal only if the state equals this interned output.
    Get(u32),
    /// The state becomes this interned value.
    Put(u32),
    /// The state becomes `state ++ value`; the index is into `Model::args`.
    Append(usize),
}

/// Interned string states of one key, with memoized append transitions.
struct Model {
    states: Vec<String>,
    ids: HashMap<String, u32>,
    appends: HashMap<(u32, usize), u32>,
    args: Vec<String>,
}

impl Model {
    fn new() -> Self {
        let mut m = Model {
            states: Vec::new(),
            ids: HashMap::new(),
            appends: HashMap::new(),
            args: Vec::new(),
        };
        m.intern(String::new());
        m
    }

    fn intern(&mut self, s: String) -> u32 {
        if let Some(&id) = self.ids.get(&s) {
            return id;
        }
        // More than u32::MAX distinct states cannot fit in memory anyway.
        let id = u32::try_from(self.states.len()).unwrap_or(u32::MAX);
        self.states.push(s.clone());
        self.ids.insert(s, id);
        id
    }

    fn compile(&mut self, op: &Operation) -> Step {
        match op.kind {
            OpKind::Get => Step::Get(self.intern(op.output.clone())),
            OpKind::Put => Step::Put(self.intern(op.value.clone())),
            OpKind::Append => {
                self.args.push(op.value.clone());
                Step::Append(self.args.len() - 1)
            }
        }
    }

    /// The state after applying `step` to `state`, or `None` if illegal.
    fn apply(&mut self, state: u32, step: Step) -> Option<u32> {
        match step {
            Step::Get(out) => (out == state).then_some(state),
            Step::Put(v) => Some(v),
            Step::Append(arg) => {
                if let Some(&next) = self.appends.get(&(state, arg)) {
                    return Some(next);
                }
                let cur = self.states.get(state as usize).map_or("", String::as_str);
                let a = self.args.get(arg).map_or("", String::as_str);
                let mut s = String::with_capacity(cur.len() + a.len());
                s.push_str(cur);
                s.push_str(a);
                let next = self.intern(s);
                self.appends.insert((state, arg), next);
                Some(next)
            }
        }
    }
}

const HEAD: usize = 0;

/// Doubly linked list of call/return entries with O(1) lift/unlift.
struct Entries {
    prev: Vec<usize>,
    next: Vec<usize>,
    /// For a call node: its return node; for a return node: `None`.
    matching: Vec<Option<usize>>,
    /// The operation index of each node.
    op: Vec<usize>,
    tail: usize,
}

impl Entries {
    /// Builds the list for `ops`: events sorted by time, calls before
    /// returns at equal times (so touching intervals are concurrent).
    fn new(ops: &[&Operation]) -> Self {
        let n = ops.len();
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, false, i));
            events.push((op.ret, true, i));
        }
        events.sort_unstable();
        let tail = 2 * n + 1;
        let nodes = 2 * n + 2;
        let mut e = Entries {
            prev: (0..nodes).map(|k| k.saturating_sub(1)).collect(),
            next: (0..nodes).map(|k| (k + 1).min(tail)).collect(),
            matching: vec![None; nodes],
            op: vec![usize::MAX; nodes],
            tail,
        };
        let mut call_node = vec![0; n];
        for (k, &(_, is_return, i)) in events.iter().enumerate() {
            let node = k + 1;
            e.op[node] = i;
            if is_return {
                e.matching[call_node[i]] = Some(node);
            } else {
                call_node[i] = node;
            }
        }
        e
    }

    fn is_empty(&self) -> bool {
        self.next[HEAD] == self.tail
    }

    fn unlink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, node: usize) {
        let (p, n) = (self.prev[node], self.next[node]);
        self.next[p] = node;
        self.prev[n] = node;
    }

    /// Removes a call entry and its return entry from the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        if let Some(ret) = self.matching[call] {
            self.unlink(ret);
        }
    }

    /// Undoes [`Entries::lift`] (must be called in reverse lift order).
    fn unlift(&mut self, call: usize) {
        if let Some(ret) = self.matching[call] {
            self.relink(ret);
        }
        self.relink(call);
    }
}

/// What is still to be linearized that constrains the state: the outputs of the
/// remaining Gets (shortest first) and the number of remaining Puts.
///
/// Once no Put remains, the value only grows by appends, so every Get still to come
/// observes an extension of the current state: a state that is not a prefix of the
/// shortest remaining Get output cannot lead to a linearization and is pruned. This is
/// what makes many concurrent appends to one key, read once at the end, checkable in
/// linear time instead of exploring every interleaving.
struct Pending {
    gets: BTreeMap<(usize, u32), usize>,
    puts: usize,
}

impl Pending {
    fn new(steps: &[Step], model: &Model) -> Self {
        let mut p = Pending {
            gets: BTreeMap::new(),
            puts: 0,
        };
        for step in steps {
            p.restore(*step, model);
        }
        p
    }

    fn key(out: u32, model: &Model) -> (usize, u32) {
        (model.states.get(out as usize).map_or(0, String::len), out)
    }

    /// Marks `step` as linearized.
    fn take(&mut self, step: Step, model: &Model) {
        match step {
            Step::Get(out) => {
                let k = Self::key(out, model);
                if let Some(c) = self.gets.get_mut(&k) {
                    *c -= 1;
                    if *c == 0 {
                        self.gets.remove(&k);
                    }
                }
            }
            Step::Put(_) => self.puts -= 1,
            Step::Append(_) => {}
        }
    }

    /// Undoes [`Pending::take`] (also used to build the initial set).
    fn restore(&mut self, step: Step, model: &Model) {
        match step {
            Step::Get(out) => *self.gets.entry(Self::key(out, model)).or_default() += 1,
            Step::Put(_) => self.puts += 1,
            Step::Append(_) => {}
        }
    }

    /// Whether `state` can still be extended into every remaining Get's output.
    fn admits(&self, state: u32, model: &Model) -> bool {
        if self.puts > 0 {
            return true;
        }
        let Some((&(_, shortest), _)) = self.gets.first_key_value() else {
            return true;
        };
        let value = |id: u32| model.states.get(id as usize).map_or("", String::as_str);
        value(shortest).starts_with(value(state))
    }
}

/// Searches one key's operations for a linearization (DFS with an explicit
/// stack, memoized on the set of linearized operations plus model state), with or
/// without [`Pending`]'s pruning (the verdict is the same either way).
fn check_partition(ops: &[&Operation], stop: &dyn Fn() -> bool, prune: bool) -> Outcome {
    let n = ops.len();
    let mut model = Model::new();
    let steps: Vec<Step> = ops.iter().map(|op| model.compile(op)).collect();
    let mut list = Entries::new(ops);
    let mut pending = Pending::new(&steps, &model);

    // Bitset of linearized operations; the extra last word holds the model
    // state id so the memo key is one slice (no allocation on lookups).
    let words = n.div_ceil(64);
    let mut key: Vec<u64> = vec![0; words + 1];
    let mut cache: HashSet<Vec<u64>> = HashSet::new();
    let mut calls: Vec<(usize, u32)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut state: u32 = 0;
    let mut entry = list.next[HEAD];
    let mut until_poll = POLL_INTERVAL;

    while !list.is_empty() {
        until_poll -= 1;
        if until_poll == 0 {
            if stop() {
                return Outcome::Cancelled;
            }
            until_poll = POLL_INTERVAL;
        }
        if list.matching[entry].is_some() {
            // A call entry: try to linearize its operation now.
            let i = list.op[entry];
            if let Some(new_state) = model.apply(state, steps[i]) {
                pending.take(steps[i], &model);
                key[i / 64] |= 1 << (i % 64);
                key[words] = u64::from(new_state);
                if (!prune || pending.admits(new_state, &model)) && !cache.contains(key.as_slice())
                {
                    cache.insert(key.clone());
                    calls.push((entry, state));
                    state = new_state;
                    list.lift(entry);
                    if calls.len() > longest.len() {
                        longest = calls.iter().map(|&(e, _)| list.op[e]).collect();
                    }
                    entry = list.next[HEAD];
                    continue;
                }
                key[i / 64] &= !(1 << (i % 64));
                pending.restore(steps[i], &model);
            }
            entry = list.next[entry];
        } else {
            // A return entry: its operation must already have been
            // linearized, so backtrack.
            let Some((call, prev_state)) = calls.pop() else {
                return Outcome::Fail { longest };
            };
            let i = list.op[call];
            key[i / 64] &= !(1 << (i % 64));
            pending.restore(steps[i], &model);
            state = prev_state;
            list.unlift(call);
            entry = list.next[call];
        }
    }
    Outcome::Ok
}

//! Property tests: histories derived from real sequential executions are
//! always accepted, and small random histories agree with a brute-force
//! checker.

use std::collections::HashMap;
use std::time::Duration;

use linearizability::{check, CheckResult, History, OpKind, Operation};
use proptest::prelude::*;

const BUDGET: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Cmd {
    kind: OpKind,
    key: u8,
    value: u8,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    (
        prop_oneof![Just(OpKind::Get), Just(OpKind::Put), Just(OpKind::Append)],
        0u8..3,
        0u8..4,
    )
        .prop_map(|(kind, key, value)| Cmd { kind, key, value })
}

/// How the intervals around the linearization points are drawn.
#[derive(Debug, Clone, Copy)]
enum Intervals {
    /// Each interval stretches up to `span` either side of its point,
    /// ignoring clients (points are 10 apart: `span < 5` keeps intervals
    /// disjoint, larger spans make neighbours overlap).
    Free { span: u64 },
    /// Each client has at most one operation outstanding, as in a real
    /// recorded history: an interval may stretch up to half-way to its
    /// client's previous/next point (or `span` for the client's first/last
    /// operation), so up to `clients` operations are concurrent.
    PerClient { clients: u64, span: u64 },
}

fn intervals() -> impl Strategy<Value = Intervals> {
    prop_oneof![
        prop::sample::select(vec![0u64, 4, 25]).prop_map(|span| Intervals::Free { span }),
        (1u64..7, prop::sample::select(vec![10u64, 300]))
            .prop_map(|(clients, span)| Intervals::PerClient { clients, span }),
    ]
}

/// Runs `cmds` sequentially on a simulated store; operation `i` takes effect
/// at `1000 + 10 * i`. `draws` holds per-operation random numbers: a client
/// choice and two fractions (in percent) of the room before/after the point.
fn sequential_history(cmds: &[Cmd], draws: &[(u64, u64, u64)], mode: Intervals) -> Vec<Operation> {
    let point = |i: usize| 1_000 + 10 * i as u64;
    let clients = match mode {
        Intervals::Free { .. } => 1,
        Intervals::PerClient { clients, .. } => clients,
    };
    let client_of: Vec<u64> = draws.iter().map(|d| d.0 % clients).collect();
    let mut store: HashMap<String, String> = HashMap::new();
    let mut ops = Vec::new();
    for (i, (c, &(_, frac_before, frac_after))) in cmds.iter().zip(draws).enumerate() {
        let t = point(i);
        let client = client_of[i];
        let (room_before, room_after) = match mode {
            Intervals::Free { span } => (span, span),
            Intervals::PerClient { span, .. } => {
                let prev = (0..i).rev().find(|&j| client_of[j] == client);
                let next = (i + 1..cmds.len()).find(|&j| client_of[j] == client);
                // Half-way to the neighbours, minus one after, so the same
                // client's intervals never overlap or touch.
                let before = prev.map_or(span, |j| (t - point(j)) / 2);
                let after = next.map_or(span, |j| (point(j) - t) / 2 - 1);
                (before, after)
            }
        };
        let call = t - room_before * frac_before / 100;
        let ret = t + room_after * frac_after / 100;
        let key = c.key.to_string();
        let value = format!("v{}", c.value);
        let op = match c.kind {
            OpKind::Get => {
                let out = store.get(&key).cloned().unwrap_or_default();
                Operation::get(client, key, out, call, ret)
            }
            OpKind::Put => {
                store.insert(key.clone(), value.clone());
                Operation::put(client, key, value, call, ret)
            }
            OpKind::Append => {
                store.entry(key.clone()).or_default().push_str(&value);
                Operation::append(client, key, value, call, ret)
            }
        };
        ops.push(op);
    }
    ops
}

/// Histories of up to 60 operations on 3 keys from a sequential execution,
/// with disjoint or overlapping intervals around the true effect times.
fn history_strategy() -> impl Strategy<Value = Vec<Operation>> {
    (prop::collection::vec(cmd(), 0..60), intervals())
        .prop_flat_map(|(cmds, mode)| {
            let n = cmds.len();
            (
                Just(cmds),
                prop::collection::vec((0u64..1_000, 0u64..=100, 0u64..=100), n),
                Just(mode),
            )
        })
        .prop_map(|(cmds, draws, mode)| sequential_history(&cmds, &draws, mode))
}

/// Brute force over all orders consistent with real time (a before b if
/// a returned strictly before b was called), on the whole multi-key history.
fn brute_force(ops: &[Operation]) -> bool {
    fn go(ops: &[Operation], used: &mut Vec<bool>, store: &mut HashMap<String, String>) -> bool {
        if used.iter().all(|&u| u) {
            return true;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            // i may go next only if no unused op returned before i was called.
            let blocked = (0..ops.len()).any(|j| j != i && !used[j] && ops[j].ret < ops[i].call);
            if blocked {
                continue;
            }
            let op = &ops[i];
            let old = store.get(&op.key).cloned();
            let ok = match op.kind {
                OpKind::Get => old.as_deref().unwrap_or("") == op.output,
                OpKind::Put => {
                    store.insert(op.key.clone(), op.value.clone());
                    true
                }
                OpKind::Append => {
                    store.entry(op.key.clone()).or_default().push_str(&op.value);
                    true
                }
            };
            if ok {
                used[i] = true;
                if go(ops, used, store) {
                    return true;
                }
                used[i] = false;
            }
            match old {
                Some(v) => store.insert(op.key.clone(), v),
                None => store.remove(&op.key),
            };
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], &mut HashMap::new())
}

fn random_op() -> impl Strategy<Value = Operation> {
    (
        prop_oneof![Just(OpKind::Get), Just(OpKind::Put), Just(OpKind::Append)],
        prop_oneof![Just("a"), Just("b")],
        prop_oneof![
            Just(""),
            Just("x"),
            Just("y"),
            Just("xy"),
            Just("yx"),
            Just("xx")
        ],
        0u64..12,
        0u64..6,
    )
        .prop_map(|(kind, key, s, call, len)| {
            let s = if kind != OpKind::Get && s.is_empty() {
                "x"
            } else {
                s
            };
            match kind {
                OpKind::Get => Operation::get(0, key, s, call, call + len),
                OpKind::Put => Operation::put(0, key, &s[..1], call, call + len),
                OpKind::Append => Operation::append(0, key, &s[..1], call, call + len),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sequential_executions_are_accepted(ops in history_strategy()) {
        let h = History::from_operations(ops).expect("valid intervals");
        let r = check(&h, BUDGET);
        prop_assert_eq!(r, CheckResult::Linearizable);
    }

    #[test]
    fn corrupting_a_read_is_rejected(ops in history_strategy(), pick in any::<prop::sample::Index>()) {
        let gets: Vec<usize> = ops.iter().enumerate()
            .filter(|(_, op)| op.kind == OpKind::Get)
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!gets.is_empty());
        let mut ops = ops;
        let i = gets[pick.index(gets.len())];
        ops[i].output = String::from("never written");
        let key = ops[i].key.clone();
        let h = History::from_operations(ops).expect("valid intervals");
        match check(&h, BUDGET) {
            CheckResult::NotLinearizable { key: k, .. } => prop_assert_eq!(k, key),
            other => prop_assert!(false, "corrupted read accepted: {}", other),
        }
    }

    #[test]
    fn agrees_with_brute_force(ops in prop::collection::vec(random_op(), 0..7)) {
        let expected = brute_force(&ops);
        let h = History::from_operations(ops).expect("valid intervals");
        let r = check(&h, BUDGET);
        prop_assert!(!r.is_unknown());
        prop_assert_eq!(r.is_linearizable(), expected, "checker said {}", r);
    }
}

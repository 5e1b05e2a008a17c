//! Fuzzing `step` with arbitrary messages: whatever a peer (or a corrupted network)
//! sends, the core answers with an error or a state change, never a panic, and its log
//! stays well formed. Values are drawn near the edges (0, 1, `MAX_WIRE_VALUE`,
//! `u64::MAX`) as often as from small ranges, and entry lists are as often well numbered
//! (so that messages get past validation and exercise the logic) as not.
//!
//! More cases: `PROPTEST_CASES=100000 cargo test --release -p raft-core --test fuzz_step`.

use bytes::Bytes;
use proptest::prelude::*;
use raft_core::{
    CoreConfig, Entry, HardState, Message, RaftCore, RejectHint, RestoredState, SnapshotMeta,
    MAX_WIRE_VALUE,
};
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..12,
        1 => Just(0u64),
        1 => Just(MAX_WIRE_VALUE),
        1 => Just(MAX_WIRE_VALUE + 1),
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => any::<u64>(),
    ]
}

fn entries(prev: u64) -> impl Strategy<Value = Vec<Entry>> {
    let numbered = prop::collection::vec(0u64..8, 0..5).prop_map(move |terms| {
        let mut terms = terms;
        terms.sort_unstable();
        terms
            .into_iter()
            .enumerate()
            .map(|(i, term)| {
                Entry::new(
                    term,
                    prev.wrapping_add(1 + i as u64),
                    Bytes::from_static(b"x"),
                )
            })
            .collect()
    });
    let arbitrary = prop::collection::vec((value(), value()), 0..4).prop_map(|v| {
        v.into_iter()
            .map(|(index, term)| Entry::new(term, index, Bytes::new()))
            .collect()
    });
    prop_oneof![3 => numbered, 1 => arbitrary]
}

fn meta() -> impl Strategy<Value = SnapshotMeta> {
    (value(), value()).prop_map(|(index, term)| SnapshotMeta { index, term })
}

fn message() -> impl Strategy<Value = Message> {
    let vote = (value(), value(), value()).prop_map(|(term, last_log_index, last_log_term)| {
        Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
        }
    });
    let vote_resp = (value(), any::<bool>())
        .prop_map(|(term, granted)| Message::RequestVoteResponse { term, granted });
    let append = (value(), value(), value(), value()).prop_flat_map(|(term, prev, pt, commit)| {
        entries(prev).prop_map(move |entries| Message::AppendEntries {
            term,
            prev_log_index: prev,
            prev_log_term: pt,
            entries,
            leader_commit: commit,
        })
    });
    let hint = prop::option::of((prop::option::of(value()), value(), value()).prop_map(
        |(conflict_term, first_index_of_term, last_index)| RejectHint {
            conflict_term,
            first_index_of_term,
            last_index,
        },
    ));
    let append_resp =
        (value(), value(), hint).prop_map(|(term, index, reject)| Message::AppendEntriesResponse {
            term,
            index,
            reject,
        });
    let snap = (value(), meta(), value(), 0usize..6, any::<bool>()).prop_map(
        |(term, meta, offset, len, done)| Message::InstallSnapshot {
            term,
            meta,
            offset,
            data: Bytes::from(vec![b's'; len]),
            done,
        },
    );
    let snap_resp = (value(), meta(), value(), value(), any::<bool>()).prop_map(
        |(term, meta, offset, next_offset, installed)| Message::InstallSnapshotResponse {
            term,
            meta,
            offset,
            next_offset,
            installed,
        },
    );
    let pre_vote = (value(), value(), value()).prop_map(|(term, last_log_index, last_log_term)| {
        Message::PreVote {
            term,
            last_log_index,
            last_log_term,
        }
    });
    let pre_vote_resp = (value(), any::<bool>())
        .prop_map(|(term, granted)| Message::PreVoteResponse { term, granted });
    let read_hb = (value(), value()).prop_map(|(term, ctx)| Message::ReadHeartbeat { term, ctx });
    let read_hb_resp =
        (value(), value()).prop_map(|(term, ctx)| Message::ReadHeartbeatResponse { term, ctx });
    let read = (value(), value()).prop_map(|(term, ctx)| Message::ReadIndex { term, ctx });
    let read_resp = (value(), value(), prop::option::of(value()))
        .prop_map(|(term, ctx, index)| Message::ReadIndexResponse { term, ctx, index });
    prop_oneof![
        vote,
        vote_resp,
        append,
        append_resp,
        snap,
        snap_resp,
        pre_vote,
        pre_vote_resp,
        read_hb,
        read_hb_resp,
        read,
        read_resp
    ]
}

#[derive(Debug, Clone)]
enum Input {
    Step(u64, Message),
    Tick(u8),
    Propose,
    Read(u64),
    Compact,
    Ready,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => ((0u64..5), message()).prop_map(|(from, m)| Input::Step(from, m)),
        2 => (1u8..25).prop_map(Input::Tick),
        1 => Just(Input::Propose),
        1 => (0u64..4).prop_map(Input::Read),
        1 => Just(Input::Compact),
        2 => Just(Input::Ready),
    ]
}

fn start() -> impl Strategy<Value = RestoredState> {
    (0u64..4, prop::collection::vec(1u64..4, 0..6), 0usize..3).prop_map(|(term, terms, cut)| {
        let mut terms = terms;
        terms.sort_unstable();
        let term = term.max(terms.last().copied().unwrap_or(0));
        let entries: Vec<Entry> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| Entry::new(*t, i as u64 + 1, Bytes::new()))
            .collect();
        let cut = cut.min(entries.len());
        let snapshot = if cut == 0 {
            SnapshotMeta::default()
        } else {
            SnapshotMeta {
                index: cut as u64,
                term: entries[cut - 1].term,
            }
        };
        RestoredState {
            hard_state: HardState { term, vote: None },
            snapshot,
            snapshot_data: Bytes::from_static(b"snap"),
            entries: entries[cut..].to_vec(),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn step_never_panics(restored in start(), inputs in prop::collection::vec(input(), 1..60)) {
        let cfg = CoreConfig { snapshot_chunk_bytes: 2, ..CoreConfig::default() };
        let mut core = RaftCore::new(1, &[1, 2, 3], cfg, restored, ChaCha8Rng::seed_from_u64(9))
            .expect("valid start");
        for input in inputs {
            match input {
                Input::Step(from, msg) => {
                    let _ = core.step(from, msg);
                }
                Input::Tick(n) => (0..n).for_each(|_| core.tick()),
                Input::Propose => {
                    let _ = core.propose(Bytes::from_static(b"p"));
                }
                Input::Read(ctx) => {
                    let _ = core.read_index(ctx);
                }
                Input::Compact => {
                    let applied = core.applied_index();
                    let _ = core.compact(applied, Bytes::from_static(b"state"));
                }
                Input::Ready => {
                    let ready = core.take_ready();
                    for e in ready.entries.windows(2) {
                        prop_assert_eq!(e[1].index, e[0].index + 1);
                    }
                }
            }
            // The log stays contiguous and the commit index within it.
            let log = core.log();
            prop_assert!(core.commit_index() <= log.last_index());
            prop_assert!(log.last_index() <= MAX_WIRE_VALUE + 64);
        }
    }
}

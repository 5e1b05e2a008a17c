//! Part 4A of the classic suite. Virtual time by default; `RAFT_TEST_REALTIME=1` for the
//! wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{run, suite::election as s};

#[test]
fn initial_election_4a() {
    run("initial election", |o| Box::pin(s::initial_election(o)));
}

#[test]
fn re_election_4a() {
    run("election after network failure", |o| {
        Box::pin(s::re_election(o))
    });
}

#[test]
fn many_elections_4a() {
    run("multiple elections", |o| Box::pin(s::many_elections(o)));
}

#[test]
fn election_rpc_counts_4a() {
    run("RPC counts at election", |o| {
        Box::pin(s::election_rpc_counts(o))
    });
}

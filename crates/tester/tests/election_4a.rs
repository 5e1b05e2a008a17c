//! Part 4A of the classic suite. Virtual time by default; `RAFT_TEST_REALTIME=1` for the
//! wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{classic_tests, suite::election as s};

classic_tests! {
    initial_election_4a => "initial election", s::initial_election;
    re_election_4a => "election after network failure", s::re_election;
    many_elections_4a => "multiple elections", s::many_elections;
    election_rpc_counts_4a => "RPC counts at election", s::election_rpc_counts;
}

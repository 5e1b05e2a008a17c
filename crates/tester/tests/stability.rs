//! A follower cut off and reconnected 100 times: with pre-vote the term stays put.
//! Virtual time by default; `RAFT_TEST_REALTIME=1` for the wall clock.

use raft_tester::{classic_tests, suite::stability as s};

classic_tests! {
    rejoin_keeps_term => "rejoin keeps term", s::rejoin_keeps_term;
    rejoin_raises_term_without_pre_vote => "rejoin raises term without pre-vote", s::rejoin_raises_term_without_pre_vote;
}

//! Part 4B of the classic suite, persistence and chaos half. Virtual time by default;
//! `RAFT_TEST_REALTIME=1` for the wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{classic_tests, suite::persistence as s};

classic_tests! {
    persist1_4b => "basic persistence", s::persist1;
    persist2_4b => "more persistence", s::persist2;
    persist3_4b => "partitioned leader and one follower crash, leader restarts", s::persist3;
    figure8_4b => "Figure 8", s::figure8;
    unreliable_agree_4b => "unreliable agreement", s::unreliable_agree;
    figure8_unreliable_4b => "Figure 8 (unreliable)", s::figure8_unreliable;
    reliable_churn_4b => "churn", s::reliable_churn;
    unreliable_churn_4b => "unreliable churn", s::unreliable_churn;
}

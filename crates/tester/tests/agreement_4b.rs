//! Part 4B of the classic suite, agreement half. Virtual time by default;
//! `RAFT_TEST_REALTIME=1` for the wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{classic_tests, suite::agreement as s};

classic_tests! {
    basic_agree_4b => "basic agreement", s::basic_agree;
    rpc_bytes_4b => "RPC byte count", s::rpc_bytes;
    follower_failure_4b => "test progressive failure of followers", s::follower_failure;
    leader_failure_4b => "test failure of leaders", s::leader_failure;
    fail_agree_4b => "agreement after follower reconnects", s::fail_agree;
    fail_no_agree_4b => "no agreement if too many followers disconnect", s::fail_no_agree;
    concurrent_starts_4b => "concurrent Start()s", s::concurrent_starts;
    rejoin_4b => "rejoin of partitioned leader", s::rejoin;
    backup_4b => "leader backs up quickly over incorrect follower logs", s::backup;
    count_4b => "RPC counts aren't too high", s::count;
}

//! Linearizable reads (ReadIndex) through the runtime. Virtual time by default;
//! `RAFT_TEST_REALTIME=1` for the wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{classic_tests, suite::reads as s};

classic_tests! {
    stale_read => "no stale read from a partitioned leader", s::stale_read;
}

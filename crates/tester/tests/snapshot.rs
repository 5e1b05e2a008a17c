//! Log compaction: the snapshot suite. Virtual time by default; `RAFT_TEST_REALTIME=1`
//! for the wall clock; `RAFT_TEST_SEED=N` to replay a seed.

use raft_tester::{classic_tests, suite::snapshot as s};

classic_tests! {
    snapshot_basic => "snapshots basic", s::snapshot_basic;
    install_disconnect => "install snapshots (disconnect)", s::install_disconnect;
    install_disconnect_unreliable => "install snapshots (disconnect+unreliable)", s::install_disconnect_unreliable;
    install_crash => "install snapshots (crash)", s::install_crash;
    install_unreliable_crash => "install snapshots (unreliable+crash)", s::install_unreliable_crash;
    all_crash => "crash and restart all servers", s::all_crash;
    init => "snapshot initialization", s::init;
}

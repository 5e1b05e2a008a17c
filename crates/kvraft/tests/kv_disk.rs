//! The kvraft persistence tests on disk: every server's Raft peer keeps its state in a
//! `raft-wal` data directory (a temporary directory per server); a restart kills the
//! server, closes its log and opens the directory again, so the service resumes from
//! what recovery finds there (its snapshot and the log after it) instead of from a copy
//! of an in-memory persister. Virtual time by default (disk writes inline, so a run is a
//! deterministic function of its seed); `RAFT_TEST_REALTIME=1` for the wall clock (writes
//! on tokio's blocking pool, with `--test-threads=1`); `RAFT_TEST_SEED=N` to replay a seed.
//! The whole kv suite runs on disk with `RAFT_TEST_STORAGE=disk`.
//!
//! Every Raft write is one `fdatasync`, a snapshot three more syncs, and with
//! `maxraftstate = 1000` the servers snapshot every few operations: the kv tests sync a
//! lot (one client restarting: ~7,000 syncs; 20 clients with snapshots: ~50,000). On this
//! 2-core machine shared with other jobs a sync took 0.2–1.7 ms depending on the disk's
//! load, so the default run keeps three tests (~8,000 syncs together: restarts from
//! snapshot and log on an unreliable network, the InstallSnapshot RPC, the persisted
//! sizes) and the others are `#[ignore]`d; CI runs them with
//! `cargo test -p kvraft --test kv_disk -- --ignored`.

mod common;

use common::run_on;
use common::scenarios::{self as s, Generic, MAX_RAFT_STATE};
use raft_tester::StorageMode::Disk;

macro_rules! generic_on_disk {
    ($($(#[$attr:meta])* $test:ident => $name:literal, $params:expr;)*) => {$(
        #[test]
        $(#[$attr])*
        fn $test() {
            run_on(Disk, $name, |o| Box::pin(s::generic(o, $name, $params)));
        }
    )*};
}

const A: Generic = Generic::BASE;
const B: Generic = Generic {
    maxraftstate: Some(MAX_RAFT_STATE),
    ..Generic::BASE
};

generic_on_disk! {
    #[ignore = "7,000 syncs; CI runs it with --ignored"]
    restarts_one_client_4a_disk => "restarts, one client (4A)", Generic { crash: true, ..A };
    #[ignore = "21,000 syncs; CI runs it with --ignored"]
    restarts_many_clients_4a_disk => "restarts, many clients (4A)",
        Generic { nclients: 5, crash: true, ..A };
    #[ignore = "7,800 syncs; CI runs it with --ignored"]
    restarts_snapshots_one_client_4b_disk => "restarts, snapshots, one client (4B)",
        Generic { crash: true, ..B };
    #[ignore = "50,000 syncs; CI runs it with --ignored"]
    restarts_snapshots_many_clients_4b_disk => "restarts, snapshots, many clients (4B)",
        Generic { nclients: 20, crash: true, ..B };
    unreliable_restarts_snapshots_many_clients_4b_disk =>
        "unreliable net, restarts, snapshots, many clients (4B)",
        Generic { nclients: 5, unreliable: true, crash: true, ..B };
}

#[test]
fn install_snapshot_rpc_4b_disk() {
    const NAME: &str = "InstallSnapshot RPC (4B)";
    run_on(Disk, NAME, |o| Box::pin(s::snapshot_rpc(o, NAME)));
}

#[test]
fn snapshot_size_is_reasonable_4b_disk() {
    const NAME: &str = "snapshot size is reasonable (4B)";
    run_on(Disk, NAME, |o| Box::pin(s::snapshot_size(o, NAME)));
}

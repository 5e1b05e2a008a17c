//! The kvraft suite with snapshots, maxraftstate = 1000 (the classic 3B / 4B). Virtual
//! time by default; `RAFT_TEST_REALTIME=1` for the wall clock (with `--test-threads=1`);
//! `RAFT_TEST_SEED=N` to replay a seed; `RAFT_TEST_QUIET=1` to silence the per-test lines.

mod common;

use common::run;
use common::scenarios::{self as s, Generic, MAX_RAFT_STATE};

macro_rules! generic {
    ($($test:ident => $name:literal, $params:expr;)*) => {$(
        #[test]
        fn $test() {
            run(concat!($name, " (4B)"), |o| {
                Box::pin(s::generic(o, concat!($name, " (4B)"), $params))
            });
        }
    )*};
}

const B: Generic = Generic {
    maxraftstate: Some(MAX_RAFT_STATE),
    ..Generic::BASE
};

generic! {
    restarts_snapshots_one_client_4b => "restarts, snapshots, one client", Generic { crash: true, ..B };
    restarts_snapshots_many_clients_4b => "restarts, snapshots, many clients",
        Generic { nclients: 20, crash: true, ..B };
    unreliable_snapshots_many_clients_4b => "unreliable net, snapshots, many clients",
        Generic { nclients: 5, unreliable: true, ..B };
    unreliable_restarts_snapshots_many_clients_4b =>
        "unreliable net, restarts, snapshots, many clients",
        Generic { nclients: 5, unreliable: true, crash: true, ..B };
    unreliable_restarts_partitions_snapshots_many_clients_4b =>
        "unreliable net, restarts, partitions, snapshots, many clients",
        Generic { nclients: 5, unreliable: true, crash: true, partitions: true, ..B };
    unreliable_restarts_partitions_snapshots_random_keys_many_clients_4b =>
        "unreliable net, restarts, partitions, snapshots, random keys, many clients",
        Generic {
            nclients: 15,
            nservers: 7,
            unreliable: true,
            crash: true,
            partitions: true,
            randomkeys: true,
            ..B
        };
}

#[test]
fn install_snapshot_rpc_4b() {
    const NAME: &str = "InstallSnapshot RPC (4B)";
    run(NAME, |o| Box::pin(s::snapshot_rpc(o, NAME)));
}

#[test]
fn snapshot_size_is_reasonable_4b() {
    const NAME: &str = "snapshot size is reasonable (4B)";
    run(NAME, |o| Box::pin(s::snapshot_size(o, NAME)));
}

#[test]
fn speed_4b() {
    run("speed (4B)", |o| {
        Box::pin(s::speed(o, "speed (4B)", Some(MAX_RAFT_STATE)))
    });
}

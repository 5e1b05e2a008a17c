//! The kvraft suite without snapshots (the classic 3A / 4A). Virtual time by default;
//! `RAFT_TEST_REALTIME=1` for the wall clock (with `--test-threads=1`); `RAFT_TEST_SEED=N`
//! to replay a seed; `RAFT_TEST_QUIET=1` to silence the per-test lines.

mod common;

use common::run;
use common::scenarios::{self as s, Generic};

const PART: &str = "4A";

macro_rules! generic {
    ($($test:ident => $name:literal, $params:expr;)*) => {$(
        #[test]
        fn $test() {
            run(concat!($name, " (4A)"), |o| {
                Box::pin(s::generic(o, concat!($name, " (4A)"), $params))
            });
        }
    )*};
}

const B: Generic = Generic::BASE;

generic! {
    basic_4a => "basic", B;
    concurrent_clients_4a => "concurrent clients", Generic { nclients: 5, ..B };
    unreliable_many_clients_4a => "unreliable net, many clients",
        Generic { nclients: 5, unreliable: true, ..B };
    partitions_one_client_4a => "partitions, one client", Generic { partitions: true, ..B };
    partitions_many_clients_4a => "partitions, many clients",
        Generic { nclients: 5, partitions: true, ..B };
    restarts_one_client_4a => "restarts, one client", Generic { crash: true, ..B };
    restarts_many_clients_4a => "restarts, many clients", Generic { nclients: 5, crash: true, ..B };
    unreliable_restarts_many_clients_4a => "unreliable net, restarts, many clients",
        Generic { nclients: 5, unreliable: true, crash: true, ..B };
    restarts_partitions_many_clients_4a => "restarts, partitions, many clients",
        Generic { nclients: 5, crash: true, partitions: true, ..B };
    unreliable_restarts_partitions_many_clients_4a =>
        "unreliable net, restarts, partitions, many clients",
        Generic { nclients: 5, unreliable: true, crash: true, partitions: true, ..B };
    unreliable_restarts_partitions_random_keys_many_clients_4a =>
        "unreliable net, restarts, partitions, random keys, many clients",
        Generic {
            nclients: 15,
            nservers: 7,
            unreliable: true,
            crash: true,
            partitions: true,
            randomkeys: true,
            ..B
        };
    unreliable_restarts_partitions_read_heavy_many_clients_4a =>
        "unreliable net, restarts, partitions, random keys, 95% reads, many clients",
        Generic {
            nclients: 5,
            unreliable: true,
            crash: true,
            partitions: true,
            randomkeys: true,
            read_heavy: true,
            ..B
        };
}

#[test]
fn speed_4a() {
    run("speed (4A)", |o| Box::pin(s::speed(o, "speed (4A)", None)));
}

#[test]
fn concurrent_append_same_key_unreliable_4a() {
    const NAME: &str = "concurrent append to same key, unreliable (4A)";
    run(NAME, |o| Box::pin(s::unreliable_one_key(o, NAME)));
}

#[test]
fn progress_in_majority_4a() {
    run("progress in majority (4A)", |o| {
        Box::pin(s::one_partition(o, 1, PART))
    });
}

#[test]
fn no_progress_in_minority_4a() {
    run("no progress in minority (4A)", |o| {
        Box::pin(s::one_partition(o, 2, PART))
    });
}

#[test]
fn completion_after_heal_4a() {
    run("completion after heal (4A)", |o| {
        Box::pin(s::one_partition(o, 3, PART))
    });
}

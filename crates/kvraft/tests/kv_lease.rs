//! The kvraft suite's hardest generic scenarios with lease reads (`ReadMode::Lease`), every
//! history checked for linearizability. The whole suite runs in lease mode with
//! `KV_TEST_READ_MODE=lease cargo test -p kvraft`.

mod common;

use common::run_lease;
use common::scenarios::{self as s, Generic};

macro_rules! generic {
    ($($test:ident => $name:literal, $params:expr;)*) => {$(
        #[test]
        fn $test() {
            run_lease(concat!($name, " (lease)"), |o| {
                Box::pin(s::generic(o, concat!($name, " (lease)"), $params))
            });
        }
    )*};
}

const B: Generic = Generic::BASE;

generic! {
    basic_lease => "basic", B;
    partitions_many_clients_lease => "partitions, many clients",
        Generic { nclients: 5, partitions: true, ..B };
    unreliable_restarts_partitions_read_heavy_many_clients_lease =>
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
    snapshots_restarts_partitions_read_heavy_lease =>
        "snapshots, restarts, partitions, random keys, 95% reads, many clients",
        Generic {
            nclients: 5,
            crash: true,
            partitions: true,
            randomkeys: true,
            read_heavy: true,
            maxraftstate: Some(1000),
            ..B
        };
}

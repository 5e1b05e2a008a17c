//! The subcommands of the `raftkv` binary.

pub mod bench;
pub mod client;
pub mod cluster;
pub mod serve;

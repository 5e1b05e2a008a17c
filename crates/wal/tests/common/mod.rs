//! Test machinery shared by the WAL's integration tests: a conformance suite generic over
//! `Storage`, and a fault-injecting in-memory file system.
#![allow(dead_code)]

pub mod conformance;
pub mod faultfs;

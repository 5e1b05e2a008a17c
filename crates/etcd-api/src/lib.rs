//! etcd's v3 gRPC API over a replicated state machine.
//!
//! - [`store`]: the revision-model state machine (pure, deterministic, serializable), whose
//!   [`store::Command`]s a server replicates through its log and applies in order.
//! - [`backend::EtcdBackend`]: what a server provides (propose, read, watch, leases,
//!   members, status); [`mem::MemBackend`] is a single-node in-memory implementation.
//! - [`watch_hub`] and [`lease_clock`]: the parts of a backend every server needs (fan-out
//!   of applied changes to watchers; the leader's lease deadlines).
//! - [`service`]: the gRPC services (KV, Watch, Lease, Cluster, Maintenance) over any
//!   backend, and [`service::router`] / [`service::serve`] to serve them with tonic.
#![warn(missing_docs)]

pub mod backend;
mod convert;
mod error;
pub mod lease_clock;
pub mod mem;
pub mod proto;
pub mod service;
pub mod store;
pub mod watch_hub;

pub use backend::EtcdBackend;
pub use error::EtcdError;

//! # raft-core
//!
//! The Raft consensus protocol (the extended paper's Figure 2) as a deterministic state
//! machine. It performs no I/O, reads no clock, spawns no thread and draws randomness only
//! from the generator its caller passes in. A driver feeds it events and carries out what
//! it asks for:
//!
//! - inputs: [`RaftCore::tick`] (one unit of logical time), [`RaftCore::step`] (a message
//!   arrived), [`RaftCore::propose`] (a client asks for agreement),
//!   [`RaftCore::read_index`] (a client asks for a linearizable read);
//! - outputs: a [`Ready`] batch, taken with [`RaftCore::take_ready`]: state to persist,
//!   messages to send, entries to apply, in that order.
//!
//! The same core runs under the deterministic simulator, the async runtime (`raft`
//! crate), and any driver a user writes.
//!
//! ```
//! use raft_core::{CoreConfig, RaftCore, RestoredState};
//! use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
//!
//! let mut core = RaftCore::new(1, &[1], CoreConfig::default(), RestoredState::default(),
//!     ChaCha8Rng::seed_from_u64(7)).unwrap();
//! for _ in 0..20 { core.tick(); }
//! assert!(core.is_leader()); // a one-node cluster elects itself
//! let (index, _term) = core.propose(bytes::Bytes::from_static(b"x")).unwrap();
//! let ready = core.take_ready();
//! assert_eq!(ready.committed.last().map(|e| e.index), Some(index));
//! ```
#![warn(missing_docs)]

/// Stops the node when one of the core's own invariants is broken, in every build: a
/// node that continued would write a corrupt log. The message says what broke and the
/// panic location says where (etcd's raft does the same with `Panicf`).
macro_rules! invariant {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            panic!("raft-core invariant broken: {}", format_args!($($arg)+));
        }
    };
}
pub(crate) use invariant;

mod config;
mod core;
mod error;
mod log;
mod membership;
mod message;
mod progress;
mod quorum;
mod read_only;
mod ready;
mod snapshot_conf;
mod tracker;
mod types;

pub use crate::config::{CoreConfig, ReadMode};
pub use crate::core::LeaseRead;
pub use crate::core::RaftCore;
pub use crate::error::CoreError;
pub use crate::log::{LogError, RaftLog};
pub use crate::membership::{ConfChange, Membership, MembershipError};
pub use crate::message::{Envelope, Message, RejectHint, MAX_WIRE_VALUE};
pub use crate::progress::{Progress, ProgressState};
pub use crate::quorum::{JointConfig, MajorityConfig, VoteResult};
pub use crate::read_only::{FailedRead, ReadFailure, ReadState};
pub use crate::ready::Ready;
pub use crate::snapshot_conf::split_snapshot;
pub use crate::types::{
    Entry, EntryKind, HardState, Index, NodeId, RestoredState, Role, Snapshot, SnapshotMeta, Term,
};
pub use bytes::Bytes;

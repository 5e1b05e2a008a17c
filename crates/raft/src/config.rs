//! The runtime's settings, in wall-clock units.

use crate::{Observer, RaftError};
use raft_core::CoreConfig;

/// Microseconds: the time unit the runtime passes its core.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
use std::time::Duration;

/// How a leader confirms linearizable reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex: one heartbeat round to a majority per batch of reads. Trusts no clock.
    #[default]
    ReadIndex,
    /// Lease reads (LeaseGuard, see docs/READS.md): a leader answers reads without any
    /// message for `duration - uncertainty` after an entry of its term it stamped commits;
    /// a new leader defers its commits until every lease of its predecessors has expired.
    /// The peer's clock is the Unix time at the process's first reading plus the tokio
    /// clock's advance since (monotonic; virtual time under a paused test clock).
    ///
    /// The clock assumption a user accepts: at any moment, every peer's clock reading
    /// differs from true time by at most `uncertainty` (the wall clock's error when the
    /// process started, plus the monotonic clock's drift since). `duration + uncertainty`
    /// must stay below `election_timeout_min`.
    Lease {
        /// How long a committed entry grants its leader a lease.
        duration: Duration,
        /// The bound on any peer's clock error.
        uncertainty: Duration,
    },
}

/// Settings of one Raft peer.
///
/// The defaults meet the classic constraints: a leader sends at most 10 heartbeats per
/// second (one per 100 ms), and the election timeout (400–800 ms) lets a new leader
/// emerge well within 5 seconds of losing the old one, even after a few split votes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Length of one logical tick of the protocol core.
    pub tick: Duration,
    /// Shortest randomised election timeout.
    pub election_timeout_min: Duration,
    /// Longest randomised election timeout.
    pub election_timeout_max: Duration,
    /// Interval between a leader's heartbeats.
    pub heartbeat_interval: Duration,
    /// Largest AppendEntries payload in bytes (one entry is always sent whole).
    pub max_msg_bytes: usize,
    /// Most AppendEntries in flight to one follower (default 2: one being answered while
    /// the next fills up). A follower answers after its disk write, so proposals that
    /// arrive meanwhile wait in the leader and leave together: with a deep window each
    /// new proposal left in a message of its own, and at 64 clients on 2 cores raftkv
    /// sent about 5,000 AppendEntries a second to each follower, 2 entries in each; with
    /// 2 it made about 30% more puts per second (docs/BENCHMARKS.md). Raise it for
    /// links whose round trip is long beside a disk write (a WAN), where a follower
    /// catching up needs more than two `max_msg_bytes` messages per round trip.
    pub max_inflight_msgs: usize,
    /// Most entry bytes in flight to one follower.
    pub max_inflight_bytes: usize,
    /// Size of the chunks a snapshot is sent to a lagging follower in.
    pub snapshot_chunk_bytes: usize,
    /// The persisted Raft-state size above which a service should snapshot
    /// (`MaxLogSize` in the project brief); `None` means never. Advisory: services read it.
    pub max_log_size: Option<u64>,
    /// Snapshot every this many applied entries (`SnapshotInterval`); `None` means never.
    /// Advisory: services read it.
    pub snapshot_interval: Option<u64>,
    /// Seed of this peer's random election timeouts (mixed with its id).
    pub seed: u64,
    /// Commands (proposals, messages from peers, snapshots) that may wait for the peer's
    /// task at once. When the queue is full, [`Raft::start`](crate::Raft::start) answers
    /// [`RaftError::Busy`] at once and a message from a peer is dropped (Raft treats it as
    /// lost and sends it again); nothing grows without bound.
    pub command_queue: usize,
    /// A leader refuses new proposals with [`RaftError::Busy`] while this many entries of
    /// its log are not yet applied by its service (proposed but uncommitted, or committed
    /// and waiting for a slow service): the bound on memory when the service applies
    /// slower than clients propose.
    pub max_unapplied_entries: u64,
    /// Pre-vote: a peer whose election timer fires asks whether it could win before it
    /// raises its term, so a peer rejoining after a partition does not disrupt the
    /// cluster (see [`CoreConfig::pre_vote`]).
    pub pre_vote: bool,
    /// Check-quorum: a leader that has not heard from a majority within the minimum
    /// election timeout steps down, and peers that heard from a leader recently ignore
    /// vote requests (see [`CoreConfig::check_quorum`]).
    pub check_quorum: bool,
    /// The leader sends new entries to its followers while it writes them to its own
    /// disk, rather than after (thesis §10.2.1); it still counts its own copy toward a
    /// commit only once that write is durable. Saves one disk sync of latency per commit
    /// (see [`CoreConfig::leader_parallel_write`]).
    pub leader_parallel_write: bool,
    /// How linearizable reads ([`Raft::read_index`](crate::Raft::read_index)) are confirmed:
    /// a heartbeat round (the default) or a lease (see [`ReadMode`]).
    pub read_mode: ReadMode,
    /// Told the peer's role, term, commit and applied index whenever they change, and
    /// every log write (for drawing a run; see [`Observer`]). `None`: nobody is told.
    pub observer: Option<Observer>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick: Duration::from_millis(10),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            heartbeat_interval: Duration::from_millis(100),
            max_msg_bytes: 1 << 20,
            max_inflight_msgs: 2,
            max_inflight_bytes: 8 << 20,
            snapshot_chunk_bytes: 256 << 10,
            max_log_size: None,
            snapshot_interval: None,
            seed: 0,
            command_queue: 4096,
            max_unapplied_entries: 100_000,
            pre_vote: true,
            check_quorum: true,
            leader_parallel_write: true,
            read_mode: ReadMode::ReadIndex,
            observer: None,
        }
    }
}

impl Config {
    /// Whether a service that last snapshotted at `last_snapshot` and has applied through
    /// `applied` should snapshot now: the persisted Raft state reached `max_log_size`, or
    /// `snapshot_interval` entries were applied since. The one rule every service uses.
    pub fn snapshot_due(&self, raft_state_size: u64, applied: u64, last_snapshot: u64) -> bool {
        if applied <= last_snapshot {
            return false;
        }
        let by_size = self.max_log_size.is_some_and(|max| raft_state_size >= max);
        let by_count = self
            .snapshot_interval
            .is_some_and(|every| every > 0 && applied - last_snapshot >= every);
        by_size || by_count
    }

    /// Converts to the core's tick-based settings, rejecting unusable values with a
    /// message that names the problem.
    pub fn core_config(&self) -> Result<CoreConfig, RaftError> {
        if self.tick.is_zero() {
            return Err(RaftError::InvalidConfig("tick must be positive".into()));
        }
        let ticks = |d: Duration| -> Result<u32, RaftError> {
            let n = d.as_nanos() / self.tick.as_nanos();
            u32::try_from(n).map_err(|_| RaftError::InvalidConfig(format!("{d:?} is too long")))
        };
        if self.command_queue == 0 || self.max_unapplied_entries == 0 {
            return Err(RaftError::InvalidConfig(
                "command_queue and max_unapplied_entries must be positive".into(),
            ));
        }
        if self.election_timeout_min < 2 * self.heartbeat_interval {
            return Err(RaftError::InvalidConfig(format!(
                "election timeout ({:?}) must be at least twice the heartbeat interval ({:?})",
                self.election_timeout_min, self.heartbeat_interval
            )));
        }
        let core = CoreConfig {
            election_timeout_min: ticks(self.election_timeout_min)?,
            election_timeout_max: ticks(self.election_timeout_max)?,
            heartbeat_ticks: ticks(self.heartbeat_interval)?,
            max_msg_bytes: self.max_msg_bytes,
            max_inflight_msgs: self.max_inflight_msgs,
            max_inflight_bytes: self.max_inflight_bytes,
            snapshot_chunk_bytes: self.snapshot_chunk_bytes,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            leader_parallel_write: self.leader_parallel_write,
            read_mode: match self.read_mode {
                ReadMode::ReadIndex => raft_core::ReadMode::ReadIndex,
                ReadMode::Lease {
                    duration,
                    uncertainty,
                } => raft_core::ReadMode::Lease {
                    duration: micros(duration),
                    uncertainty: micros(uncertainty),
                    units_per_tick: micros(self.tick),
                },
            },
        };
        core.validate()?;
        Ok(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_meets_the_heartbeat_limit() {
        let core = Config::default().core_config().expect("valid default");
        assert_eq!(core.heartbeat_ticks, 10);
        assert!(Config::default().heartbeat_interval >= Duration::from_millis(100));
    }

    #[test]
    fn election_timeout_must_exceed_heartbeats() {
        let cfg = Config {
            election_timeout_min: Duration::from_millis(150),
            ..Config::default()
        };
        assert!(matches!(
            cfg.core_config(),
            Err(RaftError::InvalidConfig(_))
        ));
        let cfg = Config {
            tick: Duration::ZERO,
            ..Config::default()
        };
        assert!(cfg.core_config().is_err());
    }

    #[test]
    fn a_snapshot_is_due_by_size_or_by_count_and_never_twice_at_one_index() {
        let cfg = Config {
            max_log_size: Some(1000),
            snapshot_interval: Some(10),
            ..Config::default()
        };
        assert!(cfg.snapshot_due(1000, 5, 0), "size reached");
        assert!(!cfg.snapshot_due(999, 9, 0), "neither");
        assert!(cfg.snapshot_due(0, 10, 0), "count reached");
        assert!(!cfg.snapshot_due(5000, 10, 10), "nothing applied since");
        assert!(
            !Config::default().snapshot_due(u64::MAX, 1_000_000, 0),
            "never by default"
        );
    }
}

//! The core's settings, all in logical units (ticks, messages, bytes).

use crate::CoreError;

/// Settings of one protocol core. Times are counted in ticks: the driver decides how long
/// a tick lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    /// Smallest randomised election timeout, in ticks.
    pub election_timeout_min: u32,
    /// Largest randomised election timeout, in ticks (inclusive).
    pub election_timeout_max: u32,
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: u32,
    /// Largest AppendEntries payload, in bytes; one entry is always sent even if larger.
    pub max_msg_bytes: usize,
    /// Most AppendEntries messages in flight to one follower while streaming.
    pub max_inflight_msgs: usize,
    /// Most entry bytes in flight to one follower while streaming.
    pub max_inflight_bytes: usize,
    /// Size of the chunks a snapshot is sent in.
    pub snapshot_chunk_bytes: usize,
    /// Pre-vote (thesis §9.6): a node whose election timer fires first asks whether it
    /// could win, without raising its term, and campaigns only after a majority said yes.
    /// A node that comes back from a partition then no longer forces the cluster into a
    /// new term.
    pub pre_vote: bool,
    /// Check-quorum: a leader that has heard no answer from a majority within an election
    /// timeout (`election_timeout_min` ticks, checked at the end of each such window) steps
    /// down, and a node that heard from a leader within `election_timeout_min` ticks
    /// ignores requests for (pre-)votes (leader stickiness).
    pub check_quorum: bool,
    /// The leader writes new entries to its disk in parallel with sending them (thesis
    /// §10.2.1): its AppendEntries leave in [`Ready::early_messages`](crate::Ready), before
    /// the write, and the leader counts its own copy toward a commit only once the driver
    /// reported it durable with [`persisted`](crate::RaftCore::persisted). A driver that
    /// turns this on must make that call after each write; one that does not may leave it
    /// off and keep the simple order of [`Ready`](crate::Ready).
    pub leader_parallel_write: bool,
    /// How the leader serves linearizable reads: [`ReadMode::ReadIndex`] (the default) or
    /// lease reads ([`ReadMode::Lease`]), which need a clock from the driver.
    pub read_mode: ReadMode,
}

/// How a leader confirms it may serve a linearizable read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// One heartbeat round to a majority per batch of reads (thesis §6.4). Needs no clock.
    #[default]
    ReadIndex,
    /// LeaseGuard ("the log is the lease"): every entry carries its leader's clock reading;
    /// committing an entry of its own term gives the leader a lease until that timestamp +
    /// `duration`, during which it answers reads at once. A new leader defers committing
    /// until every earlier leader's lease has expired. See `docs/READS.md`.
    ///
    /// All three fields are in the driver's time unit, the unit of
    /// [`RaftCore::set_time`](crate::RaftCore::set_time) (the runtime uses microseconds).
    Lease {
        /// How long a committed entry's timestamp grants its leader a lease.
        duration: u64,
        /// The bound on every node's clock error against true time: a reading `c` taken at
        /// true time `t` satisfies `|c - t| <= uncertainty`.
        uncertainty: u64,
        /// How long one tick lasts in the driver's unit: ties the lease to the election
        /// timeout, which is counted in ticks.
        units_per_tick: u64,
    },
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            election_timeout_min: 10,
            election_timeout_max: 20,
            heartbeat_ticks: 2,
            max_msg_bytes: 1 << 20,
            max_inflight_msgs: 64,
            max_inflight_bytes: 8 << 20,
            snapshot_chunk_bytes: 256 << 10,
            pre_vote: true,
            check_quorum: true,
            leader_parallel_write: false,
            read_mode: ReadMode::ReadIndex,
        }
    }
}

impl CoreConfig {
    /// Checks the settings and says precisely what is wrong.
    ///
    /// The election timeout must be at least twice the heartbeat interval: otherwise one
    /// lost heartbeat is enough to start an election under a healthy leader. Its range
    /// must span more than one value, so that randomisation can break split votes.
    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |reason: String| Err(CoreError::InvalidConfig(reason));
        if self.heartbeat_ticks == 0 {
            return bad("heartbeat_ticks must be at least 1".into());
        }
        if self.election_timeout_min >= self.election_timeout_max {
            // Without a span to randomise over, nodes that tick in lock-step time out
            // together, split the vote, and can stay candidates forever.
            return bad(format!(
                "election_timeout_min ({}) must be below election_timeout_max ({}): \
                 the timeout needs a random span",
                self.election_timeout_min, self.election_timeout_max
            ));
        }
        if self.election_timeout_min < 2 * self.heartbeat_ticks {
            return bad(format!(
                "election_timeout_min ({} ticks) must be at least twice heartbeat_ticks ({})",
                self.election_timeout_min, self.heartbeat_ticks
            ));
        }
        if self.max_msg_bytes == 0
            || self.max_inflight_msgs == 0
            || self.max_inflight_bytes == 0
            || self.snapshot_chunk_bytes == 0
        {
            return bad("message and in-flight limits must be positive".into());
        }
        self.validate_lease()
    }

    /// A lease must end, even measured by the least favourable clock, before a follower
    /// that heard the entry granting it can time out: `duration + uncertainty` must be
    /// below `election_timeout_min` ticks. Safety does not rest on this (a new leader
    /// defers its commits until the lease has expired) but availability does: a longer
    /// lease would stall every new leader's writes after a failover.
    fn validate_lease(&self) -> Result<(), CoreError> {
        let ReadMode::Lease {
            duration,
            uncertainty,
            units_per_tick,
        } = self.read_mode
        else {
            return Ok(());
        };
        let bad = |reason: String| Err(CoreError::InvalidConfig(reason));
        if duration == 0 || units_per_tick == 0 {
            return bad("lease duration and units_per_tick must be positive".into());
        }
        if uncertainty >= duration {
            return bad(format!(
                "lease uncertainty ({uncertainty}) must be below the lease duration ({duration})"
            ));
        }
        let timeout = u64::from(self.election_timeout_min).saturating_mul(units_per_tick);
        // The planted bug accepts any lease, however long.
        if duration.saturating_add(uncertainty) >= timeout
            && !cfg!(raft_bug = "lease-longer-than-timeout")
        {
            return bad(format!(
                "lease duration ({duration}) + uncertainty ({uncertainty}) must be below the \
                 election timeout ({} ticks of {units_per_tick} = {timeout})",
                self.election_timeout_min
            ));
        }
        Ok(())
    }
}

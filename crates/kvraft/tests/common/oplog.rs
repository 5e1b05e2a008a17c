//! The operation log of a test: every clerk operation, stamped with event numbers.

use linearizability::{History, Operation};
use raft_tester::wiring::lock;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// One instant of the history: a global event number and the tokio clock.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// The event's number: strictly increasing across every call and return event of
    /// the test (all clerks share one counter).
    pub event: u64,
    /// Nanoseconds since the test began, on the tokio clock (virtual or real).
    pub nanos: u64,
}

/// Every clerk operation of a test, stamped with event numbers (and clock times).
///
/// **Why event numbers.** The history's times must order a return before a later call
/// exactly. In virtual time a client's next operation starts at the very instant its
/// previous one returned, and the checker (like porcupine) treats equal times as
/// overlapping, so a Get that missed the same client's just-finished Append would be
/// accepted. Each call and each return therefore takes the next number of one atomic
/// counter shared by every clerk of the test: an operation that returned before another
/// was called has a smaller return number than the other's call number, in virtual time
/// (one thread) and in real time (the counter is a single atomic). The clock times are
/// kept beside them for reports; `KV_TEST_CLOCK_STAMPS=1` checks the clock-time history
/// instead (the old stamping, kept to show what it misses: see
/// `crates/kvraft/check-planted-bugs.sh`).
#[derive(Clone)]
pub struct OpLog {
    ops: Arc<Mutex<Vec<(Operation, u64, u64)>>>,
    events: Arc<AtomicU64>,
    origin: Instant,
}

impl OpLog {
    pub(crate) fn new() -> Self {
        OpLog {
            ops: Arc::new(Mutex::new(Vec::new())),
            events: Arc::new(AtomicU64::new(0)),
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since the test began, on the tokio clock (virtual or real).
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Takes the next event number (and reads the clock): call it just before an
    /// operation is sent and just after its answer arrives.
    pub fn stamp(&self) -> Stamp {
        let event = self.events.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        Stamp {
            event,
            nanos: self.now(),
        }
    }

    /// Records one completed operation called at `call` and returned at `ret` (the
    /// operation's own `call` and `ret` fields are overwritten with the event numbers).
    pub fn record(&self, mut op: Operation, call: Stamp, ret: Stamp) {
        op.call = call.event;
        op.ret = ret.event;
        lock(&self.ops).push((op, call.nanos, ret.nanos));
    }

    /// Number of operations recorded.
    pub fn len(&self) -> usize {
        lock(&self.ops).len()
    }

    /// True when `KV_TEST_CLOCK_STAMPS=1`: histories use the clock times.
    pub fn clock_stamps() -> bool {
        std::env::var("KV_TEST_CLOCK_STAMPS").is_ok_and(|v| v == "1")
    }

    /// The history so far, with event numbers as times (clock times if
    /// `KV_TEST_CLOCK_STAMPS=1`).
    pub fn history(&self) -> History {
        if Self::clock_stamps() {
            self.clock_history()
        } else {
            Self::build(
                lock(&self.ops)
                    .iter()
                    .map(|(op, _, _)| op.clone())
                    .collect(),
            )
        }
    }

    /// The history so far with clock times (nanoseconds) as times.
    pub fn clock_history(&self) -> History {
        let ops = lock(&self.ops)
            .iter()
            .map(|(op, call, ret)| Operation {
                call: *call,
                ret: *ret,
                ..op.clone()
            })
            .collect();
        Self::build(ops)
    }

    fn build(ops: Vec<Operation>) -> History {
        match History::from_operations(ops) {
            Ok(h) => h,
            Err(e) => panic!("recorded history is invalid: {e}"),
        }
    }
}

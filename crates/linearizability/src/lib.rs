//! A linearizability checker for key/value histories.
//!
//! This is a Rust port of the Wing–Gong algorithm with Lowe's memoization,
//! as the [porcupine](https://github.com/anishathalye/porcupine) checker
//! implements it, specialised to a key/value store:
//!
//! * `get(key) -> value` (a key never written reads as `""`),
//! * `put(key, value)` replaces the value,
//! * `append(key, arg)` concatenates `arg` to the value.
//!
//! # Using it
//!
//! Test clients record each completed operation with its call and return
//! timestamps into a [`Recorder`]; the resulting [`History`] (or one read
//! from a file with [`History::read_jsonl`]) is handed to [`check`] with a
//! time budget:
//!
//! ```
//! use std::time::Duration;
//! use linearizability::{check, CheckResult, History, Operation};
//!
//! let history = History::from_operations(vec![
//!     Operation::put(1, "k", "a", 0, 10),
//!     Operation::get(2, "k", "a", 5, 15), // concurrent with the put: fine
//!     Operation::get(2, "k", "", 20, 30), // stale read after the put completed
//! ])?;
//! let result = check(&history, Duration::from_secs(1));
//! assert!(matches!(result, CheckResult::NotLinearizable { ref key, .. } if key == "k"));
//! # Ok::<(), linearizability::HistoryError>(())
//! ```
//!
//! # The algorithm
//!
//! A history is linearizable if every operation can be assigned a single
//! instant inside its `[call, return]` interval such that executing the
//! operations sequentially in that order on the model gives the observed
//! outputs. Because keys of a key/value store are independent, the history
//! is **partitioned by key** and each partition is checked on its own (a
//! history is linearizable iff every partition is).
//!
//! For one partition:
//!
//! 1. Every operation contributes a *call* entry and a *return* entry. The
//!    entries are sorted by time; at equal times calls come before returns,
//!    so intervals that merely touch (`[1, 2]` and `[2, 3]`) are treated as
//!    concurrent. The entries form a doubly linked list.
//! 2. A depth-first search walks the list from its head. At a call entry it
//!    tries to linearize that operation next: if the model accepts it from
//!    the current state, the call and its return entry are *lifted* out of
//!    the list, the choice is pushed on an explicit stack, and the walk
//!    restarts at the head. Reaching a return entry means an operation that
//!    has already returned has not been linearized, so the last choice is
//!    popped, its entries are *unlifted* back into place, and the walk goes
//!    on after it. An empty list means a linearization was found; popping
//!    an empty stack means none exists.
//! 3. Lowe's memoization: each visited configuration, the bitset of
//!    linearized operations plus the model state, is stored in a hash set,
//!    and a step leading to a configuration already seen is skipped.
//!
//! Model states (strings) are interned so a configuration is a bitset and a
//! small integer. Partitions are checked in parallel on at most
//! [`std::thread::available_parallelism`] scoped threads, smallest first,
//! sharing one deadline; a failure cancels the search of larger partitions,
//! so the reported key is the failing key with the fewest operations. If
//! the budget runs out first, the verdict is honestly
//! [`CheckResult::Unknown`]. On failure a [`FailureReport`] lists the key's
//! operations and the longest linearizable prefix the search found.
//!
//! # File format
//!
//! Histories are stored as JSON lines, one completed operation per line
//! (blank lines are ignored):
//!
//! ```json
//! {"client": 3, "kind": "append", "key": "4", "value": "x 3 1 y", "output": "", "call": 12, "return": 15}
//! ```
//!
//! * `client`: the client id (unsigned integer),
//! * `kind`: `get`, `put` or `append`,
//! * `key`: the key (string),
//! * `value`: the argument of a put or append (empty for a get),
//! * `output`: what a get returned (empty for a put or append),
//! * `call`, `return`: timestamps (unsigned integers in one unit per file,
//!   nanoseconds when recorded with [`Recorder::now`]); the operation took
//!   effect at some instant in the closed interval `[call, return]`.
//!
//! Unknown fields, missing fields and `return < call` are errors that name
//! the offending line ([`HistoryError`]).
//!
//! The `lincheck` binary checks such a file from the command line:
//! `lincheck FILE [--budget-ms N]`, exiting with 0 (linearizable),
//! 1 (not linearizable), 2 (unknown) or 3 (bad input).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checker;
mod history;
mod report;

pub use checker::{check, CheckResult};
pub use history::{History, HistoryError, OpKind, Operation, Recorder};
pub use report::FailureReport;

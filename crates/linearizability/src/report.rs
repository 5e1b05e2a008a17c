//! A readable explanation of a non-linearizable key.

use std::fmt;

use crate::history::{OpKind, Operation};

/// The history of one non-linearizable key, with the longest linearizable
/// prefix the search found (a simple form of porcupine's "partial
/// linearizations").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// The key whose sub-history is not linearizable.
    pub key: String,
    /// The key's operations, sorted by call time (then return time).
    pub operations: Vec<Operation>,
    /// The longest linearizable prefix found: indices into `operations`, in
    /// linearization order.
    pub longest_prefix: Vec<usize>,
    /// The key's value after applying `longest_prefix` to `""`.
    pub state_after_prefix: String,
    /// Indices into `operations` of the operations that real-time order
    /// allows to come right after the prefix; none of them can (each is a
    /// get that would read a different value).
    pub blocked: Vec<usize>,
}

impl FailureReport {
    /// Builds the report for `key` from its operations sorted by call time
    /// and the longest prefix (indices into `operations`).
    pub fn new(key: String, operations: Vec<Operation>, longest_prefix: Vec<usize>) -> Self {
        let mut state = String::new();
        let mut done = vec![false; operations.len()];
        for &i in &longest_prefix {
            if let Some(op) = operations.get(i) {
                apply(&mut state, op);
            }
            if let Some(d) = done.get_mut(i) {
                *d = true;
            }
        }
        // Candidates to come next: unlinearized ops called no later than the
        // earliest return among unlinearized ops (touching = concurrent).
        let remaining = || {
            operations
                .iter()
                .enumerate()
                .filter(|(i, _)| !done.get(*i).copied().unwrap_or(true))
        };
        let min_ret = remaining().map(|(_, op)| op.ret).min();
        let blocked = match min_ret {
            Some(min_ret) => remaining()
                .filter(|(_, op)| op.call <= min_ret)
                .map(|(i, _)| i)
                .collect(),
            None => Vec::new(),
        };
        FailureReport {
            key,
            operations,
            longest_prefix,
            state_after_prefix: state,
            blocked,
        }
    }
}

fn apply(state: &mut String, op: &Operation) {
    match op.kind {
        OpKind::Get => {}
        OpKind::Put => state.clone_from(&op.value),
        OpKind::Append => state.push_str(&op.value),
    }
}

impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.operations.len().saturating_sub(1).to_string().len();
        writeln!(
            f,
            "key {:?}: {} operations, sorted by call time:",
            self.key,
            self.operations.len()
        )?;
        for (i, op) in self.operations.iter().enumerate() {
            writeln!(f, "  #{i:>width$}  {op}")?;
        }
        writeln!(
            f,
            "longest linearizable prefix found ({} of {} operations):",
            self.longest_prefix.len(),
            self.operations.len()
        )?;
        let mut state = String::new();
        for &i in &self.longest_prefix {
            if let Some(op) = self.operations.get(i) {
                apply(&mut state, op);
                writeln!(f, "  #{i:>width$}  {op}    => {state:?}")?;
            }
        }
        writeln!(
            f,
            "after it the value is {:?}, and no operation that may come next fits:",
            self.state_after_prefix
        )?;
        for &i in &self.blocked {
            if let Some(op) = self.operations.get(i) {
                match op.kind {
                    OpKind::Get => writeln!(
                        f,
                        "  #{i:>width$}  {op}    (would read {:?})",
                        self.state_after_prefix
                    )?,
                    _ => writeln!(f, "  #{i:>width$}  {op}")?,
                }
            }
        }
        Ok(())
    }
}

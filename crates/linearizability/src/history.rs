//! Operations, histories, concurrent recording and the JSON-lines file format.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The kind of a key/value operation.
///
/// Serialized in lowercase: `"get"`, `"put"`, `"append"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// `get(key) -> output`; a key that was never written reads as `""`.
    Get,
    /// `put(key, value)`: replaces the key's value.
    Put,
    /// `append(key, value)`: concatenates `value` to the key's value.
    Append,
}

impl OpKind {
    /// The lowercase name used in the file format (`get`, `put`, `append`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Append => "append",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One completed operation of a client on the key/value store.
///
/// The operation took effect at some instant in the closed interval
/// `[call, ret]`. In JSON the return time is the field `"return"`:
///
/// ```json
/// {"client": 3, "kind": "append", "key": "4", "value": "x 3 1 y", "output": "", "call": 12, "return": 15}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// The id of the client that issued the operation.
    pub client: u64,
    /// What the operation did.
    pub kind: OpKind,
    /// The key the operation touched.
    pub key: String,
    /// The argument of a put or append; empty for a get.
    pub value: String,
    /// What a get returned; empty for a put or append.
    pub output: String,
    /// When the client invoked the operation (nanoseconds, or any unit
    /// consistent within one history).
    pub call: u64,
    /// When the operation returned to the client (same unit as `call`).
    #[serde(rename = "return")]
    pub ret: u64,
}

impl Operation {
    /// A get of `key` that returned `output`, invoked at `call` and returning at `ret`.
    pub fn get(
        client: u64,
        key: impl Into<String>,
        output: impl Into<String>,
        call: u64,
        ret: u64,
    ) -> Self {
        Operation {
            client,
            kind: OpKind::Get,
            key: key.into(),
            value: String::new(),
            output: output.into(),
            call,
            ret,
        }
    }

    /// A put of `value` to `key`, invoked at `call` and returning at `ret`.
    pub fn put(
        client: u64,
        key: impl Into<String>,
        value: impl Into<String>,
        call: u64,
        ret: u64,
    ) -> Self {
        Self::write(OpKind::Put, client, key.into(), value.into(), call, ret)
    }

    /// An append of `value` to `key`, invoked at `call` and returning at `ret`.
    pub fn append(
        client: u64,
        key: impl Into<String>,
        value: impl Into<String>,
        call: u64,
        ret: u64,
    ) -> Self {
        Self::write(OpKind::Append, client, key.into(), value.into(), call, ret)
    }

    /// A put or append: no output.
    fn write(kind: OpKind, client: u64, key: String, value: String, call: u64, ret: u64) -> Self {
        Operation {
            client,
            kind,
            key,
            value,
            output: String::new(),
            call,
            ret,
        }
    }

    /// Writes this operation as one JSON line (without the trailing newline)
    /// in the canonical layout of the file format.
    pub fn to_json_line(&self) -> String {
        // serde_json on a `&str` cannot fail; fall back to an empty literal
        // rather than panicking, to honour the no-unwrap rule.
        let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""));
        format!(
            "{{\"client\": {}, \"kind\": \"{}\", \"key\": {}, \"value\": {}, \"output\": {}, \"call\": {}, \"return\": {}}}",
            self.client,
            self.kind,
            q(&self.key),
            q(&self.value),
            q(&self.output),
            self.call,
            self.ret
        )
    }
}

impl fmt::Display for Operation {
    /// `client 3 append("x 3 1 y") [12, 15]`, or `client 1 get() -> "x" [2, 45]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} ", self.client)?;
        match self.kind {
            OpKind::Get => write!(f, "get() -> {:?}", self.output)?,
            OpKind::Put => write!(f, "put({:?})", self.value)?,
            OpKind::Append => write!(f, "append({:?})", self.value)?,
        }
        write!(f, " [{}, {}]", self.call, self.ret)
    }
}

/// Errors from building, reading or writing a [`History`].
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// An operation returned before it was called (`ret < call`).
    #[error("operation #{index} returns before it is called (call {call}, return {ret})")]
    InvertedInterval {
        /// Zero-based position of the operation in the history.
        index: usize,
        /// Its call time.
        call: u64,
        /// Its return time.
        ret: u64,
    },
    /// A line of a JSON-lines file is not a valid operation.
    #[error("line {line}: malformed operation: {source}")]
    Parse {
        /// One-based line number.
        line: usize,
        /// What serde_json objected to.
        source: serde_json::Error,
    },
    /// A line of a JSON-lines file holds an operation that returns before it is called.
    #[error("line {line}: operation returns before it is called (call {call}, return {ret})")]
    InvertedIntervalAtLine {
        /// One-based line number.
        line: usize,
        /// Its call time.
        call: u64,
        /// Its return time.
        ret: u64,
    },
    /// Reading line `line` failed (I/O error or invalid UTF-8).
    #[error("line {line}: read error: {source}")]
    Read {
        /// One-based line number.
        line: usize,
        /// The underlying error.
        source: io::Error,
    },
    /// Writing the history failed.
    #[error("write error: {0}")]
    Write(#[source] io::Error),
    /// Opening or creating a history file failed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An error inside a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What went wrong in it.
        source: Box<HistoryError>,
    },
}

/// A validated set of completed operations (every `call <= ret`), in no
/// particular order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// A history of `ops`, rejecting any operation whose return time is
    /// before its call time.
    pub fn from_operations(ops: Vec<Operation>) -> Result<Self, HistoryError> {
        if let Some((index, op)) = ops.iter().enumerate().find(|(_, op)| op.ret < op.call) {
            return Err(HistoryError::InvertedInterval {
                index,
                call: op.call,
                ret: op.ret,
            });
        }
        Ok(History { ops })
    }

    /// Adds one operation, rejecting it if it returns before it is called.
    pub fn push(&mut self, op: Operation) -> Result<(), HistoryError> {
        if op.ret < op.call {
            return Err(HistoryError::InvertedInterval {
                index: self.ops.len(),
                call: op.call,
                ret: op.ret,
            });
        }
        self.ops.push(op);
        Ok(())
    }

    /// The operations, in the order they were added.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// Consumes the history, returning its operations.
    pub fn into_operations(self) -> Vec<Operation> {
        self.ops
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the history has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The distinct keys touched, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.ops.iter().map(|op| op.key.as_str()).collect();
        set.into_iter().collect()
    }

    /// Parses a JSON-lines history: one [`Operation`] object per line; blank
    /// lines are ignored. Errors carry one-based line numbers.
    pub fn from_jsonl_reader(reader: impl BufRead) -> Result<Self, HistoryError> {
        let mut ops = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line_no = i + 1;
            let line = line.map_err(|source| HistoryError::Read {
                line: line_no,
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let op: Operation =
                serde_json::from_str(&line).map_err(|source| HistoryError::Parse {
                    line: line_no,
                    source,
                })?;
            if op.ret < op.call {
                return Err(HistoryError::InvertedIntervalAtLine {
                    line: line_no,
                    call: op.call,
                    ret: op.ret,
                });
            }
            ops.push(op);
        }
        Ok(History { ops })
    }

    /// Parses a JSON-lines history from a string (see [`History::from_jsonl_reader`]).
    pub fn from_jsonl_str(text: &str) -> Result<Self, HistoryError> {
        History::from_jsonl_reader(text.as_bytes())
    }

    /// Reads a JSON-lines history file (see [`History::from_jsonl_reader`]).
    pub fn read_jsonl(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| HistoryError::File {
            path: path.to_path_buf(),
            source,
        })?;
        History::from_jsonl_reader(BufReader::new(file)).map_err(|e| HistoryError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Writes the history as JSON lines, one operation per line, in the
    /// canonical layout (see [`Operation::to_json_line`]).
    pub fn to_jsonl_writer(&self, mut writer: impl Write) -> Result<(), HistoryError> {
        for op in &self.ops {
            writeln!(writer, "{}", op.to_json_line()).map_err(HistoryError::Write)?;
        }
        writer.flush().map_err(HistoryError::Write)
    }

    /// The history as a JSON-lines string.
    pub fn to_jsonl_string(&self) -> String {
        let mut out = String::new();
        for op in &self.ops {
            out.push_str(&op.to_json_line());
            out.push('\n');
        }
        out
    }

    /// Writes the history to a JSON-lines file, creating or truncating it.
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<(), HistoryError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|source| HistoryError::File {
            path: path.to_path_buf(),
            source,
        })?;
        self.to_jsonl_writer(BufWriter::new(file))
            .map_err(|e| HistoryError::InFile {
                path: path.to_path_buf(),
                source: Box::new(e),
            })
    }
}

/// A cheaply cloneable, thread-safe sink that test clients record completed
/// operations into.
///
/// Typical use from a client thread or task:
///
/// ```
/// use linearizability::{Operation, Recorder};
/// let rec = Recorder::new();
/// let call = rec.now();               // just before sending the request
/// // ... perform the request, get the reply ...
/// let ret = rec.now();                // just after the reply arrived
/// rec.record(Operation::put(7, "k", "v", call, ret));
/// let history = rec.history().expect("timestamps from now() are ordered");
/// assert_eq!(history.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Recorder {
    ops: Arc<Mutex<Vec<Operation>>>,
    epoch: Instant,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A new, empty recorder; [`Recorder::now`] counts from this moment.
    pub fn new() -> Self {
        Recorder {
            ops: Arc::new(Mutex::new(Vec::new())),
            epoch: Instant::now(),
        }
    }

    /// Monotonic nanoseconds since the recorder (or the one it was cloned
    /// from) was created; use it for `call` and `ret` timestamps.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records one completed operation.
    pub fn record(&self, op: Operation) {
        self.lock().push(op);
    }

    /// The number of operations recorded so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A validated snapshot of everything recorded so far.
    pub fn history(&self) -> Result<History, HistoryError> {
        History::from_operations(self.lock().clone())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Operation>> {
        // A client that panicked while holding the lock cannot have left the
        // vector half-updated (push is the only mutation), so ignore poisoning.
        self.ops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

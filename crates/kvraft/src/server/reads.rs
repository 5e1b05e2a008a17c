//! Gets without the log (ReadIndex): a get asks Raft for a read index, waits until the
//! apply task has applied it, and reads the state machine there (docs/READS.md). In lease
//! mode a leader holding its lease gives the read index at once; a new leader inheriting
//! its predecessor's lease does so for keys no limbo command touches.

use super::{Inner, KvServer};
use crate::op::{KvReply, OpOutput, ServerError};
use crate::state::KvStateMachine;
use raft::{Index, RaftError};
use tokio::sync::oneshot;

/// A get waiting for the state machine to reach its read index.
pub(super) struct ReadWaiter {
    pub(super) index: Index,
    pub(super) key: String,
    pub(super) tx: oneshot::Sender<String>,
}

impl KvServer {
    /// A linearizable get without the log: read index, wait to apply it, read.
    pub(super) async fn read(&self, key: String) -> KvReply {
        let inner = &self.inner;
        let work = async {
            let k = key.clone();
            let touches = move |data: &[u8]| command_touches(data, &k);
            let index = inner
                .raft
                .read_index_for(touches)
                .await
                .map_err(|e| match e {
                    RaftError::NotLeader { leader } => ServerError::WrongLeader {
                        leader_hint: leader,
                    },
                    RaftError::LeadershipLost => ServerError::WrongLeader { leader_hint: None },
                    RaftError::Timeout => ServerError::Timeout,
                    RaftError::Killed => ServerError::ShuttingDown,
                    other => ServerError::Internal(other.to_string()),
                })?;
            let (tx, rx) = oneshot::channel();
            inner.lock().reads.push(ReadWaiter { index, key, tx });
            inner.read_wake.notify_one();
            rx.await
                .map(OpOutput::Value)
                .map_err(|_| ServerError::ShuttingDown)
        };
        match tokio::time::timeout(inner.config.op_timeout, work).await {
            Ok(reply) => reply,
            Err(_) => Err(ServerError::Timeout),
        }
    }
}

/// True when the logged command `data` may change `key` (a command that does not decode
/// is assumed to).
fn command_touches(data: &[u8], key: &str) -> bool {
    match crate::op::decode_command(data) {
        Ok(cmd) => cmd.req.op.is_write() && cmd.req.op.key() == Some(key),
        Err(_) => true,
    }
}

/// Answers the gets whose read index has been applied, from the current state (which may
/// be later than the read index: still linearizable, as everything applied is committed).
/// Gets whose handler gave up are dropped.
pub(super) fn answer_reads(inner: &Inner, sm: &KvStateMachine) {
    let ready = {
        let mut s = inner.lock();
        if s.reads.is_empty() {
            return;
        }
        let applied = s.stats.last_applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.reads)
            .into_iter()
            .filter(|r| !r.tx.is_closed())
            .partition(|r| r.index <= applied);
        s.reads = waiting;
        ready
    };
    for r in ready {
        let _ = r.tx.send(sm.get(&r.key).to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::command_touches;
    use crate::op::{encode_command, KvRequest, LogCommand, Op};

    fn logged(op: Op) -> Vec<u8> {
        let cmd = LogCommand {
            stamp_ms: 0,
            req: KvRequest {
                client_id: 1,
                seq: 1,
                op,
            },
        };
        encode_command(&cmd).expect("encodes").to_vec()
    }

    #[test]
    fn only_writes_of_the_key_touch_it_and_unknown_bytes_are_assumed_to() {
        let put = |k: &str| Op::Put {
            key: k.into(),
            value: "v".into(),
        };
        assert!(command_touches(&logged(put("a")), "a"));
        assert!(!command_touches(&logged(put("b")), "a"));
        assert!(command_touches(
            &logged(Op::Delete { key: "a".into() }),
            "a"
        ));
        assert!(!command_touches(&logged(Op::OpenSession), "a"));
        assert!(command_touches(b"\xff garbage", "a"));
    }
}

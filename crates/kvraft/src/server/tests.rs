use super::*;
use crate::op::Op;
use bytes::Bytes;
use futures::future::BoxFuture;
use raft::{Envelope, Transport};
use raft_storage::MemStorage;

/// A transport to nowhere: the peer never wins an election.
struct Nowhere;

impl Transport for Nowhere {
    fn call(&self, _to: NodeId, _msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        Box::pin(async { None })
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// Under a saturated apply channel, a request waiting on a server that is not (or no
/// longer) the leader is still answered `WrongLeader` within a few leadership-check
/// intervals. Before the check was driven by time, the loop's `biased` select always
/// took the channel first and the waiter was never answered while the channel was full.
///
/// Deterministic, in virtual time: a feeder puts more commands on the channel per turn
/// than the apply loop drains before tokio's cooperative budget makes it yield, and moves
/// the clock 10 ms (one check interval) per turn. The waiter stands for a request placed
/// while leading: the peer (of three, with no network) never leads.
#[test]
fn a_saturated_apply_channel_does_not_starve_the_leadership_check() {
    const PER_TURN: usize = 40_000;
    const TURNS: usize = 12;
    paused_runtime().block_on(async {
        let (raft_tx, _raft_rx) = mpsc::channel(16);
        let config = KvConfig::default();
        let every = config.leader_check_interval;
        let raft = Raft::new(
            &[0, 1, 2],
            0,
            MemStorage::new(),
            raft_tx,
            config.raft.clone(),
            Nowhere,
        )
        .expect("peer starts");
        let inner = Arc::new(Inner::new(0, raft, config));
        let (waiter_tx, mut waiter_rx) = oneshot::channel();
        inner.lock().waiters.insert(
            0,
            Waiter {
                client_id: 1,
                seq: 1,
                recorded: true,
                placed: Some((Index::MAX, 1)),
                tx: waiter_tx,
            },
        );
        let command = encode_command(&LogCommand {
            stamp_ms: 0,
            req: KvRequest {
                client_id: 2,
                seq: 1,
                op: Op::Get { key: "k".into() },
            },
        })
        .expect("encodes");
        // Room for every command fed: the feeder never waits.
        let (tx, rx) = mpsc::channel(PER_TURN * (TURNS + 1));
        let mut index: Index = 0;
        let mut feed = |tx: &mpsc::Sender<ApplyMsg>| {
            for _ in 0..PER_TURN {
                index += 1;
                let msg = ApplyMsg::Command {
                    index,
                    term: 1,
                    command: Bytes::clone(&command),
                };
                tx.try_send(msg).expect("apply loop alive, room left");
            }
        };
        feed(&tx);
        tokio::spawn(apply_loop(inner.clone(), rx));
        let start = Instant::now();
        let mut answer = None;
        for _ in 0..TURNS {
            feed(&tx);
            tokio::time::advance(every).await;
            if let Ok(reply) = waiter_rx.try_recv() {
                answer = Some((reply, start.elapsed()));
                break;
            }
        }
        let backlog = index - inner.lock().stats.last_applied;
        let Some((reply, after)) = answer else {
            panic!(
                "waiter not answered after {:?} of a saturated apply channel ({backlog} \
                 commands queued)",
                start.elapsed()
            );
        };
        assert_eq!(reply, Err(ServerError::WrongLeader { leader_hint: None }));
        assert!(after <= 3 * every, "answered only after {after:?}");
        assert!(
            backlog > 0,
            "the apply channel drained: the test did not saturate it"
        );
        inner.stop.notify_one();
    });
}

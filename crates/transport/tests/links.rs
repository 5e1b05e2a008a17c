//! The outbound transport against a real server on loopback: pipelining, a peer that
//! restarts on the same port, backpressure, unknown peers, stats.

mod common;

use common::*;
use futures::FutureExt;
use raft::Transport;
use raft_transport::{Handler, TcpTransport};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

#[tokio::test]
async fn many_calls_are_in_flight_on_one_connection() {
    const N: usize = 32;
    let (l2, a2) = listener().await;
    let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, a2)]);
    // Every handler call waits until all N requests are in the handler at once: with
    // serialized requests the first would wait forever and every call would time out.
    let barrier = Arc::new(Barrier::new(N));
    let handler: Handler = Arc::new(move |env| {
        let barrier = barrier.clone();
        Box::pin(async move {
            barrier.wait().await;
            Some(vote_reply(&env))
        })
    });
    let server = Server::start(l2, config(2, &peers), handler);
    let t = TcpTransport::new(config(1, &peers)).expect("valid");
    let calls: Vec<_> = (0..N as u64)
        .map(|i| t.call(2, vote(1, 2, i + 1)))
        .collect();
    let replies = futures::future::join_all(calls).await;
    for (i, r) in replies.iter().enumerate() {
        let r = r.as_ref().expect("every call answered");
        assert_eq!(
            (r.from, r.to, r.msg.term()),
            (2, 1, i as u64 + 1),
            "matched by id"
        );
    }
    let s = &t.stats()[&2];
    assert_eq!(
        (s.connects, s.messages_sent, s.messages_received),
        (1, N as u64, N as u64)
    );
    assert!(s.bytes_sent > 0 && s.bytes_received > 0 && s.connected);
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_restarts_on_the_same_port_is_reached_again() {
    let (l2, a2) = listener().await;
    let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, a2)]);
    let server = Server::start(l2, config(2, &peers), echo());
    let t = TcpTransport::new(config(1, &peers)).expect("valid");
    assert!(t.call(2, vote(1, 2, 1)).await.is_some());
    server.stop().await;
    // The server closed its connections: calls fail (fast, while it is down).
    let mut down = 0;
    for term in 2..50 {
        if t.call(2, vote(1, 2, term)).await.is_none() {
            down += 1;
            break;
        }
    }
    assert_eq!(down, 1, "a call fails while the peer is down");
    let l2 = tokio::net::TcpListener::bind(a2)
        .await
        .expect("rebind the same port");
    let server = Server::start(l2, config(2, &peers), echo());
    let mut back = false;
    for term in 100..1100 {
        if t.call(2, vote(1, 2, term)).await.is_some() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(back, "the connection comes back within ~10 s");
    let s = &t.stats()[&2];
    assert!(s.reconnects >= 1, "{s:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_full_queue_drops_calls_at_once_and_unknown_peers_get_none() {
    // A listener that never accepts: the kernel completes the TCP handshake, nobody
    // answers the hello, so the first call holds the link while the queue fills.
    let (silent, a2) = listener().await;
    let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, a2)]);
    let mut cfg = config(1, &peers);
    cfg.queue_depth = 2;
    let t = TcpTransport::new(cfg).expect("valid");
    let calls: Vec<_> = (0..10).map(|i| t.call(2, vote(1, 2, i + 1))).collect();
    // Nothing has run yet: two calls fit in the queue, the other eight are refused
    // without waiting.
    let mut waiting = Vec::new();
    let mut refused = 0;
    for mut c in calls {
        match (&mut c).now_or_never() {
            Some(None) => refused += 1,
            Some(Some(_)) => panic!("no answer can exist yet"),
            None => waiting.push(c),
        }
    }
    assert_eq!((refused, waiting.len()), (8, 2));
    assert_eq!(t.stats()[&2].dropped_backpressure, 8);
    assert_eq!(t.call(99, vote(1, 99, 1)).now_or_never(), Some(None));
    // A message that is not from this node is not sent.
    assert_eq!(t.call(2, vote(3, 2, 1)).now_or_never(), Some(None));
    // The queued calls fail once the handshake times out.
    for c in waiting {
        assert_eq!(c.await, None);
    }
    assert!(t.stats()[&2].connect_failures >= 1);
    drop(silent);
}

#[tokio::test]
async fn a_heartbeat_is_not_held_up_by_a_snapshot_chunk_in_the_handler() {
    use raft::Message;
    use raft_core::SnapshotMeta;
    let (l2, a2) = listener().await;
    let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, a2)]);
    // The chunk's handler finishes only after the heartbeat's handler has run: if the
    // connection handled requests one at a time, the chunk would wait forever.
    let heartbeat_seen = Arc::new(tokio::sync::Notify::new());
    let seen = heartbeat_seen.clone();
    let handler: Handler = Arc::new(move |env: raft::Envelope| {
        let seen = seen.clone();
        Box::pin(async move {
            let msg = match env.msg {
                Message::InstallSnapshot {
                    term,
                    meta,
                    offset,
                    data,
                    ..
                } => {
                    seen.notified().await;
                    Message::InstallSnapshotResponse {
                        term,
                        meta,
                        offset,
                        next_offset: offset + data.len() as u64,
                        installed: false,
                    }
                }
                Message::AppendEntries { term, .. } => {
                    seen.notify_one();
                    Message::AppendEntriesResponse {
                        term,
                        index: 0,
                        reject: None,
                    }
                }
                _ => return None,
            };
            Some(raft::Envelope {
                from: env.to,
                to: env.from,
                msg,
            })
        })
    });
    let server = Server::start(l2, config(2, &peers), handler);
    let t = TcpTransport::new(config(1, &peers)).expect("valid");
    let chunk = raft::Envelope {
        from: 1,
        to: 2,
        msg: Message::InstallSnapshot {
            term: 1,
            meta: SnapshotMeta { index: 10, term: 1 },
            offset: 0,
            data: vec![7u8; 48 << 10].into(),
            done: false,
        },
    };
    let heartbeat = raft::Envelope {
        from: 1,
        to: 2,
        msg: Message::AppendEntries {
            term: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![],
            leader_commit: 0,
        },
    };
    let (c, h) = tokio::join!(t.call(2, chunk), t.call(2, heartbeat));
    assert!(matches!(
        h.map(|e| e.msg),
        Some(Message::AppendEntriesResponse { .. })
    ));
    assert!(matches!(
        c.map(|e| e.msg),
        Some(Message::InstallSnapshotResponse { next_offset, .. }) if next_offset == 48 << 10
    ));
    assert_eq!(t.stats()[&2].connects, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_response_from_the_wrong_node_closes_the_link() {
    use raft_transport::frame::accept_hello;
    use raft_transport::wire::{PeerRequest, PeerResponse};
    let (l2, a2) = listener().await;
    let peers = BTreeMap::from([
        (1, "127.0.0.1:9".parse().expect("addr")),
        (2, a2),
        (3, "127.0.0.1:10".parse().expect("addr")),
    ]);
    let t = TcpTransport::new(config(1, &peers)).expect("valid");
    // A hand-written peer 2 that answers as node 3.
    let fake = tokio::spawn(async move {
        let (s, _) = l2.accept().await.expect("accept");
        let mut c = raft_transport::FramedConn::from_tcp(s, 1 << 20);
        accept_hello(&mut c, Duration::from_secs(5), |_| Ok(()))
            .await
            .expect("hello");
        let req: PeerRequest = c.recv().await.expect("request");
        let mut wrong = vote_reply(&req.envelope);
        wrong.from = 3;
        c.send(&PeerResponse {
            id: req.id,
            envelope: Some(wrong),
        })
        .await
        .expect("send");
        // The transport closes the connection.
        tokio::time::timeout(Duration::from_secs(10), c.recv::<PeerRequest>())
            .await
            .expect("closed within 10 s")
            .is_err()
    });
    assert_eq!(t.call(2, vote(1, 2, 1)).await, None);
    assert!(fake.await.expect("fake peer"), "the link was closed");
    assert_eq!(t.stats()[&2].messages_received, 1);
}

#[tokio::test]
async fn a_peer_that_stops_answering_is_redialed() {
    use raft_transport::frame::accept_hello;
    let (l2, a2) = listener().await;
    let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, a2)]);
    let mut cfg = config(1, &peers);
    cfg.call_timeout = Duration::from_millis(200);
    let t = TcpTransport::new(cfg).expect("valid");
    // A hand-written peer 2 that accepts handshakes, reads requests and never answers;
    // it reports each connection it accepts and whether the transport closed it.
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let fake = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l2.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut c = raft_transport::FramedConn::from_tcp(s, 1 << 20);
                if accept_hello(&mut c, Duration::from_secs(5), |_| Ok(()))
                    .await
                    .is_ok()
                {
                    let _ = tx.send("connected").await;
                    while c.recv::<raft_transport::wire::PeerRequest>().await.is_ok() {}
                    let _ = tx.send("closed").await;
                }
            });
        }
    });
    let mut events = Vec::new();
    for term in 1..100 {
        assert_eq!(t.call(2, vote(1, 2, term)).await, None);
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        let count = |what| events.iter().filter(|&&e| e == what).count();
        if count("connected") >= 2 && count("closed") >= 1 {
            break;
        }
    }
    // Its first connection was dropped by the transport and a new one made.
    let count = |what| events.iter().filter(|&&e| e == what).count();
    assert!(
        count("connected") >= 2 && count("closed") >= 1,
        "{events:?}"
    );
    assert!(t.stats()[&2].reconnects >= 1);
    fake.abort();
}

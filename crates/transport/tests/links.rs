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

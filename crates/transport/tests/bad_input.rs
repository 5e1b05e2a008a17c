//! Bad input on the peer port: each bad connection is refused or closed, and the server
//! keeps answering a good peer throughout.

mod common;

use common::*;
use raft::{Envelope, Message, Transport};
use raft_transport::frame::{self, FORMAT_VERSION};
use raft_transport::wire::{PeerRequest, PeerResponse};
use raft_transport::{FramedConn, Hello, HelloReply, Role, TcpTransport};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// Node 2 serves; node 1 is the good peer; node 3 is known too.
async fn setup() -> (Server, TcpTransport, SocketAddr) {
    let (l2, a2) = listener().await;
    let peers = BTreeMap::from([
        (1, "127.0.0.1:9".parse().expect("addr")),
        (2, a2),
        (3, "127.0.0.1:10".parse().expect("addr")),
    ]);
    let server = Server::start(l2, config(2, &peers), echo());
    let good = TcpTransport::new(config(1, &peers)).expect("valid");
    (server, good, a2)
}

async fn still_serves(good: &TcpTransport, term: u64) {
    let r = good.call(2, vote(1, 2, term)).await;
    assert_eq!(
        r.map(|e| e.msg.term()),
        Some(term),
        "the good peer is served"
    );
}

/// The server closes a raw connection: EOF or a reset, within `WAIT`.
async fn raw_closed(mut s: TcpStream) {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Err(_) => panic!("the connection stays open"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            // A refusal may come first; keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

type Conn = FramedConn<OwnedReadHalf, OwnedWriteHalf>;

async fn connect(addr: SocketAddr) -> Conn {
    let s = TcpStream::connect(addr).await.expect("connect");
    FramedConn::from_tcp(s, 1 << 20)
}

/// A connection through a valid handshake as node 3.
async fn handshaken(addr: SocketAddr) -> Conn {
    let mut c = connect(addr).await;
    c.send(&Hello::new(CLUSTER, 3, Role::Peer))
        .await
        .expect("hello");
    assert_eq!(
        c.recv::<HelloReply>().await.expect("reply"),
        HelloReply::Accepted
    );
    c
}

/// The server closes a framed connection without answering.
async fn framed_closed(mut c: Conn) {
    match tokio::time::timeout(WAIT, c.recv::<PeerResponse>()).await {
        Err(_) => panic!("the connection stays open"),
        Ok(Ok(r)) => panic!("answered {r:?}"),
        Ok(Err(_)) => {}
    }
}

async fn refused(hello: Hello, addr: SocketAddr) -> String {
    let mut c = connect(addr).await;
    c.send(&hello).await.expect("hello");
    let reason = match c.recv::<HelloReply>().await.expect("a reply") {
        HelloReply::Refused { reason } => reason,
        HelloReply::Accepted => panic!("{hello:?} accepted"),
    };
    framed_closed(c).await;
    reason
}

#[tokio::test]
async fn garbage_and_oversized_frames_and_silence_close_the_connection() {
    let (logs, _guard) = capture_logs();
    let (server, good, addr) = setup().await;
    still_serves(&good, 1).await;

    // An HTTP request: its first four bytes read as a length of ~1.2 GB.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    raw_closed(s).await;
    still_serves(&good, 2).await;

    // A length prefix just over the limit (64 KiB in these tests).
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&((64u32 << 10) + 1).to_be_bytes())
        .await
        .expect("write");
    s.write_all(&[FORMAT_VERSION; 100]).await.expect("write");
    raw_closed(s).await;
    still_serves(&good, 3).await;

    // Small garbage within a valid length: not a hello.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&[0, 0, 0, 3, FORMAT_VERSION, 0xff, 0xff])
        .await
        .expect("write");
    raw_closed(s).await;

    // Connected, then silent: closed after the handshake timeout.
    let s = TcpStream::connect(addr).await.expect("connect");
    raw_closed(s).await;
    still_serves(&good, 4).await;
    server.stop().await;
    let logs = logs.text();
    for what in ["exceeds the limit", "no handshake within"] {
        assert!(logs.contains(what), "{what:?} not logged in:\n{logs}");
    }
}

#[tokio::test]
async fn wrong_cluster_unknown_node_and_wrong_role_are_refused_with_a_reason() {
    let (logs, _guard) = capture_logs();
    let (server, good, addr) = setup().await;
    let r = refused(Hello::new(CLUSTER + 1, 3, Role::Peer), addr).await;
    assert!(r.contains("cluster id"), "{r}");
    still_serves(&good, 1).await;
    let r = refused(Hello::new(CLUSTER, 42, Role::Peer), addr).await;
    assert!(r.contains("not a member"), "{r}");
    let r = refused(Hello::new(CLUSTER, 2, Role::Peer), addr).await;
    assert!(r.contains("this node"), "{r}");
    let r = refused(Hello::new(CLUSTER, 3, Role::Client), addr).await;
    assert!(r.contains("serves peers"), "{r}");
    let mut newer = Hello::new(CLUSTER, 3, Role::Peer);
    newer.version = FORMAT_VERSION + 1;
    let r = refused(newer, addr).await;
    assert!(r.contains("version"), "{r}");
    still_serves(&good, 2).await;
    server.stop().await;
    let logs = logs.text();
    for reason in ["cluster id 8", "node 42 is not a member", "serves peers"] {
        let logged = logs.lines().any(|l| {
            l.contains("WARN") && l.contains("peer connection refused") && l.contains(reason)
        });
        assert!(logged, "refusal {reason:?} not logged in:\n{logs}");
    }
}

#[tokio::test]
async fn bad_requests_after_a_valid_handshake_close_the_connection() {
    let (logs, _guard) = capture_logs();
    let (server, good, addr) = setup().await;

    // Sanity: a well-formed request on such a connection is answered.
    let mut c = handshaken(addr).await;
    c.send(&PeerRequest {
        id: 9,
        envelope: vote(3, 2, 5),
    })
    .await
    .expect("send");
    let r = c.recv::<PeerResponse>().await.expect("answered");
    assert_eq!((r.id, r.envelope.map(|e| e.to)), (9, Some(3)));

    // An undecodable frame.
    let (reader, mut writer) = handshaken(addr).await.split();
    writer
        .send_raw(bytes::Bytes::from_static(&[
            FORMAT_VERSION,
            0xff,
            0xff,
            0xff,
        ]))
        .await
        .expect("send");
    framed_closed_parts(reader).await;
    still_serves(&good, 1).await;

    // A frame of another format version.
    let (reader, mut writer) = handshaken(addr).await.split();
    let mut f = frame::encode(
        &PeerRequest {
            id: 1,
            envelope: vote(3, 2, 1),
        },
        1 << 20,
    )
    .expect("fits")
    .to_vec();
    f[0] = FORMAT_VERSION + 1;
    writer.send_raw(f.into()).await.expect("send");
    framed_closed_parts(reader).await;

    // An envelope whose sender is not the handshake's node.
    let mut c = handshaken(addr).await;
    c.send(&PeerRequest {
        id: 1,
        envelope: vote(1, 2, 1),
    })
    .await
    .expect("send");
    framed_closed(c).await;
    still_serves(&good, 2).await;

    // An envelope for another node.
    let mut c = handshaken(addr).await;
    c.send(&PeerRequest {
        id: 1,
        envelope: vote(3, 1, 1),
    })
    .await
    .expect("send");
    framed_closed(c).await;

    // A message that fails Message::validate (last log term above the term).
    let bad = Envelope {
        from: 3,
        to: 2,
        msg: Message::RequestVote {
            term: 1,
            last_log_index: 4,
            last_log_term: 5,
        },
    };
    let mut c = handshaken(addr).await;
    c.send(&PeerRequest {
        id: 1,
        envelope: bad,
    })
    .await
    .expect("send");
    framed_closed(c).await;

    // A response where a request belongs.
    let mut c = handshaken(addr).await;
    let resp = Envelope {
        from: 3,
        to: 2,
        msg: Message::RequestVoteResponse {
            term: 1,
            granted: true,
        },
    };
    c.send(&PeerRequest {
        id: 1,
        envelope: resp,
    })
    .await
    .expect("send");
    framed_closed(c).await;
    still_serves(&good, 3).await;
    server.stop().await;
    let logs = logs.text();
    for what in [
        "cannot decode the frame body",
        "unsupported format version 2",
        "invalid request: envelope from 1 on node 3's connection",
        "invalid request: envelope to 1",
        "invalid request: malformed message",
        "a response where a request was expected",
    ] {
        assert!(logs.contains(what), "{what:?} not logged in:\n{logs}");
    }
}

async fn framed_closed_parts(mut r: raft_transport::frame::FrameReader<OwnedReadHalf>) {
    match tokio::time::timeout(WAIT, r.recv::<PeerResponse>()).await {
        Err(_) => panic!("the connection stays open"),
        Ok(Ok(resp)) => panic!("answered {resp:?}"),
        Ok(Err(_)) => {}
    }
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    let (l2, addr) = listener().await;
    let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, addr)]);
    let mut cfg = config(2, &peers);
    cfg.max_inbound_connections = 2;
    // Long enough that only the limit can explain a prompt close.
    cfg.handshake_timeout = Duration::from_secs(60);
    let server = Server::start(l2, cfg, echo());
    let silent_a = TcpStream::connect(addr).await.expect("connect");
    let silent_b = TcpStream::connect(addr).await.expect("connect");
    // The server accepts in order: both silent ones hold a slot before the third comes.
    let third = TcpStream::connect(addr).await.expect("connect");
    raw_closed(third).await;
    drop((silent_a, silent_b));
    // Their slots free up once the server sees them close.
    let good = TcpTransport::new(config(1, &peers)).expect("valid");
    let mut served = false;
    for term in 1..500 {
        if good.call(2, vote(1, 2, term)).await.is_some() {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a good peer is served once slots are free");
    server.stop().await;
}

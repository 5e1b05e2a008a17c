//! Bad input on a real node's client port: each gets a clear error or a closed
//! connection, and the node keeps serving and loses nothing.

mod common;

use common::Cluster;
use kvraft::{InputError, KvRequest, Limits, Op, ServerError};
use raft_transport::frame::{send_hello, HandshakeError, Hello, HelloReply, Role};
use raft_transport::FramedConn;
use raftkv::client::{ClientConfig, ClientError, RaftKvClient, TcpEnd};
use raftkv::proto::{Response, ResponseBody};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

/// Reads until the server closes the connection (or `WAIT` passes: a failure).
async fn closed_by_server(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    got
}

/// Says hello on a raw stream (as a client of cluster 1) and checks it is accepted.
async fn raw_hello(s: &mut TcpStream) {
    let frame =
        raft_transport::frame::encode(&Hello::new(1, 0, Role::Client), 1 << 20).expect("encode");
    s.write_all(&(frame.len() as u32).to_be_bytes())
        .await
        .expect("write");
    s.write_all(&frame).await.expect("write");
    let reply = read_frame(s).await.expect("a hello reply");
    let reply: HelloReply = raft_transport::frame::decode(&reply).expect("decode");
    assert_eq!(reply, HelloReply::Accepted);
}

/// Reads one frame's content from a raw stream; `None` if it closes first.
async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    tokio::time::timeout(WAIT, s.read_exact(&mut len))
        .await
        .ok()?
        .ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    tokio::time::timeout(WAIT, s.read_exact(&mut body))
        .await
        .ok()?
        .ok()?;
    Some(body)
}

async fn hello(addr: &str, cluster_id: u64, role: Role) -> Result<raftkv::Conn, HandshakeError> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut conn = FramedConn::from_tcp(stream, 1 << 20);
    send_hello(&mut conn, &Hello::new(cluster_id, 0, role), WAIT).await?;
    Ok(conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_answer_and_the_node_keeps_serving() {
    let c = Cluster::start(1);
    c.wait_leader(None, Duration::from_secs(10))
        .await
        .expect("a leader");
    let addr = c.client_addr(1);
    let mut client = RaftKvClient::connect(std::slice::from_ref(&addr), ClientConfig::default())
        .await
        .expect("connect");
    client.put("before", "1").await.expect("put");

    // Garbage instead of a hello: closed.
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.write_all(&[0, 0, 0, 5, 9, 9, 9, 9, 9])
        .await
        .expect("write");
    closed_by_server(&mut s).await;

    // Another cluster, or a peer on the client port: refused with the reason.
    match hello(&addr, 99, Role::Client).await {
        Err(HandshakeError::Refused { reason }) => {
            assert!(reason.contains("cluster id 99"), "{reason}")
        }
        other => panic!("wrong cluster accepted: {:?}", other.err()),
    }
    match hello(&addr, 1, Role::Peer).await {
        Err(HandshakeError::Refused { reason }) => {
            assert!(reason.contains("client port"), "{reason}")
        }
        other => panic!("a peer was accepted on the client port: {:?}", other.err()),
    }

    // After a good hello: a garbage frame gets an error answer, then the close.
    let conn = hello(&addr, 1, Role::Client).await.expect("hello");
    let (mut reader, mut writer) = conn.split();
    writer
        .send_raw(bytes::Bytes::from_static(&[1, 0xff, 0xff, 0xff]))
        .await
        .expect("send");
    let resp: Response = tokio::time::timeout(WAIT, reader.recv())
        .await
        .expect("answer")
        .expect("frame");
    assert!(
        matches!(&resp.body, ResponseBody::Error(e) if e.contains("bad request")),
        "{resp:?}"
    );
    assert!(tokio::time::timeout(WAIT, reader.recv::<Response>())
        .await
        .expect("closed")
        .is_err());

    // An oversized frame (its length prefix alone says so): an error answer, the close.
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    raw_hello(&mut s).await;
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .expect("write");
    let frame = read_frame(&mut s).await.expect("an answer");
    let resp: Response = raft_transport::frame::decode(&frame).expect("a response");
    assert!(
        matches!(&resp.body, ResponseBody::Error(e) if e.contains("limit")),
        "{resp:?}"
    );
    closed_by_server(&mut s).await;

    // A connection that says nothing is closed after the handshake timeout (1 s here).
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    closed_by_server(&mut s).await;

    // A value over the limit and an empty key: typed errors, from the server too.
    let loose = ClientConfig {
        limits: Limits {
            max_key_bytes: 1 << 20,
            max_value_bytes: 8 << 20,
        },
        ..ClientConfig::default()
    };
    let mut loose_client = RaftKvClient::connect(std::slice::from_ref(&addr), loose.clone())
        .await
        .expect("connect");
    let huge = "x".repeat(2 << 20);
    match loose_client.put("k", &huge).await {
        Err(ClientError::Invalid(InputError::ValueTooLarge { len, max })) => {
            assert_eq!((len, max), (2 << 20, 1 << 20));
        }
        other => panic!("huge value: {other:?}"),
    }
    assert!(matches!(
        client.put("", "x").await,
        Err(ClientError::Invalid(InputError::EmptyKey))
    ));
    let end = TcpEnd::new(addr.clone(), Arc::new(loose));
    let req = KvRequest {
        client_id: 5,
        seq: 1,
        op: Op::Get { key: String::new() },
    };
    match end
        .request(raftkv::proto::RequestBody::Kv(req))
        .await
        .expect("answer")
    {
        ResponseBody::Kv {
            reply: Err(ServerError::Invalid(InputError::EmptyKey)),
            ..
        } => {}
        other => panic!("empty key at the server: {other:?}"),
    }

    // The node still serves, and lost nothing.
    assert_eq!(client.get("before").await.expect("get"), "1");
    client.put("after", "2").await.expect("put");
    assert_eq!(client.get("after").await.expect("get"), "2");
}

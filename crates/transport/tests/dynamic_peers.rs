//! Peers added and removed at run time: a transport reaches a node it did not know at
//! start, forgets a removed one, follows a changed address; a server accepting the peers
//! its transport knows (or, joining, any member) admits and refuses them accordingly.

mod common;

use common::*;
use raft::Transport;
use raft_transport::{Accept, PeerServer, TcpTransport};
use std::collections::BTreeMap;

#[tokio::test]
async fn a_peer_added_at_run_time_is_reached_and_a_removed_one_is_not() {
    let (l2, a2) = listener().await;
    let (l3, a3) = listener().await;
    let all = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, a2), (3, a3)]);
    let _s2 = Server::start(l2, config(2, &all), echo());
    let _s3 = Server::start(l3, config(3, &all), echo());
    // Node 1 starts knowing only node 2.
    let t = TcpTransport::new(config(1, &BTreeMap::from([(2, a2)]))).expect("valid");
    assert!(t.call(3, vote(1, 3, 1)).await.is_none(), "3 unknown yet");
    assert!(!t.knows(3));
    t.set_peer(3, a3);
    assert!(t.knows(3));
    assert_eq!(t.peers(), BTreeMap::from([(2, a2), (3, a3)]));
    let r = t
        .call(3, vote(1, 3, 2))
        .await
        .expect("3 answers once added");
    assert_eq!((r.from, r.to), (3, 1));
    // Setting the same address again keeps the link (and its connection).
    t.set_peer(3, a3);
    assert!(t.call(3, vote(1, 3, 3)).await.is_some());
    assert_eq!(t.stats()[&3].connects, 1);
    assert!(t.remove_peer(3));
    assert!(!t.remove_peer(3));
    assert!(t.call(3, vote(1, 3, 4)).await.is_none(), "3 removed");
    assert!(!t.stats().contains_key(&3));
    // A new address replaces the link: node 2 is now reached at node 3's server, which
    // answers as 3 and is refused as a bad response (the call gets None) - proof that
    // the new address is used.
    t.set_peer(2, a3);
    assert!(t.call(2, vote(1, 2, 5)).await.is_none());
    t.set_peer(2, a2);
    assert!(t.call(2, vote(1, 2, 6)).await.is_some());
}

#[tokio::test]
async fn a_server_accepts_the_peers_its_transport_knows_at_the_handshake() {
    let (l1, a1) = listener().await;
    let (_l4, a4) = listener().await;
    let known = TcpTransport::new(config(1, &BTreeMap::new())).expect("valid");
    let server = PeerServer::accepting(
        &config(1, &BTreeMap::new()),
        echo(),
        Accept::KnownTo(known.clone()),
    )
    .expect("valid");
    let token = raft_transport::CancellationToken::new();
    let task = tokio::spawn(server.serve(l1, token.clone()));
    let to1 = BTreeMap::from([(1, a1)]);
    // Node 4 is refused while node 1 does not know it, accepted once it does.
    let from4 = TcpTransport::new(config(4, &to1)).expect("valid");
    assert!(from4.call(1, vote(4, 1, 1)).await.is_none(), "refused");
    known.set_peer(4, a4);
    // The refused link backs off (at most 100 ms in these settings) before retrying.
    let mut answered = false;
    for _ in 0..100 {
        if from4.call(1, vote(4, 1, 2)).await.is_some() {
            answered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(answered, "accepted once known");
    // A joining server accepts any node of its cluster.
    let (l5, a5) = listener().await;
    let any = PeerServer::accepting(&config(5, &BTreeMap::new()), echo(), Accept::AnyMember)
        .expect("valid");
    let task5 = tokio::spawn(any.serve(l5, token.clone()));
    let to5 = TcpTransport::new(config(7, &BTreeMap::from([(5, a5)]))).expect("valid");
    assert!(to5.call(5, vote(7, 5, 1)).await.is_some());
    token.cancel();
    let _ = task.await;
    let _ = task5.await;
}

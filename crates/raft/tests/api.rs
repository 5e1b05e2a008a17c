//! The public API: construction errors, a one-peer cluster, start/state/kill.

use futures::future::BoxFuture;
use raft::{ApplyMsg, Bytes, Config, Envelope, NodeId, Raft, RaftError, Transport};
use raft_storage::MemStorage;
use std::time::Duration;
use tokio::sync::mpsc;

/// A transport to nowhere: every call goes unanswered.
struct Nowhere;

impl Transport for Nowhere {
    fn call(&self, _to: NodeId, _msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        Box::pin(async { None })
    }
}

fn make(peers: &[NodeId], me: NodeId, config: Config) -> Result<Raft, RaftError> {
    let (tx, _rx) = mpsc::channel(64);
    Raft::new(peers, me, MemStorage::new(), tx, config, Nowhere)
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_a_clear_error() {
    let err = |r: Result<Raft, RaftError>| r.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err(make(&[], 0, Config::default())).contains("empty"));
    assert!(err(make(&[0, 1, 2], 7, Config::default())).contains("not in the peer list"));
    assert!(err(make(&[0, 1, 1], 0, Config::default())).contains("twice"));
    let bad = Config {
        election_timeout_min: Duration::from_millis(150),
        ..Config::default()
    };
    assert!(err(make(&[0, 1, 2], 0, bad)).contains("at least twice the heartbeat"));
    let bad = Config {
        election_timeout_max: Duration::from_millis(300),
        ..Config::default()
    };
    assert!(matches!(
        make(&[0, 1, 2], 0, bad),
        Err(RaftError::InvalidConfig(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn follower_refuses_start_and_killed_peer_says_so() {
    let raft = make(&[0, 1, 2], 0, Config::default()).expect("valid");
    assert_eq!(raft.state(), (0, false));
    assert!(matches!(
        raft.start(Bytes::from_static(b"x")).await,
        Err(RaftError::NotLeader { .. })
    ));
    raft.kill();
    assert!(raft.killed());
    // The task ends (and says so) soon after the kill.
    tokio::time::timeout(Duration::from_secs(1), raft.stopped())
        .await
        .expect("the peer's task ends after kill");
    assert!(matches!(
        raft.start(Bytes::from_static(b"x")).await,
        Err(RaftError::Killed)
    ));
}

#[tokio::test(start_paused = true)]
async fn single_peer_elects_itself_and_applies_in_order() {
    let (tx, mut rx) = mpsc::channel(64);
    let storage = MemStorage::new();
    let raft = Raft::new(&[0], 0, storage.clone(), tx, Config::default(), Nowhere).expect("valid");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (term, leader) = raft.state();
    assert!(leader && term >= 1);
    for i in 1..=3u64 {
        let (index, t) = raft
            .start(Bytes::from(vec![i as u8]))
            .await
            .expect("leader");
        assert_eq!((index, t), (i, term));
    }
    for i in 1..=3u64 {
        let msg = rx.recv().await.expect("applied");
        assert_eq!(
            msg,
            ApplyMsg::Command {
                index: i,
                term,
                command: Bytes::from(vec![i as u8])
            }
        );
    }
    assert_eq!(storage.len(), 3, "entries are persisted");
    raft.kill();
}

#[tokio::test(start_paused = true)]
async fn an_observer_is_told_status_changes_and_log_writes() {
    use raft::{Observed, Observer, Role};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<Observed>>> = Arc::default();
    let log = seen.clone();
    let config = Config {
        observer: Some(Observer::new(move |o| {
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(o.clone())
        })),
        ..Config::default()
    };
    let (tx, mut rx) = mpsc::channel(64);
    let raft = Raft::new(&[0], 0, MemStorage::new(), tx, config, Nowhere).expect("valid");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (term, _) = raft.state();
    for i in 1..=2u8 {
        raft.start(Bytes::from(vec![i])).await.expect("leader");
    }
    for _ in 0..2 {
        rx.recv().await.expect("applied");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // First the log it starts from, then follower of term 0, ..., leader.
    assert!(matches!(&seen[0], Observed::Restored { terms, .. } if terms.is_empty()));
    let statuses: Vec<(Role, u64, u64, u64)> = seen
        .iter()
        .filter_map(|o| match o {
            Observed::Status {
                role,
                term,
                commit,
                applied,
            } => Some((*role, *term, *commit, *applied)),
            _ => None,
        })
        .collect();
    assert_eq!(statuses[0], (Role::Follower, 0, 0, 0));
    assert!(statuses.contains(&(Role::Leader, term, 0, 0)));
    assert_eq!(statuses.last(), Some(&(Role::Leader, term, 2, 2)));
    // Only changes are reported.
    assert!(statuses.windows(2).all(|w| w[0] != w[1]));
    // The two entries were written with their indices and terms.
    let written: Vec<(u64, u64)> = seen
        .iter()
        .filter_map(|o| match o {
            Observed::Persisted { entries, .. } => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(written, vec![(1, term), (2, term)]);
}

/// `status` reports role, term, leader and the indices as the peer's task publishes them.
#[tokio::test(start_paused = true)]
async fn status_reports_role_leader_and_indices() {
    let (tx, mut rx) = mpsc::channel(64);
    let raft =
        Raft::new(&[0], 0, MemStorage::new(), tx, Config::default(), Nowhere).expect("valid");
    let before = raft.status();
    assert_eq!(
        (before.id, before.role, before.leader),
        (0, raft::Role::Follower, None)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 1..=3u8 {
        raft.start(Bytes::from(vec![i])).await.expect("leader");
    }
    for _ in 0..3 {
        rx.recv().await.expect("applied");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = raft.status();
    assert_eq!(s.role, raft::Role::Leader);
    assert_eq!(s.leader, Some(0));
    assert_eq!(s.term, raft.state().0);
    assert_eq!(
        (s.commit_index, s.applied_index, s.last_log_index),
        (3, 3, 3)
    );
    assert_eq!(s.snapshot_index, 0);
    assert!(s.raft_state_size > 0);
    raft.snapshot(2, Bytes::from_static(b"state"))
        .await
        .expect("snapshot");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(raft.status().snapshot_index, 2);
}

#[tokio::test(start_paused = true)]
async fn read_index_on_a_single_peer_commits_a_noop_first_and_answers() {
    let (tx, mut rx) = mpsc::channel(64);
    let storage = MemStorage::new();
    let raft = Raft::new(&[0], 0, storage.clone(), tx, Config::default(), Nowhere).expect("valid");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (term, leader) = raft.state();
    assert!(leader);
    // The first read of the term needs an entry of the term: an empty no-op at index 1,
    // delivered as such (never as a command to decode).
    assert_eq!(raft.read_index().await.expect("leader reads"), 1);
    assert_eq!(
        rx.recv().await.expect("applied"),
        ApplyMsg::NoOp { index: 1, term }
    );
    let (index, _) = raft.start(Bytes::from_static(b"x")).await.expect("leader");
    assert_eq!(index, 2);
    assert_eq!(raft.read_index().await.expect("leader reads"), 2);
    assert_eq!(storage.len(), 2, "reads wrote nothing but the one no-op");
    assert!(matches!(
        raft.start(Bytes::new()).await,
        Err(RaftError::EmptyCommand)
    ));
    raft.kill();
    raft.stopped().await;
    assert!(matches!(raft.read_index().await, Err(RaftError::Killed)));
}

#[tokio::test(start_paused = true)]
async fn read_index_without_a_known_leader_is_refused() {
    let raft = make(&[0, 1, 2], 0, Config::default()).expect("valid");
    assert!(matches!(
        raft.read_index().await,
        Err(RaftError::NotLeader { leader: None })
    ));
    raft.kill();
}

fn lease_config() -> Config {
    Config {
        read_mode: raft::ReadMode::Lease {
            duration: Duration::from_millis(300),
            uncertainty: Duration::from_millis(50),
        },
        ..Config::default()
    }
}

#[tokio::test(start_paused = true)]
async fn lease_mode_is_validated_stamps_entries_and_renews_its_lease_on_reads() {
    // 350 + 50 is not below the 400 ms election timeout.
    let too_long = Config {
        read_mode: raft::ReadMode::Lease {
            duration: Duration::from_millis(350),
            uncertainty: Duration::from_millis(50),
        },
        ..Config::default()
    };
    assert!(matches!(
        make(&[0, 1, 2], 0, too_long),
        Err(RaftError::InvalidConfig(_))
    ));
    let (tx, mut rx) = mpsc::channel(64);
    let storage = MemStorage::new();
    let raft = Raft::new(&[0], 0, storage.clone(), tx, lease_config(), Nowhere).expect("valid");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(raft.state().1);
    let (index, _) = raft.start(Bytes::from_static(b"x")).await.expect("leader");
    assert!(matches!(rx.recv().await, Some(ApplyMsg::Command { .. })));
    // Under the lease: the read index is the commit index, nothing is appended.
    assert_eq!(raft.read_index().await.expect("lease read"), index);
    assert_eq!(
        raft.read_index_for(|_| true).await.expect("lease read"),
        index
    );
    let restored = raft_storage::Storage::restore(&storage).expect("readable");
    assert!(
        restored.entries.iter().all(|e| e.timestamp > 0),
        "entries carry the leader's clock"
    );
    // After the lease ran out a read still succeeds, and appends a no-op to renew it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    // (Alone, the peer commits the no-op at once, so the read index already covers it.)
    assert!(raft.read_index().await.expect("read index") >= index);
    assert!(matches!(rx.recv().await, Some(ApplyMsg::NoOp { .. })));
    assert_eq!(raft.read_index().await.expect("renewed lease"), index + 1);
    raft.kill();
}

//! `raftkv serve`: one node: WAL storage, peer transport, client port, HTTP port; stops
//! gracefully on SIGTERM or Ctrl-C.

use anyhow::Context;
use kvraft::KvServer;
use raft::NodeId;
use raft_transport::{serve_peers, CancellationToken, Handler, TcpTransport, TransportConfig};
use raft_wal::{WalOptions, WalStorage};
use raftkv::client_port::ClientPort;
use raftkv::config::Resolved;
use raftkv::metrics::Timed;
use raftkv::proto::Member;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long shutdown waits for the Raft peer's last write before giving up.
const STOP_WAIT: Duration = Duration::from_secs(10);

pub async fn run(r: Resolved) -> anyhow::Result<()> {
    let c = &r.config;
    let metrics = raftkv::metrics::install()?;
    std::fs::create_dir_all(&r.data_dir)
        .with_context(|| format!("cannot create {}", r.data_dir.display()))?;
    let dir = r.data_dir.clone();
    let opts = WalOptions::new(c.cluster_id, r.id);
    let storage = tokio::task::spawn_blocking(move || WalStorage::open(&dir, opts))
        .await?
        .with_context(|| format!("cannot open the data directory {}", r.data_dir.display()))?;

    // Bind everything before starting the node, so that a port in use fails at once.
    let peer_listener = TcpListener::bind(&r.peer_listen)
        .await
        .with_context(|| format!("cannot listen for peers on {}", r.peer_listen))?;
    let client_listener = TcpListener::bind(&r.client_addr)
        .await
        .with_context(|| format!("cannot listen for clients on {}", r.client_addr))?;
    let http_listener = match &c.http_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen for HTTP on {a}"))?,
        ),
        None => None,
    };

    let mut peers: Vec<NodeId> = c.nodes.iter().map(|n| n.id).collect();
    peers.sort_unstable();
    let mut addrs: BTreeMap<NodeId, SocketAddr> = BTreeMap::new();
    for n in &c.nodes {
        let addr = tokio::net::lookup_host(&n.peer)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .with_context(|| format!("cannot resolve node {}'s peer address {}", n.id, n.peer))?;
        addrs.insert(n.id, addr);
    }
    let handshake = Duration::from_millis(c.handshake_timeout_ms);
    let mut tconfig = TransportConfig::new(c.cluster_id, r.id, addrs);
    tconfig.max_frame = c.max_frame_bytes;
    tconfig.handshake_timeout = handshake;
    tconfig.validate_for(&r.kv.raft)?;
    let transport = TcpTransport::new(tconfig.clone())?;
    let kv = KvServer::new(
        &peers,
        r.id,
        Timed(storage),
        r.kv.clone(),
        transport.clone(),
    )?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let peers_stop = CancellationToken::new();
    let mut tasks = Vec::new();
    let raft = kv.raft().clone();
    let handler: Handler = Arc::new(move |env| {
        let raft = raft.clone();
        Box::pin(async move { raft.handle(env).await })
    });
    let (pstop, pconfig) = (peers_stop.clone(), tconfig.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(e) = serve_peers(peer_listener, &pconfig, handler, pstop).await {
            tracing::error!(error = %e, "peer server");
        }
    }));
    let members = c
        .nodes
        .iter()
        .map(|n| Member {
            id: n.id,
            client_addr: n.client.clone(),
        })
        .collect();
    let port = ClientPort {
        kv: kv.clone(),
        id: r.id,
        cluster_id: c.cluster_id,
        members: Arc::new(members),
        max_frame: c.max_frame_bytes,
        handshake_timeout: handshake,
        idle_timeout: Duration::from_millis(c.idle_timeout_ms),
    };
    tasks.push(tokio::spawn(port.serve(client_listener, stop_rx.clone())));
    if let Some(l) = http_listener {
        tasks.push(tokio::spawn(raftkv::http::serve(
            l,
            metrics,
            kv.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(raftkv::metrics::poll(
        kv.clone(),
        transport.clone(),
        Duration::from_millis(200),
        stop_rx.clone(),
    )));
    tracing::info!(
        id = r.id,
        peers = %r.peer_listen,
        clients = %r.client_addr,
        http = ?c.http_addr,
        data = %r.data_dir.display(),
        "serving"
    );

    let why = stop_signal().await?;
    tracing::info!(signal = why, "shutting down");
    // Stop accepting and close idle connections; fail what is in flight; let the Raft
    // peer finish its write in flight (every write is synced before it counts).
    let _ = stop_tx.send(true);
    peers_stop.cancel();
    kv.kill();
    if tokio::time::timeout(STOP_WAIT, kv.raft().stopped())
        .await
        .is_err()
    {
        anyhow::bail!("the Raft peer did not stop within {STOP_WAIT:?}");
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    transport.shutdown();
    tracing::info!("stopped");
    Ok(())
}

/// Waits for SIGTERM or Ctrl-C (SIGINT); returns which.
pub async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Used by `cluster` and `bench`: the arguments of `serve` for node `id` of `n` nodes
/// whose ports start at `base`.
pub fn child_args(id: u64, n: u64, base: u16, dir: &std::path::Path) -> Vec<String> {
    let port = |off: u64, i: u64| u64::from(base) + off + i;
    let list = |off: u64| {
        (1..=n)
            .map(|i| format!("{i}=127.0.0.1:{}", port(off, i)))
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        "serve".into(),
        "--id".into(),
        id.to_string(),
        "--peers".into(),
        list(0),
        "--clients".into(),
        list(100),
        "--client-addr".into(),
        format!("127.0.0.1:{}", port(100, id)),
        "--http-addr".into(),
        format!("127.0.0.1:{}", port(200, id)),
        "--data-dir".into(),
        dir.join(format!("node-{id}")).display().to_string(),
    ]
}

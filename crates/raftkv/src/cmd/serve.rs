//! `raftkv serve`: one node: WAL storage, peer transport, client port, HTTP port; stops
//! gracefully on SIGTERM or Ctrl-C.

use anyhow::Context;
use etcd_api::service::ServiceConfig;
use etcd_api::store::StoreConfig;
use kvraft::KvServer;
use metrics_exporter_prometheus::PrometheusHandle;
use raft::NodeId;
use raft_transport::{
    Accept, CancellationToken, Handler, PeerServer, TcpTransport, TransportConfig,
};
use raft_wal::{WalOptions, WalStorage};
use raftkv::client_port::ClientPort;
use raftkv::config::Resolved;
use raftkv::etcd::forward::Forwarder;
use raftkv::etcd::members::MemberAddrs;
use raftkv::etcd::{AddressSink, EtcdNode, EtcdNodeConfig};
use raftkv::metrics::Timed;
use raftkv::proto::Member;
use raftkv::ServedNode;
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
    // A node serving etcd's API runs the etcd store as its state machine; its client
    // port then takes only the writes other nodes forward to it as leader.
    let client_listener = TcpListener::bind(&r.client_addr)
        .await
        .with_context(|| format!("cannot listen for clients on {}", r.client_addr))?;
    let etcd_listener = match &c.etcd_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot serve the etcd API on {a}"))?,
        ),
        None => None,
    };
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

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let max_command_bytes = tconfig.max_command_bytes();
    let common = Common {
        peer_listener,
        http_listener,
        transport: transport.clone(),
        tconfig,
        metrics,
        stop_tx,
        // An etcd node's peers change with its membership; a joining node does not know
        // them when its first leader calls.
        accept: match (&etcd_listener, c.join) {
            (None, _) => Accept::Listed,
            (Some(_), false) => Accept::KnownTo(transport.clone()),
            (Some(_), true) => Accept::AnyMember,
        },
    };
    match etcd_listener {
        None => {
            let kv = KvServer::new(
                &peers,
                r.id,
                Timed(storage),
                r.kv.clone(),
                transport.clone(),
            )?;
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
            tracing::info!(clients = %r.client_addr, "native client port");
            run_node(&r, kv, common, tasks).await
        }
        Some(etcd_listener) => {
            let mut config = etcd_config(&r);
            let forward_to = c
                .nodes
                .iter()
                .filter(|n| n.id != r.id)
                .filter_map(|n| Some((n.id, n.client.clone()?)))
                .collect();
            config.forward = Some(Forwarder::new(
                forward_to,
                c.cluster_id,
                r.id,
                c.max_frame_bytes,
                r.kv.op_timeout,
            ));
            config.on_addresses = Some(address_sink(transport.clone()));
            let node = if c.join {
                EtcdNode::join(r.id, Timed(storage), config, transport.clone())?
            } else {
                EtcdNode::new(&peers, r.id, Timed(storage), config, transport.clone())?
            };
            tasks.push(tokio::spawn(raftkv::etcd::forward::serve(
                node.clone(),
                client_listener,
                c.cluster_id,
                c.max_frame_bytes,
                stop_rx.clone(),
            )));
            let service = ServiceConfig {
                // A write must fit one peer frame as a log entry.
                max_request_bytes: ServiceConfig::default()
                    .max_request_bytes
                    .min(max_command_bytes.saturating_sub(1024)),
                ..ServiceConfig::default()
            };
            let backend = Arc::new(node.clone());
            let mut stop = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let shutdown = async move { raftkv::until_stopped(&mut stop).await };
                if let Err(e) =
                    etcd_api::service::serve(backend, service, etcd_listener, shutdown).await
                {
                    tracing::error!(error = %e, "etcd API server");
                }
            }));
            tracing::info!(etcd = ?c.etcd_addr, "etcd API");
            run_node(&r, node, common, tasks).await
        }
    }
}

/// The etcd replica's settings from the node's.
fn etcd_config(r: &Resolved) -> EtcdNodeConfig {
    EtcdNodeConfig {
        raft: r.kv.raft.clone(),
        store: StoreConfig::default(),
        op_timeout: r.kv.op_timeout,
        tick: r.kv.leader_check_interval,
        cluster_id: r.config.cluster_id,
        forward: None,
        members: r
            .config
            .nodes
            .iter()
            .map(|n| {
                let addrs = MemberAddrs {
                    peer: n.peer.clone(),
                    client: n.client.clone(),
                    etcd: n.etcd.clone(),
                    published: false,
                };
                (n.id, addrs)
            })
            .collect(),
        on_addresses: None,
    }
}

/// Keeps the peer transport's map equal to the members' peer addresses: peers added by
/// a membership change become reachable (and accepted), removed ones are dropped.
fn address_sink(transport: TcpTransport) -> AddressSink {
    AddressSink(Arc::new(move |all: &BTreeMap<NodeId, MemberAddrs>| {
        let mut wanted = BTreeMap::new();
        for (id, a) in all {
            // Resolved at once (no await in the apply task): an IP literal, or a name
            // through the system resolver.
            let addr = a.peer.parse::<SocketAddr>().ok().or_else(|| {
                std::net::ToSocketAddrs::to_socket_addrs(&a.peer)
                    .ok()
                    .and_then(|mut i| i.next())
            });
            match addr {
                Some(addr) => {
                    wanted.insert(*id, addr);
                }
                None => {
                    tracing::warn!(node = id, peer = %a.peer, "cannot resolve a member's peer address")
                }
            }
        }
        let before = transport.peers();
        for id in before.keys() {
            if !wanted.contains_key(id) {
                transport.remove_peer(*id);
                tracing::info!(node = id, "peer removed");
            }
        }
        for (id, addr) in wanted {
            transport.set_peer(id, addr);
            if before.get(&id) != Some(&addr) && transport.knows(id) {
                tracing::info!(node = id, %addr, "peer address set");
            }
        }
    }))
}

/// What every node serves whatever its state machine.
struct Common {
    peer_listener: TcpListener,
    http_listener: Option<TcpListener>,
    transport: TcpTransport,
    tconfig: TransportConfig,
    metrics: PrometheusHandle,
    stop_tx: watch::Sender<bool>,
    accept: Accept,
}

/// Serves the peer and HTTP ports for `node` until SIGTERM or Ctrl-C, then stops it.
async fn run_node<N: ServedNode>(
    r: &Resolved,
    node: N,
    common: Common,
    mut tasks: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    let c = &r.config;
    let Common {
        peer_listener,
        http_listener,
        transport,
        tconfig,
        metrics,
        stop_tx,
        accept,
    } = common;
    let stop_rx = stop_tx.subscribe();
    let peers_stop = CancellationToken::new();
    let raft = node.raft().clone();
    let handler: Handler = Arc::new(move |env| {
        let raft = raft.clone();
        Box::pin(async move { raft.handle(env).await })
    });
    let (pstop, pconfig) = (peers_stop.clone(), tconfig);
    tasks.push(tokio::spawn(async move {
        match PeerServer::accepting(&pconfig, handler, accept) {
            Ok(server) => server.serve(peer_listener, pstop).await,
            Err(e) => tracing::error!(error = %e, "peer server"),
        }
    }));
    if let Some(l) = http_listener {
        tasks.push(tokio::spawn(raftkv::http::serve(
            l,
            metrics,
            node.clone(),
            stop_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(raftkv::metrics::poll(
        node.clone(),
        transport.clone(),
        Duration::from_millis(200),
        stop_rx.clone(),
    )));
    tracing::info!(
        id = r.id,
        peers = %r.peer_listen,
        http = ?c.http_addr,
        data = %r.data_dir.display(),
        workers = tokio::runtime::Handle::current().metrics().num_workers(),
        "serving"
    );

    let why = stop_signal().await?;
    tracing::info!(signal = why, "shutting down");
    // Stop accepting and close idle connections; fail what is in flight; let the Raft
    // peer finish its write in flight (every write is synced before it counts).
    let _ = stop_tx.send(true);
    peers_stop.cancel();
    node.kill();
    if tokio::time::timeout(STOP_WAIT, node.raft().stopped())
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
/// whose ports start at `base`; with `etcd`, every node's etcd API address (node 1's
/// first), and the node serves etcd's API instead of the native protocol; with
/// `worker_threads`, that many threads for the node's runtime.
pub fn child_args(
    id: u64,
    n: u64,
    base: u16,
    dir: &std::path::Path,
    etcd: Option<&[String]>,
    worker_threads: Option<usize>,
) -> Vec<String> {
    let port = |off: u64, i: u64| u64::from(base) + off + i;
    let list = |off: u64| {
        (1..=n)
            .map(|i| format!("{i}=127.0.0.1:{}", port(off, i)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut args: Vec<String> = vec![
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
    ];
    if let Some(threads) = worker_threads {
        args.extend(["--worker-threads".into(), threads.to_string()]);
    }
    if let Some(addrs) = etcd {
        let list: Vec<String> = addrs
            .iter()
            .zip(1..)
            .map(|(a, i)| format!("{i}={a}"))
            .collect();
        let mine = usize::try_from(id - 1)
            .ok()
            .and_then(|i| addrs.get(i))
            .cloned()
            .unwrap_or_default();
        args.extend([
            "--etcd-addr".into(),
            mine,
            "--etcd-clients".into(),
            list.join(","),
        ]);
    }
    args
}

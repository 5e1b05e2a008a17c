//! The outbound side: [`TcpTransport`], one long-lived pipelined connection per peer.
//!
//! Each peer has a bounded queue and one task that owns its connection. The task connects
//! lazily (on the first call), writes queued requests in queue order with an id each, and
//! a reader task hands each response to the call with that id, so any number of calls up
//! to the queue depth are in flight on one connection. Frames are written whole and in
//! order by the one writer: a heartbeat queued behind an InstallSnapshot chunk waits for
//! that one frame (at most `max_frame` bytes), never for the rest of the snapshot, which
//! the core sends chunk by chunk as earlier chunks are acknowledged.
//!
//! When a connection attempt fails the task waits (exponential backoff with jitter) and
//! answers every call meanwhile with `None` at once: the core retries on its own
//! schedule, and a dead peer never fills memory.

use crate::backoff::Backoff;
use crate::config::{ConfigError, TransportConfig};
use crate::frame::{send_hello, FrameError, FrameReader, FrameWriter, FramedConn, Hello, Role};
use crate::stats::{bump, Counters, PeerStats};
use crate::wire::{PeerRequest, PeerResponse};
use futures::future::BoxFuture;
use raft_core::{Envelope, NodeId};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

type Reply = oneshot::Sender<Option<Envelope>>;

/// One call waiting to be written.
struct Pending {
    envelope: Envelope,
    reply: Reply,
}

/// What the caller side keeps of one peer.
struct PeerHandle {
    queue: mpsc::Sender<Pending>,
    counters: Arc<Counters>,
}

struct Shared {
    me: NodeId,
    call_timeout: Duration,
    /// The settings every new link is started with (its `peers` are not used).
    config: TransportConfig,
    /// Every peer's handle and address; grows and shrinks with
    /// [`TcpTransport::set_peer`] and [`TcpTransport::remove_peer`].
    peers: RwLock<BTreeMap<NodeId, (PeerHandle, SocketAddr)>>,
    shutdown: CancellationToken,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<NodeId, (PeerHandle, SocketAddr)>> {
        // Every critical section completes its update or changes nothing.
        self.peers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<NodeId, (PeerHandle, SocketAddr)>> {
        self.peers.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task of a link to `id` at `addr` and returns its handle.
    fn start_link(&self, id: NodeId, addr: SocketAddr) -> PeerHandle {
        let (tx, rx) = mpsc::channel(self.config.queue_depth);
        let counters = Arc::new(Counters::default());
        let link = Link {
            peer: id,
            addr,
            config: self.config.clone(),
            counters: counters.clone(),
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(link.run(rx));
        PeerHandle {
            queue: tx,
            counters,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle is gone: close every connection.
        self.shutdown.cancel();
    }
}

/// The real peer transport: framed TCP to every other member of the cluster, implementing
/// [`raft::Transport`]. Cloning gives another handle to the same connections (keep one
/// for [`stats`](Self::stats) while the runtime owns another); dropping the last handle,
/// or [`shutdown`](Self::shutdown), closes them.
#[derive(Clone)]
pub struct TcpTransport {
    shared: Arc<Shared>,
}

impl TcpTransport {
    /// A transport from node `config.node_id` to every other node of `config.peers`.
    /// Starts one idle task per peer (so it must be called inside a tokio runtime); no
    /// connection is made before the first call to that peer.
    pub fn new(config: TransportConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let shared = Shared {
            me: config.node_id,
            call_timeout: config.call_timeout,
            config: config.clone(),
            peers: RwLock::new(BTreeMap::new()),
            shutdown: CancellationToken::new(),
        };
        for (&id, &addr) in &config.peers {
            if id != config.node_id {
                let handle = shared.start_link(id, addr);
                shared.write().insert(id, (handle, addr));
            }
        }
        Ok(TcpTransport {
            shared: Arc::new(shared),
        })
    }

    /// Every peer's counters, by node id.
    pub fn stats(&self) -> BTreeMap<NodeId, PeerStats> {
        self.shared
            .read()
            .iter()
            .map(|(&id, (p, _))| (id, p.counters.snapshot()))
            .collect()
    }

    /// Every peer's address, by node id (this node's own is never in it).
    pub fn peers(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.shared
            .read()
            .iter()
            .map(|(&id, (_, addr))| (id, *addr))
            .collect()
    }

    /// Whether `id` is a peer this transport can call.
    pub fn knows(&self, id: NodeId) -> bool {
        self.shared.read().contains_key(&id)
    }

    /// Makes `id` reachable at `addr` from now on (a membership change added it, or its
    /// address changed). A known peer at the same address is left as it is; at another
    /// address its link is replaced: calls queued on the old one are answered `None`, as
    /// for a lost connection. Its own id is ignored. Must be called inside a tokio runtime.
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        if id == self.shared.me || self.shared.shutdown.is_cancelled() {
            return;
        }
        let mut peers = self.shared.write();
        if peers.get(&id).is_some_and(|(_, a)| *a == addr) {
            return;
        }
        let handle = self.shared.start_link(id, addr);
        // Dropping the old handle closes its queue; its task ends after the call in hand.
        peers.insert(id, (handle, addr));
    }

    /// Forgets `id` (a membership change removed it): its link closes, and later calls to
    /// it return `None` as for any unknown node. Returns whether it was known.
    pub fn remove_peer(&self, id: NodeId) -> bool {
        self.shared.write().remove(&id).is_some()
    }

    /// Closes every connection now; calls made afterwards return `None`.
    pub fn shutdown(&self) {
        self.shared.shutdown.cancel();
    }
}

impl raft::Transport for TcpTransport {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let peers = self.shared.read();
        let Some((peer, _)) = peers.get(&to) else {
            tracing::debug!(peer = to, "call to an unknown peer");
            return Box::pin(async { None });
        };
        if msg.from != self.shared.me || msg.to != to {
            // The receiver would refuse it (and drop the connection): do not send it.
            tracing::warn!(
                peer = to,
                from = msg.from,
                to = msg.to,
                "envelope addressed inconsistently; not sent"
            );
            return Box::pin(async { None });
        }
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            envelope: msg,
            reply: tx,
        };
        if let Err(e) = peer.queue.try_send(pending) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                bump(&peer.counters.dropped_backpressure, 1);
            }
            return Box::pin(async { None });
        }
        drop(peers);
        let timeout = self.shared.call_timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => reply,
                // Timed out, or the connection went away with the call.
                _ => None,
            }
        })
    }
}

/// The task that owns the connection to one peer.
struct Link {
    peer: NodeId,
    addr: SocketAddr,
    config: TransportConfig,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
}

/// Calls written and waiting for their response, by request id, with when they were sent.
type InFlight = Arc<Mutex<HashMap<u64, (Reply, Instant)>>>;

fn lock(
    m: &Mutex<HashMap<u64, (Reply, Instant)>>,
) -> MutexGuard<'_, HashMap<u64, (Reply, Instant)>> {
    // Nothing panics while holding it; if something did, the map is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let mut backoff = Backoff::new(self.config.backoff_initial, self.config.backoff_max);
        let mut next_id = 0u64;
        loop {
            // Connect lazily: only when there is something to send.
            let first = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
            };
            if first.reply.is_closed() {
                continue;
            }
            match self.connect().await {
                Ok(conn) => {
                    backoff.reset();
                    let n = self.counters.connects.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = self.peer, addr = %self.addr, reconnect = n > 0, "connected");
                    self.counters.connected.store(true, Ordering::Relaxed);
                    let (reader, writer) = conn.split();
                    self.serve_connection(reader, writer, first, &mut rx, &mut next_id)
                        .await;
                    self.counters.connected.store(false, Ordering::Relaxed);
                }
                Err(reason) => {
                    bump(&self.counters.connect_failures, 1);
                    tracing::debug!(peer = self.peer, addr = %self.addr, "cannot connect: {reason}");
                    self.unreachable(first);
                    let wait = backoff.next_wait(&mut rand::thread_rng());
                    if !self.fail_fast_for(wait, &mut rx).await {
                        return;
                    }
                }
            }
        }
    }

    fn unreachable(&self, p: Pending) {
        bump(&self.counters.dropped_unreachable, 1);
        let _ = p.reply.send(None);
    }

    /// Waits out a backoff, answering every call meanwhile with `None`. False on shutdown
    /// or when the transport is gone.
    async fn fail_fast_for(&self, wait: Duration, rx: &mut mpsc::Receiver<Pending>) -> bool {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return false,
                _ = &mut sleep => return true,
                m = rx.recv() => match m {
                    Some(p) => self.unreachable(p),
                    None => return false,
                },
            }
        }
    }

    async fn connect(&self) -> Result<FramedConn<OwnedReadHalf, OwnedWriteHalf>, String> {
        let stream = tokio::select! {
            _ = self.shutdown.cancelled() => return Err("shutting down".into()),
            r = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(self.addr)) => match r {
                Err(_) => return Err(format!("no connection within {:?}", self.config.connect_timeout)),
                Ok(Err(e)) => return Err(e.to_string()),
                Ok(Ok(s)) => s,
            },
        };
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut conn = FramedConn::from_tcp(stream, self.config.max_frame);
        let hello = Hello::new(self.config.cluster_id, self.config.node_id, Role::Peer);
        match send_hello(&mut conn, &hello, self.config.handshake_timeout).await {
            Ok(()) => Ok(conn),
            Err(e) => {
                // A refusal is a configuration problem worth an operator's attention.
                tracing::warn!(peer = self.peer, addr = %self.addr, "handshake failed: {e}");
                Err(e.to_string())
            }
        }
    }

    /// Writes calls until the connection breaks, the transport shuts down or is dropped.
    ///
    /// A connection is also given up as dead when a write makes no progress, or the
    /// oldest unanswered request goes unanswered, for twice the call timeout: a peer that
    /// froze or vanished without a FIN would otherwise keep the link forever (TCP notices
    /// only after many minutes), with every call timing out.
    async fn serve_connection(
        &self,
        reader: FrameReader<OwnedReadHalf>,
        mut writer: FrameWriter<OwnedWriteHalf>,
        first: Pending,
        rx: &mut mpsc::Receiver<Pending>,
        next_id: &mut u64,
    ) {
        let dead_after = self.config.call_timeout.saturating_mul(2);
        let in_flight: InFlight = Arc::default();
        let mut read_task = tokio::spawn(read_responses(
            reader,
            in_flight.clone(),
            self.counters.clone(),
            self.peer,
            self.config.node_id,
        ));
        let mut liveness = tokio::time::interval(self.config.call_timeout);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut current = Some(first);
        loop {
            let p = match current.take() {
                Some(p) => p,
                None => tokio::select! {
                    biased;
                    _ = self.shutdown.cancelled() => break,
                    _ = &mut read_task => break,
                    _ = liveness.tick() => {
                        let oldest = lock(&in_flight).values().map(|(_, at)| *at).min();
                        if oldest.is_some_and(|at| at.elapsed() > dead_after) {
                            tracing::warn!(peer = self.peer, "peer stopped answering; dropping the connection");
                            break;
                        }
                        continue;
                    }
                    m = rx.recv() => match m {
                        Some(p) => p,
                        None => break,
                    },
                },
            };
            if p.reply.is_closed() {
                // The caller gave up (timed out) while the call was queued.
                continue;
            }
            *next_id += 1;
            let id = *next_id;
            {
                let mut map = lock(&in_flight);
                // Slots of callers that timed out are freed only by an answer; drop them
                // before the map grows past what the queue allows.
                if map.len() >= 2 * self.config.queue_depth {
                    map.retain(|_, (r, _)| !r.is_closed());
                }
                map.insert(id, (p.reply, Instant::now()));
            }
            let req = PeerRequest {
                id,
                envelope: p.envelope,
            };
            match tokio::time::timeout(dead_after, writer.feed(&req)).await {
                Ok(Ok(n)) => {
                    bump(&self.counters.bytes_sent, n as u64);
                    bump(&self.counters.messages_sent, 1);
                }
                Ok(Err(FrameError::TooLarge { max })) => {
                    tracing::warn!(
                        peer = self.peer,
                        max,
                        "message over the frame limit; not sent"
                    );
                    if let Some((r, _)) = lock(&in_flight).remove(&id) {
                        let _ = r.send(None);
                    }
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::info!(peer = self.peer, "connection lost while writing: {e}");
                    break;
                }
                Err(_) => {
                    tracing::warn!(peer = self.peer, "write stalled; dropping the connection");
                    break;
                }
            }
            // Write a burst with one flush: take what is already queued first.
            match rx.try_recv() {
                Ok(p) => current = Some(p),
                Err(_) => match tokio::time::timeout(dead_after, writer.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::info!(peer = self.peer, "connection lost while writing: {e}");
                        break;
                    }
                    Err(_) => {
                        tracing::warn!(peer = self.peer, "write stalled; dropping the connection");
                        break;
                    }
                },
            }
        }
        read_task.abort();
        // Whatever is still in flight will not be answered on this connection.
        let stranded: Vec<Reply> = lock(&in_flight)
            .drain()
            .map(|(_, (r, _))| r)
            .filter(|r| !r.is_closed())
            .collect();
        bump(&self.counters.dropped_unreachable, stranded.len() as u64);
        for r in stranded {
            let _ = r.send(None);
        }
        if let Some(p) = current {
            self.unreachable(p);
        }
    }
}

/// Hands each response to the call with its id, until the connection ends or misbehaves.
async fn read_responses(
    mut reader: FrameReader<OwnedReadHalf>,
    in_flight: InFlight,
    counters: Arc<Counters>,
    peer: NodeId,
    me: NodeId,
) {
    loop {
        let (resp, n) = match reader.recv_with_len::<PeerResponse>().await {
            Ok(r) => r,
            Err(FrameError::Closed) => {
                tracing::info!(peer, "peer closed the connection");
                return;
            }
            Err(e) => {
                tracing::warn!(peer, "closing the connection: {e}");
                return;
            }
        };
        bump(&counters.bytes_received, n as u64);
        bump(&counters.messages_received, 1);
        if let Some(env) = &resp.envelope {
            if let Err(reason) = check_response(env, peer, me) {
                tracing::warn!(peer, "closing the connection: bad response: {reason}");
                return;
            }
        }
        // An unknown id is the answer to a call that already timed out.
        if let Some((r, _)) = lock(&in_flight).remove(&resp.id) {
            let _ = r.send(resp.envelope);
        }
    }
}

fn check_response(env: &Envelope, peer: NodeId, me: NodeId) -> Result<(), String> {
    if env.from != peer || env.to != me {
        return Err(format!(
            "envelope {} -> {} on the link {peer} -> {me}",
            env.from, env.to
        ));
    }
    if !env.msg.is_response() {
        return Err("a request where a response was expected".into());
    }
    env.msg.validate().map_err(|e| e.to_string())
}

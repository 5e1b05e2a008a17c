//! The network: ends, servers, connections, faults and counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout, Duration};

use crate::observe::{CallEvent, NetObserver, Observer};
use crate::{RpcError, Server};

/// How often an in-flight call checks that its end is still enabled and its server alive.
const LIVENESS_CHECK: Duration = Duration::from_millis(100);

/// A simulated RPC network with the classic lab semantics.
///
/// Cheap to clone (an `Arc` inside); all clones are the same network. See the crate-level
/// documentation for the model and the exact semantics of a call.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Mutex<State>>,
}

/// Everything the network knows, behind one mutex. The lock is never held across an `.await`.
struct State {
    /// The only source of randomness.
    rng: ChaCha8Rng,
    reliable: bool,
    long_delays: bool,
    long_reordering: bool,
    ends: BTreeMap<String, EndState>,
    servers: BTreeMap<String, Arc<ServerInstance>>,
    total_count: u64,
    total_bytes: u64,
    /// Told about every step of every call, when installed.
    observer: Observer,
}

/// Per-end state.
#[derive(Default)]
struct EndState {
    enabled: bool,
    server: Option<String>,
}

/// One registration of a [`Server`] under a name. Identity is the `Arc` allocation.
struct ServerInstance {
    server: Server,
    /// RPCs dispatched to this instance's handlers.
    count: AtomicU64,
}

/// What a call learned about the network at send time.
struct Request {
    end: String,
    method: String,
    args: Bytes,
    /// `Some` if the end was enabled and connected to a registered server.
    target: Option<(String, Arc<ServerInstance>)>,
    reliable: bool,
    long_delays: bool,
    long_reordering: bool,
    /// The call's number (the network's count before it) and the observer, if any.
    id: u64,
    observer: Observer,
}

impl Request {
    /// Tells the observer, if there is one.
    fn tell(&self, event: CallEvent<'_>) {
        if let Some(o) = &self.observer {
            o.on_call(self.id, &self.end, event);
        }
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("Network")
            .field("reliable", &st.reliable)
            .field("long_delays", &st.long_delays)
            .field("long_reordering", &st.long_reordering)
            .field("ends", &st.ends.len())
            .field("servers", &st.servers.keys().collect::<Vec<_>>())
            .field("total_count", &st.total_count)
            .field("total_bytes", &st.total_bytes)
            .finish()
    }
}

impl Network {
    /// Creates an empty network whose randomness all comes from one `ChaCha8Rng` seeded with
    /// `seed`.
    ///
    /// The network starts reliable, without long delays and without long reordering.
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                rng: ChaCha8Rng::seed_from_u64(seed),
                reliable: true,
                long_delays: false,
                long_reordering: false,
                ends: BTreeMap::new(),
                servers: BTreeMap::new(),
                total_count: 0,
                total_bytes: 0,
                observer: None,
            })),
        }
    }

    /// Locks the state. A poisoned lock is recovered: every critical section leaves the state
    /// consistent (none can panic half-way through an update), so poisoning carries no meaning.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs (or, with `None`, removes) the observer told about every step of every
    /// call sent from now on. It changes nothing the network does.
    pub fn set_observer(&self, observer: Option<Arc<dyn NetObserver>>) {
        self.state().observer = observer;
    }

    /// A uniform draw from `[0, n)` (`n` must be positive).
    fn rand_below(&self, n: u64) -> u64 {
        self.state().rng.gen_range(0..n)
    }

    /// Creates a client end named `name`, disabled and not connected.
    ///
    /// Ends are identified by name: if `name` is already known (from an earlier `make_end`,
    /// `connect` or `enable`), its state is kept and the returned handle refers to it. The test
    /// harness gives every restarted peer freshly named ends, so names are normally unique.
    pub fn make_end(&self, name: impl Into<String>) -> ClientEnd {
        let name = name.into();
        self.state().ends.entry(name.clone()).or_default();
        ClientEnd {
            name,
            net: self.clone(),
        }
    }

    /// Connects the end `end_name` to the server named `server_name`.
    ///
    /// The mapping is meant to be made once per end; connecting again re-targets the end (as
    /// in the Go original). The server need not be registered yet: the name is resolved at
    /// each call.
    pub fn connect(&self, end_name: &str, server_name: &str) {
        self.state()
            .ends
            .entry(end_name.to_owned())
            .or_default()
            .server = Some(server_name.to_owned());
    }

    /// Enables or disables the end `end_name`. A disabled end loses every request sent on it,
    /// and calls in flight on it fail at their next liveness check.
    pub fn enable(&self, end_name: &str, enabled: bool) {
        self.state()
            .ends
            .entry(end_name.to_owned())
            .or_default()
            .enabled = enabled;
    }

    /// Whether the end `end_name` is currently enabled (`false` for an unknown end).
    pub fn is_enabled(&self, end_name: &str) -> bool {
        self.state().ends.get(end_name).is_some_and(|e| e.enabled)
    }

    /// Registers `server` under `name` as a new instance with its own RPC count starting at 0.
    ///
    /// If a server was registered under `name`, it is replaced: calls in flight to the old
    /// instance fail and their replies are discarded.
    pub fn add_server(&self, name: impl Into<String>, server: Server) {
        let instance = Arc::new(ServerInstance {
            server,
            count: AtomicU64::new(0),
        });
        self.state().servers.insert(name.into(), instance);
    }

    /// Deletes the server registered under `name`, if any. Calls in flight to it fail and their
    /// replies are discarded; handlers already running keep running to completion.
    pub fn delete_server(&self, name: &str) {
        self.state().servers.remove(name);
    }

    /// Sets whether the network is reliable. When unreliable, each request waits U[0,27) ms
    /// and is then dropped with probability 10%, and each reply is dropped with probability
    /// 10%. Takes effect for calls sent afterwards.
    pub fn set_reliable(&self, reliable: bool) {
        self.state().reliable = reliable;
    }

    /// Sets whether calls on a disabled, unconnected or dead end take U[0,7000) ms to fail
    /// (on) rather than U[0,100) ms (off, the default).
    pub fn set_long_delays(&self, long_delays: bool) {
        self.state().long_delays = long_delays;
    }

    /// Sets whether replies are reordered: with probability 600/900 a reply is delayed by
    /// `200 + U[0, 1 + U[0,2000))` ms. Takes effect for calls sent afterwards.
    pub fn set_long_reordering(&self, long_reordering: bool) {
        self.state().long_reordering = long_reordering;
    }

    /// The number of RPCs sent on the network so far, counted at send time (including calls
    /// on disabled ends and calls that are later dropped).
    pub fn total_count(&self) -> u64 {
        self.state().total_count
    }

    /// The number of bytes carried so far: argument bytes of every call at send time, plus
    /// reply bytes of every reply delivered to a waiting caller.
    pub fn total_bytes(&self) -> u64 {
        self.state().total_bytes
    }

    /// The number of RPCs dispatched to the handlers of the server currently registered under
    /// `server_name` (0 if none is). A replaced server starts again from 0.
    pub fn count(&self, server_name: &str) -> u64 {
        self.state()
            .servers
            .get(server_name)
            .map_or(0, |s| s.count.load(Ordering::Relaxed))
    }

    /// Step 1 of a call, done synchronously at send time: count the RPC and its argument
    /// bytes, and snapshot the end's state and the network's settings.
    fn send(&self, end: &str, method: &str, args: Bytes) -> Request {
        let mut st = self.state();
        let id = st.total_count;
        st.total_count += 1;
        st.total_bytes += args.len() as u64;
        let target = st.ends.get(end).and_then(|e| {
            if !e.enabled {
                return None;
            }
            let server_name = e.server.as_ref()?;
            let instance = st.servers.get(server_name)?;
            Some((server_name.clone(), Arc::clone(instance)))
        });
        Request {
            end: end.to_owned(),
            method: method.to_owned(),
            args,
            target,
            reliable: st.reliable,
            long_delays: st.long_delays,
            long_reordering: st.long_reordering,
            id,
            observer: st.observer.clone(),
        }
    }

    /// True if `end` is disabled or `server_name` no longer names `instance`.
    fn is_server_dead(&self, end: &str, server_name: &str, instance: &Arc<ServerInstance>) -> bool {
        let st = self.state();
        let enabled = st.ends.get(end).is_some_and(|e| e.enabled);
        let same = st
            .servers
            .get(server_name)
            .is_some_and(|s| Arc::ptr_eq(s, instance));
        !enabled || !same
    }

    /// Steps 2 to 8 of a call; runs as its own task. Delivers the outcome on `reply_to` and
    /// counts the reply bytes if the caller is still waiting.
    async fn deliver(self, req: Request, reply_to: oneshot::Sender<Result<Bytes, RpcError>>) {
        let id = req.id;
        let end = req.observer.as_ref().map(|_| req.end.clone());
        let observer = req.observer.clone();
        let outcome = self.process(req).await;
        if let Ok(reply) = &outcome {
            if reply_to.is_closed() {
                if let (Some(o), Some(end)) = (&observer, &end) {
                    o.on_call(id, end, CallEvent::ReplyLost(&RpcError::NoReply));
                }
                return;
            }
            self.state().total_bytes += reply.len() as u64;
            if let (Some(o), Some(end)) = (&observer, &end) {
                o.on_call(id, end, CallEvent::ReplyDelivered);
            }
        }
        // The caller may have given up; then nobody needs the outcome.
        let _ = reply_to.send(outcome);
    }

    async fn process(&self, req: Request) -> Result<Bytes, RpcError> {
        let outcome = self.process_inner(&req).await;
        if let Err(e) = &outcome {
            if matches!(e, RpcError::ServerDead | RpcError::ReplyDropped) {
                req.tell(CallEvent::ReplyLost(e));
            } else {
                req.tell(CallEvent::Failed(e));
            }
        }
        outcome
    }

    async fn process_inner(&self, req: &Request) -> Result<Bytes, RpcError> {
        let Request {
            end,
            method,
            args,
            target,
            reliable,
            long_delays,
            long_reordering,
            ..
        } = req;
        let (reliable, long_delays, long_reordering) = (*reliable, *long_delays, *long_reordering);

        let Some((server_name, instance)) = target else {
            // No reply, and an eventual "timeout".
            let ms = if long_delays {
                self.rand_below(7000)
            } else {
                self.rand_below(100)
            };
            sleep(Duration::from_millis(ms)).await;
            tracing::trace!(%end, %method, "labrpc: unreachable");
            return Err(RpcError::Unreachable);
        };

        if !reliable {
            let ms = self.rand_below(27);
            sleep(Duration::from_millis(ms)).await;
            if self.rand_below(1000) < 100 {
                tracing::trace!(%end, %method, "labrpc: request dropped");
                return Err(RpcError::RequestDropped);
            }
        }

        // Dispatch.
        instance.count.fetch_add(1, Ordering::Relaxed);
        let Some(handler) = instance.server.method(method) else {
            tracing::warn!(%end, %server_name, %method, "labrpc: unknown method");
            return Err(RpcError::NoSuchMethod(method.clone()));
        };
        req.tell(CallEvent::Dispatched);
        // The handler is its own task: it runs to completion even if we stop waiting for it.
        let mut task = tokio::spawn(handler(args.clone()));
        let joined = loop {
            match timeout(LIVENESS_CHECK, &mut task).await {
                Ok(joined) => break Some(joined),
                Err(_elapsed) => {
                    if self.is_server_dead(end, server_name, instance) {
                        break None;
                    }
                }
            }
        };
        // Never acknowledge anything on behalf of a server that has been killed meanwhile.
        let dead = self.is_server_dead(end, server_name, instance);
        let joined = match joined {
            Some(joined) if !dead => joined,
            _ => {
                tracing::trace!(%end, %server_name, %method, "labrpc: server dead");
                return Err(RpcError::ServerDead);
            }
        };
        let reply = match joined {
            Ok(Some(reply)) => {
                req.tell(CallEvent::Replied { reply: &reply });
                reply
            }
            Ok(None) | Err(_) => {
                tracing::trace!(%end, %server_name, %method, "labrpc: handler gave no reply");
                return Err(RpcError::NoReply);
            }
        };

        if !reliable && self.rand_below(1000) < 100 {
            tracing::trace!(%end, %server_name, %method, "labrpc: reply dropped");
            return Err(RpcError::ReplyDropped);
        }
        if long_reordering && self.rand_below(900) < 600 {
            let upper = 1 + self.rand_below(2000);
            let ms = 200 + self.rand_below(upper);
            sleep(Duration::from_millis(ms)).await;
        }
        Ok(reply)
    }
}

/// A client end: one directed "wire" from a caller towards the server it is connected to.
///
/// Cheap to clone; clones are the same end. Its state (enabled, connection) lives in the
/// [`Network`] under its name.
#[derive(Clone, Debug)]
pub struct ClientEnd {
    name: String,
    net: Network,
}

impl ClientEnd {
    /// The end's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a call with already serialized arguments and waits for the serialized reply.
    ///
    /// The request is counted and handed to the network when this future is first polled;
    /// from then on it is processed by its own task, so dropping this future (giving up)
    /// does not stop the request: the handler may still run, as in the Go original. Must be
    /// polled inside a tokio runtime with the time driver enabled.
    pub async fn call_bytes(&self, method: &str, args: Bytes) -> Result<Bytes, RpcError> {
        let req = self.net.send(&self.name, method, args);
        req.tell(CallEvent::Sent {
            method,
            args: &req.args,
            reachable: req.target.is_some(),
        });
        let (tx, rx) = oneshot::channel();
        tokio::spawn(self.net.clone().deliver(req, tx));
        // The sender is only dropped unsent if the runtime shuts the task down.
        rx.await.unwrap_or(Err(RpcError::NoReply))
    }

    /// Sends a typed call: `args` is serialized with postcard, the reply deserialized into
    /// `Resp`. Any `Err` means "no reply" (see [`RpcError`]).
    pub async fn call<Req, Resp>(&self, method: &str, args: &Req) -> Result<Resp, RpcError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let bytes = postcard::to_allocvec(args).map_err(RpcError::Encode)?;
        let reply = self.call_bytes(method, Bytes::from(bytes)).await?;
        postcard::from_bytes(&reply).map_err(RpcError::Decode)
    }
}

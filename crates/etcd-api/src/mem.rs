//! A single-node, in-memory [`EtcdBackend`]: every command applies at once, every read is
//! trivially linearizable. It serves the tests of the whole gRPC surface and shows what a
//! replicated backend does at each step (apply, publish to watchers, time leases).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backend::{EtcdBackend, MemberInfo, NodeIds, NodeStatus, ReadConsistency};
use crate::lease_clock::LeaseClock;
use crate::store::{Applied, Command, CommandOutput, Store, StoreConfig};
use crate::watch_hub::{WatchFeed, WatchHub};
use crate::EtcdError;

/// How many revisions a watcher may fall behind before it re-reads from the history.
const WATCH_QUEUE: usize = 1024;

struct State {
    store: Store,
    hub: WatchHub,
    clock: LeaseClock,
    applied_index: u64,
    client_urls: Vec<String>,
}

/// The in-memory backend. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct MemBackend {
    state: Arc<Mutex<State>>,
    ids: NodeIds,
}

impl MemBackend {
    /// An empty store with `config`, as member 1 of cluster 1 in term 1.
    pub fn new(config: StoreConfig) -> Self {
        MemBackend {
            state: Arc::new(Mutex::new(State {
                store: Store::new(config),
                hub: WatchHub::new(WATCH_QUEUE),
                clock: LeaseClock::new(),
                applied_index: 0,
                client_urls: Vec::new(),
            })),
            ids: NodeIds {
                cluster_id: 1,
                member_id: 1,
                raft_term: 1,
            },
        }
    }

    /// Lets each watcher fall at most `n` revisions behind before it is dropped and
    /// re-reads from the history (default 1024); for tests of that path.
    pub fn with_watch_queue(self, n: usize) -> Self {
        self.lock().hub = WatchHub::new(n);
        self
    }

    /// Sets the client URLs `MemberList` reports (known once the listener is bound).
    pub fn set_client_urls(&self, urls: Vec<String>) {
        self.lock().client_urls = urls;
    }

    /// A copy of the store, for tests.
    pub fn store(&self) -> Store {
        self.lock().store.clone()
    }

    /// Proposes the expiry of every lease whose deadline passed; returns how many.
    pub fn expire_due_leases(&self) -> usize {
        let due = {
            let mut st = self.lock();
            let due = st.clock.expired(Instant::now());
            for id in &due {
                st.clock.remove(*id);
            }
            due
        };
        for id in &due {
            // A lease revoked meanwhile answers LeaseNotFound: nothing left to do.
            let _ = self.apply(Command::LeaseExpire { id: *id });
        }
        due.len()
    }

    /// Runs [`MemBackend::expire_due_leases`] every `period` until the backend is dropped.
    pub fn spawn_lease_expiry(&self, period: Duration) -> JoinHandle<()> {
        let weak: Weak<Mutex<State>> = Arc::downgrade(&self.state);
        let ids = self.ids;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(state) = weak.upgrade() else { return };
                MemBackend { state, ids }.expire_due_leases();
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the store half-changed (apply
        // completes or fails as a whole), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, command: Command) -> Applied {
        let mut st = self.lock();
        st.applied_index += 1;
        let applied = st.store.apply(&command);
        if let Some(group) = &applied.events {
            st.hub.publish(group);
        }
        match (&command, &applied.output) {
            (_, Ok(CommandOutput::LeaseGrant { id, ttl })) => {
                st.clock.renew(*id, *ttl, Instant::now())
            }
            (Command::LeaseRevoke { id } | Command::LeaseExpire { id }, _) => st.clock.remove(*id),
            _ => {}
        }
        applied
    }
}

impl EtcdBackend for MemBackend {
    async fn propose(&self, command: Command) -> Result<Applied, EtcdError> {
        Ok(self.apply(command))
    }

    async fn read<R, F>(&self, _consistency: ReadConsistency, f: F) -> Result<R, EtcdError>
    where
        F: FnOnce(&Store) -> R + Send + 'static,
        R: Send + 'static,
    {
        Ok(f(&self.lock().store))
    }

    async fn watch(&self, start_revision: i64) -> Result<WatchFeed, EtcdError> {
        let mut st = self.lock();
        let State { store, hub, .. } = &mut *st;
        hub.subscribe(store, start_revision)
    }

    async fn lease_keep_alive(&self, id: i64) -> Result<i64, EtcdError> {
        let mut st = self.lock();
        let ttl = st.store.lease(id).ok_or(EtcdError::LeaseNotFound)?.ttl;
        if !st.clock.contains(id) {
            // Expiry already proposed: too late to renew.
            return Err(EtcdError::LeaseNotFound);
        }
        st.clock.renew(id, ttl, Instant::now());
        Ok(ttl)
    }

    async fn lease_remaining(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        Ok(self.lock().clock.remaining(id, Instant::now()))
    }

    fn node_ids(&self) -> NodeIds {
        self.ids
    }

    async fn members(&self) -> Result<Vec<MemberInfo>, EtcdError> {
        Ok(vec![MemberInfo {
            id: self.ids.member_id,
            name: "mem".into(),
            peer_urls: Vec::new(),
            client_urls: self.lock().client_urls.clone(),
            is_learner: false,
        }])
    }

    async fn status(&self) -> Result<NodeStatus, EtcdError> {
        let st = self.lock();
        Ok(NodeStatus {
            version: crate::service::API_VERSION.into(),
            db_size: i64::try_from(st.store.approximate_size()).unwrap_or(i64::MAX),
            leader: self.ids.member_id,
            raft_index: st.applied_index,
            raft_term: self.ids.raft_term,
            raft_applied_index: st.applied_index,
            errors: Vec::new(),
            is_learner: false,
        })
    }
}

//! The revision-model state machine: etcd's key/value store semantics, pure and
//! deterministic (no I/O, no clock), serializable as a whole for snapshots.
//!
//! A cluster-wide revision starts at 1 and grows by one with every command that changes at
//! least one key; all changes of one transaction share its revision. Every key carries its
//! create revision, mod revision and version. A bounded window of recent changes is kept,
//! so that watchers can start at a past revision and ranges can read one; older revisions
//! answer etcd's "compacted" error.

mod keys;
mod range;
mod txn;
pub mod types;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::EtcdError;
use keys::KeyRange;
pub use types::*;

/// etcd's largest lease TTL in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// The store's tunables. Part of the replicated state: every replica must use the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// How many recent revisions of changes to keep for watches and past reads.
    pub history_limit: usize,
    /// The shortest lease TTL granted, in seconds (shorter requests are raised to it, as
    /// etcd does).
    pub min_lease_ttl: i64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            history_limit: 10_000,
            min_lease_ttl: 2,
        }
    }
}

/// A lease as the replicated state knows it: its TTL and the keys attached to it. When it
/// expires is the leader's business (see [`crate::lease_clock`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The granted TTL in seconds.
    pub ttl: i64,
    /// The keys attached to it.
    pub keys: BTreeSet<Vec<u8>>,
}

/// The key/value store with etcd's revision model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    config: StoreConfig,
    revision: i64,
    compact_revision: i64,
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    leases: BTreeMap<i64, Lease>,
    next_lease_id: i64,
    /// The changes of the most recent revisions, oldest first, one entry per revision;
    /// every revision from `compact_revision` (if above 0) to `revision` is present.
    history: VecDeque<RevisionEvents>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(StoreConfig::default())
    }
}

impl Store {
    /// An empty store at revision 1 (etcd's first revision; the first write makes 2).
    pub fn new(config: StoreConfig) -> Self {
        Store {
            config,
            revision: 1,
            compact_revision: 0,
            kvs: BTreeMap::new(),
            leases: BTreeMap::new(),
            next_lease_id: 1,
            history: VecDeque::new(),
        }
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The oldest revision still readable and watchable (0: nothing forgotten yet).
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// The number of live keys.
    pub fn len(&self) -> usize {
        self.kvs.len()
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.kvs.is_empty()
    }

    /// A key's current state.
    pub fn get(&self, key: &[u8]) -> Option<&KeyValue> {
        self.kvs.get(key)
    }

    /// A lease, if it exists.
    pub fn lease(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Every lease, by ID.
    pub fn leases(&self) -> impl Iterator<Item = (i64, &Lease)> {
        self.leases.iter().map(|(id, l)| (*id, l))
    }

    /// A rough size of the stored data in bytes (keys, values, history), for `Status`.
    pub fn approximate_size(&self) -> usize {
        let kv = |kv: &KeyValue| kv.key.len() + kv.value.len() + 40;
        let live: usize = self.kvs.values().map(kv).sum();
        let history: usize = self
            .history
            .iter()
            .flat_map(|g| &g.events)
            .map(|e| kv(&e.kv) + e.prev_kv.as_ref().map_or(0, kv))
            .sum();
        live + history
    }

    /// The changes of every revision from `from` on, oldest first, for a watcher starting
    /// there. Fails with `Compacted` when `from` is older than the window.
    pub fn history_from(&self, from: i64) -> Result<Vec<Arc<RevisionEvents>>, EtcdError> {
        if from < self.compact_revision {
            return Err(EtcdError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        let skip = self.history.partition_point(|g| g.revision < from);
        Ok(self
            .history
            .iter()
            .skip(skip)
            .map(|g| Arc::new(g.clone()))
            .collect())
    }

    /// Applies one command: every replica applying the same commands in the same order
    /// from the same state reaches the same state and the same outputs. A command that
    /// fails changes nothing.
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        let mut w = Write::new(self);
        let output = w.run(cmd);
        let events = w.finish();
        Applied {
            revision: self.revision,
            output,
            events,
        }
    }

    fn push_history(&mut self, group: RevisionEvents) {
        self.history.push_back(group);
        while self.history.len() > self.config.history_limit.max(1) {
            self.history.pop_front();
            if let Some(front) = self.history.front() {
                self.compact_revision = self.compact_revision.max(front.revision);
            }
        }
    }

    fn compact(&mut self, revision: i64) -> Result<CommandOutput, EtcdError> {
        if revision > self.revision {
            return Err(EtcdError::FutureRevision);
        }
        if revision <= self.compact_revision {
            return Err(EtcdError::Compacted {
                compact_revision: self.compact_revision,
            });
        }
        self.compact_revision = revision;
        while self.history.front().is_some_and(|g| g.revision < revision) {
            self.history.pop_front();
        }
        Ok(CommandOutput::Compact)
    }

    fn grant(&mut self, id: i64, ttl: i64) -> Result<CommandOutput, EtcdError> {
        if ttl > MAX_LEASE_TTL {
            return Err(EtcdError::LeaseTtlTooLarge);
        }
        let id = if id == 0 {
            while self.leases.contains_key(&self.next_lease_id) {
                self.next_lease_id += 1;
            }
            self.next_lease_id
        } else {
            id
        };
        if self.leases.contains_key(&id) {
            return Err(EtcdError::LeaseExists);
        }
        let ttl = ttl.max(self.config.min_lease_ttl);
        self.leases.insert(
            id,
            Lease {
                ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(CommandOutput::LeaseGrant { id, ttl })
    }
}

/// One command in progress: its changes share the revision after the store's current one.
struct Write<'s> {
    store: &'s mut Store,
    events: Vec<Event>,
}

impl<'s> Write<'s> {
    fn new(store: &'s mut Store) -> Self {
        Write {
            store,
            events: Vec::new(),
        }
    }

    /// The revision this command's changes get.
    fn rev(&self) -> i64 {
        self.store.revision + 1
    }

    fn run(&mut self, cmd: &Command) -> Result<CommandOutput, EtcdError> {
        validate::check_command(cmd, usize::MAX)?;
        match cmd {
            Command::Put(p) => {
                self.check_lease(p.lease)?;
                Ok(CommandOutput::Put(self.put(p)))
            }
            Command::DeleteRange(d) => Ok(CommandOutput::DeleteRange(self.delete(d))),
            Command::Txn(t) => self.txn(t).map(CommandOutput::Txn),
            Command::Compact { revision } => self.store.compact(*revision),
            Command::LeaseGrant { id, ttl } => self.store.grant(*id, *ttl),
            Command::LeaseRevoke { id } | Command::LeaseExpire { id } => {
                let lease = self
                    .store
                    .leases
                    .remove(id)
                    .ok_or(EtcdError::LeaseNotFound)?;
                for key in lease.keys {
                    self.delete_key(&key);
                }
                Ok(CommandOutput::LeaseRevoke)
            }
        }
    }

    fn check_lease(&self, lease: i64) -> Result<(), EtcdError> {
        if lease != 0 && !self.store.leases.contains_key(&lease) {
            return Err(EtcdError::LeaseNotFound);
        }
        Ok(())
    }

    /// Writes one key; the lease was checked by the caller.
    fn put(&mut self, p: &PutRequest) -> PutResult {
        let rev = self.rev();
        let prev = self.store.kvs.get(&p.key).cloned();
        let (create_revision, version) = match &prev {
            Some(old) => (old.create_revision, old.version + 1),
            None => (rev, 1),
        };
        if let Some(old) = &prev {
            if old.lease != 0 && old.lease != p.lease {
                if let Some(l) = self.store.leases.get_mut(&old.lease) {
                    l.keys.remove(&p.key);
                }
            }
        }
        if let Some(l) = self.store.leases.get_mut(&p.lease) {
            l.keys.insert(p.key.clone());
        }
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision,
            mod_revision: rev,
            version,
            value: p.value.clone(),
            lease: p.lease,
        };
        self.store.kvs.insert(p.key.clone(), kv.clone());
        self.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
        });
        PutResult {
            prev_kv: if p.prev_kv { prev } else { None },
        }
    }

    fn delete(&mut self, d: &DeleteRequest) -> DeleteResult {
        let keys: Vec<Vec<u8>> = KeyRange::new(&d.key, &d.range_end)
            .scan(&self.store.kvs)
            .map(|(k, _)| k.clone())
            .collect();
        let mut result = DeleteResult::default();
        for k in keys {
            if let Some(old) = self.delete_key(&k) {
                result.deleted += 1;
                if d.prev_kv {
                    result.prev_kvs.push(old);
                }
            }
        }
        result
    }

    fn delete_key(&mut self, key: &[u8]) -> Option<KeyValue> {
        let old = self.store.kvs.remove(key)?;
        if let Some(l) = self.store.leases.get_mut(&old.lease) {
            l.keys.remove(key);
        }
        self.events.push(Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: self.rev(),
                ..KeyValue::default()
            },
            prev_kv: Some(old.clone()),
        });
        Some(old)
    }

    /// Closes the command: if it changed a key, the revision advances and its changes
    /// join the history.
    fn finish(self) -> Option<Arc<RevisionEvents>> {
        if self.events.is_empty() {
            return None;
        }
        let revision = self.rev();
        self.store.revision = revision;
        let group = RevisionEvents {
            revision,
            events: self.events,
        };
        let shared = Arc::new(group.clone());
        self.store.push_history(group);
        Some(shared)
    }
}

/// Whether `k` lies in the etcd key range `key`/`range_end` (empty end: the single key
/// `key`; `[0]`: every key from `key` on).
pub fn key_in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    KeyRange::new(key, range_end).contains(k)
}

#[cfg(test)]
mod tests;

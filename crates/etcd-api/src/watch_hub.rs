//! Fan-out of applied changes to watchers: a subscriber gets the retained history from its
//! start revision, then every new revision, with neither gap nor repeat, provided the
//! subscription and the publishing happen under the lock that applies commands.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::store::{RevisionEvents, Store};
use crate::EtcdError;

/// One subscriber's stream of revisions.
#[derive(Debug)]
pub struct WatchFeed {
    current_revision: i64,
    backlog: VecDeque<Arc<RevisionEvents>>,
    live: mpsc::Receiver<Arc<RevisionEvents>>,
}

impl WatchFeed {
    /// The store's revision when the feed was opened.
    pub fn current_revision(&self) -> i64 {
        self.current_revision
    }

    /// The next revision's changes. `None` when the feed is closed: the subscriber fell
    /// too far behind (the hub dropped it rather than block the apply loop) or the
    /// server stopped; the watcher re-subscribes from the revision after its last one.
    pub async fn next(&mut self) -> Option<Arc<RevisionEvents>> {
        if let Some(g) = self.backlog.pop_front() {
            return Some(g);
        }
        self.live.recv().await
    }
}

/// The set of live subscribers.
#[derive(Debug)]
pub struct WatchHub {
    subscribers: Vec<mpsc::Sender<Arc<RevisionEvents>>>,
    capacity: usize,
}

impl WatchHub {
    /// A hub whose subscribers may each fall `capacity` revisions behind before they are
    /// dropped (and re-subscribe from the store's history).
    pub fn new(capacity: usize) -> Self {
        WatchHub {
            subscribers: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Opens a feed of every revision from `start_revision` (0 or less: the next one).
    /// Call it under the same lock as [`WatchHub::publish`] and the store's apply.
    pub fn subscribe(
        &mut self,
        store: &Store,
        start_revision: i64,
    ) -> Result<WatchFeed, EtcdError> {
        let from = if start_revision <= 0 {
            store.revision() + 1
        } else {
            start_revision
        };
        let backlog = store.history_from(from)?.into();
        let (tx, live) = mpsc::channel(self.capacity);
        self.subscribers.push(tx);
        Ok(WatchFeed {
            current_revision: store.revision(),
            backlog,
            live,
        })
    }

    /// Hands a revision's changes to every subscriber, never blocking: a subscriber whose
    /// queue is full or that went away is dropped.
    pub fn publish(&mut self, group: &Arc<RevisionEvents>) {
        self.subscribers
            .retain(|tx| tx.try_send(Arc::clone(group)).is_ok());
    }

    /// The number of live subscribers.
    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    /// Whether there is no subscriber.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }
}

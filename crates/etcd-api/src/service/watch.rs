//! The Watch service: one bidirectional stream carries many watchers. Each watcher reads a
//! feed of every revision from its start, filters it to its keys, and sends its events in
//! revision order, exactly once; when its feed is dropped for falling behind, it picks up
//! again from the store's history at the revision after its last.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{header, ServiceConfig};
use crate::backend::{EtcdBackend, ReadConsistency};
use crate::convert;
use crate::proto::etcdserverpb as pb;
use crate::store::{Event, EventKind};
use crate::watch_hub::WatchFeed;
use crate::EtcdError;

/// etcd's `Watch` service over a backend.
pub struct WatchService<B> {
    backend: Arc<B>,
    config: Arc<ServiceConfig>,
}

impl<B: EtcdBackend> WatchService<B> {
    /// The service over `backend`.
    pub fn new(backend: Arc<B>, config: Arc<ServiceConfig>) -> Self {
        WatchService { backend, config }
    }
}

type Out = mpsc::Sender<Result<pb::WatchResponse, Status>>;
type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<B: EtcdBackend> pb::watch_server::Watch for WatchService<B> {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (tx, rx) = mpsc::channel(128);
        let stream = WatchSession::new(self.backend.clone(), self.config.clone(), tx);
        tokio::spawn(stream.run(request.into_inner()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// What one watcher wants.
#[derive(Clone)]
struct Spec {
    key: Vec<u8>,
    range_end: Vec<u8>,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    progress_notify: bool,
}

impl Spec {
    fn wants(&self, e: &Event) -> bool {
        let kind_ok = match e.kind {
            EventKind::Put => !self.no_put,
            EventKind::Delete => !self.no_delete,
        };
        kind_ok && crate::store::key_in_range(&e.kv.key, &self.key, &self.range_end)
    }
}

struct Watcher {
    task: JoinHandle<()>,
    /// Every revision up to this one has been delivered (or filtered out).
    delivered: Arc<AtomicI64>,
}

/// One gRPC watch stream and its watchers.
struct WatchSession<B> {
    backend: Arc<B>,
    config: Arc<ServiceConfig>,
    out: Out,
    watchers: BTreeMap<i64, Watcher>,
    next_id: i64,
}

impl<B: EtcdBackend> WatchSession<B> {
    fn new(backend: Arc<B>, config: Arc<ServiceConfig>, out: Out) -> Self {
        WatchSession {
            backend,
            config,
            out,
            watchers: BTreeMap::new(),
            next_id: 0,
        }
    }

    fn response(&self, watch_id: i64, revision: i64) -> pb::WatchResponse {
        pb::WatchResponse {
            header: Some(header(&*self.backend, revision)),
            watch_id,
            ..Default::default()
        }
    }

    async fn send(&self, r: pb::WatchResponse) -> bool {
        self.out.send(Ok(r)).await.is_ok()
    }

    async fn current_revision(&self) -> i64 {
        self.backend
            .read(ReadConsistency::Serializable, |s| s.revision())
            .await
            .unwrap_or(0)
    }

    async fn run(mut self, mut requests: Streaming<pb::WatchRequest>) {
        use pb::watch_request::RequestUnion;
        while let Ok(Some(req)) = requests.message().await {
            // A watcher that ended by itself (canceled by a compaction while catching up)
            // must not hold back progress answers, and frees its ID.
            self.watchers.retain(|_, w| !w.task.is_finished());
            let alive = match req.request_union {
                Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
                Some(RequestUnion::CancelRequest(c)) => self.cancel(c.watch_id).await,
                Some(RequestUnion::ProgressRequest(_)) => self.progress().await,
                None => true,
            };
            if !alive {
                break;
            }
        }
        for w in self.watchers.values() {
            w.task.abort();
        }
    }

    async fn create(&mut self, c: pb::WatchCreateRequest) -> bool {
        use pb::watch_create_request::FilterType;
        let id = if c.watch_id != 0 {
            c.watch_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id
        };
        if self.watchers.contains_key(&id) {
            let mut r = self.response(id, self.current_revision().await);
            r.created = true;
            r.canceled = true;
            r.cancel_reason = "etcdserver: duplicate watch ID provided".into();
            return self.send(r).await;
        }
        if c.key.is_empty() {
            let mut r = self.response(id, self.current_revision().await);
            r.created = true;
            r.canceled = true;
            r.cancel_reason = EtcdError::EmptyKey.to_string();
            return self.send(r).await;
        }
        let spec = Spec {
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
            key: c.key,
            range_end: c.range_end,
            prev_kv: c.prev_kv,
            progress_notify: c.progress_notify,
        };
        let feed = self.backend.watch(c.start_revision).await;
        let current = match &feed {
            Ok(f) => f.current_revision(),
            Err(_) => self.current_revision().await,
        };
        let mut created = self.response(id, current);
        created.created = true;
        if !self.send(created).await {
            return false;
        }
        let feed = match feed {
            Ok(feed) => feed,
            Err(e) => {
                return self
                    .send(cancel_response(&*self.backend, id, current, &e))
                    .await
            }
        };
        let next = if c.start_revision > 0 {
            c.start_revision
        } else {
            current + 1
        };
        let delivered = Arc::new(AtomicI64::new((next - 1).min(current)));
        let task = tokio::spawn(run_watcher(
            self.backend.clone(),
            self.config.clone(),
            id,
            spec,
            feed,
            next,
            self.out.clone(),
            delivered.clone(),
        ));
        self.watchers.insert(id, Watcher { task, delivered });
        if c.watch_id == 0 {
            self.next_id = id + 1;
        }
        true
    }

    async fn cancel(&mut self, id: i64) -> bool {
        let Some(w) = self.watchers.remove(&id) else {
            return true;
        };
        w.task.abort();
        let mut r = self.response(id, self.current_revision().await);
        r.canceled = true;
        self.send(r).await
    }

    /// etcd 3.5's answer to a progress request: one response with watch ID -1 whose
    /// revision every watcher of the stream has caught up with.
    async fn progress(&mut self) -> bool {
        let revision = match self
            .watchers
            .values()
            .map(|w| w.delivered.load(Ordering::Acquire))
            .min()
        {
            Some(r) => r,
            None => self.current_revision().await,
        };
        self.send(self.response(-1, revision)).await
    }
}

fn cancel_response<B: EtcdBackend>(
    backend: &B,
    id: i64,
    revision: i64,
    e: &EtcdError,
) -> pb::WatchResponse {
    let mut r = pb::WatchResponse {
        header: Some(header(backend, revision)),
        watch_id: id,
        canceled: true,
        ..Default::default()
    };
    match e {
        EtcdError::Compacted { compact_revision } => r.compact_revision = *compact_revision,
        other => r.cancel_reason = other.to_string(),
    }
    r
}

#[allow(clippy::too_many_arguments)]
async fn run_watcher<B: EtcdBackend>(
    backend: Arc<B>,
    config: Arc<ServiceConfig>,
    id: i64,
    spec: Spec,
    mut feed: WatchFeed,
    mut next: i64,
    out: Out,
    delivered: Arc<AtomicI64>,
) {
    // tokio's interval panics on a zero period.
    let period = config
        .progress_notify_interval
        .max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        tokio::select! {
            biased;
            group = feed.next() => {
                let Some(group) = group else {
                    // Dropped for falling behind: catch up from the history.
                    tracing::debug!(watch_id = id, from = next, "watcher fell behind; re-reading history");
                    match backend.watch(next).await {
                        Ok(f) => feed = f,
                        Err(e) => {
                            let _ = out.send(Ok(cancel_response(&*backend, id, next - 1, &e))).await;
                            return;
                        }
                    }
                    continue;
                };
                if group.revision < next {
                    continue;
                }
                next = group.revision + 1;
                let events: Vec<_> = group
                    .events
                    .iter()
                    .filter(|e| spec.wants(e))
                    .map(|e| convert::event(e, spec.prev_kv))
                    .collect();
                if !events.is_empty() {
                    let r = pb::WatchResponse {
                        header: Some(header(&*backend, group.revision)),
                        watch_id: id,
                        events,
                        ..Default::default()
                    };
                    if out.send(Ok(r)).await.is_err() {
                        return;
                    }
                }
                // Published only after the events are queued, so a progress answer
                // never claims a revision whose events are still to come.
                delivered.store(group.revision, Ordering::Release);
            }
            _ = ticker.tick(), if spec.progress_notify => {
                let r = pb::WatchResponse {
                    header: Some(header(&*backend, delivered.load(Ordering::Acquire))),
                    watch_id: id,
                    ..Default::default()
                };
                if out.send(Ok(r)).await.is_err() {
                    return;
                }
            }
        }
    }
}

//! The Lease service: Grant, Revoke, KeepAlive (a stream), TimeToLive, Leases.

use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::header;
use crate::backend::{EtcdBackend, ReadConsistency};
use crate::proto::etcdserverpb as pb;
use crate::store::{Command, CommandOutput};
use crate::EtcdError;

/// etcd's `Lease` service over a backend.
pub struct LeaseService<B> {
    backend: Arc<B>,
}

impl<B: EtcdBackend> LeaseService<B> {
    /// The service over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        LeaseService { backend }
    }
}

type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<B: EtcdBackend> pb::lease_server::Lease for LeaseService<B> {
    async fn lease_grant(
        &self,
        request: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        let r = request.into_inner();
        let applied = self
            .backend
            .propose(Command::LeaseGrant {
                id: r.id,
                ttl: r.ttl,
            })
            .await?;
        match applied.output? {
            CommandOutput::LeaseGrant { id, ttl } => Ok(Response::new(pb::LeaseGrantResponse {
                header: Some(header(&*self.backend, applied.revision)),
                id,
                ttl,
                error: String::new(),
            })),
            other => Err(Status::internal(format!(
                "etcdserver: unexpected output {other:?}"
            ))),
        }
    }

    async fn lease_revoke(
        &self,
        request: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        let id = request.into_inner().id;
        let applied = self.backend.propose(Command::LeaseRevoke { id }).await?;
        applied.output?;
        Ok(Response::new(pb::LeaseRevokeResponse {
            header: Some(header(&*self.backend, applied.revision)),
        }))
    }

    type LeaseKeepAliveStream = KeepAliveStream;

    async fn lease_keep_alive(
        &self,
        request: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut requests = request.into_inner();
        let backend = self.backend.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok(Some(req)) = requests.message().await {
                // etcd answers an unknown lease with TTL 0 rather than an error.
                let ttl = match backend.lease_keep_alive(req.id).await {
                    Ok(ttl) => ttl,
                    Err(EtcdError::LeaseNotFound) => 0,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                let revision = backend
                    .read(ReadConsistency::Serializable, |s| s.revision())
                    .await
                    .unwrap_or(0);
                let resp = pb::LeaseKeepAliveResponse {
                    header: Some(header(&*backend, revision)),
                    id: req.id,
                    ttl,
                };
                if tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        request: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        let r = request.into_inner();
        let id = r.id;
        let found = self
            .backend
            .read(ReadConsistency::Linearizable, move |s| {
                let lease = s.lease(id).map(|l| {
                    let keys = if r.keys {
                        l.keys.iter().cloned().collect()
                    } else {
                        Vec::new()
                    };
                    (l.ttl, keys)
                });
                (s.revision(), lease)
            })
            .await?;
        let (revision, lease) = found;
        let h = Some(header(&*self.backend, revision));
        let Some((granted_ttl, keys)) = lease else {
            // etcd reports a lease that does not exist as TTL -1, not as an error.
            return Ok(Response::new(pb::LeaseTimeToLiveResponse {
                header: h,
                id,
                ttl: -1,
                granted_ttl: 0,
                keys: Vec::new(),
            }));
        };
        let ttl = self
            .backend
            .lease_remaining(id)
            .await?
            .unwrap_or(granted_ttl);
        Ok(Response::new(pb::LeaseTimeToLiveResponse {
            header: h,
            id,
            ttl,
            granted_ttl,
            keys,
        }))
    }

    async fn lease_leases(
        &self,
        _request: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        let (revision, ids) = self
            .backend
            .read(ReadConsistency::Linearizable, |s| {
                (
                    s.revision(),
                    s.leases().map(|(id, _)| id).collect::<Vec<_>>(),
                )
            })
            .await?;
        Ok(Response::new(pb::LeaseLeasesResponse {
            header: Some(header(&*self.backend, revision)),
            leases: ids.into_iter().map(|id| pb::LeaseStatus { id }).collect(),
        }))
    }
}

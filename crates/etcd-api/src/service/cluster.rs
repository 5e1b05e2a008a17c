//! The Cluster service (MemberList) and the Maintenance service (Status, Alarm).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::header;
use crate::backend::{EtcdBackend, ReadConsistency};
use crate::proto::etcdserverpb as pb;
use crate::EtcdError;

/// etcd's `Cluster` service over a backend (membership changes are not offered yet).
pub struct ClusterService<B> {
    backend: Arc<B>,
}

impl<B: EtcdBackend> ClusterService<B> {
    /// The service over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        ClusterService { backend }
    }
}

#[tonic::async_trait]
impl<B: EtcdBackend> pb::cluster_server::Cluster for ClusterService<B> {
    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let members = self.backend.members().await?;
        let revision = self
            .backend
            .read(ReadConsistency::Serializable, |s| s.revision())
            .await?;
        Ok(Response::new(pb::MemberListResponse {
            header: Some(header(&*self.backend, revision)),
            members: members
                .into_iter()
                .map(|m| pb::Member {
                    id: m.id,
                    name: m.name,
                    peer_ur_ls: m.peer_urls,
                    client_ur_ls: m.client_urls,
                    is_learner: m.is_learner,
                })
                .collect(),
        }))
    }
}

/// etcd's `Maintenance` service over a backend: Status, and Alarm's GET (there are never
/// alarms: this server has no space quota), which `etcdctl endpoint health` asks for.
pub struct MaintenanceService<B> {
    backend: Arc<B>,
}

impl<B: EtcdBackend> MaintenanceService<B> {
    /// The service over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        MaintenanceService { backend }
    }
}

#[tonic::async_trait]
impl<B: EtcdBackend> pb::maintenance_server::Maintenance for MaintenanceService<B> {
    async fn alarm(
        &self,
        request: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        if request.get_ref().action() != pb::alarm_request::AlarmAction::Get {
            return Err(EtcdError::Unimplemented(
                "etcdserver: only alarm GET is supported (this server raises no alarms)".into(),
            )
            .into());
        }
        let revision = self
            .backend
            .read(ReadConsistency::Serializable, |s| s.revision())
            .await?;
        Ok(Response::new(pb::AlarmResponse {
            header: Some(header(&*self.backend, revision)),
            alarms: Vec::new(),
        }))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let st = self.backend.status().await?;
        let revision = self
            .backend
            .read(ReadConsistency::Serializable, |s| s.revision())
            .await?;
        Ok(Response::new(pb::StatusResponse {
            header: Some(header(&*self.backend, revision)),
            version: st.version,
            db_size: st.db_size,
            leader: st.leader,
            raft_index: st.raft_index,
            raft_term: st.raft_term,
            raft_applied_index: st.raft_applied_index,
            errors: st.errors,
            db_size_in_use: st.db_size,
            is_learner: st.is_learner,
        }))
    }
}

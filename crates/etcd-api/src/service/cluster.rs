//! The Cluster service (MemberList, MemberAdd, MemberRemove, MemberPromote; MemberUpdate
//! answers Unimplemented) and the Maintenance service (Status, Alarm).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::header;
use crate::backend::{EtcdBackend, MemberInfo, ReadConsistency};
use crate::proto::etcdserverpb as pb;
use crate::EtcdError;

/// etcd's `Cluster` service over a backend; the backend decides which membership changes
/// it makes (see [`EtcdBackend::member_add`]).
pub struct ClusterService<B> {
    backend: Arc<B>,
}

impl<B: EtcdBackend> ClusterService<B> {
    /// The service over `backend`.
    pub fn new(backend: Arc<B>) -> Self {
        ClusterService { backend }
    }

    async fn header(&self) -> Result<pb::ResponseHeader, Status> {
        let revision = self
            .backend
            .read(ReadConsistency::Serializable, |s| s.revision())
            .await?;
        Ok(header(&*self.backend, revision))
    }
}

fn member(m: MemberInfo) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.name,
        peer_ur_ls: m.peer_urls,
        client_ur_ls: m.client_urls,
        is_learner: m.is_learner,
    }
}

#[tonic::async_trait]
impl<B: EtcdBackend> pb::cluster_server::Cluster for ClusterService<B> {
    async fn member_list(
        &self,
        _request: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        let members = self.backend.members().await?;
        Ok(Response::new(pb::MemberListResponse {
            header: Some(self.header().await?),
            members: members.into_iter().map(member).collect(),
        }))
    }

    async fn member_add(
        &self,
        request: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        let r = request.into_inner();
        let (added, members) = self.backend.member_add(r.peer_ur_ls, r.is_learner).await?;
        Ok(Response::new(pb::MemberAddResponse {
            header: Some(self.header().await?),
            member: Some(member(added)),
            members: members.into_iter().map(member).collect(),
        }))
    }

    async fn member_remove(
        &self,
        request: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        let members = self.backend.member_remove(request.get_ref().id).await?;
        Ok(Response::new(pb::MemberRemoveResponse {
            header: Some(self.header().await?),
            members: members.into_iter().map(member).collect(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        let members = self.backend.member_promote(request.get_ref().id).await?;
        Ok(Response::new(pb::MemberPromoteResponse {
            header: Some(self.header().await?),
            members: members.into_iter().map(member).collect(),
        }))
    }

    async fn member_update(
        &self,
        _request: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        Err(EtcdError::Unimplemented(
            "etcdserver: member update is not supported (remove the member and add it again)"
                .into(),
        )
        .into())
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

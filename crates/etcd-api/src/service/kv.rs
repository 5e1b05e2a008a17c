//! The KV service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use super::{header, ServiceConfig};
use crate::backend::{EtcdBackend, ReadConsistency};
use crate::convert;
use crate::proto::etcdserverpb as pb;
use crate::store::{validate, Command, CommandOutput, RangeRequest};
use crate::EtcdError;

/// etcd's `KV` service over a backend.
pub struct KvService<B> {
    backend: Arc<B>,
    config: Arc<ServiceConfig>,
}

impl<B: EtcdBackend> KvService<B> {
    /// The service over `backend` with `config`'s limits.
    pub fn new(backend: Arc<B>, config: Arc<ServiceConfig>) -> Self {
        KvService { backend, config }
    }

    /// Checks a write's size and shape, replicates it, and returns its output and the
    /// revision after it.
    async fn write(
        &self,
        encoded_len: usize,
        cmd: Command,
    ) -> Result<(CommandOutput, pb::ResponseHeader), Status> {
        if encoded_len > self.config.max_request_bytes {
            return Err(EtcdError::RequestTooLarge.into());
        }
        validate::check_command(&cmd, self.config.max_txn_ops)?;
        let applied = self.backend.propose(cmd).await?;
        let output = applied.output?;
        Ok((output, header(&*self.backend, applied.revision)))
    }
}

fn unexpected(output: CommandOutput) -> Status {
    Status::internal(format!("etcdserver: unexpected command output {output:?}"))
}

#[tonic::async_trait]
impl<B: EtcdBackend> pb::kv_server::Kv for KvService<B> {
    async fn range(
        &self,
        request: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let r = request.into_inner();
        let consistency = if r.serializable {
            ReadConsistency::Serializable
        } else {
            ReadConsistency::Linearizable
        };
        let req: RangeRequest = r.into();
        validate::check_range(&req)?;
        let (revision, result) = self
            .backend
            .read(consistency, move |s| (s.revision(), s.range(&req)))
            .await?;
        Ok(Response::new(convert::range_response(
            result?,
            header(&*self.backend, revision),
        )))
    }

    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        let r = request.into_inner();
        match self.write(r.encoded_len(), Command::Put(r.into())).await? {
            (CommandOutput::Put(p), h) => Ok(Response::new(convert::put_response(p, h))),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn delete_range(
        &self,
        request: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        let r = request.into_inner();
        match self
            .write(r.encoded_len(), Command::DeleteRange(r.into()))
            .await?
        {
            (CommandOutput::DeleteRange(d), h) => Ok(Response::new(convert::delete_response(d, h))),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn txn(
        &self,
        request: Request<pb::TxnRequest>,
    ) -> Result<Response<pb::TxnResponse>, Status> {
        let r = request.into_inner();
        match self.write(r.encoded_len(), Command::Txn(r.into())).await? {
            (CommandOutput::Txn(t), h) => Ok(Response::new(convert::txn_response(t, h))),
            (other, _) => Err(unexpected(other)),
        }
    }

    async fn compact(
        &self,
        request: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        let r = request.into_inner();
        let (_, h) = self
            .write(
                0,
                Command::Compact {
                    revision: r.revision,
                },
            )
            .await?;
        Ok(Response::new(pb::CompactionResponse { header: Some(h) }))
    }
}

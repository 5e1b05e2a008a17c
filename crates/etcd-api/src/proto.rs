//! The generated protobuf and gRPC code for the etcd v3 API subset in `proto/`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// etcd's `mvccpb` package: stored key/values and change events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// etcd's `etcdserverpb` package: the KV, Watch, Lease, Cluster and Maintenance services.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

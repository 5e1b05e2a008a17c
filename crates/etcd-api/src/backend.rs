//! What a server provides to the gRPC services: replication of commands, reads at a chosen
//! consistency, watch feeds, lease timing, membership and status.

use std::future::Future;

use crate::store::{Applied, Command, Store};
use crate::watch_hub::WatchFeed;
use crate::EtcdError;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadConsistency {
    /// Reflects every write acknowledged before the read began (etcd's default; a raft
    /// server implements it with ReadIndex).
    Linearizable,
    /// The local replica's state, possibly stale (etcd's `serializable` option).
    Serializable,
}

/// The identity of the answering node, for response headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeIds {
    /// The cluster's ID.
    pub cluster_id: u64,
    /// This member's ID.
    pub member_id: u64,
    /// The current raft term.
    pub raft_term: u64,
}

/// One member of the cluster, as `MemberList` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member's ID.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The URLs its peers reach it at.
    pub peer_urls: Vec<String>,
    /// The URLs clients reach its etcd API at.
    pub client_urls: Vec<String>,
    /// Whether it is a non-voting learner.
    pub is_learner: bool,
}

/// This node's state, as `Status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// The etcd API version this server speaks (etcdctl prints it).
    pub version: String,
    /// The size of the stored data in bytes.
    pub db_size: i64,
    /// The leader's member ID (0: none known).
    pub leader: u64,
    /// The raft log's last index.
    pub raft_index: u64,
    /// The current raft term.
    pub raft_term: u64,
    /// The last applied raft index.
    pub raft_applied_index: u64,
    /// Problems to report (etcdctl prints them).
    pub errors: Vec<String>,
    /// Whether this node is a learner.
    pub is_learner: bool,
}

/// A server under the etcd API: a single in-memory store ([`crate::mem::MemBackend`]) or a
/// raft cluster whose every replica applies the same [`Command`]s to a [`Store`].
///
/// The futures are `Send` so that the tonic services can run them on any thread.
pub trait EtcdBackend: Send + Sync + 'static {
    /// Replicates `command` and resolves once it is applied, with its outcome. The outer
    /// error is the replication's (not leader, timeout, stopped): the command may or may
    /// not have been applied. The store's own verdict is in [`Applied::output`].
    fn propose(&self, command: Command) -> impl Future<Output = Result<Applied, EtcdError>> + Send;

    /// Runs `f` on the store at the requested consistency and returns what it returns.
    fn read<R, F>(
        &self,
        consistency: ReadConsistency,
        f: F,
    ) -> impl Future<Output = Result<R, EtcdError>> + Send
    where
        F: FnOnce(&Store) -> R + Send + 'static,
        R: Send + 'static;

    /// A feed of every revision's changes from `start_revision` on (0 or less: from the
    /// next revision), without gap or repeat: typically
    /// [`crate::watch_hub::WatchHub::subscribe`] under the lock that applies commands.
    /// Fails with `Compacted` when `start_revision` is older than the store's window.
    fn watch(
        &self,
        start_revision: i64,
    ) -> impl Future<Output = Result<WatchFeed, EtcdError>> + Send;

    /// Renews lease `id` for its full TTL and returns that TTL in seconds; `LeaseNotFound`
    /// when it does not exist. Lease time is the leader's (see [`crate::lease_clock`]).
    fn lease_keep_alive(&self, id: i64) -> impl Future<Output = Result<i64, EtcdError>> + Send;

    /// The seconds lease `id` has left by the leader's clock, or `None` when the clock
    /// does not know it (the caller then reports the granted TTL).
    fn lease_remaining(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<i64>, EtcdError>> + Send;

    /// The IDs for response headers.
    fn node_ids(&self) -> NodeIds;

    /// The cluster's members.
    fn members(&self) -> impl Future<Output = Result<Vec<MemberInfo>, EtcdError>> + Send;

    /// This node's status.
    fn status(&self) -> impl Future<Output = Result<NodeStatus, EtcdError>> + Send;

    /// Adds a member reached by its peers at `peer_urls`, as a learner when `is_learner`;
    /// returns it and every member after the change. The default refuses (a single node
    /// has no membership to change).
    fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> impl Future<Output = Result<(MemberInfo, Vec<MemberInfo>), EtcdError>> + Send {
        let _ = (peer_urls, is_learner);
        async { Err(no_membership_changes()) }
    }

    /// Removes member `id`; returns the members after the change.
    fn member_remove(
        &self,
        id: u64,
    ) -> impl Future<Output = Result<Vec<MemberInfo>, EtcdError>> + Send {
        let _ = id;
        async { Err(no_membership_changes()) }
    }

    /// Makes learner `id` a voter once it has caught up; returns the members after it.
    fn member_promote(
        &self,
        id: u64,
    ) -> impl Future<Output = Result<Vec<MemberInfo>, EtcdError>> + Send {
        let _ = id;
        async { Err(no_membership_changes()) }
    }
}

fn no_membership_changes() -> EtcdError {
    EtcdError::Unimplemented("etcdserver: this server does not change its membership".into())
}

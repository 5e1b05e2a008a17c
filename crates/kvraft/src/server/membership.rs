//! Membership changes through the key/value service: the replica that leads changes the
//! cluster, and a new replica joins it. Clients keep being served throughout: a change
//! is a log entry like any other (delivered as `ApplyMsg::Config`, counted as applied).

use super::{KvServer, KvServerError};
use raft::{Membership, MembershipStatus, NodeId, Raft, RaftError, Transport};
use raft_storage::Storage;

impl KvServer {
    /// Starts replica `me` to join a running cluster (see [`Raft::join`]): it serves
    /// nothing until the leader adds it ([`add_learner`](Self::add_learner)) and it has
    /// caught up; it votes once [`change_membership`](Self::change_membership) makes it
    /// a voter.
    pub fn join<S: Storage, T: Transport>(
        me: NodeId,
        storage: S,
        config: super::KvConfig,
        transport: T,
    ) -> Result<KvServer, KvServerError> {
        Self::start(me, config, |apply_tx, raft_config| {
            Raft::join(me, storage, apply_tx, raft_config, transport)
        })
    }

    /// The configuration in force on this replica ([`Raft::membership`]).
    pub async fn membership(&self) -> Result<MembershipStatus, RaftError> {
        self.raft().membership().await
    }

    /// Adds `id` as a learner, on the leader ([`Raft::add_learner`]).
    pub async fn add_learner(&self, id: NodeId) -> Result<Membership, RaftError> {
        self.raft().add_learner(id).await
    }

    /// Adds `id` as a learner, waits for it to catch up, promotes it, on the leader
    /// ([`Raft::add_voter`]).
    pub async fn add_voter(
        &self,
        id: NodeId,
        catch_up: std::time::Duration,
    ) -> Result<Membership, RaftError> {
        self.raft().add_voter(id, catch_up).await
    }

    /// Removes `id`, on the leader ([`Raft::remove_server`]).
    pub async fn remove_server(&self, id: NodeId) -> Result<Membership, RaftError> {
        self.raft().remove_server(id).await
    }

    /// Moves the voters to `voters`, on the leader ([`Raft::change_membership`]).
    pub async fn change_membership(
        &self,
        voters: impl IntoIterator<Item = NodeId>,
    ) -> Result<Membership, RaftError> {
        self.raft().change_membership(voters).await
    }

    /// Hands leadership to `target`, on the leader ([`Raft::transfer_leader`]).
    pub async fn transfer_leader(&self, target: NodeId) -> Result<(), RaftError> {
        self.raft().transfer_leader(target).await
    }
}

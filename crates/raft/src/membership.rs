//! Membership changes through the runtime: the requests the API sends the actor, and
//! the waiters that answer them once the change is committed (or abandoned).
//!
//! A request becomes a configuration entry on the leader at once when the core allows
//! it. A new leader may not change the configuration before an entry of its own term is
//! committed (the single-server change rule): the core then appends a no-op and refuses
//! with `NotReady`, and the waiter proposes again at every turn until it is allowed.

use crate::node::Command;
use crate::{ApplyMsg, Config, Transport};
use crate::{Raft, RaftError};
use raft_core::{ConfChange, CoreError, Index, Membership, NodeId, RaftCore, Term};
use raft_storage::Storage;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::oneshot;

/// What a peer reports about its configuration (see [`Raft::membership`](crate::Raft::membership)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipStatus {
    /// The configuration in force on this peer (the last one its log holds).
    pub membership: Membership,
    /// True while a change is in flight: the configuration in force is not committed yet,
    /// or it is joint (the leader has yet to leave it).
    pub change_in_progress: bool,
}

impl Raft {
    /// Creates peer `me` to join a running cluster, and starts it; returns at once.
    ///
    /// Unless `storage` holds a configuration (a restart), the peer knows no members:
    /// it never campaigns and waits for a leader to bring it the log (or a snapshot) that
    /// holds its cluster's configuration. The cluster's leader adds it with
    /// [`add_learner`](Self::add_learner) and then makes it a voter with
    /// [`change_membership`](Self::change_membership).
    pub fn join<S: Storage, T: Transport>(
        me: NodeId,
        storage: S,
        apply_tx: mpsc::Sender<ApplyMsg>,
        config: Config,
        transport: T,
    ) -> Result<Raft, RaftError> {
        Self::start_core(
            me,
            storage,
            apply_tx,
            config,
            transport,
            |cfg, restored, rng| RaftCore::joining(me, cfg, restored, rng),
        )
    }

    /// The configuration in force on this peer, and whether a change is in flight.
    pub async fn membership(&self) -> Result<MembershipStatus, RaftError> {
        self.ask(Command::Membership).await
    }

    /// Adds `id` as a learner: it receives the log (or a snapshot) and votes in nothing.
    /// Returns the new configuration once committed. Call on the leader; the new peer is
    /// started with [`Raft::join`] and must be reachable through every peer's transport.
    /// Fails with [`RaftError::NotLeader`], [`RaftError::ChangeInProgress`],
    /// [`RaftError::Membership`] (already a member, id 0), [`RaftError::ChangeAbandoned`].
    pub async fn add_learner(&self, id: NodeId) -> Result<Membership, RaftError> {
        self.change(ConfRequest::Change(ConfChange::AddLearner(id)))
            .await
    }

    /// Removes `id` (voter or learner) in one step. Returns once committed; a leader that
    /// removes itself leads until then and steps down after.
    pub async fn remove_server(&self, id: NodeId) -> Result<Membership, RaftError> {
        self.change(ConfRequest::Change(ConfChange::Remove(id)))
            .await
    }

    /// Moves the voters to exactly `voters`: a single-server change when one voter is
    /// added or removed, otherwise joint consensus (the leader enters the joint
    /// configuration and leaves it on its own once that commits). Learners named in
    /// `voters` are promoted; new ids become voters directly (prefer adding them as
    /// learners first, so that they catch up before they count). Returns the final
    /// configuration once committed. Fails with [`RaftError::Membership`] for an empty
    /// set (`NoVoters`), and like [`add_learner`](Self::add_learner) otherwise.
    pub async fn change_membership(
        &self,
        voters: impl IntoIterator<Item = NodeId>,
    ) -> Result<Membership, RaftError> {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        self.change(ConfRequest::Voters(voters)).await
    }

    /// Hands leadership to the voter `target` (thesis §3.10): this leader stops taking
    /// proposals, brings `target` up to date and tells it to campaign at once. Returns
    /// once this peer follows `target`; fails with [`RaftError::TransferFailed`] when
    /// `target` did not take over within an election timeout (this peer then leads on
    /// and accepts proposals again), and like [`add_learner`](Self::add_learner)
    /// otherwise.
    pub async fn transfer_leader(&self, target: NodeId) -> Result<(), RaftError> {
        self.change(ConfRequest::Transfer(target)).await.map(|_| ())
    }

    /// Adds `id` as a voter the safe way (thesis §4.2.1): as a learner first (unless it
    /// is one already), then, once it holds everything the leader had committed when the
    /// wait began, promoted with a single-server change. Fails with
    /// [`RaftError::CatchUpTimeout`] if it does not catch up within `catch_up` (it stays
    /// a learner), and like [`add_learner`](Self::add_learner) otherwise.
    pub async fn add_voter(&self, id: NodeId, catch_up: Duration) -> Result<Membership, RaftError> {
        let status = self.membership().await?;
        if status.membership.voters.contains(&id) {
            return Err(RaftError::Membership(
                raft_core::MembershipError::Duplicate(id),
            ));
        }
        if !status.membership.learners.contains(&id) {
            self.add_learner(id).await?;
        }
        let deadline = tokio::time::Instant::now() + catch_up;
        let mut goal = None;
        loop {
            let progress = self.ask(|tx| Command::Progress(id, tx)).await?;
            let Some((commit, matched)) = progress else {
                return Err(RaftError::NotLeader { leader: None });
            };
            let goal = *goal.get_or_insert(commit);
            if matched >= goal {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RaftError::CatchUpTimeout(id));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut voters = self.membership().await?.membership.voters;
        voters.insert(id);
        self.change_membership(voters).await
    }

    async fn change(&self, req: ConfRequest) -> Result<Membership, RaftError> {
        self.ask(|tx| Command::Conf(req, tx)).await?
    }
}

/// A membership request to the actor.
pub(crate) enum ConfRequest {
    /// One step (add a learner, add or remove one voter).
    Change(ConfChange),
    /// Move the voters to this set (single step or joint consensus).
    Voters(BTreeSet<NodeId>),
    /// Hand leadership to this voter.
    Transfer(NodeId),
}

/// Where the answer to a membership request goes.
pub(crate) type ConfTx = oneshot::Sender<Result<Membership, RaftError>>;

enum Goal {
    /// Not proposed yet: the leader has no entry of its term committed.
    Unproposed(ConfRequest),
    /// Done once the configuration entry at this index is committed.
    Committed(Index),
    /// Done once a committed, non-joint configuration has exactly these voters (a joint
    /// change: the leader leaves the joint configuration on its own).
    Voters(BTreeSet<NodeId>),
    /// Done once this peer follows the target in a later term; failed once the leader
    /// gave the transfer up.
    Transfer(NodeId),
}

struct Waiter {
    goal: Goal,
    /// The leader's term when the request arrived: a change proposed in it is abandoned
    /// (as far as the caller knows) once the peer leads no more in it.
    term: Term,
    reply: ConfTx,
}

/// Membership requests waiting for their outcome.
#[derive(Default)]
pub(crate) struct ConfWaiters {
    waiting: Vec<Waiter>,
}

impl ConfWaiters {
    /// A request arrived: proposes it if the core allows, and waits for its outcome.
    pub(crate) fn submit(
        &mut self,
        core: &mut RaftCore<ChaCha8Rng>,
        req: ConfRequest,
        reply: ConfTx,
    ) {
        let waiter = Waiter {
            goal: Goal::Unproposed(req),
            term: core.term(),
            reply,
        };
        if let Some(w) = advance(core, waiter) {
            self.waiting.push(w);
        }
    }

    /// Checks every waiter against the core's state after a turn.
    pub(crate) fn poll(&mut self, core: &mut RaftCore<ChaCha8Rng>) {
        if self.waiting.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.waiting);
        self.waiting = waiting
            .into_iter()
            .filter_map(|w| advance(core, w))
            .collect();
    }
}

/// Moves a waiter on; `None` once it has been answered.
fn advance(core: &mut RaftCore<ChaCha8Rng>, mut w: Waiter) -> Option<Waiter> {
    if w.reply.is_closed() {
        return None;
    }
    let finish = |w: Waiter, result| {
        let _ = w.reply.send(result);
        None
    };
    if let Goal::Unproposed(req) = &w.goal {
        if !core.is_leader() || core.term() != w.term {
            return finish(
                w,
                Err(RaftError::NotLeader {
                    leader: core.leader(),
                }),
            );
        }
        let proposed = match req {
            ConfRequest::Change(change) => core
                .propose_conf_change(change)
                .map(|(i, _)| Goal::Committed(i)),
            ConfRequest::Transfer(target) => core.transfer_leader(*target).map(|()| {
                if *target == core.id() {
                    Goal::Committed(0)
                } else {
                    Goal::Transfer(*target)
                }
            }),
            ConfRequest::Voters(voters) => {
                let joint = core.membership().plan(voters).map(|s| s.len() > 1);
                core.propose_voters(voters).map(|(i, _)| match joint {
                    Ok(true) => Goal::Voters(voters.clone()),
                    _ => Goal::Committed(i),
                })
            }
        };
        match proposed {
            Ok(goal) => w.goal = goal,
            Err(CoreError::NotReady) => return Some(w),
            Err(e) => return finish(w, Err(e.into())),
        }
    }
    if let Goal::Transfer(target) = w.goal {
        if core.leader() == Some(target) && core.term() > w.term {
            let m = core.membership().clone();
            return finish(w, Ok(m));
        }
        let waiting = if core.is_leader() {
            core.transferring_to() == Some(target)
        } else {
            // Deposed: by the target's campaign (a later term, its leadership not heard
            // of yet), or by something else (same term, or another leader).
            core.term() > w.term && core.leader().is_none()
        };
        return if waiting {
            Some(w)
        } else {
            finish(w, Err(RaftError::TransferFailed(target)))
        };
    }
    let committed = match &w.goal {
        Goal::Unproposed(_) | Goal::Transfer(_) => false,
        Goal::Committed(index) => core.commit_index() >= *index,
        Goal::Voters(voters) => {
            let m = core.membership();
            !m.is_joint() && &m.voters == voters && core.membership_index() <= core.commit_index()
        }
    };
    if committed {
        let m = core.membership().clone();
        return finish(w, Ok(m));
    }
    if !core.is_leader() || core.term() != w.term {
        // The entry may still commit under the next leader, or be dropped: the caller
        // must look (membership()) before trying again.
        return finish(w, Err(RaftError::ChangeAbandoned));
    }
    Some(w)
}

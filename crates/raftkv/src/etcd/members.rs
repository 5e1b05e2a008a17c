//! Membership of an etcd-serving cluster: the replicated member table (every member's
//! addresses), etcd's MemberAdd/Remove/Promote mapped onto the runtime's membership
//! changes, and each node publishing its own addresses.
//!
//! **Who is a member** is the Raft configuration (voters and learners), committed through
//! the log by the runtime. **Where a member is** is the member table, part of the
//! replicated state machine (its log entries and its snapshot), so every node, and a
//! node restarted from its WAL or installed from a snapshot, knows every member's
//! addresses:
//!
//! - `MemberAdd` (on the leader) first commits [`MemberChange::Add`] with the new
//!   member's id and peer address, so that every node can reach it, then adds it to the
//!   configuration as a learner.
//! - Each node, once it is in the configuration, commits [`MemberChange::Publish`] with
//!   its own peer, client (forwarding) and etcd addresses if the table does not hold
//!   them yet (as an etcd member publishes its attributes when it starts).
//! - A committed configuration that no longer holds an id moves it to the removed set
//!   (its addresses are forgotten, and the id is never given again).
//!
//! Addresses given at start (`--peers`, `--clients`, `--etcd-clients`) are used for the
//! members the table does not know (yet): the original members before they publish.
//!
//! Member IDs are the Raft node IDs (`u64`, as etcd's). A new member gets the lowest id
//! above every id the node knows of (members, removed ones, addresses given at start).

use std::collections::{BTreeMap, BTreeSet};

use etcd_api::backend::MemberInfo;
use etcd_api::EtcdError;
use raft::{Membership, NodeId, RaftError};
use serde::{Deserialize, Serialize};

use super::{codec, raft_error, EtcdNode};

/// Where one member is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddrs {
    /// `host:port` of its peer listener.
    pub peer: String,
    /// `host:port` where it takes requests forwarded to it as leader.
    pub client: Option<String>,
    /// `host:port` of its etcd API.
    pub etcd: Option<String>,
    /// Whether the member published these itself (it has started); an added member that
    /// has not is reported without a name, as etcd reports an unstarted member.
    pub published: bool,
}

/// A change of the member table, in a log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberChange {
    /// Member `id` will be reached at `peer` (written before it joins the configuration).
    Add {
        /// Its id.
        id: NodeId,
        /// `host:port` of its peer listener.
        peer: String,
    },
    /// Member `id` says where it is.
    Publish {
        /// Its id.
        id: NodeId,
        /// Its addresses.
        addrs: MemberAddrs,
    },
}

/// Every member's addresses, and the ids that were members and left: replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTable {
    members: BTreeMap<NodeId, MemberAddrs>,
    removed: BTreeSet<NodeId>,
}

impl MemberTable {
    /// Applies a committed change; false when it was ignored (an id already used or
    /// removed for `Add`, a removed id for `Publish`). Deterministic.
    pub fn apply(&mut self, change: &MemberChange) -> bool {
        match change {
            MemberChange::Add { id, peer } => {
                if self.removed.contains(id) || self.members.contains_key(id) {
                    return false;
                }
                let addrs = MemberAddrs {
                    peer: peer.clone(),
                    ..MemberAddrs::default()
                };
                self.members.insert(*id, addrs);
                true
            }
            MemberChange::Publish { id, addrs } => {
                if self.removed.contains(id) {
                    return false;
                }
                self.members.insert(*id, addrs.clone());
                true
            }
        }
    }

    /// Applies a committed configuration: the ids it no longer holds are removed for
    /// good. Returns whether the table changed.
    pub fn apply_config(&mut self, m: &Membership) -> bool {
        let gone: Vec<NodeId> = self
            .members
            .keys()
            .filter(|id| !m.contains(**id))
            .copied()
            .collect();
        for id in &gone {
            self.members.remove(id);
            self.removed.insert(*id);
        }
        !gone.is_empty()
    }

    /// Member `id`'s addresses, if the table holds them.
    pub fn get(&self, id: NodeId) -> Option<&MemberAddrs> {
        self.members.get(&id)
    }

    /// Whether `id` was a member and was removed.
    pub fn is_removed(&self, id: NodeId) -> bool {
        self.removed.contains(&id)
    }

    /// The highest id the table has seen (0 if none).
    fn max_id(&self) -> NodeId {
        let a = self.members.keys().next_back().copied().unwrap_or(0);
        let b = self.removed.iter().next_back().copied().unwrap_or(0);
        a.max(b)
    }
}

/// Every member the node can address: the table over the addresses given at start, less
/// the removed ones.
pub fn effective(
    table: &MemberTable,
    given: &BTreeMap<NodeId, MemberAddrs>,
) -> BTreeMap<NodeId, MemberAddrs> {
    let mut all: BTreeMap<NodeId, MemberAddrs> = given
        .iter()
        .filter(|(id, _)| !table.is_removed(**id))
        .map(|(id, a)| (*id, a.clone()))
        .collect();
    for (id, a) in &table.members {
        all.insert(*id, a.clone());
    }
    all
}

/// A membership request, made on the leader (followers forward it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberOp {
    /// etcd's MemberAdd.
    Add {
        /// The new member's peer URLs (exactly one, `http://host:port`).
        peer_urls: Vec<String>,
        /// Whether it is added as a learner (raftkv adds only learners).
        is_learner: bool,
    },
    /// etcd's MemberRemove.
    Remove(NodeId),
    /// etcd's MemberPromote.
    Promote(NodeId),
    /// A member's own addresses, to record in the table.
    Publish(NodeId, MemberAddrs),
}

/// One member as the services report it (a serializable [`MemberInfo`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its id.
    pub id: NodeId,
    /// `node-ID`, or empty while it has not started (published its addresses).
    pub name: String,
    /// `http://` + its peer address.
    pub peer_urls: Vec<String>,
    /// `http://` + its etcd address, when known.
    pub client_urls: Vec<String>,
    /// Whether it is a learner.
    pub is_learner: bool,
}

impl From<MemberView> for MemberInfo {
    fn from(v: MemberView) -> MemberInfo {
        MemberInfo {
            id: v.id,
            name: v.name,
            peer_urls: v.peer_urls,
            client_urls: v.client_urls,
            is_learner: v.is_learner,
        }
    }
}

/// The answer to a [`MemberOp`]: the member added (for `Add`) and every member after
/// the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReply {
    /// The member added.
    pub added: Option<MemberView>,
    /// Every member.
    pub members: Vec<MemberView>,
}

/// The members of configuration `m` as MemberList reports them.
pub fn views(m: &Membership, addrs: &BTreeMap<NodeId, MemberAddrs>) -> Vec<MemberView> {
    let ids: BTreeSet<NodeId> = m
        .voters
        .iter()
        .chain(&m.learners)
        .chain(m.outgoing.iter().flatten())
        .copied()
        .collect();
    ids.into_iter()
        .map(|id| view(id, m.learners.contains(&id), addrs.get(&id)))
        .collect()
}

fn view(id: NodeId, is_learner: bool, a: Option<&MemberAddrs>) -> MemberView {
    let started = a.is_some_and(|a| a.published || a.client.is_some() || a.etcd.is_some());
    MemberView {
        id,
        name: if started {
            format!("node-{id}")
        } else {
            String::new()
        },
        peer_urls: a
            .map(|a| vec![format!("http://{}", a.peer)])
            .unwrap_or_default(),
        client_urls: a
            .and_then(|a| a.etcd.as_ref())
            .map(|e| vec![format!("http://{e}")])
            .unwrap_or_default(),
        is_learner,
    }
}

/// `host:port` of the one `http://host:port` peer URL given.
fn peer_addr(urls: &[String]) -> Result<String, EtcdError> {
    let [url] = urls else {
        return Err(EtcdError::MemberBadUrls);
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or(EtcdError::MemberBadUrls)?
        .trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or(EtcdError::MemberBadUrls)?;
    if host.is_empty() || rest.contains('/') || port.parse::<u16>().is_err() {
        return Err(EtcdError::MemberBadUrls);
    }
    Ok(rest.to_owned())
}

/// etcd's error for a refused membership change.
fn change_error(e: RaftError) -> EtcdError {
    match e {
        RaftError::ChangeInProgress => EtcdError::MemberChangeRefused(
            "etcdserver: a membership change is already in progress; retry when it is done".into(),
        ),
        RaftError::CatchUpTimeout(_) => EtcdError::LearnerNotReady,
        RaftError::ChangeAbandoned => EtcdError::NoLeader,
        RaftError::Membership(raft::MembershipError::Unknown(_)) => EtcdError::MemberNotFound,
        RaftError::Membership(e) => EtcdError::MemberChangeRefused(format!("etcdserver: {e}")),
        e => raft_error(e),
    }
}

impl EtcdNode {
    /// Every member this node can address (the table over the addresses given at start).
    pub(crate) fn addresses(&self) -> BTreeMap<NodeId, MemberAddrs> {
        effective(&self.inner.lock().members, &self.inner.config.members)
    }

    /// The members of the configuration in force on this node.
    pub(crate) async fn member_views(&self) -> Result<Vec<MemberView>, EtcdError> {
        let m = self.inner.raft.membership().await.map_err(raft_error)?;
        Ok(views(&m.membership, &self.addresses()))
    }

    /// Runs a membership request on the leader, forwarding it from a follower.
    pub(crate) async fn member_op(&self, op: MemberOp) -> Result<MemberReply, EtcdError> {
        if let Some((f, leader)) = self.forward_target() {
            return match f
                .call(leader, &super::forward::ForwardRequest::Member(op))
                .await
            {
                super::forward::ForwardReply::Members(r) => Ok(r),
                super::forward::ForwardReply::Failed(e) => Err(e),
                _ => Err(EtcdError::NoLeader),
            };
        }
        self.member_op_here(op).await
    }

    /// Runs a membership request on this node, which must lead. One at a time.
    pub(crate) async fn member_op_here(&self, op: MemberOp) -> Result<MemberReply, EtcdError> {
        let _one = self.inner.member_changes.lock().await;
        let raft = &self.inner.raft;
        if !raft.state().1 {
            return Err(EtcdError::NotLeader);
        }
        let status = raft.membership().await.map_err(raft_error)?;
        let m = status.membership;
        let (added, after) = match op {
            MemberOp::Add {
                peer_urls,
                is_learner,
            } => {
                let peer = peer_addr(&peer_urls)?;
                if !is_learner {
                    return Err(EtcdError::MemberChangeRefused(
                        "etcdserver: raftkv adds members as learners only: add it with --learner, start it, then promote it".into(),
                    ));
                }
                let id = self.new_member_id(&m, &peer)?;
                if self.inner.lock().members.get(id).map(|a| &a.peer) != Some(&peer) {
                    self.commit_member(MemberChange::Add {
                        id,
                        peer: peer.clone(),
                    })
                    .await?;
                    if self.inner.lock().members.get(id).map(|a| &a.peer) != Some(&peer) {
                        // Another leader's entry took its place, or the id was taken.
                        return Err(EtcdError::NoLeader);
                    }
                }
                let after = raft.add_learner(id).await.map_err(change_error)?;
                (Some(id), after)
            }
            MemberOp::Remove(id) => {
                if !m.contains(id) {
                    return Err(EtcdError::MemberNotFound);
                }
                let after = raft.remove_server(id).await.map_err(change_error)?;
                (None, after)
            }
            MemberOp::Promote(id) => {
                if m.voters.contains(&id) {
                    return Err(EtcdError::MemberNotLearner);
                }
                if !m.learners.contains(&id) {
                    return Err(EtcdError::MemberNotFound);
                }
                // The wait must end well within a forwarding follower's timeout.
                let catch_up = self.inner.config.op_timeout / 2;
                let after = raft.add_voter(id, catch_up).await.map_err(change_error)?;
                (None, after)
            }
            MemberOp::Publish(id, addrs) => {
                if !m.contains(id) {
                    return Err(EtcdError::MemberNotFound);
                }
                self.commit_member(MemberChange::Publish { id, addrs })
                    .await?;
                (None, m)
            }
        };
        let addrs = self.addresses();
        let members = views(&after, &addrs);
        let added = added.and_then(|id| members.iter().find(|v| v.id == id).cloned());
        Ok(MemberReply { added, members })
    }

    /// The id for a new member at `peer`: the one an unfinished add gave that address,
    /// else the lowest above every id known. `PeerUrlExists` if a member has it.
    fn new_member_id(&self, m: &Membership, peer: &str) -> Result<NodeId, EtcdError> {
        let st = self.inner.lock();
        let all = effective(&st.members, &self.inner.config.members);
        for (id, a) in &all {
            if a.peer == peer {
                if m.contains(*id) {
                    return Err(EtcdError::PeerUrlExists);
                }
                if !a.published {
                    return Ok(*id);
                }
            }
        }
        let highest = [
            st.members.max_id(),
            all.keys().next_back().copied().unwrap_or(0),
            m.voters
                .iter()
                .chain(&m.learners)
                .max()
                .copied()
                .unwrap_or(0),
            self.inner.me,
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        Ok(highest + 1)
    }

    /// Commits a member-table change and waits until this node has applied it.
    async fn commit_member(&self, change: MemberChange) -> Result<(), EtcdError> {
        let inner = &self.inner;
        let bytes = codec::encode_member(&change).map_err(|_| EtcdError::RequestTooLarge)?;
        let (index, _) = inner.raft.start(bytes.into()).await.map_err(raft_error)?;
        let mut applied = inner.applied.subscribe();
        let reached = tokio::time::timeout(inner.config.op_timeout, async {
            applied.wait_for(|a| *a >= index).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(EtcdError::Stopped),
            Err(_) => Err(EtcdError::Timeout),
        }
    }

    /// Publishes this node's own addresses until the table holds them: retried every
    /// `every` while it is not a member yet (a joining node) or there is no leader.
    pub(crate) async fn publish_loop(self, every: std::time::Duration) {
        let me = self.inner.me;
        let Some(mine) = self.inner.config.members.get(&me).cloned() else {
            return;
        };
        let mine = MemberAddrs {
            published: true,
            ..mine
        };
        loop {
            if self.killed() {
                return;
            }
            let current = self.inner.lock().members.get(me).cloned();
            if current.as_ref() == Some(&mine) {
                return;
            }
            if self.inner.lock().members.is_removed(me) {
                return;
            }
            let member = match self.inner.raft.membership().await {
                Ok(s) => s.membership.contains(me),
                Err(_) => return,
            };
            if member {
                match self.member_op(MemberOp::Publish(me, mine.clone())).await {
                    Ok(_) => tracing::info!(node = me, "published this node's addresses"),
                    Err(e) => tracing::debug!(node = me, error = %e, "publishing addresses"),
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(peer: &str) -> MemberAddrs {
        MemberAddrs {
            peer: peer.into(),
            ..MemberAddrs::default()
        }
    }

    #[test]
    fn the_table_adds_publishes_and_removes_for_good() {
        let mut t = MemberTable::default();
        assert!(t.apply(&MemberChange::Add {
            id: 4,
            peer: "h:4".into()
        }));
        assert!(!t.apply(&MemberChange::Add {
            id: 4,
            peer: "h:5".into()
        }));
        let published = MemberAddrs {
            client: Some("h:104".into()),
            etcd: Some("h:304".into()),
            published: true,
            ..addrs("h:4")
        };
        assert!(t.apply(&MemberChange::Publish {
            id: 4,
            addrs: published.clone()
        }));
        assert_eq!(t.get(4), Some(&published));
        let m = Membership {
            voters: [1, 2, 3].into(),
            learners: [4].into(),
            outgoing: None,
        };
        assert!(!t.apply_config(&m));
        let without = Membership {
            learners: Default::default(),
            ..m.clone()
        };
        assert!(t.apply_config(&without));
        assert!(t.is_removed(4) && t.get(4).is_none());
        assert!(!t.apply(&MemberChange::Add {
            id: 4,
            peer: "h:4".into()
        }));
        assert!(!t.apply(&MemberChange::Publish {
            id: 4,
            addrs: published
        }));
        assert_eq!(t.max_id(), 4);
    }

    #[test]
    fn the_table_overrides_given_addresses_and_hides_removed_ones() {
        let given: BTreeMap<NodeId, MemberAddrs> = [(1, addrs("h:1")), (2, addrs("h:2"))].into();
        let mut t = MemberTable::default();
        t.apply(&MemberChange::Add {
            id: 3,
            peer: "h:3".into(),
        });
        t.apply(&MemberChange::Publish {
            id: 1,
            addrs: addrs("h:11"),
        });
        t.apply_config(&Membership {
            voters: [1, 3].into(),
            ..Membership::default()
        });
        let all = effective(&t, &given);
        assert_eq!(all[&1].peer, "h:11");
        assert_eq!(all[&2].peer, "h:2", "2 never was in the table");
        assert_eq!(all[&3].peer, "h:3");
        let m = Membership {
            voters: [1, 2].into(),
            learners: [3].into(),
            outgoing: None,
        };
        let v = views(&m, &all);
        assert_eq!(v.len(), 3);
        assert_eq!(
            (v[2].id, v[2].is_learner, v[2].name.as_str()),
            (3, true, "")
        );
        assert_eq!(v[2].peer_urls, ["http://h:3"]);
    }

    #[test]
    fn peer_urls_must_be_one_http_host_and_port() {
        let ok = |u: &str| peer_addr(&[u.to_owned()]);
        assert_eq!(ok("http://127.0.0.1:7004").as_deref(), Ok("127.0.0.1:7004"));
        assert_eq!(ok("http://h:1/").as_deref(), Ok("h:1"));
        for bad in [
            "127.0.0.1:7004",
            "https://h:1",
            "http://h",
            "http://:1",
            "http://h:x",
        ] {
            assert_eq!(ok(bad), Err(EtcdError::MemberBadUrls), "{bad}");
        }
        assert_eq!(peer_addr(&[]), Err(EtcdError::MemberBadUrls));
    }
}

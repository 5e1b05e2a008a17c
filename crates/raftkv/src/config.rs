//! `raftkv serve`'s settings: a TOML file, then command-line flags over it.

use kvraft::{KvConfig, Limits};
use raft::NodeId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One node of the cluster as every member is told: where its peers reach it and where
/// its clients do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Its Raft id (any number but 0, unique in the cluster).
    pub id: NodeId,
    /// `host:port` of its peer listener.
    pub peer: String,
    /// `host:port` of its client listener: given to clients redirected to it.
    #[serde(default)]
    pub client: Option<String>,
    /// `host:port` of its etcd API, when it serves one: reported by `MemberList`.
    #[serde(default)]
    pub etcd: Option<String>,
}

/// The `read_mode` TOML values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadModeName {
    /// ReadIndex (the default).
    #[default]
    ReadIndex,
    /// Lease reads, with `lease_ms` and `clock_uncertainty_ms`.
    Lease,
}

/// Everything `raftkv serve` needs. Field names are the TOML keys; see
/// docs/OPERATIONS.md for a full file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// This node's id (required).
    pub id: Option<NodeId>,
    /// The cluster's id: peers and clients of another cluster are refused, and a data
    /// directory of another cluster is not opened.
    pub cluster_id: u64,
    /// Where the node keeps its WAL and snapshots (required).
    pub data_dir: Option<PathBuf>,
    /// Where clients connect (default: this node's `client` entry in `nodes`).
    pub client_addr: Option<String>,
    /// Where the peer listener binds (default: this node's `peer` entry in `nodes`).
    pub peer_listen: Option<String>,
    /// Where `/metrics` and `/health` are served over HTTP (none when unset).
    pub http_addr: Option<String>,
    /// Where etcd's v3 gRPC API is served. When set, the node's state machine is the etcd
    /// store (docs/ETCD-COMPAT.md) instead of kvraft's, and the native client port is not
    /// served.
    pub etcd_addr: Option<String>,
    /// Start as a new node joining a running cluster (etcd mode): it is no member until
    /// the cluster adds it (`etcdctl member add --learner`), and never campaigns before.
    /// On a restart its storage holds its configuration and the flag changes nothing.
    pub join: bool,
    /// Every node of the cluster, this one included.
    pub nodes: Vec<NodeEntry>,
    /// Length of one Raft tick, in milliseconds.
    pub tick_ms: u64,
    /// Shortest election timeout, in milliseconds.
    pub election_timeout_min_ms: u64,
    /// Longest election timeout, in milliseconds.
    pub election_timeout_max_ms: u64,
    /// Leader heartbeat interval, in milliseconds.
    pub heartbeat_ms: u64,
    /// The leader sends new entries to the followers while it writes them to its own
    /// disk (thesis §10.2.1; it counts its own copy only once durable). Saves one disk
    /// sync per commit; `false` restores the strict write-then-send order.
    pub leader_parallel_write: bool,
    /// Most AppendEntries in flight to one follower (2: one being answered while the
    /// next fills up, so that proposals leave in batches). Raise it on links with a
    /// round trip long beside a disk write.
    pub max_inflight_msgs: usize,
    /// How linearizable reads are served: `"read_index"` (one heartbeat round per batch
    /// of reads; trusts no clock) or `"lease"` (LeaseGuard: no message while the
    /// leader's lease runs; docs/READS.md says which clock assumption that accepts).
    pub read_mode: ReadModeName,
    /// With `read_mode = "lease"`: how long a committed entry grants its leader a lease.
    pub lease_ms: u64,
    /// With `read_mode = "lease"`: the bound on any node's clock error. `lease_ms +
    /// clock_uncertainty_ms` must stay below `election_timeout_min_ms`.
    pub clock_uncertainty_ms: u64,
    /// How long a request waits for its commit before the server answers `Timeout`.
    pub op_timeout_ms: u64,
    /// Snapshot once the persisted Raft state reaches this many bytes (0: never).
    pub snapshot_bytes: u64,
    /// Longest key, in bytes.
    pub max_key_bytes: usize,
    /// Longest put or append argument, in bytes.
    pub max_value_bytes: usize,
    /// Largest frame on the client and peer ports, in bytes.
    pub max_frame_bytes: usize,
    /// A connection must say hello within this many milliseconds.
    pub handshake_timeout_ms: u64,
    /// A client connection idle for this many milliseconds is closed.
    pub idle_timeout_ms: u64,
    /// Threads that run the node's async work (client API, peer links, Raft); 0: one
    /// per core. Lower it to bound the cores a node takes on a machine it shares.
    pub worker_threads: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let raft = raft::Config::default();
        let limits = Limits::default();
        ServeConfig {
            id: None,
            cluster_id: 1,
            data_dir: None,
            client_addr: None,
            peer_listen: None,
            http_addr: None,
            etcd_addr: None,
            join: false,
            nodes: Vec::new(),
            tick_ms: ms(raft.tick),
            election_timeout_min_ms: ms(raft.election_timeout_min),
            election_timeout_max_ms: ms(raft.election_timeout_max),
            heartbeat_ms: ms(raft.heartbeat_interval),
            leader_parallel_write: raft.leader_parallel_write,
            max_inflight_msgs: raft.max_inflight_msgs,
            read_mode: ReadModeName::ReadIndex,
            lease_ms: 300,
            clock_uncertainty_ms: 50,
            op_timeout_ms: 2000,
            snapshot_bytes: 64 << 20,
            max_key_bytes: limits.max_key_bytes,
            max_value_bytes: limits.max_value_bytes,
            max_frame_bytes: raft_transport::frame::DEFAULT_MAX_FRAME,
            handshake_timeout_ms: 5000,
            idle_timeout_ms: 300_000,
            worker_threads: 0,
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A `ID=ADDR,...` list did not parse.
    #[error("bad node list {0:?}: expected ID=HOST:PORT,ID=HOST:PORT,...")]
    BadList(String),
    /// Something required is missing or inconsistent; the text says what.
    #[error("{0}")]
    Invalid(String),
}

/// Parses `1=127.0.0.1:7001,2=...` into `(id, address)` pairs.
pub fn parse_node_list(list: &str) -> Result<Vec<(NodeId, String)>, ConfigError> {
    let bad = || ConfigError::BadList(list.to_owned());
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (id, addr) = item.trim().split_once('=').ok_or_else(bad)?;
            let id: NodeId = id.trim().parse().map_err(|_| bad())?;
            if addr.trim().is_empty() {
                return Err(bad());
            }
            Ok((id, addr.trim().to_owned()))
        })
        .collect()
}

impl ServeConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Sets the peer addresses from a `--peers` list (nodes not yet known are added).
    pub fn set_peers(&mut self, peers: &[(NodeId, String)]) {
        for (id, addr) in peers {
            match self.nodes.iter_mut().find(|n| n.id == *id) {
                Some(n) => n.peer.clone_from(addr),
                None => self.nodes.push(NodeEntry {
                    id: *id,
                    peer: addr.clone(),
                    client: None,
                    etcd: None,
                }),
            }
        }
    }

    /// Sets client addresses from a `--clients` list (of nodes already listed).
    pub fn set_clients(&mut self, clients: &[(NodeId, String)]) -> Result<(), ConfigError> {
        for (id, addr) in clients {
            let node = self.nodes.iter_mut().find(|n| n.id == *id).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "--clients names node {id}, which has no peer address"
                ))
            })?;
            node.client = Some(addr.clone());
        }
        Ok(())
    }

    /// Sets etcd API addresses from an `--etcd-clients` list (of nodes already listed).
    pub fn set_etcd_clients(&mut self, list: &[(NodeId, String)]) -> Result<(), ConfigError> {
        for (id, addr) in list {
            let node = self.nodes.iter_mut().find(|n| n.id == *id).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "--etcd-clients names node {id}, which has no peer address"
                ))
            })?;
            node.etcd = Some(addr.clone());
        }
        Ok(())
    }

    /// Checks the settings and resolves the defaults that depend on others.
    pub fn resolve(mut self) -> Result<Resolved, ConfigError> {
        let id = self
            .id
            .ok_or_else(|| ConfigError::Invalid("the node id is required (--id)".into()))?;
        let data_dir = self.data_dir.clone().ok_or_else(|| {
            ConfigError::Invalid("a data directory is required (--data-dir)".into())
        })?;
        if id == 0 {
            return Err(ConfigError::Invalid("node ids start at 1".into()));
        }
        if self.nodes.iter().any(|n| n.id == 0) {
            return Err(ConfigError::Invalid("node ids start at 1".into()));
        }
        let mut ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ConfigError::Invalid("a node is listed twice".into()));
        }
        let me = self.nodes.iter_mut().find(|n| n.id == id).ok_or_else(|| {
            ConfigError::Invalid(format!("node {id} is not in the peer list (--peers)"))
        })?;
        // Our own client address: the flag, else our entry; each fills in the other.
        let client_addr = match (&self.client_addr, &me.client) {
            (Some(a), _) | (None, Some(a)) => a.clone(),
            (None, None) => {
                return Err(ConfigError::Invalid(
                    "a client address is required (--client-addr)".into(),
                ))
            }
        };
        me.client = Some(client_addr.clone());
        if let Some(a) = &self.etcd_addr {
            me.etcd = Some(a.clone());
        }
        let peer_listen = self.peer_listen.clone().unwrap_or_else(|| me.peer.clone());
        if self.join && self.etcd_addr.is_none() {
            return Err(ConfigError::Invalid(
                "--join needs --etcd-addr: only a node serving etcd's API can join a running cluster".into(),
            ));
        }
        let kv = self.kv_config(id)?;
        Ok(Resolved {
            id,
            data_dir,
            client_addr,
            peer_listen,
            kv,
            config: self,
        })
    }

    fn kv_config(&self, id: NodeId) -> Result<KvConfig, ConfigError> {
        let d = Duration::from_millis;
        let mut kv = KvConfig::default();
        kv.raft.tick = d(self.tick_ms);
        kv.raft.election_timeout_min = d(self.election_timeout_min_ms);
        kv.raft.election_timeout_max = d(self.election_timeout_max_ms);
        kv.raft.heartbeat_interval = d(self.heartbeat_ms);
        kv.raft.leader_parallel_write = self.leader_parallel_write;
        kv.raft.max_inflight_msgs = self.max_inflight_msgs;
        kv.raft.read_mode = match self.read_mode {
            ReadModeName::ReadIndex => raft::ReadMode::ReadIndex,
            ReadModeName::Lease => raft::ReadMode::Lease {
                duration: d(self.lease_ms),
                uncertainty: d(self.clock_uncertainty_ms),
            },
        };
        kv.raft.max_log_size = (self.snapshot_bytes > 0).then_some(self.snapshot_bytes);
        // Election timeouts differ between nodes by their seeds, and between runs.
        kv.raft.seed = rand::random::<u64>() ^ id;
        kv.op_timeout = d(self.op_timeout_ms);
        kv.limits = Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        };
        kv.raft
            .core_config()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        // Every Raft message must fit a frame, and so must a command with a key and a
        // value at their limits (with room for the request around them).
        let mut transport =
            raft_transport::TransportConfig::new(self.cluster_id, id, Default::default());
        transport.max_frame = self.max_frame_bytes;
        transport
            .validate_for(&kv.raft)
            .map_err(|e| ConfigError::Invalid(format!("max_frame_bytes: {e}")))?;
        let needed = self.max_value_bytes + self.max_key_bytes + 256;
        if transport.max_command_bytes() < needed {
            return Err(ConfigError::Invalid(format!(
                "max_frame_bytes ({}) leaves {} bytes for a command; max_value_bytes + max_key_bytes + 256 = {needed}",
                self.max_frame_bytes,
                transport.max_command_bytes()
            )));
        }
        Ok(kv)
    }
}

/// Settings checked and ready to use.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// This node's id.
    pub id: NodeId,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where it serves clients.
    pub client_addr: String,
    /// Where it listens for peers.
    pub peer_listen: String,
    /// The key/value server's settings.
    pub kv: KvConfig,
    /// Everything, as given.
    pub config: ServeConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_and_flags_over_it() {
        let text = r#"
            id = 2
            cluster_id = 9
            data_dir = "/tmp/x"
            heartbeat_ms = 50
            [[nodes]]
            id = 1
            peer = "h1:7001"
            client = "h1:7101"
            [[nodes]]
            id = 2
            peer = "h2:7001"
            client = "h2:7101"
        "#;
        let mut c: ServeConfig = toml::from_str(text).expect("parses");
        assert_eq!((c.id, c.cluster_id, c.heartbeat_ms), (Some(2), 9, 50));
        c.set_peers(&parse_node_list("2=h2:8001,3=h3:8001").expect("list"));
        c.client_addr = Some("0.0.0.0:7101".into());
        let r = c.resolve().expect("valid");
        assert_eq!(r.peer_listen, "h2:8001");
        assert_eq!(r.client_addr, "0.0.0.0:7101");
        assert_eq!(r.config.nodes.len(), 3);
        assert_eq!(r.kv.raft.heartbeat_interval, Duration::from_millis(50));
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        assert!(parse_node_list("1=a,x").is_err());
        assert!(parse_node_list("one=a").is_err());
        assert!(toml::from_str::<ServeConfig>("idd = 1").is_err());
        let mut c = ServeConfig {
            id: Some(4),
            data_dir: Some("/tmp/d".into()),
            client_addr: Some("a:1".into()),
            ..ServeConfig::default()
        };
        c.set_peers(&parse_node_list("1=a:2").expect("list"));
        let e = c
            .clone()
            .resolve()
            .expect_err("4 is not listed")
            .to_string();
        assert!(e.contains("not in the peer list"), "{e}");
        c.id = Some(1);
        c.max_frame_bytes = 1000;
        let e = c
            .clone()
            .resolve()
            .expect_err("frame too small")
            .to_string();
        assert!(e.contains("max_frame_bytes"), "{e}");
        c.max_frame_bytes = ServeConfig::default().max_frame_bytes;
        c.max_inflight_msgs = 0;
        let e = c.clone().resolve().expect_err("no window").to_string();
        assert!(e.contains("in-flight"), "{e}");
        c.max_inflight_msgs = 8;
        assert_eq!(
            c.clone()
                .resolve()
                .expect("valid")
                .kv
                .raft
                .max_inflight_msgs,
            8
        );
        c.read_mode = ReadModeName::Lease;
        c.lease_ms = 380;
        let e = c.resolve().expect_err("lease too long").to_string();
        assert!(e.contains("lease"), "{e}");
        assert!(toml::from_str::<ServeConfig>("read_mode = \"leases\"").is_err());
    }

    #[test]
    fn worker_threads_from_the_file() {
        assert_eq!(ServeConfig::default().worker_threads, 0, "one per core");
        let c: ServeConfig = toml::from_str("worker_threads = 1").expect("parses");
        assert_eq!(c.worker_threads, 1);
        assert!(toml::from_str::<ServeConfig>("worker_threads = -1").is_err());
    }

    #[test]
    fn lease_reads_from_the_file() {
        let text = r#"
            id = 1
            data_dir = "/tmp/x"
            read_mode = "lease"
            lease_ms = 200
            clock_uncertainty_ms = 20
            [[nodes]]
            id = 1
            peer = "h1:7001"
            client = "h1:7101"
        "#;
        let c: ServeConfig = toml::from_str(text).expect("parses");
        let r = c.resolve().expect("valid");
        assert_eq!(
            r.kv.raft.read_mode,
            raft::ReadMode::Lease {
                duration: Duration::from_millis(200),
                uncertainty: Duration::from_millis(20),
            }
        );
        let default: ServeConfig = toml::from_str("id = 1").expect("parses");
        assert_eq!(default.read_mode, ReadModeName::ReadIndex);
    }
}

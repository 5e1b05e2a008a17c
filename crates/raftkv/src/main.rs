//! `raftkv`: serve a node, run a local cluster, talk to a cluster, measure it.

mod cmd;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use raftkv::client::ClientConfig;
use raftkv::config::{parse_node_list, ServeConfig};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "raftkv",
    version,
    about = "A replicated key/value store on Raft"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Serve(ServeArgs),
    /// Run a local cluster of `serve` processes on fixed ports until Ctrl-C.
    Cluster {
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
        /// Where the data directories and logs go.
        #[arg(long, default_value = ".raftkv-cluster")]
        dir: PathBuf,
        /// Ports: peers BASE+id, clients BASE+100+id, HTTP BASE+200+id, etcd BASE+300+id.
        #[arg(long, default_value_t = 7000)]
        base_port: u16,
        /// Serve etcd's v3 API instead of the native protocol: node 1 on 127.0.0.1:2379
        /// when that port is free (etcdctl's default), the others on BASE+300+id.
        #[arg(long)]
        etcd: bool,
        /// Threads for each node's async work (default: one per core).
        #[arg(long)]
        worker_threads: Option<usize>,
    },
    /// Set KEY to VALUE.
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print KEY's value (empty if it has none).
    Get {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Append VALUE to KEY's value.
    Append {
        key: String,
        value: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Remove KEY.
    Del {
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every node's role, term, indices, leader and log size.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Start a local 3-node cluster (fsync on) and measure put throughput and latency.
    Bench(cmd::bench::BenchArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML file of settings; the flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id (1, 2, ...).
    #[arg(long)]
    id: Option<u64>,
    /// Every node's peer address: 1=HOST:PORT,2=HOST:PORT,...
    #[arg(long)]
    peers: Option<String>,
    /// Every node's client address (sent to redirected clients): 1=HOST:PORT,...
    #[arg(long)]
    clients: Option<String>,
    /// Where this node serves clients.
    #[arg(long)]
    client_addr: Option<String>,
    /// Where this node serves /metrics and /health over HTTP.
    #[arg(long)]
    http_addr: Option<String>,
    /// Serve etcd's v3 gRPC API here; the node's state machine is then the etcd store
    /// and the native client port is not served (docs/ETCD-COMPAT.md).
    #[arg(long)]
    etcd_addr: Option<String>,
    /// Every node's etcd API address (reported by MemberList): 1=HOST:PORT,...
    #[arg(long)]
    etcd_clients: Option<String>,
    /// Join a running cluster as a new node: start as no member and wait until the
    /// cluster adds this node's id (`etcdctl member add --learner`, then `member
    /// promote`); needs --etcd-addr. --peers then needs to name only this node.
    #[arg(long)]
    join: bool,
    /// The data directory (WAL and snapshots).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The cluster id (every node and client of one cluster must agree).
    #[arg(long)]
    cluster_id: Option<u64>,
    /// Threads for the node's async work (0: one per core; `worker_threads` in the file).
    #[arg(long)]
    worker_threads: Option<usize>,
}

#[derive(Args, Clone)]
struct ClientArgs {
    /// Client addresses of some nodes (default: those `raftkv cluster` starts).
    #[arg(long, value_delimiter = ',', default_values_t = (1..=3).map(raftkv::default_client_addr))]
    endpoints: Vec<String>,
    /// The cluster id.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

impl ClientArgs {
    fn config(&self) -> anyhow::Result<ClientConfig> {
        let op_timeout = Duration::try_from_secs_f64(self.timeout).context("bad --timeout")?;
        Ok(ClientConfig {
            cluster_id: self.cluster_id,
            op_timeout,
            ..ClientConfig::default()
        })
    }
}

fn serve_config(a: ServeArgs) -> anyhow::Result<raftkv::config::Resolved> {
    let mut c = match &a.config {
        Some(path) => ServeConfig::from_file(path)?,
        None => ServeConfig::default(),
    };
    if let Some(id) = a.id {
        c.id = Some(id);
    }
    if let Some(p) = &a.peers {
        c.set_peers(&parse_node_list(p)?);
    }
    if let Some(p) = &a.clients {
        c.set_clients(&parse_node_list(p)?)?;
    }
    if a.client_addr.is_some() {
        c.client_addr = a.client_addr;
    }
    if a.http_addr.is_some() {
        c.http_addr = a.http_addr;
    }
    if a.etcd_addr.is_some() {
        c.etcd_addr = a.etcd_addr;
    }
    if let Some(p) = &a.etcd_clients {
        c.set_etcd_clients(&parse_node_list(p)?)?;
    }
    if a.data_dir.is_some() {
        c.data_dir = a.data_dir;
    }
    if a.join {
        c.join = true;
    }
    if let Some(id) = a.cluster_id {
        c.cluster_id = id;
    }
    if let Some(n) = a.worker_threads {
        c.worker_threads = n;
    }
    Ok(c.resolve()?)
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes on one line; no backtrace (RUST_BACKTRACE is for bugs).
            eprintln!("raftkv: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let serving = matches!(cli.command, Command::Serve(_) | Command::Cluster { .. });
    init_logs(if serving { "info" } else { "warn" });
    match cli.command {
        // A node's settings say how many threads its runtime gets: read them first.
        Command::Serve(a) => {
            let resolved = serve_config(a)?;
            runtime(resolved.config.worker_threads)?.block_on(cmd::serve::run(resolved))
        }
        other => runtime(0)?.block_on(run_command(other)),
    }
}

/// The async runtime: `threads` workers, or one per core when 0.
fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        builder.worker_threads(threads);
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs a command on the runtime `run` made for it.
async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(a) => cmd::serve::run(serve_config(a)?).await,
        Command::Cluster {
            nodes,
            dir,
            base_port,
            etcd,
            worker_threads,
        } => cmd::cluster::run(nodes, dir, base_port, etcd, worker_threads).await,
        Command::Put { key, value, client } => {
            client_action(client, cmd::client::Action::Put(key, value)).await
        }
        Command::Get { key, client } => client_action(client, cmd::client::Action::Get(key)).await,
        Command::Append { key, value, client } => {
            client_action(client, cmd::client::Action::Append(key, value)).await
        }
        Command::Del { key, client } => client_action(client, cmd::client::Action::Del(key)).await,
        Command::Status { client } => {
            cmd::client::status(&client.endpoints, client.config()?).await
        }
        Command::Bench(a) => cmd::bench::run(a).await,
    }
}

/// One key/value request to the cluster `client` names.
async fn client_action(client: ClientArgs, action: cmd::client::Action) -> anyhow::Result<()> {
    cmd::client::run(&client.endpoints, client.config()?, action).await
}

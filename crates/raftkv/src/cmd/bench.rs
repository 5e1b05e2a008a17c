//! `raftkv bench`: starts a local 3-node cluster (WAL with fsync, as `serve` always runs)
//! and measures puts of 100-byte values at 1, 16 and 64 concurrent clients.

use super::cluster::LocalCluster;
use anyhow::Context;
use clap::Args;
use raftkv::client::{self, ClientConfig, RaftKvClient};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct BenchArgs {
    /// Concurrent client counts to measure, one after the other.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    clients: Vec<usize>,
    /// Seconds of load per client count.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Ports of the bench cluster: peers BASE+id, clients BASE+100+id, HTTP BASE+200+id.
    #[arg(long, default_value_t = 7400)]
    base_port: u16,
    /// Where the bench cluster's data goes (default: a fresh folder in the temp dir,
    /// removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Measure an already running cluster at these client addresses instead.
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let (mut cluster, endpoints, scratch) = if a.endpoints.is_empty() {
        let scratch = a.dir.is_none();
        let dir = a.dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("raftkv-bench-{}", std::process::id()))
        });
        let c = LocalCluster::start(3, &dir, a.base_port)?;
        let endpoints = c.client_addrs();
        println!(
            "bench cluster: 3 nodes under {} (fsync on every write batch)",
            dir.display()
        );
        (Some(c), endpoints, scratch.then_some(dir))
    } else {
        (None, a.endpoints.clone(), None)
    };
    let config = ClientConfig::default();
    wait_for_leader(&endpoints, &config).await?;
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "clients", "ops", "ops/s", "p50 ms", "p99 ms", "errors"
    );
    let value = "x".repeat(a.value_size);
    for &n in &a.clients {
        let r = level(
            &endpoints,
            &config,
            n,
            Duration::from_secs(a.seconds),
            &value,
        )
        .await?;
        println!(
            "{:>8} {:>10} {:>10.0} {:>10.3} {:>10.3} {:>8}",
            n, r.ops, r.ops_per_s, r.p50_ms, r.p99_ms, r.errors
        );
    }
    if let Some(c) = cluster.as_mut() {
        let failed = tokio::task::block_in_place(|| c.stop(Duration::from_secs(15)));
        if !failed.is_empty() {
            eprintln!(
                "nodes {failed:?} did not stop cleanly; see {}",
                c.dir.display()
            );
        }
    }
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

async fn wait_for_leader(endpoints: &[String], config: &ClientConfig) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        for e in endpoints {
            if let Ok(st) = client::status(e, config).await {
                if st.role == "leader" {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("no leader within 20 s")
}

struct Level {
    ops: usize,
    ops_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn level(
    endpoints: &[String],
    config: &ClientConfig,
    n: usize,
    length: Duration,
    value: &str,
) -> anyhow::Result<Level> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = RaftKvClient::connect(endpoints, config.clone()).await?;
        // Warm up: the client finds the leader and opens its session.
        c.put(&format!("warm{i}"), value)
            .await
            .context("warm-up put")?;
        clients.push(c);
    }
    let start = Instant::now();
    let end = start + length;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let value = value.to_owned();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0;
                let mut k = 0u64;
                while Instant::now() < end {
                    let t = Instant::now();
                    match c.put(&format!("c{i}-{}", k % 128), &value).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                    k += 1;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    let wall = start.elapsed();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(Level {
        ops: all.len(),
        ops_per_s: all.len() as f64 / wall.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

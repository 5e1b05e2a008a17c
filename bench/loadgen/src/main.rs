//! `loadgen`: one load generator for etcd's v3 gRPC API, so that etcd and raftkv are
//! measured with the very same client (the `etcd-client` crate).
//!
//! It runs a fixed number of operations (after an excluded warm-up) from C concurrent
//! clients, each waiting for its answer before sending the next, and prints one line:
//! throughput and the latency percentiles of single operations.
//!
//! ```text
//! loadgen --endpoints 127.0.0.1:2379 --clients 16 --ops 20000              # 100 B puts
//! loadgen --endpoints 127.0.0.1:2379 --clients 16 --ops 20000 --mix read95 # 95% linearizable gets
//! ```

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use etcd_client::{Client, GetOptions, KvClient};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What each operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mix {
    /// Every operation puts a value to a key no other operation writes.
    Put,
    /// 95 of every 100 operations are linearizable gets of keys written in the warm-up,
    /// 5 are puts.
    Read95,
    /// Every operation is a serializable get (answered by the endpoint from its own
    /// store, no consensus): the cost of the API path alone, without Raft or a disk.
    SerialGet,
}

/// Drive an etcd v3 API endpoint and print ops/s, p50 and p99.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Endpoints, comma-separated (host:port); the first is used, as etcd's own
    /// benchmark does when told to talk to the leader.
    #[arg(long, default_value = "127.0.0.1:2379", value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Concurrent clients, each with one operation outstanding.
    #[arg(long, default_value_t = 1)]
    clients: u64,
    /// gRPC connections the clients share (default: one per client, at most 16).
    #[arg(long)]
    conns: Option<u64>,
    /// Measured operations, all clients together.
    #[arg(long, default_value_t = 10_000)]
    ops: u64,
    /// Operations before the measurement starts (not counted).
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// The operation mix.
    #[arg(long, value_enum, default_value_t = Mix::Put)]
    mix: Mix,
    /// A label printed with the figures (e.g. the system's name).
    #[arg(long, default_value = "target")]
    label: String,
    /// Give up on an operation after this many milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
}

/// What one phase (warm-up or measurement) produced.
struct Outcome {
    latencies: Histogram<u64>,
    errors: u64,
    elapsed: Duration,
}

/// Shared by the clients of one phase: the next operation number and the latencies.
struct Phase {
    next: AtomicU64,
    end: u64,
    latencies: Mutex<Histogram<u64>>,
    errors: AtomicU64,
}

fn histogram() -> Result<Histogram<u64>> {
    // Microseconds from 1 µs to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).context("histogram bounds")
}

async fn one_op(kv: &mut KvClient, args: &Args, value: &[u8], n: u64) -> Result<()> {
    // Reads ask for keys the warm-up wrote (it writes keys 0..warmup).
    let written_key = || format!("lg-{}", n % args.warmup.max(1));
    match args.mix {
        Mix::SerialGet => {
            let serializable = GetOptions::new().with_serializable();
            kv.get(written_key(), Some(serializable)).await?;
        }
        // 95 of every 100: a linearizable get.
        Mix::Read95 if !n.is_multiple_of(20) => {
            kv.get(written_key(), None).await?;
        }
        Mix::Put | Mix::Read95 => {
            kv.put(format!("lg-{n}"), value.to_vec(), None).await?;
        }
    }
    Ok(())
}

async fn client(mut kv: KvClient, args: Arc<Args>, phase: Arc<Phase>) -> Result<()> {
    let value = vec![b'v'; args.value_size];
    let mut local = histogram()?;
    let timeout = Duration::from_millis(args.timeout_ms);
    loop {
        let n = phase.next.fetch_add(1, Ordering::Relaxed);
        if n >= phase.end {
            break;
        }
        let started = Instant::now();
        match tokio::time::timeout(timeout, one_op(&mut kv, &args, &value, n)).await {
            Ok(Ok(())) => {
                let micros = started.elapsed().as_micros().max(1) as u64;
                local.saturating_record(micros);
            }
            Ok(Err(e)) => {
                // The first failure of a phase says why; the count says how often.
                if phase.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("operation {n} failed: {e:#}");
                }
            }
            Err(_) => {
                if phase.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("operation {n} timed out after {} ms", args.timeout_ms);
                }
            }
        }
    }
    phase
        .latencies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .add(&local)
        .context("merging histograms")?;
    Ok(())
}

async fn run_phase(kvs: &[KvClient], args: &Arc<Args>, start: u64, count: u64) -> Result<Outcome> {
    let phase = Arc::new(Phase {
        next: AtomicU64::new(start),
        end: start + count,
        latencies: Mutex::new(histogram()?),
        errors: AtomicU64::new(0),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|c| {
            let kv = kvs[(c as usize) % kvs.len()].clone();
            tokio::spawn(client(kv, args.clone(), phase.clone()))
        })
        .collect();
    for t in tasks {
        t.await.context("client task")??;
    }
    let elapsed = started.elapsed();
    let latencies = phase
        .latencies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(Outcome {
        latencies,
        errors: phase.errors.load(Ordering::Relaxed),
        elapsed,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Arc::new(Args::parse());
    if args.clients == 0 || args.ops == 0 {
        bail!("--clients and --ops must be at least 1");
    }
    let endpoint = args.endpoints.first().context("no endpoint given")?.clone();
    let conns = args
        .conns
        .unwrap_or(args.clients.min(16))
        .clamp(1, args.clients);
    let mut kvs = Vec::new();
    for _ in 0..conns {
        let client = Client::connect([endpoint.as_str()], None)
            .await
            .with_context(|| format!("cannot connect to {endpoint}"))?;
        kvs.push(client.kv_client());
    }
    // The warm-up writes keys 0..warmup (read by the read mix) with puts only.
    let warm_args = Arc::new(Args {
        mix: Mix::Put,
        ..Args::parse()
    });
    if args.warmup > 0 {
        let warm = run_phase(&kvs, &warm_args, 0, args.warmup).await?;
        if warm.errors > 0 {
            bail!(
                "{} of {} warm-up operations failed",
                warm.errors,
                args.warmup
            );
        }
    }
    let out = run_phase(&kvs, &args, args.warmup, args.ops).await?;
    let done = args.ops - out.errors;
    let ms = |q: f64| out.latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{label} mix={mix:?} clients={clients} ops={done} errors={errors} ops/s={rate:.0} p50_ms={p50:.3} p99_ms={p99:.3}",
        label = args.label,
        mix = args.mix,
        clients = args.clients,
        errors = out.errors,
        rate = done as f64 / out.elapsed.as_secs_f64(),
        p50 = ms(0.50),
        p99 = ms(0.99),
    );
    if out.errors > 0 {
        bail!("{} operations failed", out.errors);
    }
    Ok(())
}

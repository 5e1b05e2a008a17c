//! Wiring a Raft peer into the labrpc network: its outgoing ends, and the
//! [`raft::Transport`] that carries its messages over them, optionally after a latency.
//!
//! The Raft cluster of this crate and the key/value harness of `kvraft` both build their
//! servers from these pieces, so a peer is connected the same way in every suite.

use futures::future::BoxFuture;
use labrpc::{ClientEnd, Network};
use raft::{Envelope, NodeId, Transport};
use rand::Rng;
use rand_chacha::{rand_core::SeedableRng, ChaCha8Rng};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The labrpc method that carries Raft messages between peers.
pub const RAFT_METHOD: &str = "Raft.Message";

/// The labrpc server name of peer `i`.
pub fn server_name(i: usize) -> String {
    format!("server-{i}")
}

/// Makes peer `i`'s outgoing ends to each of the `n` peers (itself included) and connects
/// each to its target's server. `generation` makes the names fresh: a restarted peer gets
/// new ends, so that its dead instance's ends can be disabled on their own. Returns the
/// ends' names (to enable or disable them later) and the ends.
pub fn peer_ends(
    net: &Network,
    i: usize,
    n: usize,
    generation: u64,
) -> (Vec<String>, Vec<ClientEnd>) {
    let names: Vec<String> = (0..n)
        .map(|j| format!("end-{i}-{j}-g{generation}"))
        .collect();
    let ends = names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let end = net.make_end(name.clone());
            net.connect(name, &server_name(j));
            end
        })
        .collect();
    (names, ends)
}

/// A one-way latency added to requests before they enter labrpc: uniform in `[min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Shortest latency.
    pub min: Duration,
    /// Longest latency (exclusive).
    pub max: Duration,
}

impl Latency {
    /// U[2 ms, 8 ms): the key/value harness's default.
    pub const DEFAULT: Latency = Latency {
        min: Duration::from_millis(2),
        max: Duration::from_millis(8),
    };
    /// No latency at all.
    pub const ZERO: Latency = Latency {
        min: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// Draws one latency; draws nothing from `rng` when the range is empty, so a zero
    /// latency leaves the random stream untouched.
    pub fn sample(&self, rng: &Mutex<ChaCha8Rng>) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = u64::try_from((self.max - self.min).as_micros()).unwrap_or(u64::MAX);
        let us = lock(rng).gen_range(0..span);
        self.min + Duration::from_micros(us)
    }
}

/// [`raft::Transport`] over labrpc: one client end per peer, indexed by peer id, with an
/// optional latency before each request.
pub struct LabTransport {
    ends: Vec<ClientEnd>,
    latency: Latency,
    rng: Arc<Mutex<ChaCha8Rng>>,
}

impl LabTransport {
    /// A transport over `ends` (`ends[j]` reaches peer `j`), without added latency.
    pub fn new(ends: Vec<ClientEnd>) -> Self {
        LabTransport {
            ends,
            latency: Latency::ZERO,
            rng: Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(0))),
        }
    }

    /// The same, with every request delayed by a draw from `latency`, seeded by `seed`.
    pub fn with_latency(mut self, latency: Latency, seed: u64) -> Self {
        self.latency = latency;
        self.rng = Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed)));
        self
    }
}

impl Transport for LabTransport {
    fn call(&self, to: NodeId, msg: Envelope) -> BoxFuture<'static, Option<Envelope>> {
        let end = usize::try_from(to)
            .ok()
            .and_then(|i| self.ends.get(i))
            .cloned();
        let delay = self.latency.sample(&self.rng);
        Box::pin(async move {
            let end = end?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            end.call::<Envelope, Option<Envelope>>(RAFT_METHOD, &msg)
                .await
                .ok()
                .flatten()
        })
    }
}

/// Locks `m`, ignoring poisoning: a panicking test thread has already failed the test.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

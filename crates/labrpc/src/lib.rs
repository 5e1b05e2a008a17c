//! `labrpc`: the simulated RPC network of the classic Raft labs, on tokio.
//!
//! # The model
//!
//! A [`Network`] holds named client ends ([`ClientEnd`]), named servers ([`Server`]), a mapping
//! from each end to the name of the server it targets ([`Network::connect`]), and a per-end
//! *enabled* flag, off when the end is created ([`Network::enable`]). There is meant to be one
//! end per directed peer pair, so disconnecting a peer means disabling every end it sends on and
//! every end that targets it. A server bundles handlers addressed by method name (for example
//! `"Raft.Message"`). Arguments and replies are serialized with postcard on every call, so caller
//! and handler share no memory.
//!
//! # A call
//!
//! [`ClientEnd::call`] (typed) or [`ClientEnd::call_bytes`] (raw) always returns eventually,
//! unless the handler never returns and the end stays enabled and the server alive. `Ok` means
//! the handler ran and the reply is valid; any `Err` means "no reply", and a caller should not
//! try to tell the reasons apart. The steps, in order:
//!
//! 1. The network-wide RPC count is incremented and the argument bytes are added to the byte
//!    total, even if the end is disabled. The end's state and the network's settings are
//!    snapshotted now.
//! 2. If the end is disabled, not connected, or its server is not registered, the call fails
//!    after U[0,7000) ms with long delays on, else after U[0,100) ms.
//! 3. If the network is unreliable, the request waits U[0,27) ms and is then dropped with
//!    probability 10% (the call fails at once).
//! 4. The server's own count is incremented and the handler is spawned as its own tokio task,
//!    so its side effects happen even if the caller gives up. Every 100 ms while it runs, and
//!    once more after it returns, the network checks that the end is still enabled and that the
//!    server registered under that name is still the same instance; if not, the call fails and
//!    the reply (if any) is discarded. A killed server therefore never acknowledges anything.
//! 5. If unreliable, the reply is dropped with probability 10%.
//! 6. With long reordering on, the reply is delayed with probability 600/900 by
//!    `200 + U[0, 1 + U[0,2000))` ms.
//! 7. The reply bytes are added to the byte total and the reply is delivered.
//!
//! Concurrent calls are naturally reordered by these delays. Steps 2 to 7 run in a task of
//! their own, so dropping the future of a call does not cancel the request.
//!
//! # Observing
//!
//! [`Network::set_observer`] installs a [`NetObserver`] told every step of every call
//! ([`CallEvent`]: sent, dispatched, failed, replied, reply delivered or lost), e.g. to draw
//! the run (the tester's HTML timeline). It draws no randomness and never runs under the
//! network's lock, so it changes nothing the network does.
//!
//! # Time and determinism
//!
//! All sleeping uses `tokio::time`, so under a paused clock (`start_paused = true`) the network
//! runs in virtual time. All randomness comes from one `ChaCha8Rng` seeded by
//! [`Network::new`]; maps are ordered and no iteration order influences behaviour. Under a
//! single-threaded tokio runtime the whole network is therefore deterministic: the same seed
//! and the same driving code give the same outcomes at the same virtual instants.
//!
//! # Locking
//!
//! The network's state sits behind one `std::sync::Mutex` that is never held across an
//! `.await`. A poisoned lock is recovered (`unwrap_or_else(PoisonError::into_inner)`): no
//! critical section can panic half-way through an update, so the state is always consistent.
//!
//! # Example
//!
//! ```
//! use labrpc::{Network, Server};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let net = Network::new(42);
//! let mut server = Server::new();
//! server.add_typed_method("Echo.Double", |x: u64| async move { 2 * x });
//! net.add_server("s0", server);
//!
//! let end = net.make_end("c0->s0");
//! net.connect("c0->s0", "s0");
//! net.enable("c0->s0", true);
//!
//! let reply: u64 = end.call("Echo.Double", &21u64).await.expect("reliable network");
//! assert_eq!(reply, 42);
//! assert_eq!(net.total_count(), 1);
//! assert_eq!(net.count("s0"), 1);
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod network;
mod observe;
mod server;

pub use error::RpcError;
pub use network::{ClientEnd, Network};
pub use observe::{CallEvent, NetObserver};
pub use server::{handler_fn, Handler, Server};

#[cfg(test)]
mod tests;

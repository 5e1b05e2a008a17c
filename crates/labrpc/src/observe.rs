//! Watching calls go by: an optional observer the network tells about every step of every
//! call (sent, reached the handler, lost, replied, reply delivered or lost).
//!
//! Meant for drawing what happened (the tester's timeline). The observer is called
//! synchronously from the network's own code, never with the network's lock held, and
//! draws no randomness, so installing one does not change what the network does. Without
//! one, the network pays one branch per step of a call.

use crate::RpcError;
use std::sync::Arc;

/// One step of a call, as the observer sees it.
#[derive(Clone, Copy, Debug)]
pub enum CallEvent<'a> {
    /// The call was sent (step 1), with its serialized arguments.
    Sent {
        /// The method called.
        method: &'a str,
        /// The serialized arguments.
        args: &'a [u8],
        /// False when the end was disabled or its server missing at send time: the call
        /// will fail (after its timeout) without reaching any handler.
        reachable: bool,
    },
    /// The request reached its server's handler (step 4).
    Dispatched,
    /// The request never reached a handler that answered (unreachable end or server,
    /// dropped request, unknown method, no reply). Nothing comes back.
    Failed(&'a RpcError),
    /// The handler returned this serialized reply, before the network decides its fate.
    Replied {
        /// The serialized reply.
        reply: &'a [u8],
    },
    /// The reply reached the caller.
    ReplyDelivered,
    /// The reply was lost: the server died or the end was disabled meanwhile, the
    /// unreliable network dropped it, or the caller had stopped waiting
    /// ([`RpcError::NoReply`]).
    ReplyLost(&'a RpcError),
}

/// Receives every step of every call on a [`Network`](crate::Network) it is installed on
/// ([`Network::set_observer`](crate::Network::set_observer)).
pub trait NetObserver: Send + Sync + 'static {
    /// `call` numbers the calls of the network from 0 in the order they were sent; `end`
    /// is the name of the client end the call was sent on.
    fn on_call(&self, call: u64, end: &str, event: CallEvent<'_>);
}

/// The observer of a network, if any (cheap to clone).
pub(crate) type Observer = Option<Arc<dyn NetObserver>>;

//! The error type of a call.

/// Why a call produced no (usable) reply.
///
/// The classic lab collapses all of these into a single `false`: the caller cannot tell a lost
/// request from a lost reply, a disabled end or a dead server, and correct code treats every
/// variant as "no reply". The variants exist for logging, debugging and the tests of this crate;
/// do not build protocol logic on the distinction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The end was disabled, not connected to any server, or its server was not registered
    /// (deleted) when the call was sent. Reported after a random "timeout" delay.
    #[error("destination unreachable (end disabled, unconnected, or server deleted)")]
    Unreachable,
    /// The unreliable network dropped the request before it reached the server.
    #[error("request dropped by the unreliable network")]
    RequestDropped,
    /// While the handler ran (or right after it returned) the end was disabled, or the server
    /// was deleted or replaced by a new instance under the same name. The handler may have had
    /// side effects, but its reply is discarded.
    #[error("server died or end was disabled while the request was being handled")]
    ServerDead,
    /// The server has no handler registered under this method name.
    #[error("no such method: {0}")]
    NoSuchMethod(String),
    /// The handler returned no reply (it refused the request, could not decode it, or
    /// panicked).
    #[error("handler produced no reply")]
    NoReply,
    /// The unreliable network dropped the reply on its way back.
    #[error("reply dropped by the unreliable network")]
    ReplyDropped,
    /// The arguments could not be serialized; nothing was sent.
    #[error("could not encode the arguments: {0}")]
    Encode(#[source] postcard::Error),
    /// The reply was delivered but could not be deserialized into the expected type.
    #[error("could not decode the reply: {0}")]
    Decode(#[source] postcard::Error),
}

//! Servers: bundles of handlers addressed by method name.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type-erased RPC handler: serialized arguments in, serialized reply out.
///
/// `None` means the handler refused the request and sends no reply (the caller sees
/// [`RpcError::NoReply`](crate::RpcError::NoReply)). The returned future is run as its own tokio
/// task, so it must be `'static` and `Send`.
pub type Handler = Arc<dyn Fn(Bytes) -> BoxFuture<'static, Option<Bytes>> + Send + Sync>;

/// Wraps an async closure over raw bytes into a [`Handler`].
///
/// This only saves the boxing and the type annotations that a closure coerced to
/// `dyn Fn(Bytes) -> BoxFuture<..>` would otherwise need.
pub fn handler_fn<F, Fut>(f: F) -> Handler
where
    F: Fn(Bytes) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Bytes>> + Send + 'static,
{
    Arc::new(move |args: Bytes| -> BoxFuture<'static, Option<Bytes>> { Box::pin(f(args)) })
}

/// A bundle of handlers addressed by method name, such as `"Raft.Message"` or `"KV.Get"`.
///
/// Build one with [`Server::new`] and [`Server::add_method`] /
/// [`Server::add_typed_method`], then register it on a [`Network`](crate::Network) with
/// [`Network::add_server`](crate::Network::add_server). Each registration is a distinct
/// *instance*: registering a new server under an existing name "restarts" it, and calls in flight
/// to the old instance are then discarded.
///
/// Cloning a `Server` is cheap (the handlers are shared `Arc`s).
#[derive(Clone, Default)]
pub struct Server {
    methods: BTreeMap<String, Handler>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Server {
    /// Creates a server with no methods.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under the method name `name`, replacing any previous handler of
    /// that name.
    pub fn add_method(&mut self, name: impl Into<String>, handler: Handler) -> &mut Self {
        self.methods.insert(name.into(), handler);
        self
    }

    /// Registers a typed async handler under `name`.
    ///
    /// The request is decoded from postcard into `Req`, `f` is awaited, and its `Resp` is
    /// encoded with postcard. If the request does not decode (or the reply does not encode) the
    /// handler produces no reply, and the event is logged at `warn` level.
    pub fn add_typed_method<Req, Resp, F, Fut>(
        &mut self,
        name: impl Into<String>,
        f: F,
    ) -> &mut Self
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Resp> + Send + 'static,
    {
        let name: String = name.into();
        let method = name.clone();
        let f = Arc::new(f);
        let handler = handler_fn(move |args: Bytes| {
            let f = Arc::clone(&f);
            let method = method.clone();
            async move {
                let req: Req = match postcard::from_bytes(&args) {
                    Ok(req) => req,
                    Err(e) => {
                        tracing::warn!(%method, error = %e, "labrpc: cannot decode request");
                        return None;
                    }
                };
                let resp = f(req).await;
                match postcard::to_allocvec(&resp) {
                    Ok(v) => Some(Bytes::from(v)),
                    Err(e) => {
                        tracing::warn!(%method, error = %e, "labrpc: cannot encode reply");
                        None
                    }
                }
            }
        });
        self.add_method(name, handler)
    }

    /// Whether a handler is registered under `name`.
    pub fn has_method(&self, name: &str) -> bool {
        self.methods.contains_key(name)
    }

    /// The handler registered under `name`, if any.
    pub(crate) fn method(&self, name: &str) -> Option<Handler> {
        self.methods.get(name).cloned()
    }
}

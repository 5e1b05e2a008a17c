//! The handshake that opens every connection, peer or client.
//!
//! The connecting side sends one [`Hello`] frame; the accepting side answers one
//! [`HelloReply`] frame and, when it refuses, closes the connection. Only then do the
//! connection's own messages (peer requests, client requests) flow. The handshake knows
//! nothing about what follows it, so the peer transport and the client protocol share it
//! (with [`Role::Peer`] and [`Role::Client`]).

use super::{FrameError, FramedConn, FORMAT_VERSION};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// The four bytes every [`Hello`] starts with (right after the frame's version byte), so
/// that a stray connection from another protocol is told apart at once.
pub const HELLO_MAGIC: [u8; 4] = *b"RAFT";

/// What the connecting side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Another member of the cluster, carrying Raft messages.
    Peer,
    /// A client of the service.
    Client,
}

/// The first frame of every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`HELLO_MAGIC`].
    pub magic: [u8; 4],
    /// The sender's [`FORMAT_VERSION`].
    pub version: u8,
    /// The cluster the sender belongs to (or, for a client, wants to reach).
    pub cluster_id: u64,
    /// The sender's node id; for a client, an id of its own choosing (0 if it has none).
    pub node_id: u64,
    /// Peer or client.
    pub role: Role,
}

impl Hello {
    /// A hello of this build's magic and version.
    pub fn new(cluster_id: u64, node_id: u64, role: Role) -> Self {
        Hello {
            magic: HELLO_MAGIC,
            version: FORMAT_VERSION,
            cluster_id,
            node_id,
            role,
        }
    }
}

/// The accepting side's answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// The connection is open for the role's messages.
    Accepted,
    /// The connection is refused, and will be closed; `reason` says why.
    Refused {
        /// Human-readable reason, also logged by the refusing side.
        reason: String,
    },
}

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// A frame could not be sent or received.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The other side said nothing (or nothing complete) in time.
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
    /// The first frame does not start with [`HELLO_MAGIC`].
    #[error("bad magic {0:?}: not a raft connection")]
    BadMagic([u8; 4]),
    /// The hello names a format version this build does not speak.
    #[error("format version {got} is not supported (this build speaks {FORMAT_VERSION})")]
    BadVersion {
        /// The version in the hello.
        got: u8,
    },
    /// The handshake was refused; by the other side when connecting, by our check when
    /// accepting.
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
}

/// The connecting side: sends `hello` and waits (at most `timeout`) for the answer.
pub async fn send_hello<R, W>(
    conn: &mut FramedConn<R, W>,
    hello: &Hello,
    timeout: Duration,
) -> Result<(), HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let exchange = async {
        conn.send(hello).await?;
        conn.recv::<HelloReply>()
            .await
            .map_err(HandshakeError::from)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(HandshakeError::Timeout(timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(HelloReply::Accepted)) => Ok(()),
        Ok(Ok(HelloReply::Refused { reason })) => Err(HandshakeError::Refused { reason }),
    }
}

/// The accepting side: waits (at most `timeout`) for a [`Hello`], checks its magic and
/// version, then asks `check` (the caller's policy: cluster id, known node ids, role).
/// Answers [`HelloReply::Accepted`] and returns the hello, or answers
/// [`HelloReply::Refused`] (best effort) and returns why. The caller closes the
/// connection on an error.
pub async fn accept_hello<R, W, F>(
    conn: &mut FramedConn<R, W>,
    timeout: Duration,
    check: F,
) -> Result<Hello, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    F: FnOnce(&Hello) -> Result<(), String>,
{
    let hello = match tokio::time::timeout(timeout, conn.recv::<Hello>()).await {
        Err(_) => return Err(HandshakeError::Timeout(timeout)),
        Ok(Err(FrameError::BadVersion { got })) => {
            // Tell a newer (or older) build why, in the only format we know.
            refuse(conn, format!("format version {got} is not supported")).await;
            return Err(HandshakeError::BadVersion { got });
        }
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(hello)) => hello,
    };
    if hello.magic != HELLO_MAGIC {
        return Err(HandshakeError::BadMagic(hello.magic));
    }
    if hello.version != FORMAT_VERSION {
        let got = hello.version;
        refuse(conn, format!("format version {got} is not supported")).await;
        return Err(HandshakeError::BadVersion { got });
    }
    if let Err(reason) = check(&hello) {
        refuse(conn, reason.clone()).await;
        return Err(HandshakeError::Refused { reason });
    }
    conn.send(&HelloReply::Accepted).await?;
    Ok(hello)
}

/// Sends a refusal, ignoring failure: the connection is closed right after either way,
/// and a peer that is already gone needs no explanation.
async fn refuse<R, W>(conn: &mut FramedConn<R, W>, reason: String)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let reply = HelloReply::Refused { reason };
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.send(&reply)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (
        FramedConn<impl AsyncRead + Unpin, impl AsyncWrite + Unpin>,
        FramedConn<impl AsyncRead + Unpin, impl AsyncWrite + Unpin>,
    ) {
        let (a, b) = tokio::io::duplex(4096);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        (FramedConn::new(ar, aw, 1024), FramedConn::new(br, bw, 1024))
    }

    #[test]
    fn the_hello_frame_starts_with_version_then_magic() {
        let frame = super::super::encode(&Hello::new(5, 2, Role::Peer), 1024).expect("fits");
        assert_eq!(frame[0], FORMAT_VERSION);
        assert_eq!(&frame[1..5], &HELLO_MAGIC);
    }

    #[tokio::test]
    async fn accepted_and_refused_handshakes() {
        let (mut client, mut server) = pair();
        let check = |h: &Hello| {
            if h.cluster_id == 5 {
                Ok(())
            } else {
                Err(format!("cluster {} is not 5", h.cluster_id))
            }
        };
        let t = Duration::from_secs(5);
        let hello = Hello::new(5, 2, Role::Client);
        let (c, s) = tokio::join!(
            send_hello(&mut client, &hello, t),
            accept_hello(&mut server, t, check)
        );
        assert!(c.is_ok());
        assert_eq!(s.expect("accepted").role, Role::Client);

        let (mut client, mut server) = pair();
        let hello = Hello::new(6, 2, Role::Peer);
        let (c, s) = tokio::join!(
            send_hello(&mut client, &hello, t),
            accept_hello(&mut server, t, check)
        );
        assert!(
            matches!(c, Err(HandshakeError::Refused { reason }) if reason.contains("cluster 6"))
        );
        assert!(matches!(s, Err(HandshakeError::Refused { .. })));

        let (mut client, mut server) = pair();
        let mut bad = Hello::new(5, 2, Role::Peer);
        bad.magic = *b"HTTP";
        client.send(&bad).await.expect("sent");
        assert!(matches!(
            accept_hello(&mut server, t, check).await,
            Err(HandshakeError::BadMagic(m)) if &m == b"HTTP"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn silence_times_out() {
        let (_client, mut server) = pair();
        let t = Duration::from_millis(300);
        assert!(matches!(
            accept_hello(&mut server, t, |_| Ok(())).await,
            Err(HandshakeError::Timeout(_))
        ));
    }
}

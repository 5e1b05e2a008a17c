//! Frames on a TCP connection: length-delimited (a 4-byte big-endian length, tokio-util's
//! codec), each body a format-version byte then postcard; and the handshake that opens
//! every connection.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// The version byte that starts every frame body.
pub const WIRE_VERSION: u8 = 1;

/// The default largest frame, in bytes: room for the largest value (1 MiB by default)
/// with its key and framing.
pub const DEFAULT_MAX_FRAME: usize = 4 << 20;

/// A framed connection.
pub type Conn = Framed<TcpStream, LengthDelimitedCodec>;

/// Why a frame could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A frame longer than the limit arrived (or was about to be sent).
    #[error("frame too large (limit {max} bytes)")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// An empty frame.
    #[error("empty frame")]
    Empty,
    /// A frame of a format this build does not speak.
    #[error("unknown wire version {0} (this build speaks {WIRE_VERSION})")]
    UnknownVersion(u8),
    /// The body did not decode.
    #[error("undecodable frame: {0}")]
    Decode(#[from] postcard::Error),
    /// The other side closed the connection.
    #[error("connection closed")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out")]
    Timeout,
}

/// Wraps `stream` in the frame codec with a frame limit of `max_frame` bytes.
pub fn framed(stream: TcpStream, max_frame: usize) -> Conn {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(max_frame)
        .new_codec();
    Framed::new(stream, codec)
}

/// Encodes one frame body: the version byte, then postcard.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, FrameError> {
    Ok(Bytes::from(postcard::to_extend(value, vec![WIRE_VERSION])?))
}

/// Decodes a frame body written by [`encode`].
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    match body.split_first() {
        None => Err(FrameError::Empty),
        Some((&WIRE_VERSION, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((&v, _)) => Err(FrameError::UnknownVersion(v)),
    }
}

/// Sends `value` as one frame.
pub async fn send<T: Serialize>(conn: &mut Conn, value: &T) -> Result<(), FrameError> {
    let body = encode(value)?;
    let max = conn.codec().max_frame_length();
    if body.len() > max {
        return Err(FrameError::TooLarge { max });
    }
    conn.send(body).await?;
    Ok(())
}

/// Receives one frame and decodes it.
pub async fn recv<T: DeserializeOwned>(conn: &mut Conn) -> Result<T, FrameError> {
    match conn.next().await {
        None => Err(FrameError::Closed),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            // The codec's only InvalidData error is a length over the limit.
            Err(FrameError::TooLarge {
                max: conn.codec().max_frame_length(),
            })
        }
        Some(Err(e)) => Err(FrameError::Io(e)),
        Some(Ok(body)) => decode(&body),
    }
}

/// As [`recv`], giving up after `limit`.
pub async fn recv_within<T: DeserializeOwned>(
    conn: &mut Conn,
    limit: Duration,
) -> Result<T, FrameError> {
    tokio::time::timeout(limit, recv(conn))
        .await
        .map_err(|_| FrameError::Timeout)?
}

/// Who opens a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Another node of the cluster.
    Peer,
    /// A client.
    Client,
}

/// The first frame on every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The cluster the sender belongs to (or, for a client, wants to talk to).
    pub cluster_id: u64,
    /// The sender's node id (0 for a client).
    pub node_id: u64,
    /// Peer or client.
    pub role: Role,
}

/// The answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Go ahead; `node_id` is the answering node's.
    Accepted {
        /// The answering node.
        node_id: u64,
    },
    /// The connection is refused and will be closed; the reason says why.
    Refused {
        /// Why.
        reason: String,
    },
}

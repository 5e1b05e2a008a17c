//! Length-delimited frames carrying one versioned postcard message each.
//!
//! A frame on the wire is
//!
//! ```text
//! +----------------------+---------+------------------------------+
//! | length: u32 BE       | version | body: postcard(message)      |
//! | (of version + body)  | u8 = 1  |                              |
//! +----------------------+---------+------------------------------+
//! ```
//!
//! The length prefix is tokio-util's [`LengthDelimitedCodec`] (4 bytes, big-endian, not
//! counting itself); a frame longer than the configured maximum is refused before its body
//! is read, so a peer cannot make the receiver allocate more than that. The version byte is
//! checked before anything is decoded: a frame of another version is an error
//! ([`FrameError::BadVersion`]), never a guess. The body must be consumed exactly (trailing
//! bytes are an error), so one frame is exactly one message.
//!
//! [`FramedConn`] sends and receives any serde type on a byte stream (typically the two
//! halves of a [`TcpStream`]); [`FramedConn::split`] gives a reader and a writer that can
//! live in different tasks. The [`Hello`] handshake that opens every connection lives here
//! too, independent of the messages that follow it.

mod hello;

pub use hello::{accept_hello, send_hello, HandshakeError, Hello, HelloReply, Role, HELLO_MAGIC};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::{de::DeserializeOwned, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// The format version this build writes into every frame and accepts.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of the length prefix in front of every frame.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// The default largest frame (version byte + body), in bytes: 16 MiB, room for the
/// runtime's default 1 MiB AppendEntries and 256 KiB snapshot chunks many times over.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Why a frame could not be sent or received.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame exceeds the configured maximum (on receipt, its length prefix does).
    #[error("frame exceeds the limit of {max} bytes")]
    TooLarge {
        /// The configured limit.
        max: usize,
    },
    /// The frame's version byte is not [`FORMAT_VERSION`].
    #[error("unsupported format version {got} (this build speaks version {FORMAT_VERSION})")]
    BadVersion {
        /// The version byte received.
        got: u8,
    },
    /// The frame is empty: not even a version byte.
    #[error("empty frame")]
    Empty,
    /// The body is not a valid encoding of the expected message.
    #[error("cannot decode the frame body: {0}")]
    Decode(#[source] postcard::Error),
    /// The body decoded but left bytes unread.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The message cannot be encoded.
    #[error("cannot encode the message: {0}")]
    Encode(#[source] postcard::Error),
    /// The underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[source] std::io::Error),
    /// The other side closed the connection (at a frame boundary).
    #[error("connection closed")]
    Closed,
}

/// The codec of every connection: a 4-byte big-endian length prefix, at most `max_frame`.
pub fn codec(max_frame: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(LENGTH_PREFIX_BYTES)
        .big_endian()
        .max_frame_length(max_frame)
        .new_codec()
}

/// Encodes `msg` as one frame's content (version byte + postcard body), refusing a result
/// longer than `max_frame`.
pub fn encode<T: Serialize + ?Sized>(msg: &T, max_frame: usize) -> Result<Bytes, FrameError> {
    let buf = postcard::to_extend(msg, vec![FORMAT_VERSION]).map_err(FrameError::Encode)?;
    if buf.len() > max_frame {
        return Err(FrameError::TooLarge { max: max_frame });
    }
    Ok(Bytes::from(buf))
}

/// Decodes one frame's content: checks the version byte, decodes the body and insists
/// that nothing is left over.
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, FrameError> {
    let (&version, body) = frame.split_first().ok_or(FrameError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(FrameError::BadVersion { got: version });
    }
    let (msg, rest) = postcard::take_from_bytes(body).map_err(FrameError::Decode)?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(msg)
}

/// Turns the codec's I/O error back into what it means: an oversized length prefix is
/// reported by tokio-util as an `InvalidData` I/O error wrapping its own error type.
fn map_read_error(e: std::io::Error, max: usize) -> FrameError {
    let too_large = e
        .get_ref()
        .is_some_and(|inner| inner.is::<tokio_util::codec::LengthDelimitedCodecError>());
    if too_large {
        FrameError::TooLarge { max }
    } else if e.kind() == std::io::ErrorKind::UnexpectedEof {
        // The stream ended in the middle of a frame.
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

/// The receiving half of a framed connection.
pub struct FrameReader<R> {
    inner: FramedRead<R, LengthDelimitedCodec>,
    max_frame: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames read from `read`, at most `max_frame` bytes each.
    pub fn new(read: R, max_frame: usize) -> Self {
        FrameReader {
            inner: FramedRead::new(read, codec(max_frame)),
            max_frame,
        }
    }

    /// Receives the next message. [`FrameError::Closed`] when the stream has ended.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        self.recv_with_len().await.map(|(msg, _)| msg)
    }

    /// Receives the next message and the bytes it took on the wire (prefix included).
    pub async fn recv_with_len<T: DeserializeOwned>(&mut self) -> Result<(T, usize), FrameError> {
        match self.inner.next().await {
            None => Err(FrameError::Closed),
            Some(Err(e)) => Err(map_read_error(e, self.max_frame)),
            Some(Ok(frame)) => {
                let len = frame.len() + LENGTH_PREFIX_BYTES;
                decode(&frame).map(|msg| (msg, len))
            }
        }
    }
}

/// The sending half of a framed connection.
pub struct FrameWriter<W> {
    inner: FramedWrite<W, LengthDelimitedCodec>,
    max_frame: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// Frames written to `write`, at most `max_frame` bytes each.
    pub fn new(write: W, max_frame: usize) -> Self {
        FrameWriter {
            inner: FramedWrite::new(write, codec(max_frame)),
            max_frame,
        }
    }

    /// Sends `msg` and flushes; returns the bytes it took on the wire (prefix included).
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<usize, FrameError> {
        let n = self.feed(msg).await?;
        self.flush().await?;
        Ok(n)
    }

    /// Queues `msg` in the write buffer without flushing (it goes out once the buffer
    /// fills or at the next [`flush`](Self::flush)): for writing a burst with few syscalls.
    pub async fn feed<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<usize, FrameError> {
        let frame = encode(msg, self.max_frame)?;
        let n = frame.len() + LENGTH_PREFIX_BYTES;
        self.inner.feed(frame).await.map_err(FrameError::Io)?;
        Ok(n)
    }

    /// Writes out everything buffered.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        SinkExt::<Bytes>::flush(&mut self.inner)
            .await
            .map_err(FrameError::Io)
    }

    /// Sends an already-encoded frame content (version byte + body), as made by
    /// [`encode`]; for tests and tools that need to put exact bytes on the wire.
    pub async fn send_raw(&mut self, frame: Bytes) -> Result<(), FrameError> {
        if frame.len() > self.max_frame {
            return Err(FrameError::TooLarge {
                max: self.max_frame,
            });
        }
        self.inner.send(frame).await.map_err(FrameError::Io)
    }
}

/// Both halves of a framed connection.
pub struct FramedConn<R, W> {
    reader: FrameReader<R>,
    writer: FrameWriter<W>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> FramedConn<R, W> {
    /// A framed connection over a read half and a write half, `max_frame` bytes a frame.
    pub fn new(read: R, write: W, max_frame: usize) -> Self {
        FramedConn {
            reader: FrameReader::new(read, max_frame),
            writer: FrameWriter::new(write, max_frame),
        }
    }

    /// Sends `msg` and flushes; returns the bytes it took on the wire.
    pub async fn send<T: Serialize + ?Sized>(&mut self, msg: &T) -> Result<usize, FrameError> {
        self.writer.send(msg).await
    }

    /// Receives the next message. [`FrameError::Closed`] when the stream has ended.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        self.reader.recv().await
    }

    /// The reader and the writer, to use from different tasks.
    pub fn split(self) -> (FrameReader<R>, FrameWriter<W>) {
        (self.reader, self.writer)
    }
}

impl FramedConn<OwnedReadHalf, OwnedWriteHalf> {
    /// A framed connection over a TCP stream (its owned halves). Does not change socket
    /// options: callers set `TCP_NODELAY` themselves.
    pub fn from_tcp(stream: TcpStream, max_frame: usize) -> Self {
        let (read, write) = stream.into_split();
        FramedConn::new(read, write, max_frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        a: u64,
        b: String,
    }

    #[test]
    fn encode_then_decode_round_trips_with_the_version_byte_first() {
        let m = Msg {
            a: 7,
            b: "x".into(),
        };
        let frame = encode(&m, 1024).expect("fits");
        assert_eq!(frame[0], FORMAT_VERSION);
        assert_eq!(decode::<Msg>(&frame).expect("decodes"), m);
    }

    #[test]
    fn decode_refuses_other_versions_empty_frames_and_trailing_bytes() {
        let mut frame = encode(
            &Msg {
                a: 1,
                b: "y".into(),
            },
            1024,
        )
        .expect("fits")
        .to_vec();
        assert!(matches!(decode::<Msg>(&[]), Err(FrameError::Empty)));
        frame.push(0);
        assert!(matches!(
            decode::<Msg>(&frame),
            Err(FrameError::TrailingBytes(1))
        ));
        frame[0] = 9;
        assert!(matches!(
            decode::<Msg>(&frame),
            Err(FrameError::BadVersion { got: 9 })
        ));
        assert!(matches!(
            decode::<Msg>(&[FORMAT_VERSION, 0xff]),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn encode_refuses_a_frame_over_the_limit() {
        let m = Msg {
            a: 1,
            b: "z".repeat(100),
        };
        assert!(matches!(
            encode(&m, 50),
            Err(FrameError::TooLarge { max: 50 })
        ));
    }

    #[tokio::test]
    async fn frames_cross_a_stream_and_an_oversized_prefix_is_refused() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let mut left = FramedConn::new(ar, aw, 1024);
        let mut right = FramedConn::new(br, bw, 64);
        let m = Msg {
            a: 3,
            b: "hello".into(),
        };
        let n = left.send(&m).await.expect("sent");
        assert_eq!(
            n,
            LENGTH_PREFIX_BYTES + encode(&m, 1024).expect("fits").len()
        );
        assert_eq!(right.recv::<Msg>().await.expect("received"), m);
        // Over the receiver's limit: refused from the prefix alone.
        let big = Msg {
            a: 0,
            b: "q".repeat(100),
        };
        left.send(&big)
            .await
            .expect("sent under the sender's limit");
        assert!(matches!(
            right.recv::<Msg>().await,
            Err(FrameError::TooLarge { max: 64 })
        ));
        drop(left);
        let (mut reader, _w) = right.split();
        assert!(reader.recv::<Msg>().await.is_err());
    }
}

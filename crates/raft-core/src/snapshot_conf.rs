//! The configuration a snapshot carries, inside the snapshot's bytes.
//!
//! A snapshot replaces the log entries that held the configurations before it, so it
//! must carry the configuration in force at its last index: a node restarted from it, or
//! one that installs it from the leader, would otherwise not know its cluster. The core
//! wraps the service's bytes in a small envelope before they are persisted or sent, and
//! unwraps them before the service sees them, so every storage (memory, WAL, simulator)
//! and the InstallSnapshot message carry the configuration without a change of their own:
//!
//! ```text
//! "RAFTCONF" (8 bytes) | length of the configuration (u32, little-endian)
//!     | the configuration (postcard of Membership) | the service's bytes
//! ```
//!
//! Bytes without the magic prefix are a snapshot written before configurations existed:
//! the whole of it is the service's, and the configuration is the bootstrap one.

use crate::membership::Membership;
use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 8] = b"RAFTCONF";

/// The snapshot bytes to persist and send: `membership` and the service's `data`.
pub(crate) fn wrap(membership: &Membership, data: &Bytes) -> Bytes {
    let conf = encode_membership(membership);
    let mut out = BytesMut::with_capacity(MAGIC.len() + 4 + conf.len() + data.len());
    out.put_slice(MAGIC);
    // A configuration is a few ids: far below 4 GiB.
    out.put_u32_le(u32::try_from(conf.len()).unwrap_or(u32::MAX));
    out.put_slice(&conf);
    out.put_slice(data);
    out.freeze()
}

/// Splits snapshot bytes as the core persists and sends them (what a storage holds, or
/// [`RaftCore::snapshot`](crate::RaftCore::snapshot) returns) into the configuration they
/// carry (when they carry one) and the service's bytes. Tools that read a storage
/// directly need it; a service never does (it gets its own bytes in
/// [`Ready::restore`](crate::Ready::restore)).
pub fn split_snapshot(bytes: &Bytes) -> (Option<Membership>, Bytes) {
    unwrap(bytes)
}

/// Splits persisted or received snapshot bytes into the configuration (when they carry
/// one) and the service's bytes.
pub(crate) fn unwrap(bytes: &Bytes) -> (Option<Membership>, Bytes) {
    let header = MAGIC.len() + 4;
    if bytes.len() < header || &bytes[..MAGIC.len()] != MAGIC {
        return (None, bytes.clone());
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[MAGIC.len()..header]);
    let end = header.saturating_add(u32::from_le_bytes(len) as usize);
    if end > bytes.len() {
        return (None, bytes.clone());
    }
    match postcard::from_bytes::<Membership>(&bytes[header..end]) {
        Ok(m) => (Some(m), bytes.slice(end..)),
        Err(_) => (None, bytes.clone()),
    }
}

/// The bytes of a configuration entry: postcard of the whole [`Membership`], so that
/// every configuration entry can be read without the ones before it.
pub(crate) fn encode_membership(membership: &Membership) -> Bytes {
    // Encoding sets and options into a Vec cannot fail.
    Bytes::from(postcard::to_stdvec(membership).unwrap_or_default())
}

/// Reads a configuration entry's bytes; `None` when they are not a valid configuration.
pub(crate) fn decode_membership(data: &[u8]) -> Option<Membership> {
    postcard::from_bytes::<Membership>(data)
        .ok()
        .filter(|m| m.validate().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_snapshot_gives_back_its_configuration_and_data() {
        let mut m = Membership::with_voters([1, 2, 3]);
        m.learners.insert(4);
        let data = Bytes::from_static(b"service state");
        let (conf, back) = unwrap(&wrap(&m, &data));
        assert_eq!((conf, back), (Some(m.clone()), data));
        let (conf, back) = unwrap(&wrap(&m, &Bytes::new()));
        assert_eq!((conf, back), (Some(m), Bytes::new()));
    }

    #[test]
    fn bytes_without_the_envelope_are_all_the_services() {
        for raw in [
            &b""[..],
            b"RAFTCON",
            b"RAFTCONF\xff\xff\xff\xffxx",
            b"plain data",
        ] {
            let raw = Bytes::copy_from_slice(raw);
            assert_eq!(unwrap(&raw), (None, raw.clone()));
        }
    }
}

//! Whatever bytes arrive, decoding returns a value or an error: it never panics, and a
//! request that decodes survives a re-encode unchanged.

use proptest::prelude::*;
use raft_transport::frame::{decode, encode, FORMAT_VERSION};
use raft_transport::wire::{PeerRequest, PeerResponse};
use raft_transport::{Hello, HelloReply};

fn check(bytes: &[u8]) {
    if let Ok(req) = decode::<PeerRequest>(bytes) {
        // Validation of what decoded must not panic either.
        let _ = req.envelope.msg.validate();
        let again = encode(&req, usize::MAX).expect("re-encodes");
        assert_eq!(decode::<PeerRequest>(&again).expect("decodes"), req);
    }
    let _ = decode::<PeerResponse>(bytes);
    let _ = decode::<Hello>(bytes);
    let _ = decode::<HelloReply>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_frames_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut frame = vec![FORMAT_VERSION];
        frame.extend_from_slice(&body);
        check(&frame);
        check(&body);
    }

    #[test]
    fn mutated_valid_requests_never_panic(
        term in 0u64..1 << 40,
        n in 0usize..4,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let entries = (0..n as u64)
            .map(|i| raft_core::Entry::new(term, 5 + i, vec![1u8; i as usize]))
            .collect();
        let req = PeerRequest {
            id: term,
            envelope: raft_core::Envelope {
                from: 1,
                to: 2,
                msg: raft_core::Message::AppendEntries {
                    term,
                    prev_log_index: 4,
                    prev_log_term: term,
                    entries,
                    leader_commit: 3,
                },
            },
        };
        let mut frame = encode(&req, usize::MAX).expect("encodes").to_vec();
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] ^= byte;
        }
        check(&frame);
    }
}

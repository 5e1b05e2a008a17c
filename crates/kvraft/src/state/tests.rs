use super::*;

fn req(client_id: u64, seq: u64, op: Op) -> KvRequest {
    KvRequest { client_id, seq, op }
}
fn append(k: &str, v: &str) -> Op {
    Op::Append {
        key: k.into(),
        value: v.into(),
    }
}
fn put(k: &str, v: &str) -> Op {
    Op::Put {
        key: k.into(),
        value: v.into(),
    }
}
fn get(k: &str) -> Op {
    Op::Get { key: k.into() }
}

/// Applies with stamp 0, term 1.
fn apply(sm: &mut KvStateMachine, client: u64, seq: u64, op: Op) -> Applied {
    sm.apply(&req(client, seq, op), 0, 1)
}

#[test]
fn missing_keys_read_empty_and_ops_apply() {
    let mut sm = KvStateMachine::new();
    assert_eq!(
        apply(&mut sm, 1, 1, get("a")),
        Applied::Fresh(OpOutput::Value(String::new()))
    );
    assert_eq!(sm.clients(), 0, "a get opens no session");
    assert_eq!(
        apply(&mut sm, 1, 2, Op::OpenSession),
        Applied::Fresh(OpOutput::Done)
    );
    assert_eq!(
        apply(&mut sm, 1, 3, append("a", "x")),
        Applied::Fresh(OpOutput::Done)
    );
    assert_eq!(
        apply(&mut sm, 1, 4, append("a", "y")),
        Applied::Fresh(OpOutput::Done)
    );
    assert_eq!(sm.get("a"), "xy");
    apply(&mut sm, 2, 1, Op::OpenSession);
    apply(&mut sm, 2, 2, put("a", "z"));
    assert_eq!(sm.get("a"), "z");
    assert_eq!(sm.clients(), 2);
}

#[test]
fn a_write_is_applied_at_most_once_and_gets_read_again() {
    let mut sm = KvStateMachine::new();
    apply(&mut sm, 7, 1, Op::OpenSession);
    apply(&mut sm, 7, 2, append("k", "a"));
    assert_eq!(
        apply(&mut sm, 7, 2, append("k", "a")),
        Applied::Duplicate(OpOutput::Done)
    );
    assert_eq!(sm.get("k"), "a");
    apply(&mut sm, 7, 3, get("k"));
    apply(&mut sm, 7, 4, append("k", "b"));
    // A late copy of an older write is refused.
    assert_eq!(
        apply(&mut sm, 7, 2, append("k", "a")),
        Applied::Stale { latest: 4 }
    );
    assert_eq!(sm.get("k"), "ab");
    // A retried get is not deduplicated: it reads the current value.
    apply(&mut sm, 8, 1, get("k"));
    apply(&mut sm, 7, 5, append("k", "c"));
    assert_eq!(
        apply(&mut sm, 8, 1, get("k")),
        Applied::Fresh(OpOutput::Value("abc".into()))
    );
    // The table holds only the last write's number.
    assert_eq!(
        sm.client(7),
        Some(&ClientRecord {
            last_write_seq: 5,
            last_active_ms: 0
        })
    );
    assert_eq!(sm.client(8), None);
}

#[test]
fn a_write_without_a_session_is_refused_and_not_applied() {
    let mut sm = KvStateMachine::new();
    assert_eq!(
        apply(&mut sm, 5, 1, append("k", "a")),
        Applied::SessionExpired
    );
    assert_eq!(sm.get("k"), "");
    assert_eq!(sm.clients(), 0);
    // A copy of OpenSession arriving late does not reset the session.
    apply(&mut sm, 5, 2, Op::OpenSession);
    apply(&mut sm, 5, 3, append("k", "a"));
    apply(&mut sm, 5, 2, Op::OpenSession);
    assert_eq!(
        apply(&mut sm, 5, 3, append("k", "a")),
        Applied::Duplicate(OpOutput::Done)
    );
    assert_eq!(sm.get("k"), "a");
}

/// The session time-to-live of the expiry tests, and a sweep step (ttl/16).
const TTL: Duration = Duration::from_secs(160);
const TTL_MS: u64 = 160_000;
const STEP_MS: u64 = TTL_MS / 16;

#[test]
fn idle_sessions_expire_from_the_stamps_alone_and_a_late_retry_is_refused() {
    let mut sm = KvStateMachine::with_session_ttl(TTL);
    let t0 = 1_000_000;
    sm.apply(&req(1, 1, Op::OpenSession), t0, 1);
    sm.apply(&req(1, 2, append("k", "a")), t0, 1);
    sm.apply(&req(2, 1, Op::OpenSession), t0, 1);
    // Client 2 stays active; client 1 goes idle.
    let mut seq = 1;
    let mut t = t0;
    while t < t0 + TTL_MS {
        t += STEP_MS;
        seq += 1;
        sm.apply(&req(2, seq, append("j", ".")), t, 1);
    }
    // Exactly ttl after its last activity: still there (the limit is inclusive).
    assert_eq!(t, t0 + TTL_MS);
    assert!(sm.client(1).is_some());
    // One sweep step later it is gone; client 2 is not.
    seq += 1;
    sm.apply(&req(2, seq, get("k")), t + STEP_MS, 1);
    assert!(sm.client(1).is_none(), "idle session not expired");
    assert!(sm.client(2).is_some(), "active session expired");
    assert_eq!(sm.now_ms(), t + STEP_MS);
    // Client 1 retries its write (whose reply it lost): refused, not applied again.
    assert_eq!(
        sm.apply(&req(1, 2, append("k", "a")), t + STEP_MS, 1),
        Applied::SessionExpired
    );
    assert_eq!(sm.get("k"), "a");
}

#[test]
fn the_clock_never_goes_back_and_replicas_expire_the_same_sessions() {
    // A leader whose clock is late (stamps below what was applied) moves nothing back.
    let mut sm = KvStateMachine::with_session_ttl(TTL);
    sm.apply(&req(1, 1, Op::OpenSession), 500_000, 1);
    sm.apply(&req(2, 1, get("k")), 10, 2);
    assert_eq!(sm.now_ms(), 500_000);

    // Two replicas applying one log (stamps jumping around) end in one state, bytes and
    // all, whatever their histories of snapshots.
    let log: Vec<(KvRequest, u64)> = (0..2_000u64)
        .map(|i| {
            // Fewer clients as time goes on: those left out go idle and expire.
            let client = i % (37 - i / 100);
            let stamp = i * 997 % 50_000 + i * 300;
            let op = match i % 3 {
                0 => Op::OpenSession,
                1 => append("k", "x"),
                _ => get("k"),
            };
            (req(client, i, op), stamp)
        })
        .collect();
    let mut a = KvStateMachine::with_session_ttl(TTL);
    let mut b = KvStateMachine::with_session_ttl(TTL);
    for (i, (r, stamp)) in log.iter().enumerate() {
        a.apply(r, *stamp, 1);
        b.apply(r, *stamp, 1);
        if i % 500 == 0 {
            let bytes = b.encode().expect("encodes");
            b = KvStateMachine::decode(&bytes).expect("decodes");
            b.set_session_ttl(TTL);
        }
    }
    assert_eq!(a, b);
    assert_eq!(a.encode().expect("encodes"), b.encode().expect("encodes"));
    assert!(a.clients() < 37, "no session expired in {} ms", a.now_ms());
}

#[test]
fn snapshots_carry_the_sessions_and_the_clock() {
    let mut sm = KvStateMachine::new();
    sm.apply(&req(3, 1, Op::OpenSession), 42, 1);
    sm.apply(&req(3, 2, append("k", "a")), 43, 1);
    let bytes = sm.encode().expect("encodes");
    assert_eq!(bytes[0], crate::FORMAT_VERSION);
    let mut restored = KvStateMachine::decode(&bytes).expect("decodes");
    assert_eq!(restored, sm);
    assert_eq!(restored.now_ms(), 43);
    assert_eq!(
        restored.apply(&req(3, 2, append("k", "a")), 44, 1),
        Applied::Duplicate(OpOutput::Done)
    );
    assert_eq!(restored.get("k"), "a");
    assert!(KvStateMachine::decode(&[]).is_err());
    assert!(KvStateMachine::decode(&[0, 1]).is_err());
}

/// 10,000 distinct clients, one after another a second apart, each opening its session
/// and writing one of ten keys: with a one-minute time-to-live the snapshot stays small
/// (about 65 sessions live at once); without expiry it would hold all 10,000 (about
/// 170 KB).
#[test]
fn snapshot_size_stays_bounded_with_10000_clients_over_time() {
    const CLIENTS: u64 = 10_000;
    const BOUND: usize = 4 << 10;
    let mut sm = KvStateMachine::with_session_ttl(Duration::from_secs(60));
    let mut largest = 0;
    for i in 0..CLIENTS {
        let id = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let t = 1_700_000_000_000 + i * 1_000;
        sm.apply(&req(id, 1, Op::OpenSession), t, 1);
        let r = req(id, 2, put(&(i % 10).to_string(), &i.to_string()));
        assert_eq!(sm.apply(&r, t, 1), Applied::Fresh(OpOutput::Done));
        if i % 100 == 99 {
            largest = largest.max(sm.encode().expect("encodes").len());
        }
    }
    assert!(sm.clients() <= 70, "{} sessions live", sm.clients());
    assert!(
        largest <= BOUND,
        "snapshot grew to {largest} bytes (bound {BOUND})"
    );
    // The same run without expiry (a time-to-live past the run) is far over the bound:
    // the bound tests the expiry.
    let mut forever = KvStateMachine::with_session_ttl(Duration::from_secs(1 << 40));
    for i in 0..CLIENTS {
        let id = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let t = 1_700_000_000_000 + i * 1_000;
        forever.apply(&req(id, 1, Op::OpenSession), t, 1);
    }
    let unbounded = forever.encode().expect("encodes").len();
    println!(
        "10,000 clients: largest snapshot {largest} bytes with expiry ({} sessions at the \
         end), {unbounded} bytes without",
        sm.clients()
    );
    assert!(unbounded > 10 * BOUND);
}

#[test]
fn a_delete_removes_the_key_once_and_needs_a_session() {
    let mut sm = KvStateMachine::new();
    let del = || Op::Delete { key: "k".into() };
    assert_eq!(apply(&mut sm, 3, 1, del()), Applied::SessionExpired);
    apply(&mut sm, 3, 2, Op::OpenSession);
    apply(&mut sm, 3, 3, put("k", "v"));
    assert_eq!(sm.len(), 1);
    assert_eq!(apply(&mut sm, 3, 4, del()), Applied::Fresh(OpOutput::Done));
    assert_eq!(sm.get("k"), "");
    assert!(sm.is_empty());
    // A retry of an applied delete does not delete a later write.
    apply(&mut sm, 4, 1, Op::OpenSession);
    apply(&mut sm, 4, 2, put("k", "w"));
    assert_eq!(
        apply(&mut sm, 3, 4, del()),
        Applied::Duplicate(OpOutput::Done)
    );
    assert_eq!(sm.get("k"), "w");
}

//! Tests of the network's semantics, all in virtual time (paused tokio clock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{sleep, timeout, Duration, Instant};

use crate::{handler_fn, ClientEnd, Network, RpcError, Server};

/// A server with `"Echo.Echo"`: returns its `Vec<u8>` argument unchanged.
fn echo_server() -> Server {
    let mut s = Server::new();
    s.add_typed_method("Echo.Echo", |v: Vec<u8>| async move { v });
    s
}

/// A network with server `"s"` and an enabled end `"c->s"` connected to it.
fn setup(seed: u64, server: Server) -> (Network, ClientEnd) {
    let net = Network::new(seed);
    net.add_server("s", server);
    let end = net.make_end("c->s");
    net.connect("c->s", "s");
    net.enable("c->s", true);
    (net, end)
}

fn encoded_len<T: serde::Serialize>(v: &T) -> u64 {
    postcard::to_allocvec(v)
        .map(|b| b.len() as u64)
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn basic_typed_call() {
    let mut server = Server::new();
    server.add_typed_method("Greeter.Hello", |name: String| async move {
        format!("hello, {name}")
    });
    let (net, end) = setup(1, server);
    let t0 = Instant::now();
    let reply: Result<String, RpcError> = end.call("Greeter.Hello", "raft").await;
    assert_eq!(reply, Ok("hello, raft".to_string()));
    // A reliable call to a handler that returns at once takes no virtual time.
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(net.count("s"), 1);
    assert_eq!(net.total_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn raw_call_bytes() {
    let mut server = Server::new();
    server.add_method(
        "Raw.Reverse",
        handler_fn(|b: Bytes| async move {
            let mut v = b.to_vec();
            v.reverse();
            Some(Bytes::from(v))
        }),
    );
    let (_net, end) = setup(1, server);
    let reply = end
        .call_bytes("Raw.Reverse", Bytes::from_static(b"abc"))
        .await;
    assert_eq!(reply, Ok(Bytes::from_static(b"cba")));
}

#[tokio::test(start_paused = true)]
async fn disabled_or_unconnected_end_fails_quickly() {
    let (net, end) = setup(2, echo_server());
    net.enable("c->s", false);
    for _ in 0..20 {
        let t0 = Instant::now();
        let r: Result<Vec<u8>, _> = end.call("Echo.Echo", &vec![1u8]).await;
        assert_eq!(r, Err(RpcError::Unreachable));
        assert!(t0.elapsed() < Duration::from_millis(100));
    }
    // Enabled but never connected.
    let lonely = net.make_end("lonely");
    net.enable("lonely", true);
    let r: Result<Vec<u8>, _> = lonely.call("Echo.Echo", &vec![1u8]).await;
    assert_eq!(r, Err(RpcError::Unreachable));
    // Nothing reached the server, but everything was counted as sent.
    assert_eq!(net.count("s"), 0);
    assert_eq!(net.total_count(), 21);
    // Re-enabling works.
    net.enable("c->s", true);
    assert!(net.is_enabled("c->s"));
    let r: Result<Vec<u8>, _> = end.call("Echo.Echo", &vec![1u8]).await;
    assert_eq!(r, Ok(vec![1u8]));
}

#[tokio::test(start_paused = true)]
async fn deleted_server_fails() {
    let (net, end) = setup(3, echo_server());
    net.delete_server("s");
    let r: Result<Vec<u8>, _> = end.call("Echo.Echo", &vec![7u8]).await;
    assert_eq!(r, Err(RpcError::Unreachable));
    assert_eq!(net.count("s"), 0);
    // A restarted server answers again, with a fresh count.
    net.add_server("s", echo_server());
    let r: Result<Vec<u8>, _> = end.call("Echo.Echo", &vec![7u8]).await;
    assert_eq!(r, Ok(vec![7u8]));
    assert_eq!(net.count("s"), 1);
}

/// A server whose `"Slow.Bump"` sleeps 1 s, then increments `effects` and replies.
fn slow_server(effects: Arc<AtomicU64>) -> Server {
    let mut s = Server::new();
    s.add_typed_method("Slow.Bump", move |x: u64| {
        let effects = Arc::clone(&effects);
        async move {
            sleep(Duration::from_secs(1)).await;
            effects.fetch_add(1, Ordering::SeqCst);
            x + 1
        }
    });
    s
}

#[tokio::test(start_paused = true)]
async fn in_flight_call_to_replaced_server_is_discarded() {
    let effects = Arc::new(AtomicU64::new(0));
    let (net, end) = setup(4, slow_server(Arc::clone(&effects)));
    let t0 = Instant::now();
    let call = tokio::spawn(async move { end.call::<u64, u64>("Slow.Bump", &1).await });
    sleep(Duration::from_millis(250)).await;
    net.add_server("s", echo_server()); // restart: a new instance under the same name
    assert_eq!(net.count("s"), 0, "a replaced server starts from 0");
    let r = call.await.expect("call task");
    assert_eq!(r, Err(RpcError::ServerDead));
    // Noticed at the next 100 ms liveness check.
    assert_eq!(t0.elapsed(), Duration::from_millis(300));
    // The old handler still runs to completion: side effects happen, the reply is discarded.
    assert_eq!(effects.load(Ordering::SeqCst), 0);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(effects.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn in_flight_call_on_disabled_end_fails_even_if_handler_hangs() {
    let mut server = Server::new();
    server.add_method(
        "Hang.Forever",
        handler_fn(|_b: Bytes| futures::future::pending::<Option<Bytes>>()),
    );
    let (net, end) = setup(5, server);
    let t0 = Instant::now();
    let call = tokio::spawn(async move { end.call_bytes("Hang.Forever", Bytes::new()).await });
    sleep(Duration::from_millis(450)).await;
    net.enable("c->s", false);
    let r = call.await.expect("call task");
    assert_eq!(r, Err(RpcError::ServerDead));
    assert_eq!(t0.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn server_killed_before_handler_returns_never_acknowledges() {
    // The handler deletes its own server before replying: the check made right after the
    // handler returns must discard the reply.
    let net = Network::new(6);
    let mut server = Server::new();
    let killer = net.clone();
    server.add_typed_method("Kill.Me", move |x: u64| {
        let killer = killer.clone();
        async move {
            killer.delete_server("s");
            x
        }
    });
    net.add_server("s", server);
    let end = net.make_end("e");
    net.connect("e", "s");
    net.enable("e", true);
    let r: Result<u64, _> = end.call("Kill.Me", &5u64).await;
    assert_eq!(r, Err(RpcError::ServerDead));
}

#[tokio::test(start_paused = true)]
async fn caller_giving_up_does_not_cancel_the_request() {
    let effects = Arc::new(AtomicU64::new(0));
    let (net, end) = setup(7, slow_server(Arc::clone(&effects)));
    let r = timeout(
        Duration::from_millis(10),
        end.call::<u64, u64>("Slow.Bump", &1),
    )
    .await;
    assert!(r.is_err(), "the caller timed out");
    let bytes_after_send = net.total_bytes();
    sleep(Duration::from_secs(2)).await;
    assert_eq!(effects.load(Ordering::SeqCst), 1, "the handler still ran");
    assert_eq!(net.count("s"), 1);
    // Nobody was waiting, so no reply bytes were delivered.
    assert_eq!(net.total_bytes(), bytes_after_send);
}

#[tokio::test(start_paused = true)]
async fn counts_are_exact_on_a_reliable_network() {
    let (net, end) = setup(8, echo_server());
    let payloads: Vec<Vec<u8>> = vec![vec![], vec![1; 10], vec![2; 200], vec![3; 5000]];
    let mut expected_bytes = 0;
    for p in &payloads {
        let r: Vec<u8> = end.call("Echo.Echo", p).await.expect("reliable");
        assert_eq!(&r, p);
        expected_bytes += 2 * encoded_len(p);
    }
    assert_eq!(net.total_count(), 4);
    assert_eq!(net.count("s"), 4);
    assert_eq!(net.total_bytes(), expected_bytes);

    // A call on a disabled end counts the RPC and its argument bytes only.
    net.enable("c->s", false);
    let arg = vec![9u8; 33];
    let _ = end.call::<_, Vec<u8>>("Echo.Echo", &arg).await;
    expected_bytes += encoded_len(&arg);
    assert_eq!(net.total_count(), 5);
    assert_eq!(net.count("s"), 4);
    assert_eq!(net.total_bytes(), expected_bytes);

    // Per-server counts are per server; unknown servers count 0.
    net.add_server("t", echo_server());
    let e2 = net.make_end("c->t");
    net.connect("c->t", "t");
    net.enable("c->t", true);
    let _: Vec<u8> = e2.call("Echo.Echo", &vec![0u8]).await.expect("reliable");
    assert_eq!(net.count("t"), 1);
    assert_eq!(net.count("s"), 4);
    assert_eq!(net.count("nobody"), 0);
    assert_eq!(net.total_count(), 6);
}

#[tokio::test(start_paused = true)]
async fn refusals_unknown_methods_and_bad_requests() {
    let mut server = echo_server();
    server.add_method("No.Reply", handler_fn(|_b: Bytes| async { None }));
    assert!(server.has_method("No.Reply"));
    let (net, end) = setup(9, server);

    let r = end.call_bytes("No.Reply", Bytes::new()).await;
    assert_eq!(r, Err(RpcError::NoReply));

    let r = end.call_bytes("No.Such", Bytes::new()).await;
    assert_eq!(r, Err(RpcError::NoSuchMethod("No.Such".to_string())));

    // A length prefix of 5 with a single byte behind it does not decode as Vec<u8>.
    let r = end
        .call_bytes("Echo.Echo", Bytes::from_static(&[5, 0xff]))
        .await;
    assert_eq!(r, Err(RpcError::NoReply));

    // A reply that does not decode into the expected type.
    let r = end.call::<_, String>("Echo.Echo", &vec![0xffu8; 3]).await;
    assert!(matches!(r, Err(RpcError::Decode(_))), "{r:?}");

    // All of these were dispatched to the server.
    assert_eq!(net.count("s"), 4);
}

#[tokio::test(start_paused = true)]
async fn unreliable_network_delivers_about_81_percent() {
    let (net, end) = setup(10, echo_server());
    net.set_reliable(false);
    let n = 1000;
    let (mut ok, mut req_dropped, mut reply_dropped) = (0, 0, 0);
    for i in 0..n {
        match end.call::<_, Vec<u8>>("Echo.Echo", &vec![i as u8]).await {
            Ok(v) => {
                assert_eq!(v, vec![i as u8]);
                ok += 1;
            }
            Err(RpcError::RequestDropped) => req_dropped += 1,
            Err(RpcError::ReplyDropped) => reply_dropped += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert!((700..=920).contains(&ok), "success count {ok} out of {n}");
    assert!(req_dropped > 0 && reply_dropped > 0);
    // Requests dropped on the way out never reached the server.
    assert_eq!(net.count("s"), n - req_dropped);
    assert_eq!(net.total_count(), n);
}

#[tokio::test(start_paused = true)]
async fn unreliable_requests_are_delayed_up_to_27_ms() {
    let (net, end) = setup(11, echo_server());
    net.set_reliable(false);
    let mut max = Duration::ZERO;
    for _ in 0..200 {
        let t0 = Instant::now();
        let _ = end.call::<_, Vec<u8>>("Echo.Echo", &vec![1u8]).await;
        max = max.max(t0.elapsed());
    }
    assert!(max < Duration::from_millis(27));
    assert!(max >= Duration::from_millis(10), "max delay {max:?}");
}

#[tokio::test(start_paused = true)]
async fn long_delays_on_disabled_end_take_up_to_7_s() {
    let (net, end) = setup(12, echo_server());
    net.enable("c->s", false);
    net.set_long_delays(true);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let end = end.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = end.call::<_, Vec<u8>>("Echo.Echo", &vec![1u8]).await;
                (r, t0.elapsed())
            })
        })
        .collect();
    let mut max = Duration::ZERO;
    for c in calls {
        let (r, elapsed) = c.await.expect("call task");
        assert_eq!(r, Err(RpcError::Unreachable));
        assert!(elapsed < Duration::from_secs(7), "{elapsed:?}");
        max = max.max(elapsed);
    }
    // Well beyond the short delays' 100 ms bound.
    assert!(max > Duration::from_secs(1), "max delay {max:?}");
}

#[tokio::test(start_paused = true)]
async fn long_reordering_delays_some_replies_by_at_least_200_ms() {
    let mut server = Server::new();
    server.add_typed_method("Echo.U32", |x: u32| async move { x });
    let (net, end) = setup(13, server);
    net.set_long_reordering(true);
    let calls: Vec<_> = (0..300u32)
        .map(|i| {
            let end = end.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = end.call::<_, u32>("Echo.U32", &i).await;
                (i, r, t0.elapsed(), Instant::now())
            })
        })
        .collect();
    let mut results = Vec::new();
    for c in calls {
        results.push(c.await.expect("call task"));
    }
    let mut delayed = 0;
    for (i, r, elapsed, _) in &results {
        assert_eq!(r, &Ok(*i));
        if *elapsed > Duration::ZERO {
            assert!(*elapsed >= Duration::from_millis(200), "{elapsed:?}");
            assert!(*elapsed <= Duration::from_millis(2200), "{elapsed:?}");
            delayed += 1;
        }
    }
    // Expect about 2/3 delayed.
    assert!((150..=250).contains(&delayed), "{delayed} of 300 delayed");
    // Replies arrived out of order.
    results.sort_by_key(|r| r.3);
    assert!(results.windows(2).any(|w| w[0].0 > w[1].0));
    // The network is reliable: every call counted and delivered.
    assert_eq!(net.count("s"), 300);
}

/// Drives a fixed, fault-heavy scenario and records every outcome with its virtual
/// completion time, in completion order.
async fn scenario(seed: u64) -> Vec<(u32, String, u128)> {
    scenario_observed(seed, None).await
}

/// [`scenario`], with an observer installed on the network (or not).
async fn scenario_observed(
    seed: u64,
    observer: Option<Arc<dyn crate::NetObserver>>,
) -> Vec<(u32, String, u128)> {
    let net = Network::new(seed);
    net.set_observer(observer);
    net.set_reliable(false);
    net.set_long_reordering(true);
    net.set_long_delays(true);
    let mut server = Server::new();
    server.add_typed_method("Echo.Sleep", |ms: u32| async move {
        sleep(Duration::from_millis(u64::from(ms))).await;
        ms
    });
    net.add_server("s", server);
    let ends: Vec<ClientEnd> = (0..4)
        .map(|i| {
            let name = format!("c{i}");
            let end = net.make_end(name.clone());
            net.connect(&name, "s");
            net.enable(&name, i != 3); // one end stays disabled
            end
        })
        .collect();
    let start = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..200u32 {
        let end = ends[i as usize % ends.len()].clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let r = end.call::<_, u32>("Echo.Sleep", &(i * 7 % 150)).await;
            let outcome = match r {
                Ok(v) => format!("ok {v}"),
                Err(e) => format!("err {e}"),
            };
            let _ = tx.send((i, outcome, start.elapsed().as_millis()));
        });
        if i % 10 == 0 {
            sleep(Duration::from_millis(5)).await;
        }
        if i == 100 {
            // A restart in the middle of traffic.
            let mut s2 = Server::new();
            s2.add_typed_method("Echo.Sleep", |ms: u32| async move { ms });
            net.add_server("s", s2);
        }
    }
    drop(tx);
    let mut out = Vec::new();
    while let Some(x) = rx.recv().await {
        out.push(x);
    }
    out
}

fn run_scenario(seed: u64) -> Vec<(u32, String, u128)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(scenario(seed))
}

#[test]
fn same_seed_same_outcomes() {
    let a = run_scenario(99);
    let b = run_scenario(99);
    assert_eq!(a.len(), 200);
    assert_eq!(a, b);
    let c = run_scenario(100);
    assert_ne!(a, c, "a different seed should give a different history");
    // The scenario exercises several kinds of outcome.
    let kinds: std::collections::BTreeSet<&str> = a
        .iter()
        .map(|(_, o, _)| {
            if o.starts_with("ok") {
                "ok"
            } else {
                o.as_str()
            }
        })
        .collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
}

#[tokio::test(start_paused = true)]
async fn same_seed_same_outcomes_inside_one_runtime() {
    // Also deterministic when run back to back in one (paused, single-threaded) runtime.
    let a = scenario(7).await;
    let b = scenario(7).await;
    assert_eq!(a, b);
}

/// Records every call event as text.
#[derive(Default)]
struct Log(std::sync::Mutex<Vec<(u64, String, String)>>);

impl crate::NetObserver for Log {
    fn on_call(&self, call: u64, end: &str, event: crate::CallEvent<'_>) {
        let what = match event {
            crate::CallEvent::Sent {
                method,
                args,
                reachable,
            } => format!("sent {method} {} {reachable}", args.len()),
            crate::CallEvent::Dispatched => "dispatched".to_string(),
            crate::CallEvent::Failed(e) => format!("failed {e:?}"),
            crate::CallEvent::Replied { reply } => format!("replied {}", reply.len()),
            crate::CallEvent::ReplyDelivered => "reply delivered".to_string(),
            crate::CallEvent::ReplyLost(e) => format!("reply lost {e:?}"),
        };
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.push((call, end.to_string(), what));
    }
}

#[test]
fn an_observer_sees_every_call_and_changes_nothing() {
    let plain = run_scenario(99);
    let log = Arc::new(Log::default());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let observed = rt.block_on(scenario_observed(99, Some(log.clone())));
    assert_eq!(plain, observed, "observing changed the outcomes");
    let events = log.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Per call, in order: its events; every call is sent once and ends exactly once.
    let mut per_call: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for (call, _, what) in &events {
        per_call.entry(*call).or_default().push(what.clone());
    }
    assert_eq!(per_call.len(), 200);
    for (i, outcome, _) in &observed {
        // Calls are numbered in sending order, which is the scenario's order.
        let ev = &per_call[&u64::from(*i)];
        assert!(ev[0].starts_with("sent Echo.Sleep"), "{ev:?}");
        let last = ev.last().expect("events");
        if outcome.starts_with("ok") {
            assert_eq!(ev.len(), 4, "{ev:?}");
            assert_eq!(ev[1], "dispatched", "{ev:?}");
            assert!(ev[2].starts_with("replied "), "{ev:?}");
            assert_eq!(ev[3], "reply delivered", "{ev:?}");
        } else if outcome.contains("unreachable") {
            assert_eq!(last, "failed Unreachable", "{ev:?}");
        } else if outcome.contains("request dropped") {
            assert_eq!(last, "failed RequestDropped", "{ev:?}");
        } else {
            assert!(last.starts_with("reply lost"), "{outcome}: {ev:?}");
            assert!(ev.contains(&"dispatched".to_string()), "{ev:?}");
        }
    }
    // The disabled end's calls never reach the handler.
    assert!(events
        .iter()
        .filter(|(_, end, _)| end == "c3")
        .all(|(_, _, what)| what.ends_with(" false") || what == "failed Unreachable"));
}

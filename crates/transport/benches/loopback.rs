//! Round trips of the peer transport over loopback: one call in flight at a time, then
//! many in flight on the same connection (pipelining). The handler answers at once, so
//! this measures the transport alone (framing, postcard, tasks, syscalls).
//!
//! Run: `cargo bench -p raft-transport --bench loopback` (prints a table; no timing
//! assertions).

use raft::{Bytes, Envelope, Message, Transport};
use raft_core::Entry;
use raft_transport::{CancellationToken, Handler, PeerServer, TcpTransport, TransportConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn append(term: u64, index: u64, value: usize) -> Envelope {
    Envelope {
        from: 1,
        to: 2,
        msg: Message::AppendEntries {
            term,
            prev_log_index: index - 1,
            prev_log_term: term,
            entries: vec![Entry::new(term, index, Bytes::from(vec![b'x'; value]))],
            leader_commit: 0,
        },
    }
}

fn answer(env: &Envelope) -> Envelope {
    Envelope {
        from: 2,
        to: 1,
        msg: Message::AppendEntriesResponse {
            term: env.msg.term(),
            index: 0,
            reject: None,
        },
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let peers = BTreeMap::from([(1, "127.0.0.1:9".parse().expect("addr")), (2, addr)]);
        let mut cfg = TransportConfig::new(1, 2, peers.clone());
        cfg.call_timeout = Duration::from_secs(10);
        let handler: Handler = Arc::new(|env| Box::pin(async move { Some(answer(&env)) }));
        let stop = CancellationToken::new();
        let server = PeerServer::new(&cfg, handler).expect("config");
        let served = tokio::spawn(server.serve(listener, stop.clone()));
        cfg.node_id = 1;
        let t = TcpTransport::new(cfg).expect("config");
        t.call(2, append(1, 1, 100)).await.expect("warm-up");

        println!("| in flight | value | calls | calls/s | p50 | p99 |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
        for (in_flight, value, calls) in [
            (1, 100, 20_000),
            (16, 100, 100_000),
            (64, 100, 200_000),
            (1, 64 << 10, 5_000),
            (16, 64 << 10, 20_000),
        ] {
            let per_caller = calls / in_flight;
            let start = Instant::now();
            let callers: Vec<_> = (0..in_flight)
                .map(|_| {
                    let t = t.clone();
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(per_caller);
                        for i in 0..per_caller {
                            let began = Instant::now();
                            let r = t.call(2, append(1, i as u64 + 1, value)).await;
                            assert!(r.is_some(), "answered");
                            lat.push(began.elapsed());
                        }
                        lat
                    })
                })
                .collect();
            let mut lat = Vec::new();
            for c in callers {
                lat.extend(c.await.expect("caller"));
            }
            let took = start.elapsed();
            lat.sort();
            println!(
                "| {in_flight} | {value} B | {} | {:.0} | {:.1} µs | {:.1} µs |",
                lat.len(),
                lat.len() as f64 / took.as_secs_f64(),
                pct(&lat, 0.5).as_secs_f64() * 1e6,
                pct(&lat, 0.99).as_secs_f64() * 1e6,
            );
        }
        let s = &t.stats()[&2];
        println!(
            "\nconnections: {}, dropped for backpressure: {}",
            s.connects, s.dropped_backpressure
        );
        stop.cancel();
        let _ = served.await;
    });
}

//! A history of concurrent gets, puts and appends through the gRPC API, recorded with the
//! `etcd-client` crate and checked with the project's linearizability checker. An append is
//! a compare-and-swap transaction retried until it succeeds (it takes effect at the one that
//! succeeded, inside the interval recorded), so the check covers Txn as well as Range and Put.

mod common;

use std::time::Duration;

use common::TestServer;
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use linearizability::{check, Operation, Recorder};

const CLIENTS: u64 = 6;
const OPS: u64 = 40;
const KEYS: [&str; 3] = ["x", "y", "z"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_get_put_append_history_is_linearizable() {
    let server = TestServer::start().await;
    let recorder = Recorder::new();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let mut c = server.client().await;
        let rec = recorder.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..OPS {
                // A fixed, varied schedule: no randomness, so a failure replays.
                let pick = (client * 7 + i * 13) % 10;
                let key = KEYS[((client + i) % 3) as usize];
                let call = rec.now();
                if pick < 4 {
                    let opts = (i % 2 == 0).then(|| GetOptions::new().with_serializable());
                    let g = c.get(key, opts).await.unwrap();
                    let value = g
                        .kvs()
                        .first()
                        .map(|kv| kv.value_str().unwrap().to_owned())
                        .unwrap_or_default();
                    rec.record(Operation::get(client, key, value, call, rec.now()));
                } else if pick < 7 {
                    let value = format!("p{client}.{i};");
                    c.put(key, value.clone(), None).await.unwrap();
                    rec.record(Operation::put(client, key, value, call, rec.now()));
                } else {
                    let arg = format!("a{client}.{i};");
                    loop {
                        let g = c.get(key, None).await.unwrap();
                        let (current, rev) = g
                            .kvs()
                            .first()
                            .map(|kv| (kv.value_str().unwrap().to_owned(), kv.mod_revision()))
                            .unwrap_or_default();
                        let cas = Txn::new()
                            .when([Compare::mod_revision(key, CompareOp::Equal, rev)])
                            .and_then([TxnOp::put(key, format!("{current}{arg}"), None)]);
                        if c.txn(cas).await.unwrap().succeeded() {
                            break;
                        }
                    }
                    rec.record(Operation::append(client, key, arg, call, rec.now()));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let history = recorder.history().unwrap();
    assert_eq!(history.len() as u64, CLIENTS * OPS);
    let result = check(&history, Duration::from_secs(60));
    assert!(result.is_linearizable(), "{result:?}");
}

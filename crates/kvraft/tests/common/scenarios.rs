//! The classic kvraft scenarios (see `shared/spec/classic-suite.md`, section 4).

use super::{
    check_clnt_appends, check_concurrent_appends, join, KvCluster, TestClerk, ELECTION_TIMEOUT,
};
use raft_tester::RunOptions;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{sleep, sleep_until, Instant};

/// The classic `maxraftstate` of the snapshot tests.
pub const MAX_RAFT_STATE: u64 = 1000;

/// The parameters of the classic `GenericTest`.
#[derive(Clone, Copy, Debug)]
pub struct Generic {
    /// Concurrent clients.
    pub nclients: usize,
    /// Servers.
    pub nservers: usize,
    /// Lossy network.
    pub unreliable: bool,
    /// Restart every server between rounds.
    pub crash: bool,
    /// Re-partition the servers every second or so.
    pub partitions: bool,
    /// The classic `maxraftstate` (`None`: -1, no snapshots).
    pub maxraftstate: Option<u64>,
    /// Clients use random keys (and occasional puts) instead of one key each.
    pub randomkeys: bool,
    /// Clients write one operation in twenty instead of one in two: a read-heavy mix,
    /// to exercise gets (ReadIndex, without the log) under the same faults.
    pub read_heavy: bool,
}

impl Generic {
    /// One client, five servers, nothing else.
    pub const BASE: Generic = Generic {
        nclients: 1,
        nservers: 5,
        unreliable: false,
        crash: false,
        partitions: false,
        maxraftstate: None,
        randomkeys: false,
        read_heavy: false,
    };
}

/// One client of a generic round: appends unique tokens to its key and reads it back
/// (each read must equal what it appended), or, with random keys, appends, puts and gets
/// random keys. Returns how many tokens it wrote.
pub async fn client_loop(
    cli: usize,
    mut ck: TestClerk,
    done: Arc<AtomicBool>,
    g: Generic,
    seed: u64,
    test_seed: u64,
) -> usize {
    let (nclients, randomkeys) = (g.nclients, g.randomkeys);
    let write_permille = if g.read_heavy { 50 } else { 500 };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut j = 0;
    let mut last = String::new();
    if !randomkeys {
        ck.put(&cli.to_string(), "").await;
    }
    while !done.load(Ordering::Relaxed) {
        let key = if randomkeys {
            rng.gen_range(0..nclients).to_string()
        } else {
            cli.to_string()
        };
        let nv = format!("x {cli} {j} y");
        if rng.gen_range(0..1000) < write_permille {
            ck.append(&key, &nv).await;
            if !randomkeys {
                last.push_str(&nv);
            }
            j += 1;
        } else if randomkeys && rng.gen_range(0..1000) < 100 {
            ck.put(&key, &nv).await;
            j += 1;
        } else {
            let v = ck.get(&key).await;
            assert!(
                randomkeys || v == last || !super::own_checks(),
                "get wrong value, key {key}: wanted\n{last}\ngot\n{v}\n(seed {test_seed})"
            );
        }
    }
    j
}

/// The classic `GenericTest`: three rounds of 5 s of concurrent clients, with
/// partitions and/or restarts of every server between rounds as asked; after each round
/// every client's tokens must be present exactly once and in order, and the persisted
/// Raft state must stay within 8 x maxraftstate (or no snapshot exist without one).
pub async fn generic(opts: RunOptions, description: &str, g: Generic) {
    generic_rounds(opts, description, g, 3).await;
}

/// [`generic`] with a given number of rounds; returns the history as JSON lines.
pub async fn generic_rounds(
    opts: RunOptions,
    description: &str,
    g: Generic,
    rounds: usize,
) -> String {
    let mut cfg = KvCluster::new(g.nservers, g.unreliable, g.maxraftstate, opts);
    let seed = cfg.seed();
    cfg.begin(description);
    let all = cfg.all();
    let mut ck = cfg.make_client(&all);
    for _round in 0..rounds {
        let done = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for cli in 0..g.nclients {
            let myck = cfg.make_client(&all);
            let client_seed = cfg.rng().gen();
            clients.push(tokio::spawn(client_loop(
                cli,
                myck,
                done.clone(),
                g,
                client_seed,
                seed,
            )));
        }
        if g.partitions {
            // Let the clients work undisturbed for a while, then re-partition every
            // second or so; the clients stop 5 s later, the partitioner after its sleep.
            sleep(Duration::from_secs(1)).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let n = cfg.n();
                let side: Vec<bool> = (0..n).map(|_| cfg.rng().gen_bool(0.5)).collect();
                let p1: Vec<usize> = (0..n).filter(|&i| !side[i]).collect();
                let p2: Vec<usize> = (0..n).filter(|&i| side[i]).collect();
                cfg.partition(&p1, &p2);
                let pause = ELECTION_TIMEOUT + Duration::from_millis(cfg.rng().gen_range(0..200));
                let wake = Instant::now() + pause;
                if wake >= deadline {
                    sleep_until(deadline).await;
                    done.store(true, Ordering::Relaxed);
                    sleep_until(wake).await;
                    break;
                }
                sleep_until(wake).await;
            }
            // A client may have sent a request to a minority; it returns once that
            // server learns of a new term.
            cfg.connect_all();
            sleep(ELECTION_TIMEOUT).await;
        } else {
            sleep(Duration::from_secs(5)).await;
            done.store(true, Ordering::Relaxed);
        }
        if g.crash {
            for i in 0..cfg.n() {
                cfg.shutdown_server(i);
            }
            sleep(ELECTION_TIMEOUT).await;
            for i in 0..cfg.n() {
                cfg.start_server(i);
            }
            cfg.connect_all();
        }
        for (cli, handle) in clients.into_iter().enumerate() {
            let j = join(handle).await;
            let v = ck.get(&cli.to_string()).await;
            if !g.randomkeys {
                check_clnt_appends(cli, &v, j, seed);
            }
        }
        if let Some(max) = g.maxraftstate {
            let size = cfg.log_size();
            assert!(
                size <= 8 * max,
                "logs were not trimmed ({size} > 8*{max}) (seed {seed})"
            );
        } else {
            let size = cfg.snapshot_size();
            assert_eq!(
                size, 0,
                "snapshot ({size} bytes) taken without maxraftstate (seed {seed})"
            );
        }
    }
    cfg.end();
    cfg.log().history().to_jsonl_string()
}

/// The classic `GenericTestSpeed`: after a warm-up get, 1000 sequential appends on three
/// servers must take at most 33.3 ms each (3 per 100 ms heartbeat interval).
pub async fn speed(opts: RunOptions, description: &str, maxraftstate: Option<u64>) {
    const NUM_OPS: usize = 1000;
    let mut cfg = KvCluster::new(3, false, maxraftstate, opts);
    let seed = cfg.seed();
    let all = cfg.all();
    let mut ck = cfg.make_client(&all);
    cfg.begin(description);
    ck.get("x").await;
    let start = Instant::now();
    for i in 0..NUM_OPS {
        ck.append("x", &format!("x 0 {i} y")).await;
    }
    let dur = start.elapsed();
    let v = ck.get("x").await;
    check_clnt_appends(0, &v, NUM_OPS, seed);
    let limit = Duration::from_millis(100) * NUM_OPS as u32 / 3;
    assert!(
        dur <= limit,
        "operations completed too slowly: {:?}/op > {:?}/op (seed {seed})",
        dur / NUM_OPS as u32,
        limit / NUM_OPS as u32
    );
    if !opts.quiet {
        println!(
            "  info: {NUM_OPS} appends in {:.2} s: {:.2} ms/op",
            dur.as_secs_f64(),
            dur.as_secs_f64() * 1000.0 / NUM_OPS as f64
        );
    }
    cfg.end();
}

/// Five clients append ten tokens each to one key over a lossy network; every token must
/// be there once, in per-client order.
pub async fn unreliable_one_key(opts: RunOptions, description: &str) {
    const NCLIENT: usize = 5;
    const UPTO: usize = 10;
    let mut cfg = KvCluster::new(3, true, None, opts);
    let seed = cfg.seed();
    let all = cfg.all();
    let mut ck = cfg.make_client(&all);
    cfg.begin(description);
    ck.put("k", "").await;
    let mut clients = Vec::new();
    for me in 0..NCLIENT {
        let mut myck = cfg.make_client(&all);
        clients.push(tokio::spawn(async move {
            for n in 0..UPTO {
                myck.append("k", &format!("x {me} {n} y")).await;
            }
        }));
    }
    for c in clients {
        join(c).await;
    }
    let v = ck.get("k").await;
    check_concurrent_appends(&v, &[UPTO; NCLIENT], seed);
    cfg.end();
}

/// The classic `OnePartition`, up to `stage`: (1) progress in the majority with the old
/// leader in the minority; (2) no progress in the minority for 1 s, while the majority
/// goes on; (3) after healing, the minority's put and get complete within 3 s and the
/// put's value is visible.
pub async fn one_partition(opts: RunOptions, stage: u8, part: &str) {
    let mut cfg = KvCluster::new(5, false, None, opts);
    let seed = cfg.seed();
    let all = cfg.all();
    let mut ck = cfg.make_client(&all);
    ck.put("1", "13").await;

    cfg.begin(&format!("progress in majority ({part})"));
    let (p1, p2) = cfg.make_partition();
    cfg.partition(&p1, &p2);
    let mut ckp1 = cfg.make_client(&p1);
    let mut ckp2a = cfg.make_client(&p2);
    let mut ckp2b = cfg.make_client(&p2);
    let links_a = ckp2a.end_names();
    let links_b = ckp2b.end_names();
    ckp1.put("1", "14").await;
    ckp1.check("1", "14").await;
    cfg.end();
    if stage < 2 {
        return;
    }

    cfg.begin(&format!("no progress in minority ({part})"));
    let done0 = tokio::spawn(async move { ckp2a.put("1", "15").await });
    let done1 = tokio::spawn(async move { ckp2b.get("1").await });
    sleep(Duration::from_secs(1)).await;
    assert!(
        !done0.is_finished(),
        "put in minority completed (seed {seed})"
    );
    assert!(
        !done1.is_finished(),
        "get in minority completed (seed {seed})"
    );
    ckp1.check("1", "14").await;
    ckp1.put("1", "16").await;
    ckp1.check("1", "16").await;
    cfg.end();
    if stage < 3 {
        return;
    }

    cfg.begin(&format!("completion after heal ({part})"));
    cfg.connect_all();
    cfg.connect_client_links(&links_a, &all);
    cfg.connect_client_links(&links_b, &all);
    sleep(ELECTION_TIMEOUT).await;
    let limit = Duration::from_millis(30 * 100);
    match tokio::time::timeout(limit, done0).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("put task failed: {e} (seed {seed})")),
        Err(_) => panic!("put did not complete (seed {seed})"),
    }
    match tokio::time::timeout(limit, done1).await {
        Ok(r) => {
            r.unwrap_or_else(|e| panic!("get task failed: {e} (seed {seed})"));
        }
        Err(_) => panic!("get did not complete (seed {seed})"),
    }
    ck.check("1", "15").await;
    cfg.end();
}

/// The classic `SnapshotRPC`: a lagging server must catch up through InstallSnapshot.
pub async fn snapshot_rpc(opts: RunOptions, description: &str) {
    let max = MAX_RAFT_STATE;
    let mut cfg = KvCluster::new(3, false, Some(max), opts);
    let seed = cfg.seed();
    let all = cfg.all();
    let mut ck = cfg.make_client(&all);
    cfg.begin(description);
    ck.put("a", "A").await;
    ck.check("a", "A").await;

    // A bunch of puts into the majority partition.
    cfg.partition(&[0, 1], &[2]);
    {
        let mut ck1 = cfg.make_client(&[0, 1]);
        for i in 0..50 {
            ck1.put(&i.to_string(), &i.to_string()).await;
        }
        sleep(ELECTION_TIMEOUT).await;
        ck1.put("b", "B").await;
    }
    // The majority must have thrown away most of its log.
    let size = cfg.log_size();
    assert!(
        size <= 8 * max,
        "logs were not trimmed ({size} > 8*{max}) (seed {seed})"
    );
    let installed_before = cfg.server(2).map_or(0, |s| s.stats().snapshots_installed);

    // A group that needs the lagging server, which must catch up.
    cfg.partition(&[0, 2], &[1]);
    {
        let mut ck1 = cfg.make_client(&[0, 2]);
        ck1.put("c", "C").await;
        ck1.put("d", "D").await;
        ck1.check("a", "A").await;
        ck1.check("b", "B").await;
        ck1.check("1", "1").await;
        ck1.check("49", "49").await;
    }
    let installed = cfg.server(2).map_or(0, |s| s.stats().snapshots_installed);
    assert!(
        installed > installed_before,
        "the lagging server caught up without installing a snapshot (seed {seed})"
    );

    // Now everybody.
    cfg.partition(&all, &[]);
    ck.put("e", "E").await;
    ck.check("c", "C").await;
    ck.check("e", "E").await;
    ck.check("1", "1").await;
    cfg.end();
}

/// The classic `SnapshotSize`: 800 small operations on one key; the Raft state stays
/// within 8 x maxraftstate and the snapshot under 500 bytes.
pub async fn snapshot_size(opts: RunOptions, description: &str) {
    let max = MAX_RAFT_STATE;
    let max_snapshot = 500;
    let mut cfg = KvCluster::new(3, false, Some(max), opts);
    let seed = cfg.seed();
    let all = cfg.all();
    let mut ck = cfg.make_client(&all);
    cfg.begin(description);
    for _ in 0..200 {
        ck.put("x", "0").await;
        ck.check("x", "0").await;
        ck.put("x", "1").await;
        ck.check("x", "1").await;
    }
    let size = cfg.log_size();
    assert!(
        size <= 8 * max,
        "logs were not trimmed ({size} > 8*{max}) (seed {seed})"
    );
    let snap = cfg.snapshot_size();
    assert!(
        snap > 0 && snap <= max_snapshot,
        "snapshot size {snap} not in (0, {max_snapshot}] (seed {seed})"
    );
    if !opts.quiet {
        println!("  info: raft state {size} bytes, snapshot {snap} bytes");
    }
    cfg.end();
}

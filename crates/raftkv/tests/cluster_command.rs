//! `raftkv cluster` as a newcomer uses it (the smoke the issue asks CI for): start it,
//! put, get, kill one node, get, stop it with SIGTERM: it stops every node and exits 0.

mod common;

use common::{stderr, stdout, BIN};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `cluster` process and its nodes' pids, all stopped by pid when dropped.
struct Guard {
    cluster: Child,
    nodes: Vec<u32>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cluster.kill();
        let _ = self.cluster.wait();
        for pid in &self.nodes {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A port base whose nine ports (base+1..3, +101..103, +201..203) are free now.
fn free_base() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    'next: for _ in 0..200 {
        let base: u16 = rng.gen_range(20_000..31_000);
        for off in [1, 2, 3, 101, 102, 103, 201, 202, 203] {
            if TcpListener::bind(("127.0.0.1", base + off)).is_err() {
                continue 'next;
            }
        }
        return base;
    }
    panic!("no free port range")
}

fn cli(base: u16, args: &[&str]) -> std::process::Output {
    let endpoints: Vec<String> = (1..=3)
        .map(|i| format!("127.0.0.1:{}", base + 100 + i))
        .collect();
    Command::new(BIN)
        .args(args)
        .arg("--endpoints")
        .arg(endpoints.join(","))
        .output()
        .expect("run raftkv")
}

#[test]
fn the_cluster_command_starts_serves_survives_a_kill_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = free_base();
    let out_path = dir.path().join("cluster.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let cluster = Command::new(BIN)
        .args([
            "cluster",
            "--nodes",
            "3",
            "--base-port",
            &base.to_string(),
            "--worker-threads",
            "1",
            "--dir",
        ])
        .arg(dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("file"))
        .stderr(out)
        .spawn()
        .expect("start raftkv cluster");
    let mut guard = Guard {
        cluster,
        nodes: Vec::new(),
    };
    // The pids it prints, one line per node: "  ID  PID  client ...".
    let deadline = Instant::now() + Duration::from_secs(10);
    while guard.nodes.len() < 3 {
        assert!(Instant::now() < deadline, "no node table printed");
        std::thread::sleep(Duration::from_millis(50));
        let text = std::fs::read_to_string(&out_path).unwrap_or_default();
        guard.nodes = text
            .lines()
            .filter(|l| l.contains("/metrics"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect();
    }

    // Each node runs the worker threads asked for, and says so when it starts serving.
    let want = "workers=1";
    let log = dir.path().join("data").join("node-2.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("serving")) {
            assert!(line.contains(want), "want {want}: {line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 2 never said it was serving:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Put until a leader exists (the first put waits for the election).
    let o = cli(base, &["put", "greeting", "hello", "--timeout", "20"]);
    assert!(o.status.success(), "put: {}", stderr(&o));
    let o = cli(base, &["get", "greeting"]);
    assert_eq!(stdout(&o).trim(), "hello", "{}", stderr(&o));

    // Kill node 1 (leader or not): the other two still serve.
    let pid = guard.nodes[0].to_string();
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill")
        .success());
    let o = cli(base, &["get", "greeting", "--timeout", "20"]);
    assert_eq!(stdout(&o).trim(), "hello", "{}", stderr(&o));

    // SIGTERM stops every node and exits 0.
    let pid = guard.cluster.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = guard.cluster.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "cluster did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(status.success(), "cluster exited {status}\n{text}");
    assert!(text.contains("all nodes stopped"), "{text}");
    // No node is left: signal 0 to each pid fails.
    for pid in &guard.nodes {
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .expect("kill -0")
            .success();
        assert!(!alive, "node pid {pid} still running\n{text}");
    }
}

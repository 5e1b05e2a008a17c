//! Debian's `etcdctl` (apt package `etcd-client`) against three `raftkv serve
//! --etcd-addr` processes, its output compared with what it prints against etcd itself
//! (recorded in `testdata/etcdctl.txt` from Debian's `etcd-server`). Ignored by default
//! (it needs the binaries); CI runs:
//!
//!   cargo test -p raftkv --test etcd_etcdctl -- --ignored --test-threads 1
//!
//! To record the reference again (needs /usr/bin/etcd):
//!
//!   RECORD_ETCD=1 cargo test -p raftkv --test etcd_etcdctl record -- --ignored
//!
//! Lease IDs, durations and remaining TTLs differ from run to run and are replaced by
//! placeholders; `member list` and `endpoint status` describe the cluster and are checked
//! for their shape instead.

mod common;

use common::etcd::wait_leader;
use common::Cluster;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ETCDCTL: &str = "/usr/bin/etcdctl";
const ETCD: &str = "/usr/bin/etcd";

fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/etcdctl.txt")
}

fn member_reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/etcdctl_member.txt")
}

/// The member commands against `endpoint`: a learner added at `peer` (never started),
/// listed, refused promotion (it cannot be in sync), removed, removed again. Member and
/// cluster IDs become `<ID>`/`<CLUSTER>`, the list shows the learner's line only (the
/// other members differ between the clusters), `ETCD_INITIAL_CLUSTER` (every member's
/// name and URL) becomes `<MEMBERS>`, and etcdctl's JSON log lines are dropped.
fn member_transcript(endpoint: &str, peer: &str) -> String {
    let url = format!("http://{peer}");
    let mut out = String::new();
    let mut id = String::new();
    let run = |args: &[&str], out: &mut String| -> String {
        let o = etcdctl(endpoint, args, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        out.push_str(&format!("$ etcdctl {}\n", args.join(" ")));
        for l in text.lines().filter(|l| !l.starts_with('{')) {
            out.push_str(l);
            out.push('\n');
        }
        if !o.status.success() {
            out.push_str(&format!("(exit {})\n", o.status.code().unwrap_or(-1)));
        }
        text
    };
    let peer_flag = format!("--peer-urls={url}");
    let added = run(&["member", "add", "new", "--learner", &peer_flag], &mut out);
    id.push_str(added.split_whitespace().nth(1).unwrap_or("?"));
    let list = run(&["member", "list"], &mut String::new());
    out.push_str("$ etcdctl member list (the learner's line)\n");
    for l in list.lines().filter(|l| l.contains(&url)) {
        out.push_str(l);
        out.push('\n');
    }
    run(&["member", "promote", &id], &mut out);
    run(&["member", "remove", &id], &mut out);
    run(&["member", "remove", &id], &mut out);
    let mut normal = String::new();
    for line in out.lines() {
        let mut l = line.to_owned();
        if let Some(rest) = l.strip_prefix("Member ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if words.len() >= 4 {
                let cluster = words[words.len() - 1].to_owned();
                l = l.replacen(&cluster, "<CLUSTER>", 1);
            }
        }
        if l.starts_with("ETCD_INITIAL_CLUSTER=") {
            assert!(l.contains(&format!("new={url}")), "{l}");
            l = "ETCD_INITIAL_CLUSTER=<MEMBERS>".into();
        }
        let l = l.replace(&url, "http://<PEER>");
        let id_comma = format!("{id},");
        let l = l
            .split_whitespace()
            .map(|w| match w {
                w if w == id => "<ID>",
                w if w == id_comma => "<ID>,",
                w => w,
            })
            .collect::<Vec<_>>()
            .join(" ");
        normal.push_str(&l);
        normal.push('\n');
    }
    normal
}

fn etcdctl(endpoint: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(ETCDCTL)
        .arg(format!("--endpoints={endpoint}"))
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("etcdctl output")
}

/// A child process killed by its pid when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the commands against `endpoint` and returns what etcdctl printed, each command
/// under a `$ etcdctl ...` line, placeholders in place of what varies.
fn transcript(endpoint: &str) -> String {
    let mut out = String::new();
    let mut run = |args: &[&str], stdin: Option<&str>| -> String {
        let o = etcdctl(endpoint, args, stdin);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        out.push_str(&format!("$ etcdctl {}\n{}", args.join(" "), text));
        if !o.status.success() {
            out.push_str(&format!("(exit {})\n", o.status.code().unwrap_or(-1)));
        }
        text
    };
    run(&["put", "foo", "bar"], None);
    run(&["get", "foo"], None);
    run(&["put", "foo2", "baz"], None);
    run(&["get", "foo", "--prefix"], None);
    run(&["get", "foo", "--prefix", "--keys-only"], None);
    run(&["get", "foo", "--prefix", "--limit", "1"], None);
    run(
        &[
            "get",
            "f",
            "--prefix",
            "--print-value-only",
            "--order",
            "DESCEND",
        ],
        None,
    );
    run(&["del", "foo2"], None);
    run(&["get", "foo2"], None);
    let txn = "value(\"foo\") = \"bar\"\n\nput foo qux\nget foo\n\nget foo\n\n";
    run(&["txn"], Some(txn));
    run(&["txn"], Some(txn));
    run(&["get", "foo"], None);
    let granted = run(&["lease", "grant", "60"], None);
    let id = granted.split_whitespace().nth(1).unwrap_or("0").to_owned();
    run(&["put", "--lease", &id, "leased", "v"], None);
    run(&["get", "leased"], None);
    run(&["lease", "timetolive", &id], None);
    run(&["lease", "keep-alive", "--once", &id], None);
    run(&["lease", "revoke", &id], None);
    run(&["get", "leased"], None);
    run(&["endpoint", "health"], None);

    // A watch in the background, then a put it sees.
    let mut watch = Guard(
        Command::new(ETCDCTL)
            .arg(format!("--endpoints={endpoint}"))
            .args(["watch", "foo"])
            .env("ETCDCTL_API", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run etcdctl watch"),
    );
    std::thread::sleep(Duration::from_millis(1000));
    run(&["put", "foo", "watched"], None);
    let mut lines = BufReader::new(watch.0.stdout.take().expect("stdout")).lines();
    out.push_str("$ etcdctl watch foo (in the background)\n");
    for _ in 0..3 {
        match lines.next() {
            Some(Ok(l)) => out.push_str(&format!("{l}\n")),
            _ => break,
        }
    }
    drop(watch);
    normalize(&out, &id)
}

/// Replaces what differs between runs and servers: the lease ID, durations, the
/// remaining TTL, the endpoint.
fn normalize(text: &str, lease: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut l = line.replace(lease, "<LEASE>");
        if let Some(at) = l.find("took = ") {
            l.truncate(at);
            l.push_str("took = <T>");
        }
        if let Some(at) = l.find("remaining(") {
            if let Some(end) = l[at..].find(')') {
                l.replace_range(at..at + end + 1, "remaining(<S>)");
            }
        }
        if let Some(at) = l.find(" is healthy") {
            l.replace_range(..at, "<ENDPOINT>");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn tools_missing(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !Path::new(t).exists()).collect();
    if !missing.is_empty() {
        eprintln!("SKIPPED: {missing:?} not installed (apt-get install etcd-client etcd-server)");
    }
    !missing.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Debian's etcdctl; CI runs it"]
async fn etcdctl_prints_against_raftkv_what_it_prints_against_etcd() {
    if tools_missing(&[ETCDCTL]) {
        return;
    }
    let cluster = Cluster::start_etcd(3);
    let leader = wait_leader(&cluster).await;
    // Node 1, leader or not: a follower forwards writes, as etcd's members do.
    let endpoint = cluster.etcd_addr(1);
    let got = tokio::task::spawn_blocking(move || transcript(&endpoint))
        .await
        .expect("transcript");
    let expected = std::fs::read_to_string(reference()).expect("testdata/etcdctl.txt");
    assert_eq!(
        got, expected,
        "etcdctl's output differs from etcd's (left: raftkv)"
    );

    // Membership: what etcd prints for a learner that never starts.
    let spare = common::free_port();
    let endpoint = cluster.etcd_addr(1);
    let got = tokio::task::spawn_blocking(move || {
        member_transcript(&endpoint, &format!("127.0.0.1:{spare}"))
    })
    .await
    .expect("member transcript");
    let expected =
        std::fs::read_to_string(member_reference()).expect("testdata/etcdctl_member.txt");
    assert_eq!(
        got, expected,
        "etcdctl member's output differs from etcd's (left: raftkv)"
    );

    // The cluster's shape: three members with their URLs; every endpoint's status.
    let all: Vec<String> = cluster.nodes.iter().map(|n| n.etcd.clone()).collect();
    let o = etcdctl(&all.join(","), &["member", "list"], None);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    for n in &cluster.nodes {
        let line = format!(
            "{:x}, started, node-{}, http://{}, http://{}, false",
            n.id, n.id, n.peer, n.etcd
        );
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    let o = etcdctl(&all.join(","), &["endpoint", "status", "-w", "table"], None);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    for n in &cluster.nodes {
        let row = text
            .lines()
            .find(|l| l.contains(&n.etcd))
            .unwrap_or_else(|| panic!("no row for {} in\n{text}", n.etcd));
        assert!(row.contains("3.5.0"), "{row}");
        // | ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | IS LEARNER | ...
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let is_leader = if n.id == leader { "true" } else { "false" };
        assert_eq!(cells.get(5), Some(&is_leader), "{row}");
        assert_eq!(cells.get(2), Some(&format!("{:x}", n.id).as_str()), "{row}");
    }
}

#[test]
#[ignore = "records testdata/etcdctl.txt from Debian's etcd (RECORD_ETCD=1)"]
fn record_etcd_reference() {
    if std::env::var_os("RECORD_ETCD").is_none() || tools_missing(&[ETCDCTL, ETCD]) {
        eprintln!("SKIPPED: set RECORD_ETCD=1 to record");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = |p: u16| format!("http://127.0.0.1:{p}");
    let (client, peer) = (
        23_790 + std::process::id() as u16 % 100,
        23_890 + std::process::id() as u16 % 100,
    );
    let _etcd = Guard(
        Command::new(ETCD)
            .args(["--name", "ref", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &port(client)])
            .args(["--advertise-client-urls", &port(client)])
            .args(["--listen-peer-urls", &port(peer)])
            .args(["--initial-advertise-peer-urls", &port(peer)])
            .args(["--initial-cluster", &format!("ref={}", port(peer))])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd"),
    );
    let endpoint = format!("127.0.0.1:{client}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !etcdctl(&endpoint, &["endpoint", "health"], None)
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "etcd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(reference(), transcript(&endpoint)).expect("write the reference");
    let spare = format!("127.0.0.1:{}", 23_990 + std::process::id() as u16 % 100);
    std::fs::write(member_reference(), member_transcript(&endpoint, &spare))
        .expect("write the member reference");
}

#!/usr/bin/env bash
# etcd and raftkv side by side: the same load generator (bench/loadgen, which uses the
# etcd-client crate over etcd's v3 gRPC API), the same disk, the same machine, in one run.
#
#   bench/vs-etcd.sh                         # 1, 16, 64 clients; puts, then the 95/5 mix; 3 rounds
#   bench/vs-etcd.sh --clients "1 16" --ops 5000 --rounds 1 --mix put
#   bench/vs-etcd.sh --systems etcd          # etcd only (e.g. to record its reference figures)
#   bench/vs-etcd.sh --dry-run               # parse arguments, check tools, start and stop nothing
#
# Each round starts a fresh 3-node etcd cluster on loopback (data under --dir, fsync on, as
# etcd always does), measures every point against its leader, stops it; then the same for a
# fresh 3-node raftkv cluster (fsync on, default settings). Rounds alternate the systems
# because this machine's disk and CPU drift by about 25% from one minute to the next; the
# table gives each system's median over the rounds and our ratio to etcd.
#
# Installs what it needs when missing (Debian's etcd-server, etcd-client and
# protobuf-compiler, with apt-get) and stops every process it started, by process id, at
# exit, also on Ctrl-C or an error.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CLIENTS="1 16 64"
OPS=20000
WARMUP=1000
ROUNDS=3
MIXES="put read95"
SYSTEMS="etcd raftkv"
DIR=""
DRY_RUN=0
THREADS=""

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options:
  --clients "LIST"   client counts (default "$CLIENTS")
  --ops N            measured operations per point (default $OPS)
  --warmup N         warm-up operations per point, not measured (default $WARMUP)
  --rounds N         rounds per system, alternating (default $ROUNDS)
  --mix put|read95|both   operation mix (default both)
  --systems "LIST"   etcd and/or raftkv (default "$SYSTEMS")
  --dir DIR          where data directories go (default: a new temporary directory under
                     the repository's target/, on the same disk as a raftkv deployment)
  --threads N        run every node of both systems with N threads (etcd: GOMAXPROCS=N;
                     raftkv: --worker-threads N); default: each system's own default
                     (one per core), as a deployment on a machine of its own would run
  --dry-run          check arguments and tools, start nothing
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS="$2"; shift 2 ;;
        --ops) OPS="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --mix)
            case "$2" in
                put|read95) MIXES="$2" ;;
                both) MIXES="put read95" ;;
                *) echo "unknown mix '$2' (put, read95 or both)" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --systems) SYSTEMS="$(echo "$2" | tr ',' ' ')"; shift 2 ;;
        --dir) DIR="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
for n in $CLIENTS $OPS $WARMUP $ROUNDS ${THREADS:+"$THREADS"}; do
    case "$n" in ''|*[!0-9]*|0) echo "not a positive number: '$n'" >&2; exit 2 ;; esac
done
for s in $SYSTEMS; do
    case "$s" in etcd|raftkv) ;; *) echo "unknown system '$s' (etcd, raftkv)" >&2; exit 2 ;; esac
done

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
# A second Ctrl-C (or the signal a terminal sends to the whole process group) must not
# cut the cleanup short: from here on, signals are ignored.
trap 'trap "" INT TERM; cleanup; [ -n "${OWN_DIR:-}" ] && rm -rf "$OWN_DIR"' EXIT
trap 'exit 130' INT TERM

need_pkg() { # command package
    if ! command -v "$1" >/dev/null 2>&1; then
        if [ "$DRY_RUN" = 1 ]; then
            echo "would install $2 (for $1)"
            return
        fi
        echo "installing $2 (for $1)..." >&2
        if [ "$(id -u)" = 0 ]; then
            apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
        else
            sudo apt-get update -qq && sudo apt-get install -y -qq "$2" >/dev/null
        fi
    fi
}

case " $SYSTEMS " in *" etcd "*) need_pkg etcd etcd-server; need_pkg etcdctl etcd-client ;; esac
need_pkg protoc protobuf-compiler
need_pkg python3 python3

if [ "$DRY_RUN" = 1 ]; then
    echo "dry run: clients [$CLIENTS], ops $OPS, warmup $WARMUP, rounds $ROUNDS, mixes [$MIXES], systems [$SYSTEMS], threads per node ${THREADS:-default}"
    exit 0
fi

echo "building the load generator and raftkv (release)..." >&2
cargo build --release --quiet --manifest-path "$ROOT/bench/loadgen/Cargo.toml"
LOADGEN="$ROOT/bench/loadgen/target/release/loadgen"
case " $SYSTEMS " in
    *" raftkv "*)
        cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" -p raftkv
        RAFTKV="$ROOT/target/release/raftkv" ;;
esac

if [ -z "$DIR" ]; then
    mkdir -p "$ROOT/target"
    OWN_DIR="$(mktemp -d "$ROOT/target/vs-etcd.XXXXXX")"
    DIR="$OWN_DIR"
fi
RESULTS="$DIR/results.txt"
: > "$RESULTS"

# Waits until every endpoint answers; prints the leader's client endpoint.
etcd_leader() { # endpoints(comma-separated)
    local eps="$1" out
    for _ in $(seq 100); do
        if out="$(ETCDCTL_API=3 etcdctl --endpoints="$eps" endpoint status -w json 2>/dev/null)"; then
            python3 - "$out" <<'EOF' && return 0
import json, sys
status = json.loads(sys.argv[1])
if len(status) < 3:
    sys.exit(1)
for s in status:
    st = s["Status"]
    # No "leader" field while an election is in progress: not found yet.
    if st.get("leader") and st["header"]["member_id"] == st["leader"]:
        print(s["Endpoint"])
        sys.exit(0)
sys.exit(1)
EOF
        fi
        sleep 0.2
    done
    echo "etcd cluster did not elect a leader" >&2
    return 1
}

start_etcd() { # data dir (run in this shell, not in $(...), so that PIDS keeps the pids)
    local d="$1/etcd" cluster="" i
    for i in 1 2 3; do cluster="${cluster:+$cluster,}e$i=http://127.0.0.1:$((23800 + i))"; done
    for i in 1 2 3; do
        mkdir -p "$d/e$i"
        ${THREADS:+env GOMAXPROCS=$THREADS} etcd --name "e$i" --data-dir "$d/e$i" \
            --listen-client-urls "http://127.0.0.1:$((23790 + i))" \
            --advertise-client-urls "http://127.0.0.1:$((23790 + i))" \
            --listen-peer-urls "http://127.0.0.1:$((23800 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((23800 + i))" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token vs-etcd --log-level error \
            > "$d/e$i.log" 2>&1 &
        PIDS+=($!)
    done
}

# raftkv: three `raftkv serve` processes with the etcd API on ports 2479x.
start_raftkv() { # data dir (run in this shell, as start_etcd)
    local d="$1/raftkv" peers="" clients="" etcds="" i
    for i in 1 2 3; do
        peers="${peers:+$peers,}$i=127.0.0.1:$((24800 + i))"
        # Followers forward etcd writes to the leader's client address.
        clients="${clients:+$clients,}$i=127.0.0.1:$((24700 + i))"
        etcds="${etcds:+$etcds,}$i=127.0.0.1:$((24790 + i))"
    done
    for i in 1 2 3; do
        mkdir -p "$d/n$i"
        "$RAFTKV" serve --id "$i" --peers "$peers" --clients "$clients" \
            --client-addr "127.0.0.1:$((24700 + i))" \
            --etcd-addr "127.0.0.1:$((24790 + i))" --etcd-clients "$etcds" \
            --data-dir "$d/n$i" ${THREADS:+--worker-threads "$THREADS"} \
            > "$d/n$i.log" 2>&1 &
        PIDS+=($!)
    done
}

run_system() { # system round
    local sys="$1" round="$2" leader c mix line
    rm -rf "${DIR:?}/$sys"
    # raftkv answers etcd's Maintenance.Status as etcd does, so one query finds either leader.
    if [ "$sys" = etcd ]; then
        start_etcd "$DIR"
        leader="$(etcd_leader "127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793")"
    else
        start_raftkv "$DIR"
        leader="$(etcd_leader "127.0.0.1:24791,127.0.0.1:24792,127.0.0.1:24793")"
    fi
    leader="${leader#http://}"
    echo "round $round: $sys leader at $leader" >&2
    for mix in $MIXES; do
        for c in $CLIENTS; do
            # In the background and waited for, so that Ctrl-C or a TERM runs the trap
            # at once instead of after the load generator finishes.
            "$LOADGEN" --endpoints "$leader" --clients "$c" --ops "$OPS" \
                --warmup "$WARMUP" --mix "$mix" --label "$sys" > "$DIR/point.txt" &
            PIDS+=($!)
            wait $!
            line="$(cat "$DIR/point.txt")"
            echo "  $line" >&2
            echo "$line" >> "$RESULTS"
        done
    done
    cleanup
}

for round in $(seq "$ROUNDS"); do
    for sys in $SYSTEMS; do
        run_system "$sys" "$round"
    done
done

python3 - "$RESULTS" "${THREADS:-default (one per core)}" <<'EOF'
import statistics, sys
print(f"threads per node: {sys.argv[2]}")
rows = {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    key = (f["mix"], int(f["clients"]), line.split()[0])
    rows.setdefault(key, []).append(f)
points = sorted({(m, c) for (m, c, _) in rows})
systems = sorted({s for (_, _, s) in rows})
def med(fs, k):
    return statistics.median(float(f[k]) for f in fs)
head = f"{'mix':>7} {'clients':>7}"
for s in systems:
    head += f" | {s+' ops/s':>13} {'p50 ms':>7} {'p99 ms':>7}"
if len(systems) == 2:
    head += f" | {'ratio':>6}"
print(head)
for m, c in points:
    line = f"{m:>7} {c:>7}"
    rates = {}
    for s in systems:
        fs = rows.get((m, c, s), [])
        if fs:
            rates[s] = med(fs, "ops/s")
            line += f" | {rates[s]:>13.0f} {med(fs, 'p50_ms'):>7.2f} {med(fs, 'p99_ms'):>7.2f}"
        else:
            line += f" | {'-':>13} {'-':>7} {'-':>7}"
    if "etcd" in rates and "raftkv" in rates:
        line += f" | {rates['raftkv'] / rates['etcd']:>5.2f}x"
    print(line)
print(f"(median of {max(len(v) for v in rows.values())} rounds per point; raw lines in the run's results.txt)")
EOF

#!/usr/bin/env bash
# Flame graphs of the two benchmarks of docs/BENCHMARKS.md, at 1 and 64 clients:
#   - the in-process library benchmark (`cargo bench -p raft --bench inproc`), whole process;
#   - raftkv's leader process while `raftkv bench` drives a local 3-process cluster (fsync on).
# Writes docs/flamegraphs/{inproc,raftkv-leader}-{1,64}.svg.
#
#   bench/flamegraphs.sh            # needs perf (linux-perf) and inferno (cargo install inferno)
#
# Every process it starts is killed by its process id at exit, also on Ctrl-C or an error.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/docs/flamegraphs"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/raft-flame.XXXXXX")"
BASE=7700
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool (perf: apt-get install linux-perf; inferno: cargo install inferno)" >&2
        exit 2
    }
done
mkdir -p "$OUT"
cd "$ROOT"

# 1 and 64 clients; perf samples at 1999 Hz with DWARF call graphs (release builds carry
# debug info, see the workspace's Cargo.toml).
flame() { # folded-input title svg
    inferno-flamegraph --minwidth 1.5 --width 1400 --title "$2" <"$1" >"$3"
    echo "wrote $3"
}

cargo build --release -q -p raftkv
bench=$(cargo bench -p raft --bench inproc --no-run 2>&1 | grep -o 'target/release/deps/inproc-[0-9a-f]*' | head -1)
for c in 1 64; do
    ops=$([[ $c == 1 ]] && echo 100000 || echo 300000)
    perf record -q -F 1999 --call-graph dwarf,16384 -o "$WORK/inproc.data" -- "$bench" --bench --clients "$c" --ops "$ops"
    perf script -i "$WORK/inproc.data" 2>/dev/null | inferno-collapse-perf >"$WORK/inproc-$c.folded"
    flame "$WORK/inproc-$c.folded" "inproc bench, $c client(s), 3 peers in one process ($(date +%F))" "$OUT/inproc-$c.svg"
done

BIN="$ROOT/target/release/raftkv"
list() { echo "1=127.0.0.1:$(($1 + 1)),2=127.0.0.1:$(($1 + 2)),3=127.0.0.1:$(($1 + 3))"; }
for id in 1 2 3; do
    "$BIN" serve --id "$id" --peers "$(list $BASE)" --clients "$(list $((BASE + 100)))" \
        --client-addr "127.0.0.1:$((BASE + 100 + id))" --http-addr "127.0.0.1:$((BASE + 200 + id))" \
        --data-dir "$WORK/node-$id" >"$WORK/log-$id" 2>&1 &
    PIDS+=($!)
done
leader=""
for _ in $(seq 50); do
    for id in 1 2 3; do
        if curl -s "127.0.0.1:$((BASE + 200 + id))/health" | grep -q "role=leader"; then leader=$id; fi
    done
    [[ -n "$leader" ]] && break
    sleep 0.2
done
[[ -n "$leader" ]] || { echo "no leader elected; logs in $WORK" >&2; exit 1; }
endpoints="127.0.0.1:$((BASE + 101)),127.0.0.1:$((BASE + 102)),127.0.0.1:$((BASE + 103))"
for c in 1 64; do
    "$BIN" bench --endpoints "$endpoints" --clients "$c" --seconds 8 >"$WORK/bench-$c.txt" 2>&1 &
    PIDS+=($!)
    load=$!
    sleep 1.5
    perf record -q -F 1999 --call-graph dwarf,16384 -o "$WORK/raftkv.data" -p "${PIDS[$((leader - 1))]}" -- sleep 5
    wait "$load"
    tail -2 "$WORK/bench-$c.txt"
    perf script -i "$WORK/raftkv.data" 2>/dev/null | inferno-collapse-perf >"$WORK/raftkv-$c.folded"
    flame "$WORK/raftkv-$c.folded" "raftkv leader process, $c client(s), 3 processes, fsync on ($(date +%F))" "$OUT/raftkv-leader-$c.svg"
done

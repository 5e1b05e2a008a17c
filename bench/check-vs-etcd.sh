#!/usr/bin/env bash
# CI's check of bench/vs-etcd.sh, tiny so that it takes seconds once built:
#   1. a whole run, a few hundred operations per point, both mixes, 1 and 4 clients:
#      it must print its table with a row per point and exit 0;
#   2. a run interrupted with SIGINT (Ctrl-C; SIGTERM where SIGINT is ignored) while it
#      measures: it must exit 130 within 60 s;
# and after each, no process it started (servers, load generator) may be left running.
# etcd takes part when it is installed or can be installed (apt-get, as root); without
# it, raftkv runs alone, so that the check needs nothing but the Rust toolchain.
#
#   bench/check-vs-etcd.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

systems="raftkv"
if command -v etcd >/dev/null 2>&1 ||
    { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 &&
        apt-get update -qq && apt-get install -y -qq etcd-server etcd-client >/dev/null; }; then
    systems="etcd raftkv"
fi
echo "systems: $systems"

work="$(mktemp -d "${TMPDIR:-/tmp}/check-vs-etcd.XXXXXX")"
loadgen="$ROOT/bench/loadgen/target/release/loadgen"
script_pid=""
# Whatever happens, nothing this check started outlives it.
trap '[ -n "$script_pid" ] && kill -KILL "$script_pid" 2>/dev/null
    pkill -KILL -f -- "$work" || true; pkill -KILL -f -- "^$loadgen" || true; rm -rf "$work"' EXIT
# Processes started for a run under data directory $1: servers name it in their
# arguments; the load generator is named by its path.
left_over() {
    pgrep -a -f -- "$1" || true
    pgrep -a -f -- "^$loadgen" || true
}
none_left() { # data directory, what just ended
    local rest
    rest="$(left_over "$1")"
    if [ -n "$rest" ]; then
        echo "left running after $2: $rest" >&2
        exit 1
    fi
}

echo "== a tiny whole run"
dir="$work/run"
mkdir -p "$dir"
bench/vs-etcd.sh --systems "$systems" --clients "1 4" --ops 300 --warmup 50 --rounds 1 \
    --dir "$dir" > "$work/table.txt"
cat "$work/table.txt"
for mix in put read95; do
    for c in 1 4; do
        if ! grep -Eiq "^ *$mix +$c " "$work/table.txt"; then
            echo "no row for $mix with $c clients" >&2
            exit 1
        fi
    done
done
if [ "$systems" = "etcd raftkv" ] && ! grep -Eq '[0-9.]+x$' "$work/table.txt"; then
    echo "no ratio column although both systems ran" >&2
    exit 1
fi
none_left "$dir" "the run"

echo "== Ctrl-C while it measures"
dir="$work/interrupted"
mkdir -p "$dir"
# Many operations, so that the signal comes while the load generator runs. With job
# control on, the background run does not start with SIGINT ignored (as a non-interactive
# shell's background commands do), so it receives the signal as from a terminal.
set -m
bench/vs-etcd.sh --systems raftkv --clients 4 --ops 1000000 --warmup 50 --rounds 1 \
    --mix put --dir "$dir" > /dev/null 2> "$work/interrupted.log" &
script_pid=$!
set +m
for _ in $(seq 600); do
    grep -q "leader at" "$work/interrupted.log" 2>/dev/null && break
    kill -0 "$script_pid" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "leader at" "$work/interrupted.log"; then
    cat "$work/interrupted.log" >&2
    echo "the run never started measuring" >&2
    exit 1
fi
sleep 1
# Ctrl-C is SIGINT, but a process started with SIGINT ignored (anything run in the
# background of a non-interactive shell, as CI runners may do with this whole check)
# cannot trap it, so there the run gets SIGTERM, which takes the same path.
signal=INT
ignored="$(awk '/^SigIgn:/ {print $2}' "/proc/$script_pid/status" 2>/dev/null || echo 0)"
if (( (16#${ignored:-0} & 2) != 0 )); then
    signal=TERM
fi
echo "sending SIG$signal"
kill -s "$signal" "$script_pid"
for _ in $(seq 600); do
    kill -0 "$script_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$script_pid" 2>/dev/null; then
    echo "the run was still going 60 s after SIG$signal" >&2
    exit 1
fi
status=0
wait "$script_pid" || status=$?
script_pid=""
if [ "$status" != 130 ]; then
    cat "$work/interrupted.log" >&2
    echo "interrupted run exited with $status, not 130" >&2
    exit 1
fi
none_left "$dir" "Ctrl-C"
echo "OK"

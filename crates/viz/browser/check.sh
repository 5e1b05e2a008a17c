#!/usr/bin/env bash
# Opens a simulated run's timeline in headless Chromium (Debian's `chromium`) and checks
# that a real browser renders it:
#   1. a screenshot is taken (kept with --screenshot FILE);
#   2. the page, with a driver script appended (harness.html), is loaded and its DOM
#      dumped after the scripts ran: the page must log no JavaScript error, its script
#      must have drawn (the data-draws marker it sets on the SVG), the SVG must have one
#      lane per node, and the driver's clicks (next election, filters, wheel zoom, drag,
#      log view, next fault, whole run) must each change what is shown.
# Without flags it checks the README's example (seed 913; what CI runs, see .ci/run).
# Usage:
#   bash crates/viz/browser/check.sh                                   # the README example
#   bash crates/viz/browser/check.sh --screenshot docs/timeline-readme.png   # refresh docs/
#   bash crates/viz/browser/check.sh -- --replay 42 --steps 10000      # any replay flags
set -euo pipefail
cd "$(dirname "$0")/../../.."
shot_out=""
hash=""
while [ $# -gt 0 ]; do
    case "$1" in
        --screenshot) shot_out="$2"; shift 2 ;;
        --hash) hash="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "usage: $0 [--screenshot FILE] [--hash #FRAGMENT] [-- RAFT-SIM FLAGS]" >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    # The README's example (keep in step with README.md and crates/sim/tests/readme_svg.rs),
    # shown with the log view just before n2's log is repaired.
    set -- --replay 913 --nodes 3 --steps 400 --no-swarm \
        --set faults.partition=0 --set faults.drop=0 --set faults.duplicate=0 \
        --set faults.delay=0 --set faults.reorder=0 --set faults.crash=0.03 \
        --set faults.crash_leader_bias=1
    hash="${hash:-#logs=0.434749}"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Every launch gets a fresh profile and nothing that talks to the network.
browse() {
    local profile
    profile="$(mktemp -d "$work/profile.XXXX")"
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" "$@"
}
cargo build --release -q -p raft-sim
./target/release/raft-sim "$@" --html "$work/run.html" >"$work/sim.out" 2>"$work/sim.err"
nodes="$(grep -o 'nodes=[0-9]*' "$work/sim.out" | head -1 | cut -d= -f2)"
echo "page: $(wc -c <"$work/run.html") bytes, $nodes nodes"
fail=0

# 1. Screenshot.
browse --window-size=1400,900 --screenshot="$work/shot.png" "file://$work/run.html$hash" \
    >/dev/null 2>"$work/shot.log" || true
size="$(wc -c <"$work/shot.png" 2>/dev/null || echo 0)"
echo "screenshot: $size bytes"
[ "$size" -gt 10000 ] || { echo "FAIL: no screenshot (or a blank one)"; fail=1; }
if [ -n "$shot_out" ] && [ "$size" -gt 0 ]; then cp "$work/shot.png" "$shot_out"; echo "kept as $shot_out"; fi

# 2. The page driven by harness.html, its DOM dumped once the scripts ran.
cat "$work/run.html" crates/viz/browser/harness.html >"$work/driven.html"
browse --enable-logging=stderr --v=0 --virtual-time-budget=10000 \
    --dump-dom "file://$work/driven.html" >"$work/dom.html" 2>"$work/console.log" || true
result="$(sed -n '/<pre id="RESULT">/,/<\/pre>/p' "$work/dom.html" | sed 's/<[^>]*>//g')"
echo "$result"
if [ -z "$result" ]; then echo "FAIL: the driver did not finish"; fail=1; fi
if grep -qiE "uncaught|CONSOLE.*error" "$work/console.log"; then
    echo "FAIL: JavaScript errors:"; grep -iE "uncaught|CONSOLE.*error" "$work/console.log"; fail=1
fi
grep -q 'data-draws="[1-9]' "$work/dom.html" || { echo "FAIL: the page's script never drew"; fail=1; }
echo "first draw: $(grep -o 'data-first-draw-ms="[0-9]*"' "$work/dom.html" | head -1)"
t_full="$(echo "$result" | sed -n 's/^whole run: tick0=\([^ ]*\).*/\1/p')"
t_elec="$(echo "$result" | sed -n 's/^next election: .*tick0=\([^ ]*\).*/\1/p')"
t_drag="$(echo "$result" | sed -n 's/^drag left 300px: tick0=\([^ ]*\).*/\1/p')"
[ -n "$t_elec" ] && [ "$t_elec" != "$t_full" ] || { echo "FAIL: next election did not move the view"; fail=1; }
[ -n "$t_drag" ] && [ "$t_drag" != "$t_elec" ] || { echo "FAIL: dragging did not pan"; fail=1; }
echo "$result" | grep -q "hb=0 n1msgs=0" || { echo "FAIL: filters did not hide messages"; fail=1; }
echo "$result" | grep -q "^log view: Logs at" || { echo "FAIL: no log view"; fail=1; }
lanes="$(grep -o '<g class="lane"' "$work/dom.html" | wc -l)"
echo "lanes in the rendered page: $lanes (nodes: $nodes)"
[ -n "$nodes" ] && [ "$lanes" -eq "$nodes" ] || { echo "FAIL: expected one lane per node"; fail=1; }
[ "$fail" = 0 ] && echo "OK"
exit "$fail"

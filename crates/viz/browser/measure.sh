#!/usr/bin/env bash
# File size, generation time and render time of one simulated run's timeline.
#   bash crates/viz/browser/measure.sh                       # seed 42, 10,000 steps
#   bash crates/viz/browser/measure.sh --replay 7 --steps 400
# Prints: the page's size in bytes; the time raft-sim took to run the seed and draw it
# (its own figure, three runs); then, three runs each in headless Chromium, the time from
# navigation start to the end of the page script's first draw (the data-first-draw-ms
# marker it sets), and the wall time of `chromium --screenshot` for the page against an
# empty page (browser start-up and shut-down included in both).
set -euo pipefail
cd "$(dirname "$0")/../../.."
[ $# -gt 0 ] || set -- --replay 42 --steps 10000
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
browse() {
    local profile
    profile="$(mktemp -d "$work/profile.XXXX")"
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" "$@" 2>/dev/null
}
cargo build --release -q -p raft-sim
for i in 1 2 3; do
    ./target/release/raft-sim "$@" --html "$work/run.html" 2>&1 >/dev/null | grep "timeline written"
done
echo "bytes: $(wc -c <"$work/run.html")"
echo '<!DOCTYPE html><html><body>empty</body></html>' >"$work/empty.html"
for i in 1 2 3; do
    browse --dump-dom "file://$work/run.html" | grep -o 'data-first-draw-ms="[0-9]*"' | head -1 || echo "no marker (chromium failed?)"
done
wall() {
    local s e
    s=$(date +%s%N)
    browse --window-size=1400,900 --screenshot="$work/shot.png" "file://$1" >/dev/null || true
    e=$(date +%s%N)
    echo "$(( (e - s) / 1000000 )) ms"
}
for i in 1 2 3; do echo "screenshot, page: $(wall "$work/run.html"); empty page: $(wall "$work/empty.html")"; done

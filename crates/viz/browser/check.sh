#!/usr/bin/env bash
# Drives a simulated run's timeline in headless Chromium: loads the page, clicks the
# jump buttons, filters, zooms with the wheel, drags, opens the log view, and checks that
# each action changed the view and that the page logged no JavaScript error.
# Needs `chromium` (Debian's package); not part of `cargo test`. Usage:
#   bash crates/viz/browser/check.sh [SEED] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../../.."
seed="${1:-42}"
steps="${2:-10000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release -q -p raft-sim
./target/release/raft-sim --replay "$seed" --steps "$steps" --html "$work/run.html" >/dev/null
cat "$work/run.html" crates/viz/browser/harness.html >"$work/driven.html"
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/profile" \
    --enable-logging=stderr --v=0 --virtual-time-budget=10000 \
    --dump-dom "file://$work/driven.html" >"$work/dom.html" 2>"$work/console.log" || true
result="$(sed -n '/<pre id="RESULT">/,/<\/pre>/p' "$work/dom.html" | sed 's/<[^>]*>//g')"
echo "$result"
fail=0
if [ -z "$result" ]; then echo "FAIL: the harness did not finish"; fail=1; fi
if grep -qi "uncaught" "$work/console.log"; then
    echo "FAIL: JavaScript errors:"; grep -i "uncaught" "$work/console.log"; fail=1
fi
t_full="$(echo "$result" | sed -n 's/^whole run: tick0=\([^ ]*\).*/\1/p')"
t_elec="$(echo "$result" | sed -n 's/^next election: .*tick0=\([^ ]*\).*/\1/p')"
t_drag="$(echo "$result" | sed -n 's/^drag left 300px: tick0=\([^ ]*\).*/\1/p')"
[ -n "$t_elec" ] && [ "$t_elec" != "$t_full" ] || { echo "FAIL: next election did not move the view"; fail=1; }
[ -n "$t_drag" ] && [ "$t_drag" != "$t_elec" ] || { echo "FAIL: dragging did not pan"; fail=1; }
echo "$result" | grep -q "hb=0 n1msgs=0" || { echo "FAIL: filters did not hide messages"; fail=1; }
echo "$result" | grep -q "^log view: Logs at" || { echo "FAIL: no log view"; fail=1; }
lanes="$(grep -c '<g class="lane"' "$work/dom.html" || true)"
echo "lanes in the rendered page: $lanes"
[ "$lanes" -ge 3 ] || { echo "FAIL: too few lanes"; fail=1; }
[ "$fail" = 0 ] && echo "OK"
exit "$fail"

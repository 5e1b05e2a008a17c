#!/usr/bin/env bash
# Proof that the key/value suite has teeth: builds kvraft once per planted bug (compiled in
# only by RUSTFLAGS='--cfg kv_bug="NAME"', in a target directory of its own so the normal
# build is untouched), runs the kv suite (kv_4a and kv_4b, virtual time) on several seeds,
# and prints which tests caught each bug, and with which check.
#
# Each bug and seed is run three ways:
#   suite      the suite as it is: every check (the scenarios' own value checks, and the
#              linearizability check of the whole history)
#   lin        the scenarios' own value checks off (KV_TEST_OWN_CHECKS=0): only the
#              linearizability check can catch a wrong value
#   lin-clock  as lin, with the history stamped with clock times instead of event numbers
#              (KV_TEST_CLOCK_STAMPS=1: the old stamping, where a client's next call has
#              the same time as its previous return)
# A cell reads "caught/seeds (failing tests summed over the seeds)".
#
# The planted bugs (crates/kvraft/src):
#   get-local     a server that believes it leads answers a get from its applied state at
#                 once, without a read index (so without confirming its leadership)
#   no-dedup      the exactly-once check is gone: every copy of a write is applied
#   double-apply  the first command of a new term applies the previous term's last write
#                 again
#
# Exits non-zero if a bug is not caught, on some seed, by the linearizability check alone
# (column lin): that is the check the suite relies on.
#
# Usage: crates/kvraft/check-planted-bugs.sh [SEED...]   (default seeds: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
seeds=("$@")
if ((${#seeds[@]} == 0)); then seeds=(1 2 3); fi
bugs=(get-local no-dedup double-apply)
log_dir="$root/target/kv-bugs/logs"
mkdir -p "$log_dir"

# run BUG MODE SEED: runs the suite; prints "FAILED-TESTS CHECKS" where CHECKS lists, for
# each failing test, which check failed (lin = linearizability; own = a scenario's own
# value check; other = anything else).
run() {
    local bug=$1 mode=$2 seed=$3 env=()
    case $mode in
        suite) ;;
        lin) env=(KV_TEST_OWN_CHECKS=0) ;;
        lin-clock) env=(KV_TEST_OWN_CHECKS=0 KV_TEST_CLOCK_STAMPS=1) ;;
    esac
    local out="$log_dir/$bug-$mode-$seed.log"
    env "${env[@]}" RAFT_TEST_SEED="$seed" RAFT_TEST_QUIET=1 \
        CARGO_TARGET_DIR="$root/target/kv-bugs/$bug" RUSTFLAGS="--cfg kv_bug=\"$bug\"" \
        cargo test -q -p kvraft --no-fail-fast --test kv_4a --test kv_4b >"$out" 2>&1 || true
    awk '
        /^---- .* stdout ----$/ { test = $2; next }
        test != "" && /panicked at/ { want = 1; next }
        want {
            if ($0 ~ /not linearizable/) kind = "lin";
            else if ($0 ~ /get wrong value|missing element|duplicate element|wrong order|expected .*got/) kind = "own";
            else kind = "other";
            n++; kinds[kind]++; want = 0; test = "";
        }
        END {
            s = "";
            for (k in kinds) s = s (s == "" ? "" : ",") k "=" kinds[k];
            printf "%d %s\n", n + 0, (s == "" ? "-" : s);
        }' "$out"
}

echo "building each planted bug (target/kv-bugs/<bug>) ..."
for bug in "${bugs[@]}"; do
    CARGO_TARGET_DIR="$root/target/kv-bugs/$bug" RUSTFLAGS="--cfg kv_bug=\"$bug\"" \
        cargo test -q -p kvraft --no-run --test kv_4a --test kv_4b 2>/dev/null
done

missed=0
printf '\nseeds: %s (RAFT_TEST_SEED); logs in %s\n\n' "${seeds[*]}" "$log_dir"
printf '| %-12s | %-34s | %-26s | %-26s |\n' "planted bug" "suite (checks that failed)" "lin" "lin-clock"
printf '| %-12s | %-34s | %-26s | %-26s |\n' "---" "---" "---" "---"
for bug in "${bugs[@]}"; do
    cells=()
    for mode in suite lin lin-clock; do
        caught=0 tests=0 kinds=()
        for seed in "${seeds[@]}"; do
            read -r n k < <(run "$bug" "$mode" "$seed")
            if [[ $mode == suite ]]; then
                ((n > 0)) && caught=$((caught + 1))
                [[ $k != - ]] && kinds+=("$k")
            else
                # Only failures of the linearizability check count here.
                l=$(sed -n 's/.*lin=\([0-9]*\).*/\1/p' <<<"$k")
                l=${l:-0}
                ((l > 0)) && caught=$((caught + 1))
                n=$l
            fi
            tests=$((tests + n))
        done
        cell="$caught/${#seeds[@]} ($tests tests)"
        if [[ $mode == suite ]]; then
            summary=$(tr ' ' '\n' <<<"${kinds[*]:-}" | tr ',' '\n' | awk -F= 'NF==2 {c[$1]+=$2} END {for (k in c) printf "%s%s=%d", (s++ ? " " : ""), k, c[k]}')
            cell="$cell ${summary:--}"
        fi
        cells+=("$cell")
        if [[ $mode == lin && $caught -lt ${#seeds[@]} ]]; then
            missed=$((missed + 1))
            echo "--- $bug: the linearizability check missed it on some seed" >&2
        fi
    done
    printf '| %-12s | %-34s | %-26s | %-26s |\n' "$bug" "${cells[0]}" "${cells[1]}" "${cells[2]}"
done
echo
echo "which tests failed: grep -h 'FAILED' $log_dir/*.log"
if ((missed > 0)); then
    echo "$missed planted bug(s) not caught by the linearizability check on every seed" >&2
    exit 1
fi

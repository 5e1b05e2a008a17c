#!/usr/bin/env bash
# Proof that the simulator has teeth: runs its budget test once per planted raft-core bug
# (each a `--cfg raft_bug="NAME"` that only this script sets, in its own target directory,
# so that no normal build can link a broken core) and prints how many seeds it
# took to catch each, and which invariant caught it. Each bug is run twice: with every
# invariant, and with the `persisted-state` contract check off, to show whether the
# end-to-end invariants (election safety, durability, ...) catch it on their own.
#
# Usage: crates/sim/check-planted-bugs.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-sim}"
profile=()
if [[ "${1:-}" == "--release" ]]; then profile=(--release); fi

# The bug names are the values raft-core declares for its `raft_bug` cfg.
bugs=$(grep -o "cfg(raft_bug, values([^)]*)" crates/raft-core/Cargo.toml | grep -o '"[a-z-]*"' | tr -d '"')
missed=0
printf '%-30s | %-14s | %-22s | %-14s | %s\n' \
    "planted bug" "seeds to catch" "caught by" "w/o persisted" "caught by (persisted-state off)"
printf '%s\n' "-------------------------------+----------------+------------------------+----------------+--------------------------------"
for bug in $bugs; do
    cols=()
    for disable in "" "persisted-state"; do
        out=$(RAFT_SIM_DISABLE="$disable" RUSTFLAGS="--cfg raft_bug=\"$bug\"" \
            cargo test -q "${profile[@]}" -p raft-sim --test budget planted_bug_is_caught_within_budget \
            -- --nocapture 2>&1) || true
        line=$(grep -m1 '^SEEDS-TO-CATCH' <<<"$out" || true)
        if [[ -z "$line" ]]; then
            cols+=("NOT CAUGHT" "-")
            # Only the run with every invariant must catch the bug; the second run is a
            # measurement of what the end-to-end invariants see on their own.
            if [[ -z "$disable" ]]; then
                missed=$((missed + 1))
                echo "--- $bug was not caught; test output tail:" >&2
                tail -n 20 <<<"$out" >&2
            fi
        else
            n=$(awk '{print $3}' <<<"$line")
            inv=$(sed -n 's/.*invariant=\([^ ]*\).*/\1/p' <<<"$line")
            cols+=("$n" "$inv")
        fi
    done
    printf '%-30s | %-14s | %-22s | %-14s | %s\n' "$bug" "${cols[0]}" "${cols[1]}" "${cols[2]}" "${cols[3]}"
done
if (( missed > 0 )); then
    echo "$missed run(s) did not catch their planted bug" >&2
    exit 1
fi

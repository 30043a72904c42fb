#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 30) and fails on the first crash.
# The checked-in corpus (corpus/<target>/) seeds each run; new inputs go to a scratch corpus under
# target/, so the repository's corpus stays small. Needs nightly and cargo-fuzz.
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-30}"
status=0
for target in $(cargo +nightly fuzz list); do
    work="target/corpus-work/$target"
    log="target/fuzz-$target.log"
    mkdir -p "$work" "corpus/$target"
    echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
    if cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "$log"
    else
        echo "!! $target failed:"
        grep -E -A 12 "panicked|ERROR|SUMMARY" "$log" | head -40
        status=1
    fi
done
exit $status

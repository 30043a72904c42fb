#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each (default 30) and fails on the first crash.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_PER_TARGET="${1:-30}"
for target in $(cargo +nightly fuzz list); do
    echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
    mkdir -p "corpus/$target"
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 2>&1 | tail -n 3
done

#!/usr/bin/env bash
# Run every fuzz target for a while from its checked-in seeds.
#   tests/fuzz/run.sh BUILD_DIR SECONDS_PER_TARGET
set -euo pipefail
build=$1
secs=${2:-60}
src=$(cd "$(dirname "$0")" && pwd)
for target in wire engine auth seal osc ns feed; do
    bin="$build/tests/fuzz/fuzz_$target"
    # fuzz_osc is built with the plugin (TUTTI_BUILD_PLUGIN)
    [ -x "$bin" ] || { echo "fuzz_$target: not built, skipped"; continue; }
    work=$(mktemp -d)
    echo "fuzz_$target: ${secs}s from $(ls "$src/corpus/$target" | wc -l) seeds"
    status=0
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$work/" \
        "$work" "$src/corpus/$target" >"$work.log" 2>&1 || status=$?
    grep -E "^stat::number_of_executed_units|^#[0-9]+ +DONE|ERROR|SUMMARY" "$work.log" || true
    if [ "$status" != 0 ]; then
        echo "fuzz_$target FAILED (exit $status); the input is kept in $work"
        tail -40 "$work.log"
        exit 1
    fi
    rm -f "$work.log"
    rm -rf "$work"
done

#!/usr/bin/env bash
# Bounded fuzzing of the six targets (config compile, normalize + lookup,
# request head + body framing, upstream response head + body framing, HTTP/2
# requests through the bridge to the head parser, HTTP/2 upstream responses
# rendered for the response parser). Usage: fuzz/run.sh [SECONDS_PER_TARGET] (default 60).
# Uses libFuzzer through cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1
# unlocks the sanitizer flags). A crash leaves its input in fuzz/artifacts/ and
# fails the script; turn it into a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
for target in compile_config normalize_lookup request_head response_head bridged_head h2_response; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    cp -n seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    log=$(mktemp)
    if ! cargo fuzz run --release "$target" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target found a crash (see fuzz/artifacts/$target)" >&2
        exit 1
    fi
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    echo "fuzz: $target: ${runs:-?} executions in ${secs}s, no crash"
    rm -f "$log"
done

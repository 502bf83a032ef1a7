#!/usr/bin/env bash
# The benchmark: installs wrk, nginx and haproxy (Debian), builds the gateway,
# the echo upstream and the bare forwarder in release mode, runs every scenario
# in interleaved rounds and writes bench/RESULTS.md and bench/results.svg.
#   bench/run.sh            full run (7 rounds per scenario; ~25 minutes)
#   bench/run.sh --smoke    one short round of one scenario (CI: proves it runs)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in wrk nginx haproxy taskset; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light haproxy util-linux >/dev/null
fi
cargo build --release -q -p gateway -p bench
policies/build.sh >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
results="$out/results.jsonl"
h() { python3 bench/harness.py --json "$results" "$@" >/dev/null; }

if [ "${1:-}" = "--smoke" ]; then
    h --label "smoke" --proxies gateway+log,nginx+log --rounds 1 --duration 1
    python3 bench/report.py "$results" "bench/run.sh --smoke" > "$out/report.md"
    grep -q '| gateway+log |' "$out/report.md"
    # Keep the committed results: the smoke run only proves the harness works.
    git checkout -q -- bench/RESULTS.md bench/results.svg 2>/dev/null || true
    echo "bench smoke: ok"
    exit 0
fi

R=${ROUNDS:-7}
D=${DURATION:-5}
h --label "tiny bodies, access log on vs off" --proxies gateway+log,nginx+log,haproxy,bare,direct,gateway,nginx --rounds "$R" --duration "$D"
h --label "tiny bodies, proxy pinned to CPU 0, wrk and upstream on CPU 1" --pin --proxies gateway+log,nginx+log,bare --rounds "$R" --duration "$D"
h --label "1 KiB bodies" --body-bytes 1024 --proxies gateway,nginx,bare --rounds "$R" --duration "$D"
h --label "64 KiB bodies" --body-bytes 65536 --proxies gateway,nginx,bare --rounds "$R" --duration "$D"
h --label "1 MiB bodies" --body-bytes 1048576 --proxies gateway,nginx,bare --rounds "$R" --duration "$D"
h --label "10,000 routes vs 1 route" --proxies gateway,gateway@10000,nginx --rounds "$R" --duration "$D"
h --label "256 keep-alive clients" --connections 256 --proxies gateway,nginx,haproxy --rounds "$R" --duration "$D"
h --label "wasm policy: none, no-op, canary" --proxies gateway,gateway+noop,gateway+canary,nginx --rounds "$R" --duration "$D"
python3 bench/report.py "$results" "bench/run.sh"

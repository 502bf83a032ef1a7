#!/usr/bin/env bash
# The benchmark: installs wrk, nginx and haproxy (Debian), builds the gateway,
# the echo upstream and the bare forwarder in release mode, runs every scenario
# in interleaved rounds and writes bench/RESULTS.md and bench/results.svg.
#   bench/run.sh            full run (7–15 rounds per scenario; about an hour)
#   bench/run.sh --smoke    one short round of one scenario (CI: proves it runs)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in wrk nginx haproxy taskset h2load; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light haproxy util-linux nghttp2-client >/dev/null
fi
cargo build --release -q -p gateway -p bench
policies/build.sh >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
results="$out/results.jsonl"
h() { python3 bench/harness.py --json "$results" "$@" >/dev/null; }
# ONLY=substring reruns the scenarios whose label contains it and replaces
# their rows in bench/results.jsonl (the raw data RESULTS.md is built from).
only=${ONLY:-}
scenario() {
    local label=$1
    shift
    if [ -z "$only" ] || [[ "$label" == *"$only"* ]]; then
        h --label "$label" "$@"
    fi
}

if [ "${1:-}" = "--smoke" ]; then
    h --label "smoke" --proxies gateway+log,nginx+log --rounds 1 --duration 1
    # Written to the scratch dir: the smoke run only proves the harness works.
    python3 bench/report.py "$results" "bench/run.sh --smoke" "$out" > /dev/null
    grep -q '| gateway+log |' "$out/RESULTS.md"
    grep -q '<svg' "$out/results.svg"
    echo "bench smoke: ok"
    exit 0
fi

R=${ROUNDS:-7}
D=${DURATION:-5}
scenario "tiny bodies, access log on vs off" --proxies gateway+log,nginx+log,haproxy,bare,direct,gateway,nginx --rounds "$R" --duration "$D"
# The headline pairs again, alone: with two proxies per round the two
# measurements of a round are seconds apart, so drift cancels in the ratio.
scenario "tiny bodies, log on both, pair only" --proxies gateway+log,nginx+log --rounds 15 --duration 4
scenario "tiny bodies, log off both, pair only" --proxies gateway,nginx --rounds 15 --duration 4
# The floor below any runtime (issue 17): the same forwarding written straight
# on epoll and on io_uring, with no parsing, routing or timers; what a proxy
# can reach at best on this machine. floor-tokio is that forwarding on tokio:
# what the runtime alone adds.
scenario "tiny bodies, log off, against the floor forwarders" --proxies gateway,nginx,floor-epoll,floor-uring,floor-tokio --rounds 15 --duration 4
scenario "tiny bodies, log off, two workers each" --workers 2 --proxies gateway,nginx --rounds "$R" --duration "$D"
scenario "tiny bodies, proxy pinned to CPU 0, wrk and upstream on CPU 1" --pin --proxies gateway+log,nginx+log,bare --rounds "$R" --duration "$D"
scenario "1 KiB bodies" --body-bytes 1024 --proxies gateway,nginx,bare --rounds "$R" --duration "$D"
scenario "64 KiB bodies" --body-bytes 65536 --proxies gateway,nginx,bare --rounds "$R" --duration "$D"
scenario "1 MiB bodies" --body-bytes 1048576 --proxies gateway,nginx,bare --rounds "$R" --duration "$D"
scenario "10,000 routes vs 1 route" --proxies gateway,gateway@10000,nginx --rounds "$R" --duration "$D"
# Routing language v2: the request matches the last of 1,000 regex routes
# (10,000 prefix routes besides); NGINX tries its 1,000 regex locations in order.
scenario "1,000 regex routes, last one matches" --path /svc999/items/123456 --proxies gateway,gateway@regex,nginx@regex --rounds "$R" --duration "$D"
scenario "256 keep-alive clients" --connections 256 --proxies gateway,nginx,haproxy --rounds "$R" --duration "$D"
# TLS termination (SPEC §14): wrk (OpenSSL) over TLS to each proxy, ECDSA
# P-256 certificate; NGINX with OpenSSL, session cache and tickets off.
scenario "TLS keep-alive, tiny bodies" --tls --proxies gateway,nginx --rounds "$R" --duration "$D"
scenario "TLS new connection per request" --tls --close --connections 16 --proxies gateway,nginx --rounds "$R" --duration "$D"
# HTTP/2 on the client side: h2load over TLS, 16 connections x 10 streams;
# NGINX `listen ... ssl http2`. Upstreams stay HTTP/1.1 for both.
scenario "HTTP/2 over TLS, h2load -m 10" --tls --h2 --connections 16 --proxies gateway,nginx --rounds "$R" --duration "$D"
# HTTP/2 on both sides (what gRPC needs): upstream h2c; NGINX through grpc_pass.
scenario "HTTP/2 both sides, upstream h2c, h2load -m 10" --tls --h2 --h2-upstream --connections 16 --proxies gateway,nginx,haproxy --rounds "$R" --duration "$D"
scenario "wasm policy: none, no-op, canary" --proxies gateway,gateway+noop,gateway+canary,nginx --rounds "$R" --duration "$D"
if [ -n "$only" ] && [ -f bench/results.jsonl ]; then
    # Keep the other scenarios' rows, in their order, and put the new ones in place.
    python3 - "$results" <<'PY'
import json, re, sys
new = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = {r["label"] for r in new}
old = [json.loads(l) for l in open("bench/results.jsonl") if l.strip()]
# Scenarios in the order this script runs them, then any others.
script = [m for m in re.findall(r'^scenario "([^"]+)"', open("bench/run.sh").read(), re.M)]
order = list(dict.fromkeys(script + [r["label"] for r in old + new]))
rows = [r for lab in order for r in (new if lab in labels else old) if r["label"] == lab]
open("bench/results.jsonl", "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
else
    cp "$results" bench/results.jsonl
fi
python3 bench/report.py bench/results.jsonl "bench/run.sh"

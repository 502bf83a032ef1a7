#!/usr/bin/env bash
# User-space instructions per proxied request, deterministically, with
# valgrind's callgrind: the gateway and NGINX, one worker each, each behind
# the same echo upstream, counted over N keep-alive requests after a warm-up
# (counters are zeroed between the two). Prints instructions per request and,
# for the gateway, the inclusive cost of its main components. The floor
# forwarders (bench/src/bin/floor-forwarder.rs: no parsing beyond finding the
# end of a head; on epoll or io_uring with no runtime, and on tokio) are
# counted the same way, as the floor.
#   bench/instructions.sh [N] [--log]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
log=${2:-}
for tool in valgrind callgrind_control callgrind_annotate h2load nginx; do
    command -v "$tool" >/dev/null 2>&1 || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind nghttp2-client nginx-light >/dev/null
        break
    }
done
cargo build --release -q -p gateway -p bench
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up=$(free_port); gw=$(free_port); ng=$(free_port); fe=$(free_port); fu=$(free_port); ft=$(free_port)
target/release/bench-upstream --listen "127.0.0.1:$up" --body-bytes 16 --threads 1 >/dev/null 2>&1 &
pids+=($!)
if [ "$log" = "--log" ]; then
    gw_log="accessLog: { path: $work/gateway-access.log }"
    ng_log="log_format json escape=json '{\"timestamp\":\"\$time_iso8601\",\"clientIP\":\"\$remote_addr\",\"method\":\"\$request_method\",\"path\":\"\$uri\",\"status\":\$status,\"durationMs\":\$request_time,\"route\":\"r\",\"cluster\":\"c\",\"upstreamURL\":\"\$upstream_addr\"}'; access_log $work/nginx-access.log json;"
else
    gw_log="accessLog: { enabled: false }"
    ng_log="access_log off;"
fi
cat > "$work/gateway.yaml" <<YAML
listen: 127.0.0.1:$gw
routes:
  - { name: default, pathPrefix: /, cluster: c }
clusters:
  - { name: c, upstreams: [{ url: "http://127.0.0.1:$up" }] }
$gw_log
YAML
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 8192; }
http {
    $ng_log
    upstream u { server 127.0.0.1:$up; keepalive 512; keepalive_requests 100000000; }
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:$ng reuseport;
        location / { proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
CONF
measure() { # name port pid outfile
    local name=$1 port=$2 pid=$3 out=$4
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
    h2load --h1 -n 2000 -c 16 -t 1 "http://127.0.0.1:$port/" >/dev/null 2>&1
    callgrind_control -z "$pid" >/dev/null
    h2load --h1 -n "$n" -c 16 -t 1 "http://127.0.0.1:$port/" | grep -q "$n succeeded"
    callgrind_control -d "$pid" >/dev/null
    sleep 1
    local total
    total=$(grep -h '^summary:' "$out".* | tail -1 | awk '{print $2}')
    echo "$name: $((total / n)) instructions per request ($total over $n requests)"
}
valgrind --tool=callgrind --callgrind-out-file="$work/gw.cg" target/release/gateway run --config "$work/gateway.yaml" --threads 1 >/dev/null 2>&1 &
gwpid=$!; pids+=($gwpid)
measure gateway "$gw" "$gwpid" "$work/gw.cg"
valgrind --tool=callgrind --callgrind-out-file="$work/ng.cg" nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 &
ngpid=$!; pids+=($ngpid)
measure nginx "$ng" "$ngpid" "$work/ng.cg"
for io in epoll uring tokio; do
    port=$fe; [ "$io" = uring ] && port=$fu; [ "$io" = tokio ] && port=$ft
    valgrind --tool=callgrind --callgrind-out-file="$work/fl-$io.cg" target/release/floor-forwarder --listen "127.0.0.1:$port" --upstream "127.0.0.1:$up" --io "$io" >/dev/null 2>&1 &
    flpid=$!; pids+=($flpid)
    measure "floor-$io" "$port" "$flpid" "$work/fl-$io.cg"
done
cp "$(ls "$work"/gw.cg.* | tail -1)" "${KEEP:-/tmp/gateway.callgrind}"
echo
echo "gateway, inclusive instructions per request of its parts (whole profile: ${KEEP:-/tmp/gateway.callgrind}):"
callgrind_annotate --inclusive=yes "$(ls "$work"/gw.cg.* | tail -1)" 2>/dev/null \
    | grep -E '(http1::request::parse_into|http1::response::parse_response|http1::encode::encode_request|proxy::route::route|Router::lookup|normalize_path|timeout::Timeout<T> as core::future::future::Future>::poll|observe::accesslog::format_line|conn::finish|record_head|Driver::park|__memcpy_avx_unaligned_erms) \[' \
    | awk -v n="$n" '{gsub(",","",$1); name=$0; sub(/^[^:]*:/,"",name); printf "%8d  %s\n", $1/n, substr(name,1,110)}'

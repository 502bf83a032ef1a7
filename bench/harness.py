#!/usr/bin/env python3
"""Interleaved proxy benchmark: load generator -> proxy under test -> Rust echo upstream.

Every process it starts is stopped by PID; every load is bounded in time; all
traffic stays on 127.0.0.1. See bench/README.md.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_split(pids):
    """(user, system) CPU seconds of `pids` so far."""
    user = system = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except (OSError, IndexError):
            pass
    return user / TICK, system / TICK


def peak_rss_kib(pids):
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
        except OSError:
            pass
    return peak


def children(pid):
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]
    except OSError:
        return []


class Proc:
    def __init__(self, argv, cpus=None, cwd=None):
        if cpus:
            argv = ["taskset", "-c", cpus] + argv
        self.p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    lat = {}
    for pct, val, unit in re.findall(r"^\s+(50|75|90|99|99\.900)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        lat[pct] = float(val) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = (int(errors.group(1)) if errors else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return rps, reqs, lat, bad


LATENCY_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format("  99.900%%  %.2fus\\n", latency:percentile(99.9)))
end
"""


# TLS scenarios: every proxy serves this ECDSA P-256 certificate for
# `localhost`, and wrk (OpenSSL) connects to https://localhost:PORT.
TLS = {"on": False, "close": False, "h2": False, "h2_upstream": False}
# Worker threads (gateway) and worker processes (NGINX) per proxy: --workers.
WORKERS = {"n": 1}


def tls_cert(work):
    cert, key = Path(work) / "bench-cert.pem", Path(work) / "bench-key.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True)
    return cert, key


def h2load(port, path, duration, connections, cpus):
    """HTTP/2 over TLS (ALPN h2), 10 streams in flight per connection."""
    argv = ["h2load", "-t1", f"-c{connections}", "-m10", f"-D{duration}", f"https://localhost:{port}{path}"]
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    rps = reqs = bad = 0
    for line in out.splitlines():
        m = re.match(r"finished in [\d.]+\w*, ([\d.]+) req/s", line)
        if m:
            rps = float(m.group(1))
        m = re.match(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", line)
        if m:
            reqs, bad = int(m.group(2)), int(m.group(3)) + int(m.group(4))
    return rps, reqs, {}, bad


def wrk(port, host, path, duration, connections, cpus, script):
    if TLS["h2"]:
        return h2load(port, path, duration, connections, cpus)
    url = f"https://localhost:{port}{path}" if TLS["on"] else f"http://127.0.0.1:{port}{path}"
    if TLS["on"]:
        host = "localhost"
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, "-H", f"Host: {host}", url]
    if TLS["close"]:
        # A new connection (and a full handshake) for every request.
        argv[1:1] = ["-H", "Connection: close"]
    if cpus:
        argv = ["taskset", "-c", cpus] + argv
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30).stdout
    return parse_wrk(out)


def nginx_conf(work, port, upstream, log):
    tls_listen, tls_lines = "", ""
    if TLS["on"]:
        cert, key = tls_cert(work)
        tls_listen = " ssl http2" if TLS["h2"] else " ssl"
        tls_lines = f"ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;"
    log_line = "access_log off;"
    if log:
        log_line = (
            "log_format json escape=json '{\"timestamp\":\"$time_iso8601\",\"clientIP\":\"$remote_addr\",\"method\":\"$request_method\","
            "\"path\":\"$uri\",\"status\":$status,\"durationMs\":$request_time,\"route\":\"r\",\"cluster\":\"c\",\"upstreamURL\":\"$upstream_addr\"}';\n"
            f"    access_log {work}/nginx-access.log json;"
        )
    upstream_lines = 'proxy_pass http://u; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering on;'
    if TLS["h2_upstream"]:
        # NGINX speaks HTTP/2 to upstreams only through its gRPC module.
        upstream_lines = "grpc_pass grpc://u;"
    conf = f"""
worker_processes {WORKERS["n"]};
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    {log_line}
    upstream u {{ server 127.0.0.1:{upstream}; keepalive 512; keepalive_requests 100000000; }}
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port} reuseport{tls_listen};
        {tls_lines}
        location / {{
            {upstream_lines}
        }}
    }}
}}
"""
    path = Path(work) / "nginx.conf"
    path.write_text(conf)
    return path


def haproxy_conf(work, port, upstream):
    bind, server = "", ""
    if TLS["on"]:
        cert, key = tls_cert(work)
        pem = Path(work) / "bench-haproxy.pem"
        pem.write_text(cert.read_text() + key.read_text())
        bind = f" ssl crt {pem} alpn h2,http/1.1"
    if TLS["h2_upstream"]:
        server = " proto h2"
    conf = f"""
global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend f
    bind 127.0.0.1:{port}{bind}
    default_backend b
backend b
    server s1 127.0.0.1:{upstream}{server}
"""
    path = Path(work) / "haproxy.cfg"
    path.write_text(conf)
    return path


def gateway_conf(work, port, upstream, log, routes, policy=None):
    lines = [f"listen: 127.0.0.1:{port}", "routes:"]
    if TLS["on"]:
        cert, key = tls_cert(work)
        lines = [f"listen: 127.0.0.1:{free_port()}", "tls:", f"  listen: 127.0.0.1:{port}",
                 f"  certificates: [{{ cert: {cert}, key: {key} }}]", "routes:"]
    for i in range(routes - 1):
        host = [f"svc{i}.example.com", f'"*.t{i}.example.com"', '"*"'][i % 3]
        prefix = "".join(f"/s{(i + d) % 97}" for d in range(1 + i % 6))
        lines.append(f"  - {{ name: r{i}, host: {host}, pathPrefix: {prefix}/r{i}, cluster: c }}")
    policies = f", policies: [{policy}]" if policy else ""
    lines.append(f"  - {{ name: default, pathPrefix: /, cluster: c{policies} }}")
    lines += ["clusters:", "  - name: c", "    upstreams:", f'      - {{ url: "http://127.0.0.1:{upstream}" }}']
    if TLS["h2_upstream"]:
        lines.append("    protocol: h2")
    if policy:
        shutil.copy(ROOT / "policies" / "build" / f"{policy}.wasm", Path(work) / f"{policy}.wasm")
        lines += ["  - name: other", "    upstreams:", f'      - {{ url: "http://127.0.0.1:{upstream}" }}']
        lines += ["policies:", f"  - {{ name: {policy}, module: {policy}.wasm, clusters: [other] }}"]
    if log:
        lines += ["accessLog:", f"  path: {work}/gateway-access.log"]
    else:
        lines += ["accessLog: { enabled: false }"]
    path = Path(work) / f"gateway-{routes}-{int(log)}-{policy}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def gateway_regex_conf(work, port, upstream, log):
    """1,000 regex routes `/svc{i}/items/[0-9]+` on the catch-all host, then
    10,000 prefix routes (as `gateway@10000` has), then the default route."""
    lines = [f"listen: 127.0.0.1:{port}", "routes:"]
    for i in range(1000):
        lines.append(f'  - {{ name: re{i}, pathRegex: "/svc{i}/items/[0-9]+", cluster: c }}')
    for i in range(10000):
        host = [f"svc{i}.example.com", f'"*.t{i}.example.com"', '"*"'][i % 3]
        prefix = "".join(f"/s{(i + d) % 97}" for d in range(1 + i % 6))
        lines.append(f"  - {{ name: r{i}, host: {host}, pathPrefix: {prefix}/r{i}, cluster: c }}")
    lines.append("  - { name: default, pathPrefix: /, cluster: c }")
    lines += ["clusters:", "  - name: c", "    upstreams:", f'      - {{ url: "http://127.0.0.1:{upstream}" }}']
    lines += [f"accessLog:\n  path: {work}/gateway-access.log"] if log else ["accessLog: { enabled: false }"]
    path = Path(work) / f"gateway-regex-{int(log)}.yaml"
    path.write_text("\n".join(lines) + "\n")
    # Compiled once, as a fleet would ship it: the gateway loads the plan.
    plan = path.with_suffix(".plan.json")
    if not plan.exists():
        subprocess.run([str(TARGET / "gateway"), "compile", str(path), "-o", str(plan)], check=True, capture_output=True)
    return plan


def nginx_regex_conf(work, port, upstream):
    """The same 1,000 regexes as NGINX `location ~` blocks (PCRE, tried in order)."""
    locations = "\n".join(
        f"        location ~ ^/svc{i}/items/[0-9]+$ {{ proxy_pass http://u; }}" for i in range(1000)
    )
    conf = f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    upstream u {{ server 127.0.0.1:{upstream}; keepalive 512; keepalive_requests 100000000; }}
    keepalive_requests 100000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {{
        listen 127.0.0.1:{port} reuseport;
{locations}
        location / {{ proxy_pass http://u; }}
    }}
}}
"""
    path = Path(work) / "nginx-regex.conf"
    path.write_text(conf)
    return path


def start_proxy(name, work, port, upstream, cpus, routes):
    """Starts proxy `name`; returns (Proc, pids to measure). `gateway@N` serves N routes."""
    if name.endswith("@regex"):
        if name.startswith("nginx"):
            conf = nginx_regex_conf(work, port, upstream)
            p = Proc(["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"], cpus)
            wait_port(port)
            time.sleep(0.1)
            return p, children(p.p.pid)
        plan = gateway_regex_conf(work, port, upstream, "+log" in name)
        p = Proc([str(TARGET / "gateway"), "run", "--plan", str(plan), "--listen", f"127.0.0.1:{port}", "--threads", "1"], cpus)
        wait_port(port)
        return p, [p.p.pid] if not cpus else children(p.p.pid) or [p.p.pid]
    if "@" in name:
        name, routes = name.split("@")[0], int(name.split("@")[1])
    if name.startswith("gateway") or name.startswith("previous"):
        log = "+log" in name
        policy = next((p for p in ("noop", "canary") if f"+{p}" in name), None)
        conf = gateway_conf(work, port, upstream, log, routes, policy)
        # `previous`: another build of the gateway (PREVIOUS_GATEWAY=path), to
        # measure a change against the build before it in the same rounds.
        binary = os.environ.get("PREVIOUS_GATEWAY", "") if name.startswith("previous") else str(TARGET / "gateway")
        p = Proc([binary, "run", "--config", str(conf), "--threads", str(WORKERS["n"])], cpus)
        wait_port(port)
        return p, [p.p.pid] if not cpus else children(p.p.pid) or [p.p.pid]
    if name.startswith("nginx"):
        conf = nginx_conf(work, port, upstream, name.endswith("+log"))
        p = Proc(["nginx", "-c", str(conf), "-p", str(work), "-g", "daemon off;"], cpus)
        wait_port(port)
        time.sleep(0.1)
        # taskset execs nginx, so the started process is the master either way.
        return p, children(p.p.pid)
    if name == "haproxy":
        conf = haproxy_conf(work, port, upstream)
        p = Proc(["haproxy", "-f", str(conf)], cpus)
        wait_port(port)
        return p, [p.p.pid] if not cpus else children(p.p.pid) or [p.p.pid]
    if name.startswith("bare"):
        rt = "multi" if name.endswith("multi") else "current"
        p = Proc([str(TARGET / "bare-forwarder"), "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--threads", "1", "--runtime", rt], cpus)
        wait_port(port)
        return p, [p.p.pid] if not cpus else children(p.p.pid) or [p.p.pid]
    if name.startswith("floor-"):
        # floor-epoll / floor-uring: the hand-written forwarders below any runtime (issue 17).
        p = Proc([str(TARGET / "floor-forwarder"), "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--io", name.split("-", 1)[1]], cpus)
        wait_port(port)
        return p, [p.p.pid] if not cpus else children(p.p.pid) or [p.p.pid]
    if name == "direct":
        return None, []
    raise ValueError(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--proxies", default="gateway,nginx,nginx+log,haproxy,bare,direct")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--body-bytes", type=int, default=16)
    ap.add_argument("--routes", type=int, default=1)
    ap.add_argument("--pin", action="store_true", help="proxy on CPU 0; wrk and upstream on CPU 1")
    ap.add_argument("--path", help="request path for every proxy (default: / , or a route's path with many routes)")
    ap.add_argument("--json", help="append per-round results as JSON lines to this file")
    ap.add_argument("--label", default="")
    ap.add_argument("--tls", action="store_true", help="clients connect with TLS (https://localhost, ECDSA P-256)")
    ap.add_argument("--h2", action="store_true", help="with --tls: h2load over HTTP/2 (ALPN h2), -m 10")
    ap.add_argument("--close", action="store_true", help="one request per connection (with --tls: a handshake per request)")
    ap.add_argument("--h2-upstream", action="store_true", help="the upstream speaks HTTP/2 (prior knowledge); NGINX uses grpc_pass")
    ap.add_argument("--workers", type=int, default=1, help="worker threads of the gateway (and `previous`) and worker processes of NGINX; other proxies keep one")
    args = ap.parse_args()
    TLS["on"], TLS["close"], TLS["h2"], TLS["h2_upstream"] = args.tls, args.close, args.h2, args.h2_upstream
    WORKERS["n"] = args.workers

    for tool in ["wrk"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed (bench/run.sh installs it)")
    proxies = args.proxies.split(",")
    work = tempfile.mkdtemp(prefix="gateway-bench-")
    proxy_cpus, other_cpus = ("0", "1") if args.pin else (None, None)
    upstream_port = free_port()
    upstream = Proc([str(TARGET / "bench-upstream"), "--listen", f"127.0.0.1:{upstream_port}", "--body-bytes", str(args.body_bytes), "--threads", "1"] + (["--h2"] if args.h2_upstream else []), other_cpus)
    script = Path(work) / "p999.lua"
    script.write_text(LATENCY_SCRIPT)
    results = {p: [] for p in proxies}
    try:
        wait_port(upstream_port)
        for rnd in range(args.rounds):
            order = proxies[rnd % len(proxies):] + proxies[: rnd % len(proxies)]
            for name in order:
                port = upstream_port if name == "direct" else free_port()
                proc, pids = start_proxy(name, work, port, upstream_port, proxy_cpus, args.routes)
                try:
                    many = (args.routes > 1 or "@" in name) and not args.path
                    host = "svc0.example.com" if many else "bench.test"
                    path = args.path or ("/s0/r0/x" if many else "/")
                    wrk(port, host, path, 1, args.connections, other_cpus, str(script))  # warm-up
                    user0, sys0 = cpu_split(pids)
                    rps, reqs, lat, bad = wrk(port, host, path, args.duration, args.connections, other_cpus, str(script))
                    user1, sys1 = cpu_split(pids)
                    user, cpu = user1 - user0, (user1 + sys1) - (user0 + sys0)
                    rss = peak_rss_kib(pids)
                finally:
                    if proc:
                        proc.stop()
                row = {"round": rnd, "proxy": name, "rps": rps, "requests": reqs, "bad": bad, "cpu_per_10k": (cpu / reqs * 10000) if reqs and pids else None, "user_per_10k": (user / reqs * 10000) if reqs and pids else None, "p50": lat.get("50"), "p99": lat.get("99"), "p999": lat.get("99.900"), "rss_kib": rss}
                results[name].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if args.json:
                    with open(args.json, "a") as f:
                        f.write(json.dumps({**row, "label": args.label, "body": args.body_bytes, "routes": args.routes, "connections": args.connections, "pinned": args.pin, "tls": args.tls, "close": args.close, "h2": args.h2, "h2_upstream": args.h2_upstream, "workers": args.workers}) + "\n")
    finally:
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(results, proxies, args)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "–" if x is None else format(x, spec)


def report(results, proxies, args):
    base = "nginx" if "nginx" in results else None
    print(f"\n{args.label} body={args.body_bytes}B routes={args.routes} c={args.connections} rounds={args.rounds} duration={args.duration}s pinned={args.pin} workers={args.workers}\n")
    print("| proxy | req/s | ×nginx req/s | CPU s/10k req | ×nginx CPU | p50 ms | p99 ms | p99.9 ms | peak RSS MiB | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in proxies:
        rows = results[name]
        ratio_rps = ratio_cpu = None
        if base and rows:
            pairs = [(r, b) for r, b in zip(rows, results[base])]
            ratio_rps = med([r["rps"] / b["rps"] for r, b in pairs])
            ratio_cpu = med([r["cpu_per_10k"] / b["cpu_per_10k"] for r, b in pairs if r["cpu_per_10k"] and b["cpu_per_10k"]])
        rss = med([r["rss_kib"] for r in rows])
        print(
            f"| {name} | {fmt(med([r['rps'] for r in rows]), ',.0f')} | {fmt(ratio_rps, '.2f')} | {fmt(med([r['cpu_per_10k'] for r in rows]), '.3f')} | {fmt(ratio_cpu, '.2f')} "
            f"| {fmt(med([r['p50'] for r in rows]), '.2f')} | {fmt(med([r['p99'] for r in rows]), '.2f')} | {fmt(med([r['p999'] for r in rows]), '.2f')} "
            f"| {fmt(rss / 1024 if rss else None, '.1f')} | {sum(r['bad'] for r in rows)} |"
        )


if __name__ == "__main__":
    main()

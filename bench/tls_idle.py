#!/usr/bin/env python3
"""RSS of each proxy holding N idle TLS connections (handshake done, no
request), against its RSS with none: `python3 bench/tls_idle.py [N]`;
`python3 bench/tls_idle.py N --h2`: N idle HTTP/2 connections (ALPN h2, the
client preface and SETTINGS sent and answered, no stream).
Uses the harness's configs (gateway with one worker, NGINX with one worker
process; both ECDSA P-256, TLS 1.3)."""
import socket, ssl, sys, tempfile, time, shutil
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import harness

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000
H2 = "--h2" in sys.argv
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def rss_kib(pids):
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def main():
    harness.TLS["on"] = True
    harness.TLS["h2"] = H2
    work = tempfile.mkdtemp(prefix="gateway-tls-idle-")
    up_port = harness.free_port()
    upstream = harness.Proc([str(harness.TARGET / "bench-upstream"), "--listen", f"127.0.0.1:{up_port}", "--threads", "1"])
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if H2:
        ctx.set_alpn_protocols(["h2"])
    rows = []
    try:
        harness.wait_port(up_port)
        for name in ["gateway", "nginx"]:
            port = harness.free_port()
            proc, pids = harness.start_proxy(name, work, port, up_port, None, 1)
            try:
                time.sleep(0.3)
                before = rss_kib(pids)
                conns = []
                for _ in range(N):
                    s = socket.create_connection(("127.0.0.1", port))
                    c = ctx.wrap_socket(s, server_hostname="localhost")
                    if H2:
                        assert c.selected_alpn_protocol() == "h2", name
                        c.sendall(PREFACE)
                        c.recv(4096)  # the server's SETTINGS
                    conns.append(c)
                time.sleep(1.0)
                after = rss_kib(pids)
                rows.append((name, before, after))
                for c in conns:
                    c.close()
            finally:
                proc.stop()
    finally:
        upstream.stop()
        shutil.rmtree(work, ignore_errors=True)
    kind = "HTTP/2" if H2 else "TLS"
    print(f"| proxy | RSS idle, no connection (MiB) | RSS with {N} idle {kind} connections (MiB) | per connection (KiB) |")
    print("|---|---|---|---|")
    for name, before, after in rows:
        print(f"| {name} | {before / 1024:.1f} | {after / 1024:.1f} | {(after - before) / N:.1f} |")


if __name__ == "__main__":
    main()

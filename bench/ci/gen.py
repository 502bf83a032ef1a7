#!/usr/bin/env python3
"""Generates the 10,000-route configs and the 10,000-case file the CI-tools
figures in bench/FINDINGS.md are measured on. Usage: bench/ci/gen.py DIR"""
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)
y = ["accessLog: { enabled: false }", "routes:"]
for i in range(10000):
    host = [f"svc{i}.example.com", f'"*.t{i}.example.com"', '"*"'][i % 3]
    prefix = "".join(f"/s{(i + d) % 97}" for d in range(1 + i % 6))
    y.append(f"  - {{ name: r{i}, host: {host}, pathPrefix: {prefix}/r{i}, cluster: c }}")
y.append("  - { name: default, pathPrefix: /, cluster: c }")
y.append('clusters:\n  - { name: c, upstreams: [{ url: "http://127.0.0.1:9" }] }\n  - { name: d, upstreams: [{ url: "http://127.0.0.1:10" }] }')
text = "\n".join(y) + "\n"
(out / "big.yaml").write_text(text)
(out / "big2.yaml").write_text(text.replace("/r5000, cluster: c", "/r5000x, cluster: c").replace("/r77, cluster: c", "/r77, cluster: d"))
c = ["config: big.yaml", "cases:"]
for i in range(10000):
    host = [f"svc{i}.example.com", f"a.t{i}.example.com", "any.test"][i % 3]
    prefix = "".join(f"/s{(i + d) % 97}" for d in range(1 + i % 6))
    c.append(f'  - {{ name: case{i}, request: {{ url: "http://{host}{prefix}/r{i}/x" }}, expect: {{ route: r{i}, cluster: c }} }}')
(out / "cases.yaml").write_text("\n".join(c) + "\n")

#!/usr/bin/env python3
"""Turns the harness's JSON lines into bench/RESULTS.md and bench/results.svg."""
import json
import platform
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "–" if x is None else format(x, spec)


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unavailable"


def scenario_rows(rows):
    """Per proxy: medians, and medians of same-round ratios against nginx (or nginx+log)."""
    by_round = defaultdict(dict)
    for r in rows:
        by_round[r["round"]][r["proxy"]] = r
    proxies = list(dict.fromkeys(r["proxy"] for r in rows))
    base = next((b for b in ("nginx+log", "nginx", "nginx@regex") if b in proxies), None)
    out = []
    for p in proxies:
        mine = [r for r in rows if r["proxy"] == p]
        pairs = [(rd[p], rd[base]) for rd in by_round.values() if base and p in rd and base in rd]
        ratio = lambda key: med([a[key] / b[key] for a, b in pairs if a.get(key) and b.get(key)])
        rss = med([r["rss_kib"] for r in mine])
        out.append({
            "proxy": p,
            "base": base,
            "rounds": len(mine),
            "rps": med([r["rps"] for r in mine]),
            "rps_x": ratio("rps"),
            "cpu": med([r["cpu_per_10k"] for r in mine]),
            "cpu_x": ratio("cpu_per_10k"),
            "p50": med([r["p50"] for r in mine]),
            "p99": med([r["p99"] for r in mine]),
            "p999": med([r["p999"] for r in mine]),
            "p99_x": ratio("p99"),
            "rss": rss / 1024 if rss else None,
            "errors": sum(r["bad"] for r in mine),
        })
    return out


def svg(scenario, stats, path):
    """Bars: req/s and CPU/request relative to NGINX; dots: p50/p99/p99.9."""
    w, h, left, top = 760, 60 + 46 * len(stats), 150, 40
    scale = 260 / max([s["rps_x"] or 0 for s in stats] + [s["cpu_x"] or 0 for s in stats] + [1.5])
    lat_max = max([s["p999"] or 0 for s in stats] + [1])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{scenario}: ratio to {stats[0]["base"]} (median of same-round ratios) and latency</text>',
           f'<line x1="{left + scale}" y1="{top - 5}" x2="{left + scale}" y2="{h - 10}" stroke="#888" stroke-dasharray="4"/>',
           f'<text x="{left + scale - 10}" y="{top - 8}" fill="#555">1.0×</text>',
           f'<text x="{left + 300}" y="{top - 8}" fill="#555">latency ms (p50 ○, p99 ●, p99.9 ■), max {lat_max:.1f}</text>']
    for i, s in enumerate(stats):
        y = top + 46 * i
        out.append(f'<text x="10" y="{y + 18}">{s["proxy"]}</text>')
        for j, (key, color, label) in enumerate([("rps_x", "#3a7", "req/s"), ("cpu_x", "#c73", "CPU/req")]):
            v = s[key]
            if v is None:
                continue
            out.append(f'<rect x="{left}" y="{y + j * 18}" width="{v * scale:.1f}" height="15" fill="{color}"/>')
            out.append(f'<text x="{left + v * scale + 4:.1f}" y="{y + j * 18 + 12}">{label} {v:.2f}×</text>')
        for key, shape in [("p50", "o"), ("p99", "d"), ("p999", "s")]:
            v = s[key]
            if v is None:
                continue
            x = left + 300 + 280 * v / lat_max
            if shape == "o":
                out.append(f'<circle cx="{x:.1f}" cy="{y + 16}" r="4" fill="none" stroke="#236"/>')
            elif shape == "d":
                out.append(f'<circle cx="{x:.1f}" cy="{y + 16}" r="4" fill="#236"/>')
            else:
                out.append(f'<rect x="{x - 4:.1f}" y="{y + 12}" width="8" height="8" fill="#a23"/>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main():
    src = Path(sys.argv[1])
    command = sys.argv[2] if len(sys.argv) > 2 else "bench/run.sh"
    out_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else HERE
    rows = [json.loads(l) for l in src.read_text().splitlines() if l.strip()]
    scenarios = list(dict.fromkeys(r["label"] for r in rows))
    lines = [
        "# Benchmark results",
        "",
        f"- command: `{command}`",
        f"- date: {version(['date', '-u', '+%Y-%m-%dT%H:%MZ'])}",
        f"- machine: {platform.machine()}, {version(['nproc'])} cores, {version(['uname', '-r'])}",
        f"- {version(['nginx', '-v'])}; {version(['haproxy', '-v'])}; {version(['wrk', '-v'])}; {version(['rustc', '--version'])}",
        "- topology: wrk (1 thread) → proxy under test (1 worker) → Rust echo upstream (1 thread), all on 127.0.0.1",
        "- figures: medians over interleaved rounds; `×` columns are medians of ratios taken within each round against NGINX (with its JSON access log when the row's scenario has one); CPU is utime+stime of the proxy's worker process from /proc",
        "",
    ]
    for i, sc in enumerate(scenarios):
        mine = [r for r in rows if r["label"] == sc]
        r0 = mine[0]
        stats = scenario_rows(mine)
        lines += [f"## {sc}", "", f"body {r0['body']} B, {r0['connections']} connections, pinned: {r0['pinned']}, rounds: {max(s['rounds'] for s in stats)}" + (f", workers: {r0['workers']} (gateway threads, NGINX worker processes)" if r0.get('workers', 1) > 1 else ""), ""]
        lines += ["| proxy | req/s | ×base req/s | CPU s/10k req | ×base CPU | p50 ms | p99 ms | p99.9 ms | ×base p99 | peak RSS MiB | errors |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in stats:
            lines.append(
                f"| {s['proxy']} | {fmt(s['rps'], ',.0f')} | {fmt(s['rps_x'], '.2f')} | {fmt(s['cpu'], '.3f')} | {fmt(s['cpu_x'], '.2f')} "
                f"| {fmt(s['p50'], '.2f')} | {fmt(s['p99'], '.2f')} | {fmt(s['p999'], '.2f')} | {fmt(s['p99_x'], '.2f')} | {fmt(s['rss'], '.1f')} | {s['errors']} |"
            )
        if i == 0:
            svg(sc, [s for s in stats if s["proxy"] != "direct"], out_dir / "results.svg")
            lines += ["", "![ratios and latency](results.svg)"]
        lines.append("")
    findings = HERE / "FINDINGS.md"
    if findings.exists():
        lines += ["", findings.read_text()]
    (out_dir / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

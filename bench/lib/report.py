#!/usr/bin/env python3
"""Turns the bench/ scripts' measurements (TSV) into the markdown of BENCHMARKS.md.

    report.py table TSV SCENARIO         per client: req/s, CPU µs/req, peak RSS, ratios to oha and wrk
    report.py inflight TSV SCENARIO      per client: wall time and peak RSS, ratios to oha
    report.py inputs TSV SCENARIO        outofsync's peak RSS by input size
    report.py server TSV SCENARIO        req/s of each server, ratio to nginx
    report.py targets TSV                the issue's targets, measured against their limits
    report.py splice FILE NAME MDFILE    replaces section NAME of FILE with MDFILE's text

The TSV has one row per run: scenario, client, round, requests, ok, wall_s, cpu_s, rss_kib.
Every figure is the median over the rounds (each metric on its own). Requests per second are
successful requests over the process's wall time (start-up included); CPU per request is
user + system time over successful requests.
"""
import csv
import os
import statistics
import sys
from pathlib import Path

ORDER = ["outofsync", "outofsync-no-body", "write-only", "hyper-floor", "oha", "wrk", "curl", "aiohttp", "threads", "nginx"]
NAMES = {
    "outofsync": "**outofsync fetch**",
    "outofsync-no-body": "outofsync fetch `--body none` (no JSON check, no body written)",
    "write-only": "writing the bodies' bytes to a file, no HTTP (`dd`)",
    "hyper-floor": "hyper's HTTP/1 client alone (`bench/hyper-floor`)",
    "oha": "oha",
    "wrk": "wrk",
    "curl": "curl --parallel",
    "aiohttp": "aiohttp (the note's snippet)",
    "threads": "Python threads + requests",
    "nginx": "nginx (static file)",
}

HEADER = """# Benchmarks

How `outofsync` compares with the usual tools on the same server, with the same requests and the
same concurrency, on one machine. Each section below is written by one script in `bench/`, which
replaces only its own section; the command that made a section is in its title.

| script | what it measures |
|---|---|
| `bench/peers.sh` | outofsync, oha, wrk, curl, aiohttp and Python threads against one nginx: small and big JSON, small JSON over HTTPS and HTTP/2, 10,000 in flight on a slow endpoint (with hyper's HTTP/1 client alone beside them, `bench/hyper-floor`), peak RSS against input size |
| `bench/server.sh` | `outofsync serve` against nginx, each pinned to one core, loaded by wrk on the other |
| `bench/fetch.sh` | `outofsync fetch` and oha, 100,000 requests to the built-in server |
| `bench/profile.sh` | where `outofsync fetch` spends its CPU (perf, callgrind) and, with `--inflight N`, its memory (massif) |

Each script installs what it lacks (Debian packages, `oha` built with cargo into `bench/.tools`,
aiohttp and requests in a virtualenv there), builds outofsync with `cargo build --release`,
talks only to servers it starts on 127.0.0.1 and stops them when it ends. `--quick` runs a
smaller version that writes to `bench/results/` only; `--help` says the rest.

The machine is small (2 cores) and shared, so absolute numbers move from run to run. **CPU time
per request** (user + system time of the client process, to the millisecond, from bash's `time`)
and the **ratios** between clients measured in the same run are the figures to compare. Client
and server share the two cores, so the tables also give nginx's CPU per request during each
client's runs (from the scheduler's accounting) and how many cores the two kept busy.
"""


def load(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.reader(f, delimiter="\t"):
            if not r or r[0].startswith("#"):
                continue
            scenario, client, rnd, requests, ok, wall, cpu, rss = r[:8]
            # The server's CPU came later (a ninth column); older files lack it.
            server = float(r[8]) if len(r) > 8 else 0.0
            rows.append(
                dict(
                    scenario=scenario,
                    client=client,
                    round=int(rnd),
                    requests=int(requests),
                    ok=int(ok),
                    wall=float(wall),
                    cpu=float(cpu),
                    rss=int(rss),
                    server=server,
                )
            )
    return rows


def medians(rows, scenario):
    """Per client of SCENARIO: median figures and how many runs lost requests."""
    by_client = {}
    for r in rows:
        if r["scenario"] == scenario:
            by_client.setdefault(r["client"], []).append(r)
    out = {}
    for client, runs in by_client.items():
        good = [r for r in runs if r["ok"] > 0]
        if not good:
            out[client] = dict(runs=len(runs), short=len(runs), ok=0)
            continue
        out[client] = dict(
            runs=len(runs),
            # A run of a fixed number of requests that did not get them all is flagged.
            short=sum(1 for r in runs if r["ok"] < r["requests"]),
            ok=statistics.median(r["ok"] for r in good),
            requests=good[0]["requests"],
            rps=statistics.median(r["ok"] / r["wall"] for r in good),
            cpu_us=statistics.median(r["cpu"] * 1e6 / r["ok"] for r in good),
            cpu_s=statistics.median(r["cpu"] for r in good),
            wall=statistics.median(r["wall"] for r in good),
            rss_mib=statistics.median(r["rss"] / 1024 for r in good),
            # nginx's CPU per request while this client ran, None when it was not measured.
            server_us=statistics.median(r["server"] * 1e6 / r["ok"] for r in good)
            if all(r["server"] > 0 for r in good)
            else None,
            # Cores busy, client and server together, over the client's wall time.
            cores=statistics.median((r["cpu"] + r["server"]) / r["wall"] for r in good),
        )
    return out


def ordered(stats):
    return sorted(stats, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER))


def num(x, digits=0):
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def note(s):
    if s["short"]:
        return f"{s['short']} of {s['runs']} runs lost requests"
    return ""


def markdown(header, align, body):
    """A markdown table: HEADER cells, ALIGN (one of `l`, `r` per column), rows of cells."""
    rule = "|" + "|".join("---" if a == "l" else "--:" for a in align) + "|"
    return "\n".join(["| " + " | ".join(header) + " |", rule] + ["| " + " | ".join(r) + " |" for r in body])


def table(rows, scenario):
    stats = medians(rows, scenario)
    # Ratios to each reference client measured in this scenario.
    bases = [b for b in ("oha", "wrk") if stats.get(b, {}).get("ok")]
    # nginx's share, when it was measured: the machine's cores are the client's and the server's.
    server = any(s.get("server_us") for s in stats.values())
    header = ["client", "req/s", "CPU µs/req", "peak RSS MiB"]
    header += ["nginx CPU µs/req", "cores busy"] if server else []
    header += [f"CPU ×{b}" for b in bases] + [f"req/s ×{b}" for b in bases] + ["note"]
    extra = 2 if server else 0
    body = []
    for c in ordered(stats):
        s = stats[c]
        if not s["ok"]:
            body.append([NAMES.get(c, c)] + ["—"] * (3 + extra + 2 * len(bases)) + ["every run failed"])
            continue
        cells = [NAMES.get(c, c), num(s["rps"]), num(s["cpu_us"], 1), num(s["rss_mib"], 1)]
        cells += [num(s["server_us"], 1), num(s["cores"], 2)] if server else []
        cells += [ratio(s["cpu_us"], stats[b]["cpu_us"]) for b in bases]
        cells += [ratio(s["rps"], stats[b]["rps"]) for b in bases]
        body.append(cells + [note(s)])
    return markdown(header, "lrrr" + "r" * (extra + 2 * len(bases)) + "l", body)


def inflight(rows, scenario):
    stats = medians(rows, scenario)
    oha, aiohttp = stats.get("oha", {}), stats.get("aiohttp", {})
    body = []
    for c in ordered(stats):
        s = stats[c]
        if not s["ok"]:
            body.append([NAMES.get(c, c)] + ["—"] * 6 + ["every run failed"])
            continue
        body.append(
            [NAMES.get(c, c), num(s["wall"], 2), num(s["rss_mib"], 1), num(s["cpu_s"], 2)]
            + [ratio(s["wall"], oha.get("wall")), ratio(s["rss_mib"], oha.get("rss_mib"))]
            + [ratio(s["rss_mib"], aiohttp.get("rss_mib")), note(s)]
        )
    header = ["client", "wall s", "peak RSS MiB", "CPU s", "wall ×oha", "RSS ×oha", "RSS ×aiohttp", "note"]
    return markdown(header, "lrrrrrrl", body) + floor(stats)


def floor(stats):
    """What the RSS targets leave against the least a client on hyper holds: the targets are met
    by no client on hyper's HTTP/1 connection if hyper alone is above them."""
    mine, alone = stats.get("outofsync", {}), stats.get("hyper-floor", {})
    oha, aiohttp = stats.get("oha", {}), stats.get("aiohttp", {})
    if not (mine.get("ok") and alone.get("ok") and oha.get("ok") and aiohttp.get("ok")):
        return ""
    n = mine["requests"]
    per = lambda s: s["rss_mib"] * 1024 / n  # noqa: E731 -- KiB per request in flight
    return (
        f"\n\nhyper's HTTP/1 client alone (a connection, a request and its body per task, one thread, "
        f"nothing else) peaks at {alone['rss_mib']:.1f} MiB: {alone['rss_mib'] / aiohttp['rss_mib']:.2f}× "
        f"aiohttp's and {alone['rss_mib'] / oha['rss_mib']:.2f}× oha's, where the targets ask outofsync "
        f"for ≤ 0.9× and ≤ 0.75×. outofsync holds {per(mine):.1f} KiB per request in flight, "
        f"{per(mine) - per(alone):.1f} KiB more than hyper alone ({mine['rss_mib'] / alone['rss_mib']:.2f}×)."
    )


def inputs(rows, scenario):
    runs = sorted((r for r in rows if r["scenario"] == scenario), key=lambda r: r["requests"])
    if not runs:
        return "(no runs)"
    smallest = runs[0]
    body = [
        [
            f"{r['requests']:,}",
            f"{r['ok']:,}",
            f"{r['wall']:.2f}",
            num(r["ok"] / r["wall"]),
            num(r["cpu"] * 1e6 / max(r["ok"], 1), 1),
            f"{r['rss'] / 1024:.1f}",
            f"{r['rss'] / smallest['rss']:.2f}×",
        ]
        for r in runs
    ]
    header = ["input lines", "ok", "wall s", "req/s", "CPU µs/req", "peak RSS MiB", "RSS ×smallest"]
    return markdown(header, "rrrrrrr", body)


def server(rows, scenario):
    stats = medians(rows, scenario)
    base = stats.get("nginx", {})
    body = []
    for c in ordered(stats):
        s = stats[c]
        name = "**outofsync serve --threads 1** `/json`" if c == "outofsync" else NAMES.get(c, c)
        body.append([name, num(s.get("rps")), ratio(s.get("rps"), base.get("rps")), note(s)])
    return markdown(["server (one core)", "req/s (wrk -t1 -c64)", "×nginx", "note"], "lrrl", body)


# (label, scenario, metric, baseline client, comparison, limit)
TARGETS = [
    # (label, scenario, metric, the client(s) compared with — several are added up, op, limit)
    ("Small JSON, c=64: CPU per request vs oha", "small", "cpu_us", "oha", "<=", 1.05),
    ("Small JSON, c=64: CPU per request vs wrk", "small", "cpu_us", "wrk", "<=", 1.4),
    (
        "Big JSON (64 KiB): CPU per request vs oha's request + `dd` writing its bytes",
        "big",
        "cpu_us",
        ("oha", "write-only"),
        "<=",
        1.5,
    ),
    ("HTTPS + HTTP/2 small JSON, c=64: CPU per request vs oha", "https-h2", "cpu_us", "oha", "<=", 1.0),
    ("Small JSON, c=64: throughput vs oha", "small", "rps", "oha", ">=", 1.0),
    ("Big JSON (64 KiB): throughput vs oha", "big", "rps", "oha", ">=", 1.0),
    ("{n} in flight on /slow: peak RSS vs aiohttp", "slow", "rss_mib", "aiohttp", "<=", 0.9),
    ("{n} in flight on /slow: peak RSS vs oha", "slow", "rss_mib", "oha", "<=", 0.75),
    ("{n} in flight on /slow: wall time vs oha", "slow", "wall", "oha", "<=", 1.2),
]


def targets(rows):
    body = []
    for label, scenario, metric, base, op, limit in TARGETS:
        stats = medians(rows, scenario)
        label = label.format(n=f"{stats.get('outofsync', {}).get('requests', 0):,}")
        bases = base if isinstance(base, tuple) else (base,)
        mine = stats.get("outofsync", {}).get(metric)
        parts = [stats.get(b, {}).get(metric) for b in bases]
        theirs = None if None in parts else sum(parts)
        bound = f"{'≤' if op == '<=' else '≥'} {limit}×"
        if mine is None or not theirs:
            body.append([label, "not measured", bound, "—"])
            continue
        r = mine / theirs
        met = r <= limit if op == "<=" else r >= limit
        body.append([label, f"{r:.2f}×", bound, "yes" if met else "**no**"])
    runs = sorted((r for r in rows if r["scenario"] == "inputs"), key=lambda r: r["requests"])
    if len(runs) >= 2:
        small, large = runs[0], runs[-1]
        r = large["rss"] / small["rss"]
        label = f"Peak RSS, {large['requests']:,}-line input vs {small['requests']:,}"
        body.append([label, f"{r:.2f}×", "≤ 1.2×", "yes" if r <= 1.2 else "**no**"])
    return markdown(["target", "measured", "limit", "met"], "lrrl", body) + shared_cores(rows)


def shared_cores(rows):
    """What bounds throughput when client and server share the machine's cores, per scenario in
    which nginx's CPU was measured: if they keep the cores busy, requests per second follow the CPU
    that client and server spend per request together, and the ratio to oha is predicted by
    (oha's + nginx's) / (outofsync's + nginx's) CPU per request."""
    lines = []
    for scenario, what in (("small", "Small JSON"), ("https-h2", "HTTPS + HTTP/2"), ("big", "Big JSON")):
        stats = medians(rows, scenario)
        mine, oha = stats.get("outofsync", {}), stats.get("oha", {})
        if not (mine.get("server_us") and oha.get("server_us")):
            continue
        predicted = (oha["cpu_us"] + oha["server_us"]) / (mine["cpu_us"] + mine["server_us"])
        lines.append(
            f"- {what}: during outofsync's runs client and nginx kept {mine['cores']:.2f} of "
            f"{os.cpu_count()} cores busy ({oha['cores']:.2f} during oha's). CPU per request, client + "
            f"nginx: {mine['cpu_us']:.1f} + {mine['server_us']:.1f} µs against oha's "
            f"{oha['cpu_us']:.1f} + {oha['server_us']:.1f}; if throughput follows it, outofsync gets "
            f"{predicted:.2f}× oha's req/s (measured: {mine['rps'] / oha['rps']:.2f}×)."
        )
    if not lines:
        return ""
    return "\n\nWhen client and server share the cores:\n\n" + "\n".join(lines)


def splice(path, name, md_path):
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    body = Path(md_path).read_text().strip("\n")
    block = f"{begin}\n{body}\n{end}"
    p = Path(path)
    text = p.read_text() if p.exists() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    p.write_text(text)


def main(argv):
    if len(argv) == 5 and argv[1] == "splice":
        splice(argv[2], argv[3], argv[4])
        return 0
    commands = {"table": table, "inflight": inflight, "inputs": inputs, "server": server}
    if len(argv) == 4 and argv[1] in commands:
        print(commands[argv[1]](load(argv[2]), argv[3]))
        return 0
    if len(argv) == 3 and argv[1] == "targets":
        print(targets(load(argv[2])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

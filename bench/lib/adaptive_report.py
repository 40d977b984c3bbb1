#!/usr/bin/env python3
"""The report of bench/adaptive.sh: what each run did, from the server's count per second
(`/stats?key=K`) and the client's `--adaptive-log`, against the design's targets.

Usage:
  adaptive_report.py table OUT              the markdown table of the runs in OUT/runs.tsv
  adaptive_report.py svg OUT RUN FILE.svg   goodput, R and W over time of one run, as an SVG
"""

import json
import statistics
import sys
from pathlib import Path


def load_seconds(path, duration):
    """Per second from the key's first request: ok, throttled, unavailable, p50 (None), max in flight."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        doc = {"seconds": []}
    rows = [[0, 0, 0, None, 0] for _ in range(int(duration))]
    for s in doc.get("seconds", []):
        t = s["t"]
        if t < len(rows):
            rows[t] = [s["ok"], s["throttled"], s["unavailable"], s.get("p50_ms"), s.get("max_in_flight", 0)]
    return rows


def load_log(path):
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError:
        return []


def t90(rows, capacity):
    for s in range(len(rows) - 5):
        if all(r[0] >= 0.9 * capacity for r in rows[s : s + 5]):
            return s
    return None


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def share(num, den):
    return num / den if den else 0.0


def steady_stats(rows, capacity, start, end=None):
    end = len(rows) - 1 if end is None else end
    steady = rows[start:end]
    if not steady:
        return None
    ok = sum(r[0] for r in steady)
    answered = sum(r[0] + r[1] + r[2] for r in steady)
    g = [r[0] / capacity for r in steady]
    p50s = [r[3] for r in steady if r[3] is not None]
    return {
        "mean": ok / len(steady) / capacity,
        "p5": pct(g, 0.05),
        "p95": pct(g, 0.95),
        "throttled": share(sum(r[1] for r in steady), answered),
        "unavailable": share(sum(r[2] for r in steady), answered),
        "p50": statistics.median(p50s) if p50s else None,
    }


def unloaded_p50(out, name):
    rows = load_seconds(out / f"{name}-unloaded.stats.json", 3600)
    p50s = [r[3] for r in rows if r[3] is not None]
    return min(p50s) if p50s else None


def fmt(x, spec="{:.2f}", none="–"):
    return none if x is None else spec.format(x)


def r_at(log, t, host=None):
    value = None
    for line in log:
        if line["t"] > t:
            break
        if host is None or line["host"].startswith(f"http://{host}."):
            value = line["r"] if line["r"] is not None else value
    return value


def first_time(log, since, test):
    for line in log:
        if line["t"] >= since and test(line):
            return line["t"] - since
    return None


def row(out, name, client, seconds, capacity, hosts):
    run = f"{name}-{client}"
    seconds = int(seconds)
    log = load_log(out / f"{run}.log.jsonl")
    names = [h.split("=", 1)[0].split("@")[0] for h in hosts.split()]
    caps = [float(c) for c in capacity.split("+")]
    rows = load_seconds(out / f"{run}-{names[0]}.stats.json", seconds)
    cap = caps[0]
    cells = {"T90": "–", "429": "–", "g": "–", "lat": "–", "other": "", "met": []}
    first = t90(rows, cap)
    cells["T90"] = fmt(first, "{:d}", "never")
    stats = steady_stats(rows, cap, (first or 0) + 5 if first is not None else max(0, seconds // 3))
    if stats:
        cells["429"] = fmt(100 * stats["throttled"], "{:.2f}")
        cells["g"] = f"{stats['mean']:.3f} ({fmt(stats['p5'])}–{fmt(stats['p95'])})"
    met = cells["met"]
    if name.startswith("A") and name != "A4":
        met.append(("T90 ≤ 10 s" if name != "A2" else "T90 ≤ 20 s", first is not None and first <= (20 if name == "A2" else 10)))
        limit = 0.02 if name == "A3" else 0.01
        met.append((f"429 ≤ {limit:.0%}", stats is not None and stats["throttled"] <= limit))
        met.append(("g ≥ 0.95" if name != "A2" else "g ≥ 0.93", stats is not None and stats["mean"] >= (0.93 if name == "A2" else 0.95)))
        if name == "A5":
            pauses = sum(1 for line in log if line["event"] == "pause")
            cells["other"] = f"{pauses} host pauses"
            met.append(("no pause", pauses == 0))
    if name == "A4":
        window, per_window = 20, 200
        windows = seconds // window
        ok = sum(r[0] for r in rows[: windows * window])
        throttled = sum(r[1] for r in rows[: windows * window])
        pauses = sum(1 for line in log if line["event"] == "pause")
        used = share(ok, per_window * windows)
        cells["g"] = f"quota used {used:.1%}"
        cells["429"] = fmt(100 * share(throttled, ok + throttled), "{:.2f}")
        cells["other"] = f"{pauses} pauses, {throttled / max(1, windows):.1f} 429s per window"
        met.append(("quota ≥ 95 %", used >= 0.95))
    if name.startswith("B"):
        base = unloaded_p50(out, name)
        if stats and stats["p50"] and base:
            ratio = stats["p50"] / base
            cells["lat"] = f"{ratio:.2f} ({stats['p50']:.0f}/{base:.0f} ms)"
            if name in ("B1-8", "B1-64"):
                met.append(("p50 ≤ 1.6×", ratio <= 1.6))
        if name in ("B1-8", "B1-64"):
            met.append(("T90 ≤ 5 s", first is not None and first <= 5))
            met.append(("g ≥ 0.95", stats is not None and stats["mean"] >= 0.95))
        if name == "B2" and stats:
            cells["other"] = f"503 after T90 {100 * stats['unavailable']:.2f} %, {sum(r[2] for r in rows)} in all"
            met.append(("503 ≤ 0.5 %", stats["unavailable"] <= 0.005))
        if name in ("B3", "B4"):
            workers = 32
            ws = [line["w"] for line in log if line["w"] is not None and first is not None and line["t"] >= first]
            low = min(ws) if ws else None
            if low is not None:
                cells["other"] = f"W ≥ {low:.1f} after T90"
            target = 0.9 if name == "B3" else 0.95
            met.append((f"g ≥ {target}", stats is not None and stats["mean"] >= target))
            if client != "default":
                met.append(("W ≥ c/2", low is not None and low >= workers / 2))
    if name in ("C1C2", "C3"):
        down, up = seconds // 3, seconds * 2 // 3
        half = cap / 2
        if name == "C1C2":
            under = first_time(log, down, lambda line: line["r"] is not None and line["r"] <= 1.1 * half)
            burst = sum(r[1] for r in rows[down : down + 5])
            back = next((s - up for s in range(up, min(len(rows), up + 25)) if rows[s][0] >= 0.9 * cap), None)
            after = steady_stats(rows, cap, up)
            window = min(len(rows), up + 25) - up
            under_text = "never after the step down" if under is None else f"{under:.1f} s after the step down"
            back_text = f"not within {window} s of the step up" if back is None else f"{back:d} s after the step up"
            cells["other"] = f"R ≤ 1.1×C {under_text}, {burst} 429s in its 5 s; g ≥ 0.9×C {back_text}"
            met.append(("down ≤ 2 s", under is not None and under <= 2))
            met.append(("≤ 100 429s", burst <= 100))
            met.append(("up ≤ 25 s", back is not None and back <= 25))
            met.append(("429 ≤ 1 % after up", after is not None and after["throttled"] <= 0.01))
        else:
            base = unloaded_p50(out, name)
            parts = []
            ok = True
            for at, end in ((down, up), (up, len(rows) - 1)):
                s = steady_stats(rows, cap, at + 5, end)
                ratio = s["p50"] / base if s and s["p50"] and base else None
                parts.append(fmt(ratio))
                ok = ok and ratio is not None and ratio <= 1.6
            cells["lat"] = " / ".join(parts) + " (after each step)"
            met.append(("p50 ≤ 1.6× after steps", ok))
    if name == "D1":
        b_rows = load_seconds(out / f"{run}-{names[1]}.stats.json", seconds)
        b_first = t90(b_rows, caps[1])
        b_stats = steady_stats(b_rows, caps[1], (b_first or 0) + 5 if b_first is not None else seconds // 3)
        b_events = [line for line in log if line["host"].startswith(f"http://{names[1]}.")]
        leaked = sum(1 for line in b_events if line["event"] == "throttle" or line["r"] is not None)
        a_429 = sum(r[1] for r in rows)
        cells["g"] = f"b {b_stats['mean']:.3f}" if b_stats else "–"
        cells["T90"] = f"b {fmt(b_first, '{:d}', 'never')}"
        cells["other"] = f"a: {a_429} 429s; b: {leaked} throttle events"
        met.append(("b g ≥ 0.9", b_stats is not None and b_stats["mean"] >= 0.9))
        met.append(("no leak", leaked == 0))
    if name == "D2":
        parts, ok = [], True
        for host in names:
            host_rows = load_seconds(out / f"{run}-{host}.stats.json", seconds)
            most = max((r[4] for r in host_rows), default=0)
            ws = [line["w"] for line in log if line["host"].startswith(f"http://{host}.") and line["w"] is not None]
            w = max(ws) if ws else None
            parts.append(f"{host} W {fmt(w, '{:.0f}')}/{most}")
            ok = ok and (w is None or w <= 2 * most)
        cells["other"] = "max W / max in flight: " + ", ".join(parts)
        met.append(("W ≤ 2×in flight", ok))
    return cells


def table(out):
    out = Path(out)
    lines = [
        "| scenario | hidden capacity | client | T90 (s) | 429 % after T90 | goodput / capacity, mean (p5–p95) | p50 / unloaded | more | targets |",
        "|---|---|---|--:|--:|---|---|---|---|",
    ]
    missed = []
    for entry in (out / "runs.tsv").read_text().splitlines():
        name, client, seconds, capacity, hosts = entry.split("\t")
        cells = row(out, name, client, seconds, capacity, hosts)
        targets = ", ".join(f"{what} {'✓' if ok else '✗'}" for what, ok in cells["met"])
        if client == "adaptive":
            missed += [f"{name}: {what}" for what, ok in cells["met"] if not ok]
        hidden = " ".join(h.split("=", 1)[1] for h in hosts.split())
        lines.append(
            f"| {name} | {capacity}/s `{hidden}` | {client} | {cells['T90']} | {cells['429']} | {cells['g']} | "
            f"{cells['lat']} | {cells['other']} | {targets} |"
        )
    lines.append("")
    if missed:
        lines.append("Targets the adaptive client missed: " + "; ".join(missed) + ".")
    else:
        lines.append("The adaptive client met every target in this run.")
    return "\n".join(lines)


def svg(out, run, path):
    """Goodput (the server's count per second), R and W (the client's log) over time."""
    out = Path(out)
    log = load_log(out / f"{run}.log.jsonl")
    runs = [e.split("\t") for e in (out / "runs.tsv").read_text().splitlines()]
    name, client, seconds, capacity, hosts = next(r for r in runs if f"{r[0]}-{r[1]}" == run)
    host = hosts.split()[0].split("=", 1)[0].split("@")[0]
    seconds = int(seconds)
    rows = load_seconds(out / f"{run}-{host}.stats.json", seconds)
    cap = float(capacity.split("+")[0])
    width, height, left, right, top, bottom = 760, 340, 56, 56, 36, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    ymax = max([cap * 1.6] + [r[0] for r in rows] + [line["r"] or 0 for line in log]) * 1.05
    wmax = max([line["w"] or 0 for line in log] + [1]) * 1.25

    def x(t):
        return left + plot_w * t / seconds

    def y(v, top_value=ymax):
        return top + plot_h * (1 - min(v, top_value) / top_value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14">{name}: a hidden rate limit of {cap:.0f}/s, halved at {seconds // 3} s, '
        f"restored at {seconds * 2 // 3} s (outofsync fetch --adaptive)</text>",
    ]
    # Axes and grid.
    for k in range(6):
        v = ymax * k / 5
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
        w = wmax * k / 5
        parts.append(f'<text x="{left + plot_w + 6}" y="{y(w, wmax) + 4:.1f}" fill="#2a7">{w:.0f}</text>')
    for t in range(0, seconds + 1, 10):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="black"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{t}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">seconds</text>')
    parts.append(
        f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">requests per second</text>'
    )
    parts.append(
        f'<text x="{width - 10}" y="{top + plot_h / 2}" transform="rotate(90 {width - 10} {top + plot_h / 2})" '
        'text-anchor="middle" fill="#2a7">W (in flight)</text>'
    )
    parts.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>')
    # The hidden capacity, dashed.
    steps = [(0, cap), (seconds // 3, cap / 2), (seconds * 2 // 3, cap), (seconds, cap)]
    pts = []
    for (t0, v), (t1, _) in zip(steps, steps[1:]):
        pts += [(x(t0), y(v)), (x(t1), y(v))]
    parts.append(polyline(pts, "#999", dash=True))
    # Goodput per second, as the server counted it.
    parts.append(polyline([(x(t + 0.5), y(r[0])) for t, r in enumerate(rows)], "#1f5fbf", width=2))
    # R and W as step lines, from the log.
    for key, colour, top_value in (("r", "#d9480f", ymax), ("w", "#2a7", wmax)):
        pts, last = [], None
        for line in log:
            v = line[key]
            if v is None:
                continue
            if last is not None:
                pts.append((x(line["t"]), y(last, top_value)))
            pts.append((x(line["t"]), y(v, top_value)))
            last = v
        if last is not None:
            pts.append((x(seconds), y(last, top_value)))
            parts.append(polyline(pts, colour, width=1.5))
    legend = [
        ("#1f5fbf", "goodput (server's count)"),
        ("#d9480f", "R, the learned rate"),
        ("#2a7", "W, the window (right axis)"),
        ("#999", "hidden capacity"),
    ]
    for k, (colour, label) in enumerate(legend):
        lx = left + 12 + k * 170
        parts.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{top + 14}" y2="{top + 14}" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{lx + 22}" y="{top + 18}">{label}</text>')
    parts.append("</svg>")
    Path(path).write_text("\n".join(parts) + "\n")


def polyline(points, colour, width=1, dash=False):
    coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    extra = ' stroke-dasharray="5,4"' if dash else ""
    return f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="{width}"{extra}/>'


def main(argv):
    if len(argv) == 3 and argv[1] == "table":
        print(table(argv[2]))
        return 0
    if len(argv) == 5 and argv[1] == "svg":
        svg(argv[2], argv[3], argv[4])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

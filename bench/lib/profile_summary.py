#!/usr/bin/env python3
"""Sums a perf or callgrind profile by function and by crate, as markdown.

    profile_summary.py perf FILE [THREADS]
                                       FILE: `perf report --stdio --no-children --sort dso,sym -g none`;
                                       THREADS: the same with `--sort comm`
    profile_summary.py compare N NAME TOTAL STARTUP [NAME TOTAL STARTUP ...]
                                       instructions per request of clients that ran N requests
                                       (TOTAL) and one (STARTUP), relative to the last one
    profile_summary.py massif FILE INFLIGHT
                                       FILE: valgrind --tool=massif output, INFLIGHT requests at once
    profile_summary.py callgrind FILE [REQUESTS STARTUP]
                                       FILE: `callgrind_annotate --tree=caller` of REQUESTS
                                       requests; STARTUP: instructions of a run of one request

A Rust symbol is charged to the crate of its first path segment (`<hyper::… as …>::poll` is
hyper's); the kernel and libc are places of their own. callgrind names a function once per
source file its inlined code came from; those are added up.
"""
import re
import sys
from collections import defaultdict

TOP = 25


def crate_of(symbol, dso=""):
    if dso.startswith("[kernel") or dso == "kernel":
        return "kernel"
    if "libc.so" in dso or "libc-" in dso:
        return "libc (malloc, memcpy, syscalls)"
    if "vdso" in dso:
        return "vdso (clock_gettime)"
    s = symbol.lstrip("<&*")
    s = re.sub(r"^(dyn |mut |const )", "", s)
    head = re.split(r"::|<| as ", s, maxsplit=1)[0]
    if not head or head == symbol and "::" not in symbol:
        return "other"
    return {"core": "std", "alloc": "std"}.get(head, head)


def short(symbol, width=110):
    return symbol if len(symbol) <= width else symbol[: width - 1] + "…"


def crate_table(by_crate, total):
    out = ["| crate or place | % |", "|---|--:|"]
    for crate, value in sorted(by_crate.items(), key=lambda kv: -kv[1]):
        if 100 * value / total >= 0.5:
            out.append(f"| {crate} | {100 * value / total:.1f} |")
    return "\n".join(out)


def perf_threads(path):
    out = ["| thread | % |", "|---|--:|"]
    for line in open(path, errors="replace"):
        m = re.match(r"^\s+([\d.]+)%\s+(\S.*?)\s*$", line)
        if m and float(m.group(1)) >= 0.5:
            out.append(f"| {m.group(2)} | {float(m.group(1)):.1f} |")
    return "\n".join(out)


def perf(path, threads=None):
    line_re = re.compile(r"^\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*?)\s*$")
    by_symbol, by_crate = defaultdict(float), defaultdict(float)
    crate_of_symbol = {}
    samples = None
    for line in open(path, errors="replace"):
        m = re.match(r"^# Samples: (\S+)", line)
        if m:
            samples = m.group(1)
        m = line_re.match(line)
        if not m:
            continue
        pct, dso, _, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4)
        crate = crate_of(symbol, dso)
        by_symbol[symbol] += pct
        crate_of_symbol[symbol] = crate
        by_crate[crate] += pct
    total = 100.0
    rows = sorted(((s, (v, crate_of_symbol[s])) for s, v in by_symbol.items()), key=lambda r: -r[1][0])[:TOP]
    print(f"### perf: where the time goes ({samples} cpu-clock samples, kernel included)")
    print()
    print(crate_table(by_crate, total))
    print()
    if threads:
        print("By thread (`outofsync` is the main thread; Linux cuts names at 15 characters):")
        print()
        print(perf_threads(threads))
        print()
    print(f"Top {TOP} functions by samples (self time):")
    print()
    print("| % | crate | function |")
    print("|--:|---|---|")
    for symbol, (value, crate) in rows:
        print(f"| {value:.1f} | {crate} | `{short(symbol)}` |")


def callgrind(path, requests=None, startup=None):
    total = None
    self_cost, callers = defaultdict(int), defaultdict(lambda: defaultdict(int))
    objects = {}
    block = []
    entry_re = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+([<*>])\s+(.*)$")
    for line in open(path, errors="replace"):
        m = re.match(r"^\s*([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
        m = entry_re.match(line)
        if not m:
            block = [] if not line.strip() else block
            continue
        value, kind, rest = int(m.group(1).replace(",", "")), m.group(2), m.group(3)
        obj = ""
        om = re.search(r" \[([^\]]*)\]$", rest)
        if om:
            obj, rest = om.group(1), rest[: om.start()]
        rest = re.sub(r" \([\d,]+x\)$", "", rest)
        # "file:function": files hold no colon, functions do ("::").
        function = rest.split(":", 1)[1] if ":" in rest and not rest.startswith("<") else rest
        if kind == "<":
            block.append((function, value))
        elif kind == "*":
            self_cost[function] += value
            objects.setdefault(function, obj)
            for caller, v in block:
                callers[function][caller] += v
            block = []
    if not total:
        print("(callgrind: no totals found)")
        return
    by_crate = defaultdict(int)
    for f, v in self_cost.items():
        by_crate[crate_of(f, "libc.so" if "libc.so" in objects.get(f, "") else "")] += v
    rows = sorted(self_cost.items(), key=lambda kv: -kv[1])[:TOP]
    per = ""
    if requests and startup:
        per = f"; {(total - startup) / max(requests - 1, 1):,.0f} per request once start-up ({startup:,}) is taken out"
    elif requests:
        per = f"; {total / requests:,.0f} per request, start-up included"
    print(f"### callgrind: user-space instructions ({total:,} in all{per})")
    print()
    print(crate_table(by_crate, total))
    print()
    print(f"Top {TOP} functions by instructions (self), with the callers that spend most through them")
    print("(a caller's figure is inclusive: the function and what it calls, from that caller):")
    print()
    print("| % | instructions | crate | function | main callers |")
    print("|--:|--:|---|---|---|")
    for f, v in rows:
        crate = crate_of(f, "libc.so" if "libc.so" in objects.get(f, "") else "")
        top_callers = sorted(callers[f].items(), key=lambda kv: -kv[1])[:2]
        who = "; ".join(f"`{short(c, 70)}` {100 * cv / total:.1f}%" for c, cv in top_callers)
        print(f"| {100 * v / total:.1f} | {v:,} | {crate} | `{short(f, 90)}` | {who} |")


# Frames that say how memory is allocated, not who wants it.
PLUMBING = re.compile(
    r"^(alloc::|core::|std::|<alloc::|<core::|UnknownInlinedFun|alloc \(|realloc|malloc|calloc|"
    r"new<|with_capacity|reserve|finish_grow|grow_one|push|do_reserve|try_allocate|allocate|"
    r"aligned_malloc|__rust|__rdl|RawVec|bytes::bytes_mut|pin<|map<|alloc$|alloc_impl|grow_impl|"
    r"exchange_malloc|channel_from_index|box_new_uninit|grow_amortized|grow$|tokio::runtime::task::core::Cell|tokio::runtime::task::raw|"
    r"tokio::runtime::task::new_task|bind|tokio::runtime::scheduler::multi_thread::handle::Handle::bind)"
)


def massif(path, inflight):
    """The allocation sites of the peak heap snapshot, each named by its first frames past the
    allocator plumbing, with the bytes they hold per request in flight."""
    lines = open(path, errors="replace").read().split("\n")
    peak = next((i for i, l in enumerate(lines) if l.startswith("heap_tree=peak")), None)
    if peak is None:
        print("(massif: no peak snapshot)")
        return
    heap = next(int(l.split("=")[1]) for l in reversed(lines[:peak]) if l.startswith("mem_heap_B="))
    nodes = []
    for line in lines[peak + 1 :]:
        if line.startswith("snapshot="):
            break
        m = re.match(r"^( *)n\d+: (\d+) (.*)$", line)
        if m:
            frame = re.sub(r"^0x[0-9A-F]+: ", "", m.group(3))
            nodes.append((len(m.group(1)), int(m.group(2)), frame))

    def largest_child(i):
        depth, best, j = nodes[i][0], None, i + 1
        while j < len(nodes) and nodes[j][0] > depth:
            if nodes[j][0] == depth + 1 and (best is None or nodes[j][1] > nodes[best][1]):
                best = j
            j += 1
        return best

    print(f"### massif: the heap at its peak with {inflight:,} requests in flight")
    print()
    print(f"{heap / 2**20:.1f} MiB of heap at the peak, {heap / inflight / 1024:.1f} KiB per request in flight.")
    print()
    print("| MiB | KiB per request | allocated by (first frames past the allocator) |")
    print("|--:|--:|---|")
    for i, (depth, size, frame) in enumerate(nodes):
        if depth != 1 or size < heap * 0.01 or frame.startswith("in "):
            continue
        names, k = [], i
        while k is not None and len(names) < 3:
            name = re.sub(r" \(.*?\)$", "", nodes[k][2])
            if not PLUMBING.match(name):
                names.append(short(name, 100))
            k = largest_child(k)
        who = " ← ".join(f"`{n}`" for n in names) or "?"
        print(f"| {size / 2**20:.1f} | {size / inflight / 1024:.1f} | {who} |")


def compare(n, runs):
    """Instructions per request, start-up taken out: (TOTAL - STARTUP) / (N - 1)."""
    per = [(name, (total - startup) / max(n - 1, 1)) for name, total, startup in runs]
    base = per[-1][1]
    print(f"### Instructions per request (callgrind, user space, {n:,} requests, start-up taken out)")
    print()
    print(f"| client | instructions per request | ×{per[-1][0]} |")
    print("|---|--:|--:|")
    for name, value in per:
        print(f"| {name} | {value:,.0f} | {value / base:.2f}× |")


def main(argv):
    if len(argv) >= 6 and argv[1] == "compare" and (len(argv) - 3) % 3 == 0:
        rest = argv[3:]
        compare(int(argv[2]), [(rest[i], int(rest[i + 1]), int(rest[i + 2])) for i in range(0, len(rest), 3)])
        return 0
    if len(argv) == 4 and argv[1] == "massif":
        massif(argv[2], int(argv[3]))
        return 0
    if len(argv) in (3, 4) and argv[1] == "perf":
        perf(*argv[2:])
        return 0
    if len(argv) in (3, 4, 5) and argv[1] == "callgrind":
        callgrind(argv[2], *(int(a) for a in argv[3:]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

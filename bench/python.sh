#!/usr/bin/env bash
# The Python front of outofsync beside the note's aiohttp snippet, on the same nginx, same N.
#
# Usage: bench/python.sh [--quick] [--rounds N]
#
#   --quick      small counts and one round, for iterating; writes bench/results/ only
#   --rounds N   rounds of alternating runs (default 3; every figure is the median)
#
# Installs what is missing (nginx and its echo module; aiohttp into bench/.tools/venv), builds the
# module's wheel with maturin in release mode and installs it into that virtualenv, starts nginx
# (1 worker, keep-alive; bench/lib/nginx.conf) and runs, each scenario with both clients:
#
#   small     30,000 requests of /data.json (~300 B), 64 in flight: aiohttp (the note's snippet,
#             bench/clients/aiohttp_client.py), outofsync.stream (bulk: each body through
#             rec.json()), outofsync.Session (per-call: the note's loop on outofsync)
#   big       5,000 requests of /big.json (~64 KiB), 64 in flight: the same three, and bulk with
#             the body left as bytes (raw) and reduced by a jq filter in Rust (jq)
#   slow      10,000 requests of /slow (1 s), all in flight: peak RSS of aiohttp and the bulk front
#
# (--quick: 5,000, 1,000 and 2,000.) CPU counts the whole client process, interpreter start-up
# included, for both. Raw runs go to bench/results/python.tsv, the table to
# bench/results/python.md and (full runs) to the "python" section of BENCHMARKS.md.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
ROUNDS=3
ROUNDS_GIVEN=0
COMMAND_LINE="bench/python.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2 ROUNDS_GIVEN=1; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

C=64
if [[ $QUICK == 1 ]]; then
  N_SMALL=5000 N_BIG=1000 N_SLOW=2000
  if [[ $ROUNDS_GIVEN == 0 ]]; then ROUNDS=1; fi
else
  N_SMALL=30000 N_BIG=5000 N_SLOW=10000
fi

ensure_basics
ensure_debs nginx libnginx-mod-http-echo
ensure_python_clients

# The module, as a user installs it: a release wheel, into the bench's virtualenv.
log "building the outofsync wheel (maturin build --release) into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.16,<2"
WHEELS="$SCRATCH/wheels"
"$VENV/bin/maturin" build --release --quiet -m "$ROOT_DIR/python/Cargo.toml" -i "$PYTHON" -o "$WHEELS" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/outofsync-*.whl
raise_fd_limit

mkdir -p "$RESULTS"
RESULTS_TSV="$RESULTS/python.tsv"
: >"$RESULTS_TSV"
WWW="$SCRATCH/www"
mkdir -p "$WWW"
python3 "$BENCH_DIR/lib/docs.py" "$WWW"
nginx_start "$WWW"
BASE="http://127.0.0.1:$NGINX_PORT"

# One run of CLIENT on URL: N requests, C in flight; appends a row.
run_one() {
  local scenario=$1 client=$2 url=$3 n=$4 c=$5 round=$6
  case $client in
    aiohttp) measure "$PYTHON" "$BENCH_DIR/clients/aiohttp_client.py" "$url" "$n" "$c" ;;
    *) measure "$PYTHON" "$BENCH_DIR/clients/outofsync_py_client.py" "$client" "$url" "$n" "$c" ;;
  esac
  local ok
  ok=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' "$M_OUT")
  [[ $M_RC == 0 ]] || log "  $client exited $M_RC: $(tail -n 2 "$M_ERR")"
  record_row "$scenario" "$client" "$round" "$n" "${ok:-0}"
}

for round in $(seq "$ROUNDS"); do
  log "round $round of $ROUNDS"
  for client in aiohttp bulk per-call; do run_one small "$client" "$BASE/data.json" "$N_SMALL" "$C" "$round"; done
  for client in aiohttp bulk per-call raw jq; do run_one big "$client" "$BASE/big.json" "$N_BIG" "$C" "$round"; done
  for client in aiohttp bulk; do run_one slow "$client" "$BASE/slow" "$N_SLOW" "$N_SLOW" "$round"; done
done

REPORT="$RESULTS/python.md"
{
  echo "## The Python front beside the note's aiohttp snippet (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: $(versions_line); the outofsync module built from this checkout (abi3 wheel, release)."
  echo "- Server: nginx, 1 worker, keep-alive, on 127.0.0.1; median of $ROUNDS alternating round(s); $(date -u +%Y-%m-%d)."
  echo "- Clients: \`aiohttp\` is the note's snippet (\`bench/clients/aiohttp_client.py\`: a semaphore, one gather,"
  echo "  \`await response.json()\`); \`bulk\`, \`raw\`, \`jq\` and \`per-call\` are \`bench/clients/outofsync_py_client.py\`."
  echo "  CPU is user + system time of the whole client process (interpreter start-up included) per successful"
  echo "  request; ratios are outofsync against aiohttp (req/s: higher is better; CPU and RSS: lower is better)."
  echo
  python3 - "$RESULTS_TSV" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter="\t"))
by = {}
for scenario, client, _round, n, ok, wall, cpu, rss, _server in rows:
    by.setdefault((scenario, client), []).append((int(n), int(ok), float(wall), float(cpu), int(rss)))
def med(scenario, client):
    runs = by.get((scenario, client))
    if not runs:
        return None
    n = runs[0][0]
    ok = min(r[1] for r in runs)
    wall = statistics.median(r[2] for r in runs)
    cpu = statistics.median(r[3] for r in runs)
    rss = statistics.median(r[4] for r in runs)
    return {"n": n, "ok": ok, "rps": ok / wall if wall else 0, "cpu_us": cpu / max(ok, 1) * 1e6, "rss": rss / 1024, "wall": wall}
targets = [
    ("small", "bulk", "rps", 3.0, "small JSON, bulk: req/s ≥ 3×"),
    ("small", "bulk", "cpu_us", 1 / 3, "small JSON, bulk: CPU per request ≤ 1/3"),
    ("small", "per-call", "rps", 1.0, "small JSON, per-call Session: req/s ≥ 1×"),
    ("big", "bulk", "rps", 0.9, "64 KiB bodies as Python objects: req/s ≥ 0.9×"),
    ("big", "raw", "rps", 5.0, "64 KiB bodies raw (bytes): req/s ≥ 5×"),
    ("big", "jq", "rps", 5.0, "64 KiB bodies jq-filtered in Rust: req/s ≥ 5×"),
    ("slow", "bulk", "rss", 0.5, "10,000 in flight on /slow: peak RSS ≤ 0.5×"),
]
print("### Targets")
print()
print("| target | aiohttp | outofsync | ratio | met |")
print("|---|---:|---:|---:|:---:|")
units = {"rps": "req/s", "cpu_us": "µs CPU/req", "rss": "MiB"}
for scenario, client, metric, bound, label in targets:
    a, o = med(scenario, "aiohttp"), med(scenario, client)
    if not a or not o:
        continue
    ratio = o[metric] / a[metric] if a[metric] else float("nan")
    met = ratio >= bound if metric == "rps" else ratio <= bound
    print(f"| {label} | {a[metric]:,.0f} {units[metric]} | {o[metric]:,.0f} {units[metric]} | {ratio:.2f}× | {'yes' if met else '**no**'} |")
for scenario, title in (("small", "Small JSON (/data.json)"), ("big", "Big JSON (/big.json, 64 KiB)"), ("slow", "/slow, all in flight")):
    print()
    print(f"### {title}")
    print()
    print("| client | ok | wall s | req/s | CPU µs/req | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for client in ("aiohttp", "bulk", "per-call", "raw", "jq"):
        m = med(scenario, client)
        if m:
            print(f"| {client} | {m['ok']}/{m['n']} | {m['wall']:.2f} | {m['rps']:,.0f} | {m['cpu_us']:,.0f} | {m['rss']:,.0f} |")
PY
} >"$REPORT"

cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report python "$REPORT"
  log "wrote the python section of BENCHMARKS.md"
fi

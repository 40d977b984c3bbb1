#!/usr/bin/env bash
# Finding a server's speed: `outofsync fetch --adaptive` against servers of hidden capacity,
# beside the default mode (-c 64) and a plain AIMD window (--adaptive-opt mode=window), on the
# design's whole table: A1–A5 (rate limits), B1–B4 (queues), C1–C3 (capacity steps), D1–D2
# (several hosts).
#
# Usage: bench/adaptive.sh [--quick] [--only SCENARIO,…] [--clients NAME,…] [--duration S]
#
#   --quick       20 s runs (45 s for the steps, which happen at a third and two thirds),
#                 writes bench/results/ only
#   --only        scenarios to run, e.g. A1-200,B1-8 (default: all)
#   --clients     adaptive, default, window (default: all three)
#   --duration S  seconds per run (default 60; 90 for C1–C3)
#
# One `outofsync serve` holds every hidden capacity (`/ratelimit`, `/capacity`), each run under
# a key of its own; what each run did is read from the server's side (`/stats?key=K`, per
# second) and from the client's `--adaptive-log`. A run is stopped after its duration (SIGINT:
# every record written is whole). Raw data goes to bench/results/adaptive/, the table to
# bench/results/adaptive.md and (full runs) to BENCHMARKS.md, the picture of the README to
# docs/adaptive.svg.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
ONLY=""
CLIENTS="adaptive,default,window"
DURATION=60
COMMAND_LINE="bench/adaptive.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 DURATION=20 ;;
    --only) ONLY=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

ensure_basics
build_outofsync
raise_fd_limit

OUT="$RESULTS/adaptive"
rm -rf "$OUT"
mkdir -p "$OUT"
# shellcheck disable=SC2119 # serve takes its defaults here: one worker per core
serve_start
BASE="http://127.0.0.1:$SERVE_PORT"

# Each scenario: NAME|SECONDS|CAPACITY|HOSTS, where HOSTS is one or more HOST=QUERY (path and
# query of the hidden capacity, without its key) separated by spaces, and HOST@N weights the
# input (N requests of that host for every one of the others). Capacity is in accepted
# requests per second, as the server is built to allow.
STEP=$(( DURATION * 3 / 2 ))
(( QUICK )) && STEP=45
scenarios() {
  cat <<EOF
A1-50|$DURATION|50|a=/ratelimit?rps=50&ms=20&ra=0
A1-200|$DURATION|200|a=/ratelimit?rps=200&ms=20&ra=0
A1-800|$DURATION|800|a=/ratelimit?rps=800&ms=20&ra=0
A2|$DURATION|200|a=/ratelimit?rps=200&ms=200&ra=0
A3|$DURATION|200|a=/ratelimit?kind=window&rps=200&window=1&ms=20
A4|$DURATION|10|a=/ratelimit?kind=quota&rps=10&window=20&ms=20
A5|$DURATION|200|a=/ratelimit?rps=200&ms=20&ra=1
B1-8|$DURATION|133.3|a=/capacity?c=8&ms=50&jitter=0.2
B1-64|$DURATION|1066.7|a=/capacity?c=64&ms=50&jitter=0.2
B2|$DURATION|266.7|a=/capacity?c=16&queue=16&ms=50&jitter=0.2
B3|$DURATION|168.4|a=/capacity?c=32&ms=50&jitter=1&bimodal=0.1
B4|$DURATION|528|a=/capacity?c=32&ms=50&jitter=0.2&err=0.01
C1C2|$STEP|200|a=/ratelimit?rps=200&ms=20&ra=0&schedule=$((STEP / 3)):0.5,$((STEP * 2 / 3)):1
C3|$STEP|533.3|a=/capacity?c=32&ms=50&jitter=0.2&schedule=$((STEP / 3)):0.5,$((STEP * 2 / 3)):1
D1|$DURATION|50+533.3|a=/ratelimit?rps=50&ms=20 b@12=/capacity?c=32&ms=50&jitter=0.2
D2|$DURATION|1280|h0=/capacity?c=1000&ms=50 h1=/capacity?c=1000&ms=50 h2=/capacity?c=1000&ms=50 h3=/capacity?c=1000&ms=50
EOF
}

# The arguments of each client.
client_args() {
  case $1 in
    adaptive) echo "--adaptive -c 512" ;;
    default) echo "-c 64" ;;
    window) echo "--adaptive --adaptive-opt mode=window -c 512" ;;
    *) die "unknown client $1" ;;
  esac
}

# Writes the input of one run: requests to each host of the scenario, interleaved by weight,
# enough for the whole run at twice the capacity.
write_input() {
  local file=$1 seconds=$2 capacity=$3 run=$4; shift 4
  python3 - "$file" "$seconds" "$capacity" "$run" "$SERVE_PORT" "$@" <<'PY'
import sys
path, seconds, capacity, run, port, *hosts = sys.argv[1:]
total = sum(float(c) for c in capacity.split("+")) * float(seconds) * 2 + 1000
parts = []
for spec in hosts:
    name, query = spec.split("=", 1)
    weight = 1
    if "@" in name:
        name, weight = name.split("@")
    parts.append((name, query, int(weight)))
cycle = [(n, q) for n, q, w in parts for _ in range(w)]
with open(path, "w") as out:
    for i in range(int(total)):
        name, query = cycle[i % len(cycle)]
        sep = "&" if "?" in query else "?"
        out.write(f"http://{name}.test:{port}{query}{sep}key={run}-{name}&n={i}\n")
PY
}

# The unloaded latency of each queue: a few requests one at a time.
unloaded() {
  local name=$1 query=$2 file="$SCRATCH/unloaded.txt" i
  : >"$file"
  for i in $(seq 40); do echo "$BASE$query&key=$name-unloaded&n=$i" >>"$file"; done
  "$OUTOFSYNC" fetch -q -c 1 --body none "$file" >/dev/null || true
  curl -s "$BASE/stats?key=$name-unloaded" >"$OUT/$name-unloaded.stats.json"
}

want() {
  [[ -z $ONLY ]] && return 0
  [[ ",$ONLY," == *",$1,"* ]]
}

while IFS='|' read -r name seconds capacity hosts; do
  want "$name" || continue
  # shellcheck disable=SC2086 # the hosts are words
  first_query=$(echo $hosts | cut -d' ' -f1 | cut -d= -f2-)
  [[ $first_query == /capacity* ]] && unloaded "$name" "$first_query"
  for client in ${CLIENTS//,/ }; do
    run="$name-$client"
    log "$run: $seconds s, hidden capacity $capacity/s"
    input="$SCRATCH/$run.txt"
    # shellcheck disable=SC2086
    write_input "$input" "$seconds" "$capacity" "$run" $hosts
    resolve=()
    # shellcheck disable=SC2086
    for spec in $hosts; do
      host=${spec%%=*}
      resolve+=(--resolve "${host%%@*}.test:$SERVE_PORT:127.0.0.1")
    done
    args=$(client_args "$client")
    # D2 is about -c binding over four hosts: every client gets -c 64.
    [[ $name == D2 ]] && args=${args/-c 512/-c 64}
    # shellcheck disable=SC2086 # the client's arguments are words
    timeout -s INT "$seconds" "$OUTOFSYNC" fetch --no-progress --body none --retries 8 --grace 1s \
      $args "${resolve[@]}" --adaptive-log "$OUT/$run.log.jsonl" \
      --summary-json "$OUT/$run.summary.json" -o "$OUT/$run.records.jsonl" --overwrite "$input" \
      2>"$OUT/$run.err" || true
    # shellcheck disable=SC2086
    for spec in $hosts; do
      host=${spec%%=*}
      curl -s "$BASE/stats?key=$run-${host%%@*}" >"$OUT/$run-${host%%@*}.stats.json"
    done
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$client" "$seconds" "$capacity" "$hosts" >>"$OUT/runs.tsv"
    rm -f "$OUT/$run.records.jsonl" "$OUT/$run.records.jsonl.manifest.json"
  done
done < <(scenarios)

REPORT="$RESULTS/adaptive.md"
{
  echo "## Finding the server's speed (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: $(versions_line)."
  echo "- \`outofsync serve\` holds every hidden capacity; each run is \`outofsync fetch --retries 8\` with"
  echo "  \`--adaptive -c 512\` (adaptive), \`-c 64\` (default: no window control, but a host that"
  echo "  throttles is paced at a learned rate) or \`--adaptive --adaptive-opt mode=window -c 512\` (a plain"
  echo "  AIMD window), stopped after its duration. Goodput, 429s and latency are the server's count"
  echo "  per second. $(date -u +%Y-%m-%d)."
  echo
  python3 "$BENCH_DIR/lib/adaptive_report.py" table "$OUT"
} >"$REPORT"
if [[ -f "$OUT/C1C2-adaptive.log.jsonl" ]]; then
  mkdir -p "$ROOT_DIR/docs"
  python3 "$BENCH_DIR/lib/adaptive_report.py" svg "$OUT" C1C2-adaptive "$ROOT_DIR/docs/adaptive.svg"
  log "drew docs/adaptive.svg"
fi

cat "$REPORT"
if [[ $QUICK == 0 && -z $ONLY ]]; then
  splice_report adaptive "$REPORT"
  log "wrote the adaptive section of BENCHMARKS.md"
fi

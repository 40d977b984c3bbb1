#!/usr/bin/env bash
# The cost of going through Redis: the same small requests fetched by `outofsync fetch` alone,
# then by 1, 2 and 4 workers of a job in Redis (submit, workers, collect), on this machine.
#
# Usage: bench/scaleout.sh [--quick] [--requests N]
#
#   --quick       20,000 requests; writes bench/results/ only
#   --requests N  requests per run (default 100000)
#
# On 2 cores this measures overhead, not scale: every worker, the collector, Redis and the
# built-in server share the machine. The figures to read are CPU per request — of the workers
# (all of them together), of the collector, of the submitter, and of redis-server itself (from
# its own INFO cpu) — and Redis round trips per request (counted by each process and printed in
# its summary). Raw runs go to bench/results/scaleout.tsv, the table to bench/results/scaleout.md
# and (full runs) to BENCHMARKS.md.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
REQUESTS=100000
CONCURRENCY=64
COMMAND_LINE="bench/scaleout.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 REQUESTS=20000 ;;
    --requests) REQUESTS=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

ensure_basics
command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]] || ensure_debs redis-server
build_outofsync
raise_fd_limit
mkdir -p "$RESULTS"
TSV="$RESULTS/scaleout.tsv"
printf 'run\tworkers\trequests\trecords\twall_s\tworker_cpu_s\tcollector_cpu_s\tsubmit_cpu_s\tredis_cpu_s\tround_trips\tredis_commands\n' >"$TSV"

# shellcheck disable=SC2119 # serve takes its defaults here: one worker per core
serve_start
INPUT="$SCRATCH/urls.txt"
seq 0 $((REQUESTS - 1)) | sed "s|^|http://127.0.0.1:$SERVE_PORT/json?id=|" >"$INPUT"

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$SCRATCH" \
  >"$SCRATCH/redis.log" 2>&1 &
REDIS_PID=$!
STARTED_PIDS+=("$REDIS_PID")
REDIS="redis://127.0.0.1:$REDIS_PORT"
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
log "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (pid $REDIS_PID) on 127.0.0.1:$REDIS_PORT"

# CPU seconds (user + sys) redis-server has used so far, by its own account.
redis_cpu() {
  redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.3f", s }'
}

# Runs a command in the background under GNU time: user + sys seconds go to FILE.
timed() {
  local file=$1
  shift
  "$TIME" -f '%U %S' -o "$file" "$@" &
}

# Commands redis-server has run since the last CONFIG RESETSTAT, those inside scripts included.
redis_commands() {
  redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}

cpu_of() { awk '{ s += $1 + $2 } END { printf "%.3f", s }' "$@"; }
# The round trips a process printed in its summary ("… N Redis round trips").
trips_of() { grep -ho '[0-9]* Redis round trips' "$@" | awk '{ s += $1 } END { print s + 0 }'; }

log "fetch alone: $REQUESTS requests, -c $CONCURRENCY"
start=$(date +%s.%N)
"$TIME" -f '%U %S' -o "$SCRATCH/fetch.time" "$OUTOFSYNC" fetch -q -c "$CONCURRENCY" -o "$SCRATCH/fetch.jsonl" "$INPUT"
wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
records=$(wc -l <"$SCRATCH/fetch.jsonl")
printf 'fetch\t0\t%s\t%s\t%s\t%s\t0\t0\t0\t0\t0\n' "$REQUESTS" "$records" "$wall" "$(cpu_of "$SCRATCH/fetch.time")" >>"$TSV"

for workers in 1 2 4; do
  job="bench-$workers-$$"
  dir="$SCRATCH/$job"
  mkdir -p "$dir"
  log "$workers worker(s) through Redis: $REQUESTS requests, -c $CONCURRENCY each"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
  redis_before=$(redis_cpu)
  start=$(date +%s.%N)
  "$TIME" -f '%U %S' -o "$dir/submit.time" "$OUTOFSYNC" submit --redis "$REDIS" --job "$job" \
    -c "$CONCURRENCY" "$INPUT" 2>"$dir/submit.err"
  pids=()
  timed "$dir/collect.time" "$OUTOFSYNC" collect --redis "$REDIS" --job "$job" -o "$dir/out.jsonl" 2>"$dir/collect.err"
  pids+=($!)
  for n in $(seq "$workers"); do
    timed "$dir/worker-$n.time" "$OUTOFSYNC" worker --redis "$REDIS" --job "$job" 2>"$dir/worker-$n.err"
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "a process of $job failed: $(cat "$dir"/*.err)"; done
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
  redis_used=$(awk -v a="$redis_before" -v b="$(redis_cpu)" 'BEGIN { printf "%.3f", b - a }')
  records=$(wc -l <"$dir/out.jsonl")
  [[ $records == "$REQUESTS" ]] || die "$job: $records records for $REQUESTS requests"
  trips=$(trips_of "$dir"/*.err)
  printf 'redis\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workers" "$REQUESTS" "$records" "$wall" \
    "$(cpu_of "$dir"/worker-*.time)" "$(cpu_of "$dir/collect.time")" "$(cpu_of "$dir/submit.time")" \
    "$redis_used" "$trips" "$(redis_commands)" >>"$TSV"
done

REPORT="$RESULTS/scaleout.md"
{
  echo "## Through Redis: \`fetch\` alone against 1, 2 and 4 workers (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: outofsync $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null); redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'). $(date -u +%Y-%m-%d)."
  echo "- $REQUESTS requests of \`outofsync serve\`'s \`/json\`, -c $CONCURRENCY in \`fetch\` and in each worker;"
  echo "  \`submit\` then \`collect\` and the workers started together. Everything shares the 2 cores: this"
  echo "  measures the cost of the queue, not scale. CPU is user + system time of each process (GNU time);"
  echo "  redis-server's from its own \`INFO cpu\`; round trips are counted by each process."
  echo
  python3 - "$TSV" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
fetch = next(r for r in rows if r["run"] == "fetch")
n = int(fetch["requests"])
us = lambda s: float(s) * 1e6 / n
base = us(fetch["worker_cpu_s"])
print("| run | wall s | req/s | workers' CPU µs/req | × fetch | collector µs/req | submit µs/req | redis-server µs/req | round trips/req | Redis commands/req |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
print(f"| `fetch` alone | {float(fetch['wall_s']):.2f} | {n / float(fetch['wall_s']):,.0f} | {base:.1f} | 1.00× | – | – | – | – | – |")
for r in rows:
    if r["run"] != "redis":
        continue
    w = us(r["worker_cpu_s"])
    print(f"| {r['workers']} worker{'s' if r['workers'] != '1' else ''} | {float(r['wall_s']):.2f} | {n / float(r['wall_s']):,.0f} | {w:.1f} | {w / base:.2f}× "
          f"| {us(r['collector_cpu_s']):.1f} | {us(r['submit_cpu_s']):.1f} | {us(r['redis_cpu_s']):.1f} | {int(r['round_trips']) / n:.4f} "
          f"| {int(r['redis_commands']) / n:.2f} |")
PY
} >"$REPORT"

cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report scaleout "$REPORT"
  log "wrote the scale-out section of BENCHMARKS.md"
fi

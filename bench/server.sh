#!/usr/bin/env bash
# Is the built-in server ever the bottleneck? `outofsync serve` against nginx, one core each.
#
# Usage: bench/server.sh [--quick] [--rounds N] [--seconds S]
#
#   --quick      one round of 2 s, for iterating; writes bench/results/ only
#   --rounds N   rounds, alternating the two servers (default 3; figures are medians)
#   --seconds S  length of each wrk run (default 10)
#
# Both servers are pinned to core 0 (`taskset -c 0`): `outofsync serve --threads 1` (one
# current-thread runtime) serving /json, and nginx with one worker serving the very bytes that
# /json returns, as a static file. wrk (`-t1 -c64`) is pinned to core 1 and asks one server at a
# time. Raw runs go to bench/results/server.tsv, the table to bench/results/server.md and (full
# runs) to BENCHMARKS.md.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
ROUNDS=3
SECONDS_EACH=10
COMMAND_LINE="bench/server.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ROUNDS=1 SECONDS_EACH=2 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECONDS_EACH=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

(($(nproc) >= 2)) || die "pinning the servers and wrk to different cores needs 2 cores"
ensure_basics
ensure_debs nginx libnginx-mod-http-echo wrk
build_outofsync

mkdir -p "$RESULTS"
RESULTS_TSV="$RESULTS/server.tsv"
: >"$RESULTS_TSV"

SERVE_PREFIX="taskset -c 0" serve_start --threads 1
SERVE_URL="http://127.0.0.1:$SERVE_PORT/json"
WWW="$SCRATCH/www"
mkdir -p "$WWW"
curl -sf -o "$WWW/data.json" "$SERVE_URL"
nginx_start "$WWW" taskset -c 0
NGINX_URL="http://127.0.0.1:$NGINX_PORT/data.json"

# Runs wrk against one server and records its count (requests/s = count over wall time).
run_wrk() {
  local server=$1 url=$2 round=$3 requests bad
  measure taskset -c 1 wrk -t1 -c64 -d "${SECONDS_EACH}s" "$url"
  [[ $M_RC == 0 ]] || die "wrk failed: $(cat "$M_ERR")"
  requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$M_OUT")
  bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$M_OUT")
  record_row server "$server" "$round" "$requests" "$((requests - ${bad:-0}))"
}

log "server: wrk -t1 -c64 -d ${SECONDS_EACH}s, $ROUNDS round(s)"
for round in $(seq "$ROUNDS"); do
  run_wrk outofsync "$SERVE_URL" "$round"
  run_wrk nginx "$NGINX_URL" "$round"
done

response_size() { curl -s -i "$1" | wc -c; }
REPORT="$RESULTS/server.md"
{
  echo "## The built-in server against nginx, one core each (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: $(versions_line)."
  echo "- Servers pinned to core 0: \`outofsync serve --threads 1\` (\`/json\`) and nginx, 1 worker (a static file"
  echo "  holding the same $(wc -c <"$WWW/data.json") bytes). Responses with headers: outofsync $(response_size "$SERVE_URL") B, nginx"
  echo "  $(response_size "$NGINX_URL") B. Load: \`taskset -c 1 wrk -t1 -c64 -d ${SECONDS_EACH}s\`, one server at a time, $ROUNDS alternating"
  echo "  round(s), median; req/s is wrk's count over its wall time. $(date -u +%Y-%m-%d)."
  echo
  python3 "$BENCH_DIR/lib/report.py" server "$RESULTS_TSV" server
} >"$REPORT"

cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report server "$REPORT"
  log "wrote the server section of BENCHMARKS.md"
fi

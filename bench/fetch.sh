#!/usr/bin/env bash
# `outofsync fetch` next to oha on the built-in server: 100,000 requests of /json, 64 in flight.
#
# Usage: bench/fetch.sh [--quick] [--rounds N] [--requests N]
#
#   --quick       20,000 requests, one round; writes bench/results/ only
#   --rounds N    rounds, alternating the two clients (default 3; figures are medians)
#   --requests N  requests per run (default 100000)
#
# `outofsync serve` (one worker per core) and the client share the machine; nothing is pinned.
# outofsync writes every record, body included, to a file; oha discards the bodies. Raw runs go
# to bench/results/fetch.tsv, the table to bench/results/fetch.md and (full runs) to
# BENCHMARKS.md. Peak RSS against input size is measured by bench/peers.sh.
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/clients.sh"

QUICK=0
ROUNDS=3
REQUESTS=100000
CONCURRENCY=64
COMMAND_LINE="bench/fetch.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ROUNDS=1 REQUESTS=20000 ;;
    --rounds) ROUNDS=$2; shift ;;
    --requests) REQUESTS=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

ensure_basics
ensure_oha
build_outofsync

mkdir -p "$RESULTS"
RESULTS_TSV="$RESULTS/fetch.tsv"
: >"$RESULTS_TSV"
# shellcheck disable=SC2119 # serve takes its defaults here: one worker per core
serve_start
URL="http://127.0.0.1:$SERVE_PORT/json"

run_scenario builtin "$URL" "$REQUESTS" "$CONCURRENCY" outofsync oha

REPORT="$RESULTS/fetch.md"
{
  echo "## \`outofsync fetch\` and oha on the built-in server (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: $(versions_line)."
  echo "- $REQUESTS requests of \`outofsync serve\`'s \`/json\` ($(curl -s "$URL" | wc -c) B), $CONCURRENCY in flight:"
  echo "  \`outofsync fetch URLS -c $CONCURRENCY -o records.jsonl\` (records with bodies) and"
  echo "  \`oha -n $REQUESTS -c $CONCURRENCY --no-tui\`. Server and client share the machine; $ROUNDS alternating"
  echo "  round(s), median. $(date -u +%Y-%m-%d)."
  echo
  python3 "$BENCH_DIR/lib/report.py" table "$RESULTS_TSV" builtin
} >"$REPORT"

cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report fetch "$REPORT"
  log "wrote the fetch section of BENCHMARKS.md"
fi

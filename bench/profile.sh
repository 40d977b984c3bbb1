#!/usr/bin/env bash
# Where `outofsync fetch` spends its CPU (small or big JSON) or its memory (requests in flight).
#
# Usage: bench/profile.sh [--quick] [--big | --h2 | --inflight N] [--requests N] [--body MODE]
#
#   --quick       fewer requests (for iterating); writes bench/results/ only
#   --big         profile the big-JSON case (/big.json, 64 KiB) instead of the small one
#   --h2          the small case over TLS and HTTP/2 (peers.sh's https-h2: nginx `ssl http2`, a
#                 test CA; oha as there, one connection with 64 streams)
#   --inflight N  instead of CPU, profile memory: N requests of /slow, all N in flight, under
#                 `valgrind --tool=massif`; the heap at its peak by allocation site
#   --requests N  requests for the perf profile (default 50000, 10000 with --big; callgrind
#                 gets a tenth)
#   --body MODE   passed to `outofsync fetch --body` (default auto), to see what the body costs
#
# Against the neutral nginx of bench/peers.sh (64 in flight, records written to a file):
#
#   perf       `perf record -e cpu-clock` samples the whole process, kernel included: the share
#              of time in system calls and the network stack shows up next to user code. (This
#              machine's perf has no hardware counters when `perf stat -e instructions` fails;
#              cpu-clock is a timer and works everywhere.)
#   callgrind  `valgrind --tool=callgrind` counts user-space instructions exactly (threads run
#              one at a time under valgrind, so it says nothing about time or the kernel); oha
#              runs the same requests under it too, for instructions per request side by side.
#
# Each profile is summed by function and by crate. The report goes to
# bench/results/profile-data.md (profile-big.md with --big) and, for full runs, to BENCHMARKS.md;
# the raw profiles stay in bench/results/ for `perf report -i bench/results/profile-data.perf.data`
# and `callgrind_annotate bench/results/profile-data.callgrind.out`.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
REQUESTS=
DOC=data.json
H2=0
INFLIGHT=
BODY=auto
COMMAND_LINE="bench/profile.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --big) DOC=big.json ;;
    --h2) H2=1 ;;
    --inflight) INFLIGHT=$2; shift ;;
    --requests) REQUESTS=$2; shift ;;
    --body) BODY=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
if [[ -z $REQUESTS ]]; then
  if [[ $DOC == big.json ]]; then REQUESTS=10000; else REQUESTS=50000; fi
  if [[ $QUICK == 1 ]]; then REQUESTS=$((REQUESTS / 5)); fi
fi
CALLGRIND_REQUESTS=$((REQUESTS / 10))
SECTION="profile-${DOC%.json}"
if [[ $H2 == 1 ]]; then SECTION=profile-h2; fi

ensure_basics
ensure_debs nginx libnginx-mod-http-echo linux-perf valgrind
ensure_oha
build_outofsync
mkdir -p "$RESULTS"

WWW="$SCRATCH/www"
mkdir -p "$WWW"
python3 "$BENCH_DIR/lib/docs.py" "$WWW"
raise_fd_limit
if [[ $H2 == 1 ]]; then tls_cert; fi
nginx_start "$WWW"

if [[ -n $INFLIGHT ]]; then
  SECTION=profile-inflight
  URL="http://127.0.0.1:$NGINX_PORT/slow"
  python3 "$BENCH_DIR/lib/docs.py" urls "$SCRATCH/urls.txt" "$URL" "$INFLIGHT"
  log "massif: $INFLIGHT requests of /slow, all in flight"
  MASSIF_OUT="$RESULTS/$SECTION.massif.out"
  valgrind --tool=massif --threshold=0.5 --massif-out-file="$MASSIF_OUT" "$OUTOFSYNC" fetch -c "$INFLIGHT" \
    --no-progress -q -o "$SCRATCH/records.jsonl" "$SCRATCH/urls.txt" 2>"$SCRATCH/massif.err" ||
    die "massif failed: $(tail -n 5 "$SCRATCH/massif.err")"
  REPORT="$RESULTS/$SECTION.md"
  {
    echo "## Memory of \`outofsync fetch\` with $INFLIGHT requests in flight (\`$COMMAND_LINE\`)"
    echo
    echo "- Machine: $(machine_line)."
    echo "- Versions: $(versions_line)."
    echo "- \`outofsync fetch URLS -c $INFLIGHT -o records.jsonl\` against nginx \`/slow\` (answers after 1 s) under"
    echo "  \`valgrind --tool=massif\`. Heap only: stacks, and pages allocated but never touched, are not"
    echo "  resident, so peak RSS can be lower than the heap. Raw: \`bench/results/$SECTION.massif.out\`"
    echo "  (\`ms_print\` reads it). $(date -u +%Y-%m-%d)."
    echo
    python3 "$BENCH_DIR/lib/profile_summary.py" massif "$MASSIF_OUT" "$INFLIGHT"
  } >"$REPORT"
  cat "$REPORT"
  if [[ $QUICK == 0 ]]; then splice_report "$SECTION" "$REPORT"; fi
  exit 0
fi
URL="http://127.0.0.1:$NGINX_PORT/$DOC"
FETCH=(fetch -c 64 --body "$BODY" --no-progress -q -o "$SCRATCH/records.jsonl" --overwrite)
OHA_ARGS=(-c 64)
if [[ $H2 == 1 ]]; then
  URL="https://localhost:$NGINX_TLS_PORT/$DOC"
  FETCH+=(--cacert "$TLS_CA" --resolve "localhost:$NGINX_TLS_PORT:127.0.0.1")
  OHA_ARGS=(-c 1 -p 64 --http2 --cacert "$TLS_CA" --ipv4)
fi
python3 "$BENCH_DIR/lib/docs.py" urls "$SCRATCH/urls.txt" "$URL" "$REQUESTS"
python3 "$BENCH_DIR/lib/docs.py" urls "$SCRATCH/urls-callgrind-$CALLGRIND_REQUESTS.txt" "$URL" "$CALLGRIND_REQUESTS"

log "perf: $REQUESTS requests"
PERF_DATA="$RESULTS/$SECTION.perf.data"
perf record -q -e cpu-clock -F 4999 -g -o "$PERF_DATA" -- "$OUTOFSYNC" "${FETCH[@]}" "$SCRATCH/urls.txt" 2>"$SCRATCH/perf.err" ||
  die "perf record failed: $(cat "$SCRATCH/perf.err")"
perf report -i "$PERF_DATA" --stdio --no-children --sort dso,sym -g none --percent-limit 0 2>/dev/null >"$RESULTS/$SECTION.perf.txt"
perf report -i "$PERF_DATA" --stdio --no-children --sort comm -g none 2>/dev/null >"$RESULTS/$SECTION.perf-threads.txt"

log "callgrind: $CALLGRIND_REQUESTS requests"
CALLGRIND_OUT="$RESULTS/$SECTION.callgrind.out"
rm -f "$SCRATCH/records.jsonl"
valgrind --tool=callgrind --callgrind-out-file="$CALLGRIND_OUT" \
  "$OUTOFSYNC" "${FETCH[@]}" "$SCRATCH/urls-callgrind-$CALLGRIND_REQUESTS.txt" 2>"$SCRATCH/callgrind.err" ||
  die "callgrind failed: $(tail -n 5 "$SCRATCH/callgrind.err")"
callgrind_annotate --tree=caller --threshold=100 "$CALLGRIND_OUT" 2>/dev/null >"$RESULTS/$SECTION.callgrind.txt"
# One request alone measures the start-up and the end, to take them out of the per-request figure.
python3 "$BENCH_DIR/lib/docs.py" urls "$SCRATCH/urls-1.txt" "$URL" 1
valgrind --tool=callgrind --callgrind-out-file="$SCRATCH/callgrind-1.out" \
  "$OUTOFSYNC" "${FETCH[@]}" "$SCRATCH/urls-1.txt" 2>/dev/null || die "callgrind (one request) failed"
total_ir() { callgrind_annotate "$1" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) (100.0%) *PROGRAM TOTALS.*/\1/p' | tr -d ,; }
STARTUP_IR=$(total_ir "$SCRATCH/callgrind-1.out")
OUTOFSYNC_IR=$(total_ir "$CALLGRIND_OUT")

# The same requests through oha: instructions per request do not depend on the machine's load,
# so their ratio is the steadiest comparison there is (user space only, kernel left out).
log "callgrind: oha, $CALLGRIND_REQUESTS requests and one"
oha_ir() {
  valgrind --tool=callgrind --callgrind-out-file="$SCRATCH/oha-$1.out" "$OHA" -n "$1" "${OHA_ARGS[@]}" --no-tui "$URL" \
    >/dev/null 2>&1 || die "callgrind of oha failed"
  total_ir "$SCRATCH/oha-$1.out"
}
OHA_IR=$(oha_ir "$CALLGRIND_REQUESTS")
OHA_STARTUP_IR=$(oha_ir 1)

REPORT="$RESULTS/$SECTION.md"
{
  echo "## Profile of \`outofsync fetch\`, \`/$DOC\` ($(wc -c <"$WWW/$DOC") B) (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: $(versions_line)."
  TLS_FLAGS=""
  if [[ $H2 == 1 ]]; then TLS_FLAGS=" --cacert ca.pem --resolve localhost:PORT:127.0.0.1"; fi
  echo "- \`outofsync fetch URLS -c 64 --body $BODY$TLS_FLAGS -o records.jsonl\` against nginx \`$URL\`: $REQUESTS requests under"
  echo "  \`perf record -e cpu-clock -F 4999 -g\`, $CALLGRIND_REQUESTS under \`valgrind --tool=callgrind\`. $(date -u +%Y-%m-%d)."
  echo "  Raw profiles: \`bench/results/$SECTION.perf.data\`, \`bench/results/$SECTION.callgrind.out\` (not committed)."
  echo
  python3 "$BENCH_DIR/lib/profile_summary.py" compare "$CALLGRIND_REQUESTS" \
    "outofsync fetch" "$OUTOFSYNC_IR" "$STARTUP_IR" oha "$OHA_IR" "$OHA_STARTUP_IR"
  echo
  python3 "$BENCH_DIR/lib/profile_summary.py" perf "$RESULTS/$SECTION.perf.txt" "$RESULTS/$SECTION.perf-threads.txt"
  echo
  python3 "$BENCH_DIR/lib/profile_summary.py" callgrind "$RESULTS/$SECTION.callgrind.txt" "$CALLGRIND_REQUESTS" "$STARTUP_IR"
} >"$REPORT"

cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report "$SECTION" "$REPORT"
  log "wrote the $SECTION section of BENCHMARKS.md"
fi

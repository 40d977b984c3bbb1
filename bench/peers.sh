#!/usr/bin/env bash
# outofsync side by side with its peers, on one neutral nginx on 127.0.0.1.
#
# Usage: bench/peers.sh [--quick] [--rounds N] [--only SCENARIO,...]
#
#   --quick      small counts and one round, for iterating; writes bench/results/ only
#   --rounds N   rounds of alternating runs (default 3; every figure is the median)
#   --only LIST  only these scenarios (comma-separated names from the list below); writes
#                bench/results/ only
#
# Installs what is missing (Debian: nginx, wrk, the nginx echo module; oha with cargo into
# bench/.tools; aiohttp and requests into a virtualenv in bench/.tools), builds outofsync in
# release mode, starts nginx with one worker (keep-alive) serving /data.json (~300 B),
# /big.json (~64 KiB) and /slow (answers after 1 s), then runs each client against it:
#
#   small     30,000 requests of /data.json, 64 in flight
#   https-h2  the same over TLS and HTTP/2 (https://localhost, a test CA made for the run and
#             trusted by every client; aiohttp speaks HTTP/1.1 only)
#   big       10,000 requests of /big.json, 64 in flight (outofsync validates each body as JSON;
#             also outofsync --body none, and dd writing as many bodies' bytes to a file)
#   slow      10,000 requests of /slow, all 10,000 in flight: wall time and peak RSS; beside the
#             peers, bench/hyper-floor: hyper's HTTP/1 client alone, the least a client on hyper holds
#   inputs    outofsync alone, 10,000 vs 1,000,000 input lines: is peak RSS flat in input size?
#
# (--quick: 5,000 (small and https-h2), 2,000, 2,000, and 10,000 vs 100,000.)
#
# outofsync writes every record, body included, to a file; oha and wrk discard bodies; curl
# writes them to /dev/null; the Python clients parse each body with .json(). wrk runs for a
# fixed time, so its figures are per request. Raw runs go to bench/results/peers.tsv, the
# tables to bench/results/peers.md and (full runs) to BENCHMARKS.md.
source "$(dirname "$0")/lib/common.sh"
source "$BENCH_DIR/lib/clients.sh"

QUICK=0
ROUNDS=3
ROUNDS_GIVEN=0
ONLY=
COMMAND_LINE="bench/peers.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2 ROUNDS_GIVEN=1; shift ;;
    --only) ONLY=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

CONCURRENCY=64
if [[ $QUICK == 1 ]]; then
  N_SMALL=5000 N_BIG=2000 N_SLOW=2000 WRK_SECONDS=2 INPUT_LINES=(10000 100000)
  if [[ $ROUNDS_GIVEN == 0 ]]; then ROUNDS=1; fi
else
  N_SMALL=30000 N_BIG=10000 N_SLOW=10000 WRK_SECONDS=5 INPUT_LINES=(10000 1000000)
fi

ensure_basics
ensure_debs nginx libnginx-mod-http-echo wrk
ensure_oha
ensure_python_clients
build_outofsync
wanted slow && build_hyper_floor
raise_fd_limit
log "descriptors: ulimit -n $(ulimit -n)"
if (($(ulimit -n) < N_SLOW + 100)); then
  log "warning: $N_SLOW requests in flight need more descriptors than the hard limit allows;"
  log "  clients will fail requests in the /slow test (raise the hard limit: ulimit -Hn, limits.conf)"
fi

mkdir -p "$RESULTS"
RESULTS_TSV="$RESULTS/peers.tsv"
: >"$RESULTS_TSV"
WWW="$SCRATCH/www"
mkdir -p "$WWW"
python3 "$BENCH_DIR/lib/docs.py" "$WWW"
tls_cert
nginx_start "$WWW"
BASE="http://127.0.0.1:$NGINX_PORT"
TLS_BASE="https://localhost:$NGINX_TLS_PORT"

# Whether a scenario is to run (all of them unless --only names some).
wanted() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }

wanted small && run_scenario small "$BASE/data.json" "$N_SMALL" "$CONCURRENCY" outofsync oha wrk curl aiohttp threads
# wrk has no HTTP/2; Python's requests none either, and aiohttp stands for Python.
wanted https-h2 && run_scenario https-h2 "$TLS_BASE/data.json" "$N_SMALL" "$CONCURRENCY" outofsync oha curl aiohttp
wanted big && run_scenario big "$BASE/big.json" "$N_BIG" "$CONCURRENCY" outofsync outofsync-no-body write-only oha wrk curl aiohttp \
  threads
# curl caps --parallel-max at 300 and wrk keeps its connections busy for a fixed time, so
# neither can run "N requests, all in flight at once".
wanted slow && run_scenario slow "$BASE/slow" "$N_SLOW" "$N_SLOW" outofsync hyper-floor oha aiohttp threads
log "inputs: outofsync, ${INPUT_LINES[*]} lines of $BASE/data.json"
for lines in "${INPUT_LINES[@]}"; do
  wanted inputs || break
  run_client inputs outofsync "$BASE/data.json" "$lines" "$CONCURRENCY" 1
done

REPORT="$RESULTS/peers.md"
{
  echo "## Side by side with peers (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- Versions: $(versions_line)."
  echo "- Server: nginx, 1 worker, keep-alive, on 127.0.0.1 (\`bench/lib/nginx.conf\`); clients and server"
  echo "  share the machine, nothing is pinned. Median of $ROUNDS alternating round(s); $(date -u +%Y-%m-%d)."
  echo "- CPU µs/req: user + system time of the client process over its successful requests;"
  echo "  req/s: successful requests over the process's wall time, start-up included."
  echo
  echo "### Targets"
  echo
  python3 "$BENCH_DIR/lib/report.py" targets "$RESULTS_TSV"
  echo
  echo "### Small JSON (\`/data.json\`, $(wc -c <"$WWW/data.json") B): $N_SMALL requests, $CONCURRENCY in flight"
  echo
  echo "outofsync: \`outofsync fetch URLS -c $CONCURRENCY -o records.jsonl\` (every record written with its body);"
  echo "oha: \`oha -n $N_SMALL -c $CONCURRENCY --no-tui\`; wrk: \`wrk -t2 -c $CONCURRENCY -d ${WRK_SECONDS}s\` (its own count);"
  echo "curl: \`curl -Z --parallel-max $CONCURRENCY\`; the Python clients are in \`bench/clients/\`."
  echo
  python3 "$BENCH_DIR/lib/report.py" table "$RESULTS_TSV" small
  echo
  echo "### Small JSON over HTTPS and HTTP/2 (\`https://localhost/data.json\`): $N_SMALL requests, $CONCURRENCY in flight"
  echo
  echo "nginx serves the same file on a second listener, \`ssl http2\` (TLS 1.2–1.3, a shared session cache),"
  echo "with an ECDSA P-256 certificate for \`localhost\` from a CA made for the run; every client verifies"
  echo "it through that CA's file. outofsync and curl multiplex their 64 requests on one connection, as the"
  echo "server's 128 streams per connection allow, and oha is told to do the same."
  echo
  echo "outofsync: \`outofsync fetch URLS -c $CONCURRENCY --cacert ca.pem --resolve localhost:PORT:127.0.0.1 -o records.jsonl\`"
  echo "(a record counts if it says \`\"status\":200,\"http\":\"2\"\`); oha: \`oha -n $N_SMALL -c 1 -p $CONCURRENCY --http2 --cacert ca.pem --ipv4 --no-tui\`"
  echo "(one connection, $CONCURRENCY streams; it offers only h2 in ALPN); curl: \`curl -Z --parallel-max $CONCURRENCY --http2 --cacert ca.pem\`"
  echo "(a transfer counts if \`%{http_code} %{http_version}\` is \`200 2\`); aiohttp: the snippet with an \`ssl.SSLContext\`"
  echo "of the CA file, over HTTP/1.1 (aiohttp has no HTTP/2): $CONCURRENCY connections, a handshake each. outofsync"
  echo "and curl use ring and OpenSSL for TLS, oha rustls with aws-lc-rs."
  echo
  python3 "$BENCH_DIR/lib/report.py" table "$RESULTS_TSV" https-h2
  echo
  echo "### Big JSON (\`/big.json\`, $(wc -c <"$WWW/big.json") B): $N_BIG requests, $CONCURRENCY in flight"
  echo
  echo "outofsync validates every body as JSON and writes it into its record. Two more rows take that"
  echo "cost apart: outofsync with \`--body none\` (the request without the body's work), and \`dd\` writing"
  echo "the same number of bodies' bytes to a file with no HTTP at all (the least the records cost)."
  echo
  python3 "$BENCH_DIR/lib/report.py" table "$RESULTS_TSV" big
  echo
  echo "### $N_SLOW requests, all $N_SLOW in flight, on \`/slow\` (answers after 1 s)"
  echo
  echo "Clients are told to keep $N_SLOW in flight (\`-c $N_SLOW\`, a semaphore of $N_SLOW, a pool of $N_SLOW"
  echo "threads). The ideal wall time is 1 s. \`ulimit -n\` was $(ulimit -n); the kernel caps nginx's listen"
  echo "backlog at net.core.somaxconn = $(cat /proc/sys/net/core/somaxconn 2>/dev/null || echo '?')."
  echo
  python3 "$BENCH_DIR/lib/report.py" inflight "$RESULTS_TSV" slow
  echo
  echo "### Peak RSS against input size (outofsync, \`/data.json\`, $CONCURRENCY in flight, one run each)"
  echo
  python3 "$BENCH_DIR/lib/report.py" inputs "$RESULTS_TSV" inputs
} >"$REPORT"

cat "$REPORT"
if [[ $QUICK == 0 && -z $ONLY ]]; then
  splice_report peers "$REPORT"
  log "wrote the peers section of BENCHMARKS.md"
fi

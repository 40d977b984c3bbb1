# shellcheck shell=bash disable=SC2034 # what this file sets, the scripts that source it read
# Shared by the bench/ scripts (sourced, not run): paths, peer installation, the neutral nginx,
# measuring one client run, and cleaning up whatever a script started.
#
# Every server a script starts listens on 127.0.0.1 and is remembered by PID; the EXIT trap
# stops exactly those PIDs and removes the scratch directory, however the script ends.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)
TOOLS="$BENCH_DIR/.tools"
RESULTS="$BENCH_DIR/results"
# OUTOFSYNC_BIN runs a binary already built (no release build first).
OUTOFSYNC="${OUTOFSYNC_BIN:-${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/outofsync}"
HYPER_FLOOR="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/hyper-floor"
OHA="$TOOLS/bin/oha"
OHA_VERSION=1.16.0
VENV="$TOOLS/venv"
PYTHON="$VENV/bin/python"
TIME=/usr/bin/time

STARTED_PIDS=()
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/outofsync-bench.XXXXXX")
# nginx's worker (user nobody when started as root) must read the documents served from here.
chmod 755 "$SCRATCH"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do stop_pid "$pid"; done
  rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process this script started: TERM, up to 10 s to exit, then KILL.
stop_pid() {
  local pid=$1 _
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}


# 10,000 connections in flight need as many descriptors as the hard limit allows.
raise_fd_limit() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are missing (one `apt-get update` at most).
ensure_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [[ ${#missing[@]} == 0 ]] && return 0
  log "installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What every script uses: GNU time for peak RSS, curl, procps (pgrep, for nginx's workers), and
# Python for the reports.
ensure_basics() {
  ensure_debs time curl procps
  command -v python3 >/dev/null || ensure_debs python3
}

# oha goes into bench/.tools (git-ignored), built once (it takes minutes) and reused.
ensure_oha() {
  if [[ -x $OHA ]] && "$OHA" --version 2>/dev/null | grep -q "$OHA_VERSION"; then return 0; fi
  log "installing oha $OHA_VERSION into $TOOLS (cargo install; this takes a few minutes once)"
  cargo install oha --version "$OHA_VERSION" --locked --root "$TOOLS" --quiet
}

# aiohttp and requests go into a virtualenv in bench/.tools, not into the system's Python.
ensure_python_clients() {
  if [[ -x $PYTHON ]] && "$PYTHON" -c 'import aiohttp, requests' 2>/dev/null; then return 0; fi
  log "installing aiohttp and requests into $VENV (pip)"
  # Debian's own python3 leaves venv's pip bootstrap to a separate package.
  python3 -c 'import ensurepip, venv' 2>/dev/null || ensure_debs python3-venv
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check aiohttp requests
}

build_outofsync() {
  [[ -n ${OUTOFSYNC_BIN:-} ]] && return 0
  log "building outofsync (cargo build --release)"
  (cd "$ROOT_DIR" && cargo build --release --quiet)
}

# bench/hyper-floor, the least a client on hyper holds (peers.sh's /slow scenario); a default
# member, so build_outofsync built it already unless OUTOFSYNC_BIN names another build.
build_hyper_floor() {
  [[ -x $HYPER_FLOOR && -n ${OUTOFSYNC_BIN:-} ]] && return 0
  (cd "$ROOT_DIR" && cargo build --release --quiet -p hyper-floor)
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until URL answers 200, for up to 10 s. Any more arguments go to curl.
wait_http() {
  local url=$1 _
  shift
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$@" "$url" && return 0
    sleep 0.1
  done
  die "$url did not answer within 10 s"
}

# Makes a test CA and a certificate for `localhost` signed by it, valid for two days, in the
# scratch directory (so they go when the script ends); sets TLS_CA (the CA's certificate, what
# clients are told to trust), TLS_CERT and TLS_KEY (the server's). ECDSA P-256, as certbot makes
# by default. nginx_start serves HTTPS too once they exist.
tls_cert() {
  local dir="$SCRATCH/tls"
  mkdir -p "$dir"
  TLS_CA="$dir/ca.pem" TLS_CERT="$dir/localhost.pem" TLS_KEY="$dir/localhost.key"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  # `req -x509` marks the certificate as a CA (basicConstraints CA:TRUE) by default.
  openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$TLS_CA" -days 2 \
    -subj "/CN=outofsync bench CA" 2>"$dir/openssl.err" || die "openssl: $(cat "$dir/openssl.err")"
  openssl req "${ec[@]}" -keyout "$TLS_KEY" -out "$dir/localhost.csr" -subj "/CN=localhost" \
    2>"$dir/openssl.err" || die "openssl: $(cat "$dir/openssl.err")"
  printf '%s\n' "subjectAltName = DNS:localhost" "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" >"$dir/leaf.ext"
  openssl x509 -req -in "$dir/localhost.csr" -CA "$TLS_CA" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/leaf.ext" -out "$TLS_CERT" 2>"$dir/openssl.err" ||
    die "openssl: $(cat "$dir/openssl.err")"
  openssl verify -CAfile "$TLS_CA" "$TLS_CERT" >/dev/null || die "the test certificate does not verify"
}

# Starts the neutral nginx on a free port, serving ROOT; sets NGINX_PID and NGINX_PORT. After
# tls_cert, it also serves ROOT over TLS and HTTP/2 on NGINX_TLS_PORT, as https://localhost.
# Any arguments come first on its command line (e.g. `taskset -c 0`).
nginx_start() {
  local root=$1
  shift
  local prefix="$SCRATCH/nginx"
  mkdir -p "$prefix"
  NGINX_PORT=$(free_port)
  local echo_module=/usr/lib/nginx/modules/ngx_http_echo_module.so
  [[ -f $echo_module ]] || die "the nginx echo module is missing ($echo_module)"
  local tls=(-e '/^ *# tls:begin$/,/^ *# tls:end$/d')
  if [[ -n ${TLS_CERT:-} ]]; then
    NGINX_TLS_PORT=$(free_port)
    tls=(-e "s|@TLS_PORT@|$NGINX_TLS_PORT|g" -e "s|@CERT@|$TLS_CERT|g" -e "s|@KEY@|$TLS_KEY|g")
  fi
  sed -e "s|@PREFIX@|$prefix|g" -e "s|@ROOT@|$root|g" -e "s|@PORT@|$NGINX_PORT|g" \
    -e "s|@ECHO@|load_module $echo_module;|" "${tls[@]}" "$BENCH_DIR/lib/nginx.conf" >"$prefix/nginx.conf"
  "$@" nginx -e "$prefix/error.log" -p "$prefix" -c "$prefix/nginx.conf" &
  NGINX_PID=$!
  STARTED_PIDS+=("$NGINX_PID")
  wait_http "http://127.0.0.1:$NGINX_PORT/data.json"
  if [[ -n ${TLS_CERT:-} ]]; then
    wait_http "https://localhost:$NGINX_TLS_PORT/data.json" --cacert "$TLS_CA" --http2
    log "nginx (pid $NGINX_PID) on 127.0.0.1:$NGINX_PORT, and https://localhost:$NGINX_TLS_PORT (HTTP/2)"
  else
    log "nginx (pid $NGINX_PID) on 127.0.0.1:$NGINX_PORT"
  fi
}

# Starts `outofsync serve` on a free port; sets SERVE_PID and SERVE_PORT.
# Arguments go to `serve`; set SERVE_PREFIX (e.g. "taskset -c 0") to wrap the command.
serve_start() {
  local out="$SCRATCH/serve.out"
  # shellcheck disable=SC2086 # SERVE_PREFIX is a command prefix, split on purpose.
  ${SERVE_PREFIX:-} "$OUTOFSYNC" serve --port 0 "$@" >"$out" 2>"$SCRATCH/serve.err" &
  SERVE_PID=$!
  STARTED_PIDS+=("$SERVE_PID")
  local _
  for _ in $(seq 100); do
    SERVE_PORT=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$out")
    [[ -n $SERVE_PORT ]] && break
    sleep 0.1
  done
  [[ -n $SERVE_PORT ]] || die "outofsync serve did not start: $(cat "$SCRATCH/serve.err")"
  wait_http "http://127.0.0.1:$SERVE_PORT/json"
  log "outofsync serve (pid $SERVE_PID) on 127.0.0.1:$SERVE_PORT"
}

# Runs a command; sets M_WALL (s), M_CPU (user+sys, s), M_RSS (KiB), M_RC, and leaves its stdout
# and stderr in M_OUT and M_ERR. The times come from bash's `time` to the millisecond (GNU time
# prints hundredths: 3 % of a 0.3 s run, the length of a small-JSON run of the fast clients); the
# peak RSS from GNU time, whose own start-up (about 1 ms of CPU) the times include for every
# client alike.
#
# While nginx runs (nginx_start), M_SERVER_CPU is the CPU time (s) its processes spent during the
# run, from the scheduler's nanosecond accounting (/proc/PID/schedstat): on a machine whose cores
# client and server share, what the server spent is what the client could not use.
measure() {
  local tf="$SCRATCH/time.txt" clock="$SCRATCH/clock.txt" TIMEFORMAT='%3R %3U %3S' server_before
  M_OUT="$SCRATCH/run.out"
  M_ERR="$SCRATCH/run.err"
  M_RC=0
  server_before=$(server_cpu_ns)
  { time "$TIME" -f '%M' -o "$tf" "$@" >"$M_OUT" 2>"$M_ERR"; } 2>"$clock" || M_RC=$?
  M_SERVER_CPU=$(awk -v a="$server_before" -v b="$(server_cpu_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  # time writes "Command exited with non-zero status N" first when the command fails.
  local wall user sys
  read -r wall user sys <"$clock"
  M_WALL=$wall
  M_CPU=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
  M_RSS=$(tail -n 1 "$tf")
}

# CPU time (ns) of nginx's processes so far, 0 when no nginx runs (or the kernel keeps no
# schedstat).
server_cpu_ns() {
  local pid total=0 ns
  [[ -n ${NGINX_PID:-} ]] || { echo 0; return; }
  for pid in "$NGINX_PID" $(pgrep -P "$NGINX_PID" || true); do
    read -r ns _ <"/proc/$pid/schedstat" 2>/dev/null || continue
    total=$((total + ns))
  done
  echo "$total"
}

# Appends one measurement to the results TSV named by RESULTS_TSV.
# Columns: scenario client round requests ok wall_s cpu_s rss_kib server_cpu_s
record_row() {
  local scenario=$1 client=$2 round=$3 requests=$4 ok=$5
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$client" "$round" "$requests" "$ok" \
    "$M_WALL" "$M_CPU" "$M_RSS" "${M_SERVER_CPU:-0}" >>"$RESULTS_TSV"
  log "  $scenario $client #$round: $ok/$requests ok, ${M_WALL}s wall, ${M_CPU}s cpu, $((M_RSS / 1024)) MiB"
}

# The machine, for the report: cores, CPU model, memory, kernel, load when the run began.
machine_line() {
  local cpu mem
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
  # shellcheck disable=SC2016 # the backquotes are markdown
  printf '%s cores (`nproc`), %s, %s RAM, Linux %s, load average %s at the start' \
    "$(nproc)" "${cpu:-unknown CPU}" "$mem" "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

# Versions of what was measured.
versions_line() {
  local parts=()
  parts+=("outofsync $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo '(not a git checkout)')")
  [[ -x $OHA ]] && parts+=("$("$OHA" --version)")
  command -v wrk >/dev/null && parts+=("wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null)")
  command -v nginx >/dev/null && parts+=("nginx $(nginx -v 2>&1 | sed 's|.*nginx/||')")
  parts+=("curl $(curl --version | head -n 1 | cut -d' ' -f2)")
  [[ -x $PYTHON ]] && parts+=("$("$PYTHON" -c 'import sys, aiohttp, requests; print(f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, requests {requests.__version__}")')")
  local IFS=';'
  printf '%s' "${parts[*]}" | sed 's/;/; /g'
}

# Replaces the section NAME of BENCHMARKS.md with the markdown in FILE.
splice_report() {
  python3 "$BENCH_DIR/lib/report.py" splice "$ROOT_DIR/BENCHMARKS.md" "$1" "$2"
}

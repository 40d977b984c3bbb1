# shellcheck shell=bash
# The clients the bench/ scripts measure, one way to run each (sourced after common.sh).
#
# run_client SCENARIO CLIENT URL N C ROUND runs one client once: N requests of URL with C in
# flight (wrk instead runs for WRK_SECONDS), and appends the measurement to RESULTS_TSV with
# the number of requests that succeeded, as the client itself proves it.
#
# An https URL is the https-h2 scenario's (https://localhost:PORT, after tls_cert): every client
# verifies nginx's certificate through the test CA in TLS_CA, reaches localhost at 127.0.0.1, and
# speaks HTTP/2 if it can (aiohttp speaks HTTP/1.1 only); a request counts as ok only when it
# was answered 200 over the protocol intended, as the client's own output shows.

# One input file per URL and size: the same URL on every line (named after the scheme and the
# file, as the scenarios differ in those).
url_file() {
  local url=$1 n=$2
  local file="$SCRATCH/urls-$n-${url%%:*}-${url##*/}.txt"
  [[ -f $file ]] || python3 "$BENCH_DIR/lib/docs.py" urls "$file" "$url" "$n"
  printf '%s' "$file"
}

# Runs CLIENT once: N requests of URL with C in flight; records the measurement.
run_client() {
  local scenario=$1 client=$2 url=$3 n=$4 c=$5 round=$6 ok=0 requests=$4
  case $client in
    outofsync)
      local input records="$SCRATCH/records.jsonl"
      input=$(url_file "$url" "$n")
      rm -f "$records"
      local tls=()
      if [[ $url == https://* ]]; then tls=(--cacert "$TLS_CA" --resolve "$(localhost_at "$url")"); fi
      measure "$OUTOFSYNC" fetch "$input" -c "$c" -o "$records" --no-progress -q \
        --summary-json "$SCRATCH/summary.json" "${tls[@]}"
      # Every request must have its record in the file, not only in the summary.
      if [[ -f $SCRATCH/summary.json && -f $records ]]; then
        ok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$SCRATCH/summary.json")
        local lines
        lines=$(wc -l <"$records")
        if ((lines < ok)); then ok=$lines; fi
        if [[ $url == https://* ]]; then
          # Only records of status 200 over HTTP/2 count; the first other one goes to the log whole.
          lines=$(python3 -c '
import json, sys
good, other = 0, None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("status") == 200 and r.get("http") == "2":
        good += 1
    elif other is None:
        other = line.strip()
if other:
    print("a record not 200 over HTTP/2:", other, file=sys.stderr)
print(good)' "$records")
          if ((lines < ok)); then ok=$lines; fi
        fi
      fi
      rm -f "$records" "$SCRATCH/summary.json"
      ;;
    outofsync-no-body)
      # The same run without the body's work: no JSON check, no body in the records.
      local input records="$SCRATCH/records.jsonl"
      input=$(url_file "$url" "$n")
      rm -f "$records"
      measure "$OUTOFSYNC" fetch "$input" -c "$c" -o "$records" --no-progress -q --body none
      ok=$(grep -c '"ok":true' "$records" || true)
      rm -f "$records"
      ;;
    write-only)
      # No HTTP at all: the kernel's price of writing N bodies' bytes to a file, in 64 KiB writes,
      # which is what outofsync's records of this scenario cost its writer at the least.
      local size
      size=$(curl -s "$url" | wc -c)
      measure dd if=/dev/zero of="$SCRATCH/write-only.bin" bs="$size" count="$n" status=none
      [[ $M_RC == 0 ]] && ok=$n
      rm -f "$SCRATCH/write-only.bin"
      ;;
    hyper-floor)
      # hyper's HTTP/1 client connection and nothing else: the least a client on hyper holds.
      measure "$HYPER_FLOOR" "$url" "$n" "$c"
      ok=$(tail -n 1 "$M_OUT")
      ;;
    oha)
      if [[ $url == https://* ]]; then
        # With --http2, -c is oha's number of connections and -p its streams on each: one
        # connection with C streams, as outofsync and curl multiplex them. oha offers only "h2"
        # in ALPN and speaks HTTP/2 alone, so its 200s were answered over HTTP/2.
        measure "$OHA" -n "$n" -c 1 -p "$c" --http2 --cacert "$TLS_CA" --ipv4 --no-tui --output-format json "$url"
      else
        measure "$OHA" -n "$n" -c "$c" --no-tui --output-format json "$url"
      fi
      ok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["statusCodeDistribution"].get("200", 0))' "$M_OUT" 2>/dev/null || echo 0)
      ;;
    wrk)
      measure wrk -t2 -c "$c" -d "${WRK_SECONDS}s" "$url"
      requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$M_OUT")
      local bad
      bad=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$M_OUT")
      ok=$((${requests:-0} - ${bad:-0}))
      ;;
    curl)
      # A glob makes N transfers; the query string varies, the file served does not.
      if [[ $url == https://* ]]; then
        measure curl -s --no-progress-meter -Z --parallel-max "$c" --http2 --cacert "$TLS_CA" \
          --resolve "$(localhost_at "$url")" -o /dev/null -w '%{http_code} %{http_version}\n' "$url?[1-$n]"
        ok=$(grep -c '^200 2$' "$M_OUT" || true)
      else
        measure curl -s --no-progress-meter -Z --parallel-max "$c" -o /dev/null -w '%{http_code}\n' "$url?[1-$n]"
        ok=$(grep -c '^200$' "$M_OUT" || true)
      fi
      ;;
    aiohttp | threads)
      if [[ $url == https://* ]]; then
        # aiohttp speaks HTTP/1.1 only: one connection per request in flight, a handshake each.
        measure "$PYTHON" "$BENCH_DIR/clients/${client}_client.py" "$url" "$n" "$c" "$TLS_CA"
        ok=$(sed -n 's/^ok=\([0-9]*\) .* http=1\.1$/\1/p' "$M_OUT")
      else
        measure "$PYTHON" "$BENCH_DIR/clients/${client}_client.py" "$url" "$n" "$c"
        ok=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$M_OUT")
      fi
      ;;
  esac
  [[ $M_RC == 0 ]] || log "  $client exited with $M_RC: $(head -c 300 "$M_ERR")"
  record_row "$scenario" "$client" "$round" "$requests" "${ok:-0}"
}

# `localhost:PORT:127.0.0.1` for the https URL's port: curl's and outofsync's --resolve.
localhost_at() {
  local port=${1#https://localhost:}
  printf 'localhost:%s:127.0.0.1' "${port%%/*}"
}

# Every client runs once per round, in turn, so drift on a shared machine hits them all alike.
run_scenario() {
  local scenario=$1 url=$2 n=$3 c=$4 round client
  shift 4
  log "$scenario: $n requests of $url, $c in flight, $ROUNDS round(s): $*"
  for round in $(seq "$ROUNDS"); do
    for client in "$@"; do run_client "$scenario" "$client" "$url" "$n" "$c" "$round"; done
  done
}


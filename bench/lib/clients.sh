# shellcheck shell=bash
# The clients the bench/ scripts measure, one way to run each (sourced after common.sh).
#
# run_client SCENARIO CLIENT URL N C ROUND runs one client once: N requests of URL with C in
# flight (wrk instead runs for WRK_SECONDS), and appends the measurement to RESULTS_TSV with
# the number of requests that succeeded, as the client itself proves it.

# One input file per scenario and size: the same URL on every line.
url_file() {
  local url=$1 n=$2
  local file="$SCRATCH/urls-$n-${url##*/}.txt"
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
      measure "$OUTOFSYNC" fetch "$input" -c "$c" -o "$records" --no-progress -q \
        --summary-json "$SCRATCH/summary.json"
      # Every request must have its record in the file, not only in the summary.
      if [[ -f $SCRATCH/summary.json && -f $records ]]; then
        ok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$SCRATCH/summary.json")
        local lines
        lines=$(wc -l <"$records")
        if ((lines < ok)); then ok=$lines; fi
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
    oha)
      measure "$OHA" -n "$n" -c "$c" --no-tui --output-format json "$url"
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
      measure curl -s --no-progress-meter -Z --parallel-max "$c" -o /dev/null -w '%{http_code}\n' "$url?[1-$n]"
      ok=$(grep -c '^200$' "$M_OUT" || true)
      ;;
    aiohttp | threads)
      measure "$PYTHON" "$BENCH_DIR/clients/${client}_client.py" "$url" "$n" "$c"
      ok=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$M_OUT")
      ;;
  esac
  [[ $M_RC == 0 ]] || log "  $client exited with $M_RC: $(head -c 300 "$M_ERR")"
  record_row "$scenario" "$client" "$round" "$requests" "${ok:-0}"
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


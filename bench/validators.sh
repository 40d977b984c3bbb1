#!/usr/bin/env bash
# A 10,000-URL re-run with nothing changed: `outofsync fetch --validators` (every request sent
# with its ETag, every answer a 304 without a body) against the same run without it.
#
# Usage: bench/validators.sh [--quick] [--rounds N] [--urls N]
#
#   --quick     one round; writes bench/results/ only
#   --rounds N  rounds, alternating the two runs (default 5; figures are medians)
#   --urls N    URLs (default 10000)
#
# The URLs are the built-in server's `/json?id=N` (about 340 B each, with ETag and
# Last-Modified). A first run fills the store; each round then runs the same input with and
# without it, records written to a file. Raw runs go to bench/results/validators.tsv, the line to
# bench/results/validators.md and (full runs) to BENCHMARKS.md.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
ROUNDS=5
URLS=10000
COMMAND_LINE="bench/validators.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --urls) URLS=$2; shift ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

ensure_basics
build_outofsync
mkdir -p "$RESULTS"
TSV="$RESULTS/validators.tsv"
: >"$TSV"
serve_start
INPUT="$SCRATCH/urls.txt"
seq 1 "$URLS" | sed "s|^|http://127.0.0.1:$SERVE_PORT/json?id=|" >"$INPUT"
STORE="$SCRATCH/validators"
"$OUTOFSYNC" fetch -q -o "$SCRATCH/prime.jsonl" --validators "$STORE" "$INPUT"

# One run: its wall and CPU time, and the body bytes it received (from --summary-json).
run() {
  local name=$1 round=$2
  shift 2
  rm -f "$SCRATCH/out.jsonl" "$SCRATCH/out.jsonl.manifest.json"
  measure "$OUTOFSYNC" fetch -q -o "$SCRATCH/out.jsonl" --summary-json "$SCRATCH/summary.json" "$@" "$INPUT"
  [[ $M_RC == 0 ]] || die "$name: exit $M_RC: $(cat "$M_ERR")"
  local bytes not_modified
  bytes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes"])' "$SCRATCH/summary.json")
  not_modified=$(grep -c '"not_modified":true' "$SCRATCH/out.jsonl" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$M_WALL" "$M_CPU" "$bytes" "$not_modified" >>"$TSV"
  log "  $name #$round: ${M_WALL}s wall, ${M_CPU}s cpu, $bytes body bytes, $not_modified not modified"
}

for round in $(seq "$ROUNDS"); do
  run with "$round" --validators "$STORE"
  run without "$round"
done

REPORT="$RESULTS/validators.md"
python3 - "$TSV" "$URLS" "$COMMAND_LINE" "$(machine_line)" >"$REPORT" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
urls, command, machine = sys.argv[2], sys.argv[3], sys.argv[4]
def med(name, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name)
w, wo = {c: med("with", c) for c in (2, 3, 4)}, {c: med("without", c) for c in (2, 3, 4)}
print(f"## A re-run with nothing changed: `--validators` (`{command}`)\n")
print(f"- Machine: {machine}. {int(urls):,} URLs of `outofsync serve`'s `/json?id=N`, unchanged since the")
print(f"  run that filled the store; median of {len(rows) // 2} alternating round(s). Body bytes: the summary's `bytes`.\n")
print("| run | wall | CPU | body bytes received |")
print("|---|--:|--:|--:|")
print(f"| with `--validators` (all `304`) | {w[2]:.3f} s | {w[3]:.3f} s | {int(w[4]):,} |")
print(f"| without | {wo[2]:.3f} s | {wo[3]:.3f} s | {int(wo[4]):,} |")
print(f"| ratio | {w[2] / wo[2]:.2f}× | {w[3] / wo[3]:.2f}× | {w[4] / max(wo[4], 1):.2f}× |")
print("\nThe bytes column is the gain (and, on GitHub-style APIs, the quota a 304 does not use); the")
print("time columns are what the store costs here, on loopback, where a body costs next to nothing:")
print("a lookup before each request, its log, and the commit that rewrites the table at the end.")
PY
cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report validators "$REPORT"
  log "wrote the validators section of BENCHMARKS.md"
fi

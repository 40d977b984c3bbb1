#!/usr/bin/env bash
# JSON validators side by side on the benchmark's own documents: outofsync's flat loop and its
# structural scan, serde_json, simd-json and sonic-rs (bench/validators, a crate of its own).
#
# Usage: bench/json-validators.sh [--quick]
#
#   --quick   writes bench/results/json-validators.md only (not BENCHMARKS.md)
#
# Each validator runs on the very bytes nginx serves in bench/peers.sh (/big.json, 64 KiB, and
# /data.json, 310 B), in batches of about a millisecond for half a second; the fastest batch
# counts (the one least disturbed by whatever else runs on the machine). Each is also given a
# set of invalid documents it must refuse. The crate is built twice: as outofsync is (the
# release profile, no -C target-cpu: outofsync picks AVX2 or AVX-512 at run time), and with
# -C target-cpu=native, which is what simd-json and sonic-rs need to use the wider instructions.
source "$(dirname "$0")/lib/common.sh"

QUICK=0
COMMAND_LINE="bench/json-validators.sh${*:+ $*}"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

ensure_basics
mkdir -p "$RESULTS"
WWW="$SCRATCH/www"
mkdir -p "$WWW"
python3 "$BENCH_DIR/lib/docs.py" "$WWW"
TARGET="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/validators"
log "building bench/validators (cargo build --release), as is and with -C target-cpu=native"
(cd "$BENCH_DIR/validators" && CARGO_TARGET_DIR="$TARGET/portable" cargo build --release --quiet)
(cd "$BENCH_DIR/validators" && CARGO_TARGET_DIR="$TARGET/native" RUSTFLAGS="-C target-cpu=native" \
  cargo build --release --quiet)

REPORT="$RESULTS/json-validators.md"
{
  echo "## JSON validators (\`$COMMAND_LINE\`)"
  echo
  echo "- Machine: $(machine_line)."
  echo "- outofsync $(git -C "$ROOT_DIR" rev-parse --short HEAD);$(awk '/^name = "(simd-json|sonic-rs|serde_json)"$/ {n=$3} /^version/ && n {printf " %s %s,", n, $3; n=""}' "$BENCH_DIR/validators/Cargo.lock" | tr -d '"') $(date -u +%Y-%m-%d)."
  echo "- Each call is the validator's own entry point on the whole document: \`validate::flat\` and"
  echo "  \`validate::is_json\` after \`std::str::from_utf8\` (as the engine calls them),"
  echo "  \`serde_json::from_slice::<IgnoredAny>\`, \`simd_json::to_tape\` on a copy of the bytes (it"
  echo "  rewrites strings in place, and the record needs them as they came), \`sonic_rs::from_slice\`"
  echo "  into \`IgnoredAny\` and into its \`Value\`. The best of many runs; \`bench/validators/src/main.rs\`."
  echo
  echo "### Built as outofsync is (release, no \`-C target-cpu\`)"
  echo
  "$TARGET/portable/release/validators" "$WWW/big.json" "$WWW/data.json"
  echo "### Built with \`-C target-cpu=native\`"
  echo
  "$TARGET/native/release/validators" "$WWW/big.json" "$WWW/data.json"
} >"$REPORT"
cat "$REPORT"
if [[ $QUICK == 0 ]]; then
  splice_report json-validators "$REPORT"
  log "wrote the JSON validators section of BENCHMARKS.md"
fi

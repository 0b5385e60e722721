#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for EXECS executions each, one
# after another with a single worker, and prints a summary table.
#
#   fuzz/run.sh EXECS [TARGET...]
#   MAX_TIME=1800 fuzz/run.sh 10000000   # 10M executions or 30 min, first wins
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Inputs that add coverage go to fuzz/corpus/<target>/ (minimise them with
# fuzz/cmin.sh before committing); crashes, timeouts and out-of-memory
# inputs to fuzz/artifacts/<target>/; the full libFuzzer logs to fuzz/logs/.
# Bounds: -rss_limit_mb=2048 -timeout=10 (seconds per input).
set -euo pipefail
cd "$(dirname "$0")"

EXECS=${1:?usage: fuzz/run.sh EXECS [TARGET...]}
shift
ALL=(jwks_document jwk_entry verify_token cache_headers http_date redirect discovery)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
# Release with debug assertions and overflow checks; no sanitizer: the
# crate forbids unsafe code, and the C inside aws-lc is not instrumented.
BUILD=(-O -a -s none)
mkdir -p logs

cargo +nightly fuzz build "${BUILD[@]}" >/dev/null

rows=()
failed=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  dirs=("corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  log="logs/$t.log"
  start=$(date +%s)
  set +e
  cargo +nightly fuzz run "${BUILD[@]}" "$t" "${dirs[@]}" -- \
    -runs="$EXECS" ${MAX_TIME:+-max_total_time=$MAX_TIME} \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  after=$(find "artifacts/$t" -type f | wc -l)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  new=$(grep -o 'stat::new_units_added: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -oE '(INITED|DONE|pulse|NEW|REDUCE) +cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | awk '{print $3"/"$5}')
  crashes=$((after - before))
  [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="rc=$rc"
  [ "$rc" -ne 0 ] && failed=1
  rows+=("$(printf '| %-14s | %12s | %9s | %11s | %7s | %6s |' \
    "$t" "${execs:-?}" "${new:-?}" "${cov:-?}" "$crashes" "${secs}s")")
done

echo
echo "fuzz/run.sh $EXECS ($(date -u +%Y-%m-%dT%H:%MZ))"
echo "| target         |        execs | new units | cov/ft      | crashes |   time |"
echo "|----------------|-------------:|----------:|-------------|--------:|-------:|"
printf '%s\n' "${rows[@]}"
exit "$failed"

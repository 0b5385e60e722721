#!/usr/bin/env bash
# Minimises fuzz/corpus/<target>/ (plus fuzz/seeds/<target>/ when present)
# for committing: libFuzzer's set-cover merge on edges (-use_counters=0),
# then at most CAP files (default 200; the largest inputs when the cover is
# larger, which keeps more coverage than a random sample).
# Prints the coverage (cov/ft) of the full corpus and of what is kept.
#
#   fuzz/cmin.sh [TARGET...]       (after `fuzz/run.sh`, which builds)
set -euo pipefail
cd "$(dirname "$0")"
CAP=${CAP:-200}
ALL=(jwks_document jwk_entry verify_token cache_headers http_date redirect discovery)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
BIN=target/x86_64-unknown-linux-gnu/release
ARGS=(-rss_limit_mb=2048 -timeout=10)

cov() { # the coverage libFuzzer reports after reading a corpus folder
  "$BIN/$1" "${ARGS[@]}" -runs=0 "$2" 2>&1 | grep -oE 'INITED cov: [0-9]+ ft: [0-9]+' | tail -1 | awk '{print $3"/"$5}'
}

echo "| target         | files before | cov/ft before | files kept | cov/ft kept |"
echo "|----------------|-------------:|---------------|-----------:|-------------|"
for t in "${TARGETS[@]}"; do
  tmp=$(mktemp -d)
  dirs=("corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  all=$(mktemp -d)
  for d in "${dirs[@]}"; do cp -r "$d/." "$all/"; done
  before_files=$(find "$all" -type f | wc -l)
  before_cov=$(cov "$t" "$all")
  "$BIN/$t" "${ARGS[@]}" -set_cover_merge=1 -use_counters=0 "$tmp" "$all" >/dev/null 2>&1
  # Over the cap: keep the largest inputs (they reach the most code).
  find "$tmp" -type f -printf '%s %f\n' | sort -k1,1nr -k2 | tail -n +"$((CAP + 1))" |
    while read -r _ f; do rm "$tmp/$f"; done
  rm -rf "corpus/$t" "$all"
  mv "$tmp" "corpus/$t"
  chmod 755 "corpus/$t"
  printf '| %-14s | %12s | %-13s | %10s | %-11s |\n' "$t" "$before_files" "$before_cov" \
    "$(find "corpus/$t" -type f | wc -l)" "$(cov "$t" "corpus/$t")"
done

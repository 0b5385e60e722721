#!/usr/bin/env bash
# The README's performance table (issue 13), from one command:
#
#   benches/report.sh            # 3 runs; RUNS=5 benches/report.sh for more
#
# Runs, RUNS times each, the side-by-side criterion groups `lookup/*`
# (benches/lookup.rs, with its paired 1- vs 2-thread scaling), `verify/*`
# and `refresh/*` (when those benches exist), then prints every ratio the
# issue asks for as min / median / max over the runs, with the CPU model.
# It also prints best-of-15 interleaved timings beside an unshared map (the
# floor), and, with valgrind installed, callgrind instruction counts per
# lookup (benches/instructions.rs): repeatable where timings are not.
#
# Knobs (environment): RUNS (3), WARM (1 s warm-up), MEASURE (2 s per
# benchmark), PAIRS (11 interleaved 1/2-thread pairs per paired ratio).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
WARM=${WARM:-1}
MEASURE=${MEASURE:-2}
PAIRS=${PAIRS:-11}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

has_bench() { grep -q "^name = \"$1\"" Cargo.toml && [ -f "benches/$1.rs" ]; }

for run in $(seq 1 "$RUNS"); do
    echo "run $run of $RUNS ..." >&2
    JWKS_SYNC_PAIRED=1 JWKS_SYNC_PAIRS=$PAIRS nice cargo bench --all-features --bench lookup -- \
        --warm-up-time "$WARM" --measurement-time "$MEASURE" '^lookup/' \
        >"$out/run$run.lookup.txt" 2>/dev/null
    for bench in verify refresh; do
        if has_bench "$bench"; then
            nice cargo bench --all-features --bench "$bench" -- \
                --warm-up-time "$WARM" --measurement-time "$MEASURE" "^$bench/" \
                >"$out/run$run.$bench.txt" 2>/dev/null
        fi
    done
done

nice cargo bench --all-features --bench instructions --no-run 2>"$out/build.txt" || cat "$out/build.txt" >&2
exe=$(grep -o '(/[^)]*instructions-[^)]*)' "$out/build.txt" | tr -d '()' | tail -1)
if [ -n "$exe" ]; then
    # Best of 15 interleaved rounds per subject, with the unshared map as floor.
    for run in $(seq 1 "$RUNS"); do
        for n in 4 10000; do
            nice "$exe" time "$n" | sed -n "s/^$n keys \(.*\): \([0-9.]*\) ns$/best $run $n \1\t\2/p" >>"$out/best.txt"
        done
    done
fi
if command -v valgrind >/dev/null; then
    if [ -n "$exe" ]; then
        for subject in bare hit miss; do
            for n in 4 10000; do
                valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                    --toggle-collect='instructions::timed_lookups' "$exe" "$subject" "$n" 2>&1 |
                    sed -n "s/.*Collected : \([0-9]*\).*/callgrind $subject $n \1/p" >>"$out/callgrind.txt"
            done
        done
    fi
fi

python3 - "$out" "$RUNS" <<'PY'
import glob, os, re, statistics, sys

out, runs = sys.argv[1], int(sys.argv[2])
UNIT = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
# A criterion result: the id (alone on its line when long), then `time: [lo mid hi]`.
RESULT = re.compile(r"^(\S[^\n]*?)\s*\n?\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", re.M)
PAIRED = re.compile(r"^\s+(hit|miss)\s+(.+?)\s+([\d.]+)x\s+\(quartiles", re.M)

def load(run):
    times, paired = {}, {}
    for path in glob.glob(os.path.join(out, f"run{run}.*.txt")):
        text = open(path, encoding="utf-8").read()
        for name, mid, unit in RESULT.findall(text):
            times[name.strip()] = float(mid) * UNIT[unit]
        for op, name, ratio in PAIRED.findall(text):
            paired[f"{op} {name}"] = float(ratio)
    return times, paired

runs_data = [load(r) for r in range(1, runs + 1)]
rows = []  # (label, [value per run], target)

def ratio_row(label, num, den, target):
    values = [t[num] / t[den] for t, _ in runs_data if num in t and den in t]
    if values:
        rows.append((label, values, target))

for n in (4, 64, 1000, 10000):
    ratio_row(f"hit {n} keys / bare ArcSwap::load + FxHashMap", f"lookup/jwks-sync hit/{n}",
              f"lookup/bare ArcSwap + FxHashMap hit/{n}", "<= 0.6")
ratio_row("hit 10,000 keys / hit 4 keys", "lookup/jwks-sync hit/10000", "lookup/jwks-sync hit/4", "<= 1.1")
for n in (4, 64, 1000, 10000):
    ratio_row(f"miss {n} keys / hit {n} keys", f"lookup/jwks-sync miss/{n}", f"lookup/jwks-sync hit/{n}", "<= 1.5")

names = sorted({k for _, p in runs_data for k in p})
for name in names:
    values = [p[name] for _, p in runs_data if name in p]
    target = ">= 1.95" if "jwks-sync" in name else "(reference)"
    rows.append((f"2 threads / 1 thread, {name} (paired)", values, target))

# verify/* and refresh/*: each function against its group's baseline.
BASELINES = ("aws_lc_raw_preparsed", "serde_typed_plus_aws_lc", "baseline")
groups = {}
for times, _ in runs_data:
    for name in times:
        if name.startswith(("verify/", "refresh/")):
            group, _, fn = name.rpartition("/")
            groups.setdefault(group, set()).add(fn)
for group in sorted(groups):
    base = next((b for b in BASELINES if b in groups[group]), None)
    if base is None:
        continue
    for fn in sorted(groups[group] - {base}):
        target = "<= 1.05" if group.startswith("verify/") else "<= 1.1"
        ratio_row(f"{group}: {fn} / {base}", f"{group}/{fn}", f"{group}/{base}", target)

cpu = "unknown CPU"
try:
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
cores = os.cpu_count()
print(f"CPU: {cpu} ({cores} logical CPUs); {runs} runs; ratios min / median / max\n")
print("| ratio | min | median | max | target |")
print("|---|---|---|---|---|")
for label, values, target in rows:
    print(f"| {label} | {min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f} | {target} |")

print("\nTimes (median over runs, ns):\n")
print("| benchmark | ns |")
print("|---|---|")
for name in sorted({k for t, _ in runs_data for k in t}):
    values = [t[name] for t, _ in runs_data if name in t]
    print(f"| {name} | {statistics.median(values):.1f} |")

best = os.path.join(out, "best.txt")
if os.path.exists(best):
    ns = {}
    for line in open(best, encoding="utf-8"):
        head, value = line.rstrip("\n").split("\t")
        _, run, n, name = head.split(" ", 3)
        ns.setdefault((int(n), name), {})[int(run)] = float(value)
    print("\nBest of 15 interleaved rounds of 100,000 lookups (benches/instructions.rs `time N`), ratios min / median / max over runs:\n")
    print("| ratio | min | median | max |")
    print("|---|---|---|---|")
    def best_row(label, a, b):
        if a in ns and b in ns:
            values = [ns[a][r] / ns[b][r] for r in ns[a] if r in ns[b]]
            print(f"| {label} | {min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f} |")
    for n in (4, 10000):
        best_row(f"{n} keys: jwks-sync hit / bare ArcSwap + FxHashMap", (n, "jwks-sync hit"), (n, "bare ArcSwap + FxHashMap"))
        best_row(f"{n} keys: plain unshared &FxHashMap / bare (the floor of any shared design)", (n, "plain &FxHashMap"), (n, "bare ArcSwap + FxHashMap"))
        best_row(f"{n} keys: jwks-sync miss / hit", (n, "jwks-sync miss"), (n, "jwks-sync hit"))
    best_row("jwks-sync hit: 10,000 keys / 4 keys", (10000, "jwks-sync hit"), (4, "jwks-sync hit"))
    best_row("plain &FxHashMap: 10,000 keys / 4 keys", (10000, "plain &FxHashMap"), (4, "plain &FxHashMap"))

cg = os.path.join(out, "callgrind.txt")
if os.path.exists(cg):
    ir = {}
    for line in open(cg, encoding="utf-8"):
        _, subject, n, count = line.split()
        ir[(subject, int(n))] = int(count) / 100_000
    print("\nInstructions per lookup (callgrind, 100,000 lookups; counts every instruction alike, so a locked one counts as one):\n")
    print("| keys | bare ArcSwap + FxHashMap | jwks-sync hit | jwks-sync miss | hit / bare |")
    print("|---|---|---|---|---|")
    for n in (4, 10000):
        if ("bare", n) in ir and ("hit", n) in ir:
            print(f"| {n} | {ir[('bare', n)]:.0f} | {ir[('hit', n)]:.0f} | {ir.get(('miss', n), 0):.0f} | {ir[('hit', n)] / ir[('bare', n)]:.2f} |")
PY

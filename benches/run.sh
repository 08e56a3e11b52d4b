#!/usr/bin/env bash
# The SigV4 benchmark in one command, on the same requests for every signer:
#   1. release builds of the host and of the benchmark;
#   2. criterion: the sigv4 component through the host (one-shot and with a
#      reused signer), the native lakeport-sigv4 core and aws-sigv4 1.6.4;
#   3. botocore's S3SigV4Auth (.venv's python);
#   4. whole-process `lakeport sign` with a warm compiled-component cache
#      (hyperfine; a timing loop if hyperfine cannot be had);
#   5. a side-by-side table, also written to target/bench-results/sigv4.md.
#
# Environment: BENCH_MEASURE_SECS (criterion measurement time per benchmark,
# default 2), BENCH_WARMUP_SECS (default 1), BOTOCORE_SECS (per request,
# default 3), PROCESS_RUNS (default 60), PYTHON (default .venv/bin/python).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
mkdir -p "$out"
export LAKEPORT_BENCH_OUT=$out
python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || python=python3

# Everything runs against its own compiled-component cache.
cache=$(mktemp -d "${TMPDIR:-/tmp}/lakeport-bench-cache.XXXXXX")
trap 'rm -rf "$cache"' EXIT
export XDG_CACHE_HOME=$cache
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION

step() { printf '\n==> %s\n' "$*" >&2; }

step "building (release): the host and the benchmark"
cargo build --release -p lakeport
cargo bench -p lakeport-benches --bench sigv4 --no-run

step "criterion: component via host, native core, aws-sigv4"
rm -rf "$target/criterion/sigv4"
cargo bench -p lakeport-benches --bench sigv4 -- \
    --warm-up-time "${BENCH_WARMUP_SECS:-1}" --measurement-time "${BENCH_MEASURE_SECS:-2}" --noplot \
    2>&1 | tee "$out/criterion.log"

step "botocore"
"$python" benches/botocore_sigv4.py "$out/cases.json" --seconds "${BOTOCORE_SECS:-3}" | tee "$out/botocore.txt"

step "lakeport sign: whole process, warm cache"
lakeport=$target/release/lakeport
sign_args=(sign -H 'Range: bytes=0-1048575' --region eu-west-1 --time 20240115T120000Z
    --access-key AKIAIOSFODNN7EXAMPLE --secret-key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    GET https://lakeport-bench-data.s3.eu-west-1.amazonaws.com/warehouse/events/part-00017.parquet)
# The first run compiles the component and fills the cache.
t0=$(date +%s%N)
"$lakeport" "${sign_args[@]}" > /dev/null
cold_ms=$(( ($(date +%s%N) - t0) / 1000 ))
cold_ms=$(awk "BEGIN { printf \"%.1f\", $cold_ms / 1000 }")
if ! ls "$cache"/lakeport/compiled/*.cwasm > /dev/null 2>&1; then
    echo "run.sh: the first run left no compiled component in $cache/lakeport/compiled" >&2
    exit 1
fi
if ! command -v hyperfine > /dev/null; then
    apt-get install -y hyperfine > /dev/null 2>&1 \
        || { apt-get update > /dev/null 2>&1 && apt-get install -y hyperfine > /dev/null 2>&1; } \
        || echo "run.sh: hyperfine unavailable; timing with a loop instead" >&2
fi
runs=${PROCESS_RUNS:-60}
if command -v hyperfine > /dev/null; then
    tool="hyperfine $(hyperfine --version | awk '{print $2}'), $runs runs"
    cmd=$(printf '%q ' "$lakeport" "${sign_args[@]}")
    hyperfine --shell=none --warmup 5 --runs "$runs" --export-json "$out/process.json" "$cmd"
else
    tool="timing loop, $runs runs"
    "$python" - "$out/process.json" "$runs" "$lakeport" "${sign_args[@]}" <<'EOF'
import json, statistics, subprocess, sys, time
out, runs, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for _ in range(5):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    times.append(time.perf_counter() - t)
res = {"median": statistics.median(times), "mean": statistics.fmean(times), "min": min(times), "times": times}
json.dump({"results": [res]}, open(out, "w"))
print(f"lakeport sign: median {res['median'] * 1000:.2f} ms over {runs} runs")
EOF
fi

step "results"
machine="Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(rustc --version); $(date -u +%Y-%m-%dT%H:%MZ)."
"$python" benches/report.py --target "$target" --out "$out" --botocore "$out/botocore.txt" \
    --process "$out/process.json" --process-tool "$tool" --cold-ms "$cold_ms" --machine "$machine"
echo "written to $out/sigv4.md" >&2

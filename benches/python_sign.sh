#!/usr/bin/env bash
# µs per SigV4 signature from Python (python/sign.py): the sigv4 component
# through the lakeport package (and its exports through wasmtime's generic
# component API) against botocore's S3SigV4Auth, on the same request;
# warm-up, then interleaved rounds, medians.
#   1. the component files from `lakeport components --export` (the debug
#      build is enough: the wasm is the same), put into a wheel of
#      bindings/python, installed with its pinned wasmtime into a folder of
#      its own (target/python-bench) that .venv's Python (where botocore is)
#      reads through PYTHONPATH;
#   2. the table, also written to target/bench-results/python_sign.md.
# Arguments go to python/sign.py (--rounds N --iterations N --warmup N).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
mkdir -p "$out"

python=$root/.venv/bin/python
"$python" -c 'import botocore' 2>/dev/null || { echo "python_sign.sh: botocore is not in .venv: run ./dev setup" >&2; exit 1; }

lakeport=${LAKEPORT:-}
if [ -z "$lakeport" ]; then
    for candidate in "$target/release/lakeport" "$target/debug/lakeport"; do
        [ -x "$candidate" ] && { lakeport=$candidate; break; }
    done
fi
if [ -z "$lakeport" ]; then
    cargo build --locked -p lakeport
    lakeport=$target/debug/lakeport
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/lakeport-py-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
XDG_CACHE_HOME=$scratch "$lakeport" components --export "$scratch/components" >/dev/null
cp -r bindings/python "$scratch/package"
mkdir -p "$scratch/package/src/lakeport/components"
cp "$scratch/components/sigv4.wasm" "$scratch/components/sts.wasm" "$scratch/package/src/lakeport/components/"
"$python" -m pip wheel --quiet --no-deps -w "$scratch/dist" "$scratch/package"
site=$target/python-bench
rm -rf "$site"
"$python" -m pip install --quiet --target "$site" "$scratch"/dist/*.whl

printf 'load average: %s (%s CPUs): other work skews the timings\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" >&2
PYTHONPATH=$site "$python" benches/python/sign.py --json "$out/python_sign.json" "$@" | tee "$out/python_sign.md"

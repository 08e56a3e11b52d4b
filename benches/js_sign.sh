#!/usr/bin/env bash
# µs per SigV4 signature from Node (js/sign.mjs): the sigv4 component through
# jco (its own `sign`, `sign-flat` and `signer.sign-for-sending` exports, and the
# @lakeport/components wrappers) against @smithy/signature-v4 and aws4, on
# the same request; warm-up, then interleaved rounds, medians.
#   1. the component files from `lakeport components --export` (the debug
#      build is enough: the wasm is the same), transpiled into bindings/js/gen;
#   2. the JavaScript signers, pinned by benches/js/package-lock.json;
#   3. the table, also written to target/bench-results/js_sign.md.
# Arguments go to js/sign.mjs (--rounds N --iterations N --warmup N).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
mkdir -p "$out"

command -v node >/dev/null 2>&1 || { echo "js_sign.sh: node is needed: run ./dev setup" >&2; exit 1; }
[ -x bindings/js/node_modules/.bin/jco ] || { echo "js_sign.sh: jco is not installed: run ./dev setup" >&2; exit 1; }
if [ ! -d benches/js/node_modules ] || [ benches/js/package-lock.json -nt benches/js/node_modules/.package-lock.json ]; then
    echo "js_sign.sh: installing aws4 and @smithy/signature-v4 into benches/js/node_modules" >&2
    npm ci --prefix benches/js --no-audit --no-fund --loglevel=error </dev/null >/dev/null
fi

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
scratch=$(mktemp -d "${TMPDIR:-/tmp}/lakeport-js-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
XDG_CACHE_HOME=$scratch "$lakeport" components --export "$scratch/components" >/dev/null
node bindings/js/build.mjs "$scratch/components"

printf 'load average: %s (%s CPUs): other work skews the timings\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)" >&2
node benches/js/sign.mjs --json "$out/js_sign.json" "$@" | tee "$out/js_sign.md"

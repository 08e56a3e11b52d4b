#!/usr/bin/env bash
# Whole-process `lakeport token get` with a cached valid token, beside
# `oidc-token` from oidc-agent (also answering from its cache), in one run on
# this machine. Both get their tokens from the same local OpenID provider
# (tests/peers/oidc-provider.mjs), started here on 127.0.0.1 and stopped at
# the end. Results: target/bench-results/token_get.md.
#
# Needs: ./dev setup (node peer, oidc-agent), hyperfine (installed if missing).
# Environment: RUNS (default 60).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
mkdir -p "$out"
runs=${RUNS:-60}

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'token_get.sh: %s\n' "$*" >&2; exit 1; }

command -v hyperfine >/dev/null 2>&1 || apt-get install -y -qq hyperfine </dev/null >/dev/null || die "hyperfine is needed"
for tool in node oidc-agent oidc-gen oidc-token curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run ./dev setup"
done

step "building lakeport (release)"
cargo build --release --locked -p lakeport >&2
lakeport=$target/release/lakeport

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lakeport-token-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "starting the OpenID provider"
port=$(free_port)
setsid node tests/peers/oidc-provider.mjs "$port" >"$scratch/provider.log" 2>&1 &
pids+=($!)
issuer="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -fsS "$issuer/.well-known/openid-configuration" >/dev/null 2>&1 && break; sleep 0.1; done

step "starting oidc-agent and registering an account (device flow approved by the test route)"
export OIDC_CONFIG_DIR=$scratch/agent-config
mkdir -m 0700 "$OIDC_CONFIG_DIR"
export OIDC_SOCK=$scratch/agent.sock
setsid oidc-agent -d --json --log-stderr --socket-path "$OIDC_SOCK" >"$scratch/agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$OIDC_SOCK" ] && break; sleep 0.05; done
export OIDC_ENCRYPTION_PW=bench-password
setsid oidc-gen bench --iss="$issuer" --client-id=device-basic --client-secret=device-basic-secret \
    --scope="openid offline_access profile s3 rucio" --flow=device --pw-env --no-url-call \
    --confirm-default --prompt=none </dev/null >"$scratch/gen.out" 2>"$scratch/gen.err" &
gen=$!
pids+=($gen)
code=""
for _ in $(seq 200); do
    code=$(grep -ao 'enter the code: [A-Z0-9-]*' "$scratch/gen.err" | head -1 | sed 's/.*: //') || true
    [ -n "$code" ] && break
    sleep 0.05
done
[ -n "$code" ] || die "oidc-gen printed no user code: $(cat "$scratch/gen.err")"
curl -fsS -X POST "$issuer/test/device/approve?user_code=$code" >/dev/null
wait "$gen" || die "oidc-gen failed: $(cat "$scratch/gen.err")"
oidc-token bench >/dev/null

step "a lakeport profile with a cached token"
cat >"$scratch/config.toml" <<EOF
[profiles.bench]
issuer = "$issuer"
grant = "client_credentials"
client_id = "service"
client_secret = "service-secret"
EOF
export LAKEPORT_CONFIG=$scratch/config.toml XDG_CACHE_HOME=$scratch/cache XDG_DATA_HOME=$scratch/data
"$lakeport" token get --profile bench >/dev/null

step "timing ($runs runs each)"
hyperfine -N --warmup 5 --runs "$runs" --export-json "$scratch/hf.json" \
    -n "lakeport token get (cached)" "$lakeport token get --profile bench" \
    -n "oidc-token (agent cache)" "oidc-token bench" >&2

python3 - "$scratch/hf.json" "$out/token_get.md" <<'EOF'
import json, sys, statistics, platform
results = json.load(open(sys.argv[1]))["results"]
rows = []
for r in results:
    times = [t * 1000 for t in r["times"]]
    rows.append((r["command"], statistics.median(times), statistics.mean(times), min(times), len(times)))
lp, ot = rows[0], rows[1]
lines = [
    "## `lakeport token get` with a cached token vs `oidc-token` (whole process, ms)",
    "",
    "| command | median | mean | min | runs |",
    "|---|---:|---:|---:|---:|",
]
lines += [f"| {c} | {med:.2f} | {mean:.2f} | {mn:.2f} | {n} |" for c, med, mean, mn, n in rows]
lines += [
    "",
    f"lakeport median under 15 ms: {'PASS' if lp[1] < 15 else 'FAIL'}; "
    f"faster than oidc-token: {'PASS' if lp[1] < ot[1] else 'FAIL'} ({ot[1] / lp[1]:.1f}x)",
    "",
    f"Machine: {platform.machine()}, {len(open('/proc/cpuinfo').read().split('processor')) - 1} CPUs.",
]
text = "\n".join(lines) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
EOF
echo "written to $out/token_get.md" >&2

#!/usr/bin/env bash
# Whole-process `lakeport token get` with a cached valid token, beside
# `oidc-token` from oidc-agent, in one run on this machine: oidc-token as the
# INFN guide runs it (`--aud=object`, which oidc-agent answers with a refresh
# at the issuer each time) and without an audience (from the agent's cache).
# Everything talks to the same local OpenID provider
# (tests/peers/oidc-provider.mjs). Results: target/bench-results/token_get.md.
#
# Needs: ./dev setup, hyperfine (installed if missing). Environment: RUNS (default 60).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. benches/peers.sh
runs=${RUNS:-60}
prepare_bench

step "starting the OpenID provider and oidc-agent"
start_provider
start_oidc_agent bench
oidc-token bench >/dev/null
oidc-token --aud=object bench >/dev/null

step "a lakeport profile with a cached token"
use_bench_profile
"$lakeport" token get --profile bench >/dev/null

step "timing ($runs runs each)"
hyperfine -N --warmup 5 --runs "$runs" --export-json "$scratch/hf.json" \
    -n "lakeport token get (cached)" "$lakeport token get --profile bench" \
    -n "oidc-token --aud=object (INFN guide)" "oidc-token --aud=object bench" \
    -n "oidc-token (no audience, agent cache)" "oidc-token bench" >&2

write_report "\`lakeport token get\` with a cached token vs \`oidc-token\` (whole process, ms)" token_get

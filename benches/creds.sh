#!/usr/bin/env bash
# Whole-process `lakeport creds` beside the shell script it replaces, in one
# run against the same local peers (OpenID provider, moto STS):
#   - lakeport creds, cached result;
#   - lakeport creds, cold (access token cached, STS called);
#   - INFN's helper recipe: oidc-token --aud=object from oidc-agent, an
#     AssumeRoleWithWebIdentity POST with curl, the XML reshaped by xq/jq.
# Results: target/bench-results/creds.md.
#
# Needs: ./dev setup (node peer, moto, oidc-agent), hyperfine and jq (apt),
# xq (PyPI yq, installed into .venv if missing). Environment: RUNS (default 40).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. benches/peers.sh
runs=${RUNS:-40}
command -v jq >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq </dev/null >/dev/null 2>&1 || die "jq is needed"
[ -x .venv/bin/xq ] || .venv/bin/python -m pip install --quiet --disable-pip-version-check "yq==3.4.3" </dev/null
prepare_bench

step "starting the OpenID provider, moto and oidc-agent"
start_provider
start_moto
start_oidc_agent bench
role=arn:aws:iam::123456789012:role/s3access

# The script path, as INFN Cloud's helper does it.
cat >"$scratch/sts-helper.sh" <<SCRIPT
#!/usr/bin/env bash
set -euo pipefail
token=\$(oidc-token --aud=object bench)
curl -s -X POST "$moto/" \\
    -H 'Content-Type: application/x-www-form-urlencoded' \\
    -d Action=AssumeRoleWithWebIdentity -d Version=2011-06-15 -d DurationSeconds=3600 \\
    -d RoleArn=$role -d RoleSessionName=bench \\
    --data-urlencode "WebIdentityToken=\$token" |
    $root/.venv/bin/xq '.AssumeRoleWithWebIdentityResponse.AssumeRoleWithWebIdentityResult.Credentials
        | {Version: 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration}'
SCRIPT
chmod +x "$scratch/sts-helper.sh"
"$scratch/sts-helper.sh" | jq -e .AccessKeyId >/dev/null || die "the helper script does not work"

use_bench_profile "sts_endpoint = \"$moto\"
role_arn = \"$role\""
"$lakeport" creds --profile bench | jq -e .AccessKeyId >/dev/null

step "timing ($runs runs each)"
hyperfine -N --warmup 3 --runs "$runs" --export-json "$scratch/hf.json" \
    -n "lakeport creds (cached)" --prepare "true" "$lakeport creds --profile bench" \
    -n "lakeport creds (cold: token cached, STS call)" --prepare "rm -f $scratch/cache/lakeport/creds/bench.json" "$lakeport creds --profile bench" \
    -n "oidc-token + curl + xq (INFN helper)" --prepare "true" "$scratch/sts-helper.sh" >&2

write_report "\`lakeport creds\` vs the oidc-token + curl + xq helper (whole process, ms)" creds

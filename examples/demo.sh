#!/usr/bin/env bash
# lakeport demo: sign real S3 requests for a server that checks SigV4.
#
# Starts `rclone serve s3` with an access key on a free port of 127.0.0.1,
# serving a temporary directory, then:
#   1. shows that the server refuses a request that is not signed,
#   2. creates a bucket and uploads a file with requests signed by
#      `lakeport sign` and sent by curl,
#   3. downloads the file through a `lakeport presign` URL and compares bytes,
#   4. lists the bucket with a signed ListObjectsV2,
#   5. runs the whole token chain, with a local OpenID provider standing in
#      for INFN IAM and a real single-node Ceph RADOS Gateway (INFN Cloud's
#      server type, STS on): `lakeport token get` (a service account with
#      audience "object"), `lakeport creds` as awscli's credential_process,
#      then awscli uploads, lists and downloads through the temporary keys,
#      and `lakeport s3` does a multipart upload and a verified download;
#   6. shows `lakeport components`.
# The servers are stopped on exit; any failure exits non-zero.
#
# Run it with `./dev demo`, or directly with LAKEPORT (the lakeport binary)
# and LAKEPORT_RCLONE (rclone) set, or both on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

step_no=0
step() { step_no=$((step_no + 1)); printf '\n[%d] %s\n' "$step_no" "$*"; }
info() { printf '    %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

find_tool() { # NAME ENV_VALUE LOCAL_PATH
    if [ -n "$2" ]; then printf '%s' "$2"
    elif [ -x "$3" ]; then printf '%s' "$3"
    elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
    else fail "$1 not found: run ./dev setup (or set the path in the environment)"
    fi
}
LAKEPORT="$(find_tool lakeport "${LAKEPORT:-}" "${CARGO_TARGET_DIR:-$root/target}/debug/lakeport")"
RCLONE="$(find_tool rclone "${LAKEPORT_RCLONE:-}" "$root/.venv/bin/rclone")"
CURL="$(find_tool curl "" /nonexistent)"
[ -x "$LAKEPORT" ] || fail "no lakeport binary at $LAKEPORT: run ./dev demo, or cargo build -p lakeport"

# The requests that `signed` shows go to fd 3 (stdout), as its own stdout
# is captured.
exec 3>&1

work="$(mktemp -d "${TMPDIR:-/tmp}/lakeport-demo.XXXXXX")"
server_pids=()
cleanup() {
    for pid in ${server_pids[@]+"${server_pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Credentials of this demo only; lakeport reads them from the environment.
export AWS_ACCESS_KEY_ID="lakeportDemoKey"
export AWS_SECRET_ACCESS_KEY="lakeport-demo-secret-$RANDOM$RANDOM"
unset AWS_SESSION_TOKEN AWS_PROFILE
REGION="us-east-1"
BUCKET="demo-bucket"
KEY="results/run 1/données.bin"   # spaces and unicode: lakeport encodes the path

printf 'lakeport demo\n'
info "lakeport: $LAKEPORT ($("$LAKEPORT" --version))"
rclone_version="$("$RCLONE" version)" || fail "$RCLONE does not run"
info "rclone:   $RCLONE (${rclone_version%%$'\n'*})"
info "curl:     $CURL"
info "work dir: $work"

# ---------------------------------------------------------------------------
step "Start rclone serve s3 with SigV4 authentication"
mkdir -p "$work/data" "$work/rclone-cache"
: >"$work/rclone.conf"
: >"$work/rclone.log"
"$RCLONE" serve s3 --auth-key "$AWS_ACCESS_KEY_ID,$AWS_SECRET_ACCESS_KEY" --addr 127.0.0.1:0 \
    --config "$work/rclone.conf" --cache-dir "$work/rclone-cache" "$work/data" \
    </dev/null >"$work/rclone.log" 2>&1 &
server_pid=$!
server_pids+=("$server_pid")
endpoint=""
for _ in $(seq 1 300); do
    # rclone logs the address it bound (port 0 picks a free port).
    endpoint="$(sed -n 's|.*Starting s3 server on \[\(http://127\.0\.0\.1:[0-9]*\)/\].*|\1|p' "$work/rclone.log")"
    [ -n "$endpoint" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/rclone.log" >&2; fail "rclone serve s3 exited"; }
    sleep 0.1
done
[ -n "$endpoint" ] || { cat "$work/rclone.log" >&2; fail "rclone serve s3 did not start within 30 s"; }
ok "listening on $endpoint (pid $server_pid), serving $work/data"

# Runs curl; prints the HTTP status; the body goes to the file $1.
http() {
    local out="$1"
    shift
    "$CURL" --silent --show-error --globoff --path-as-is --max-time 60 -o "$out" -w '%{http_code}' "$@"
}

# signed METHOD URL OUT [lakeport sign options...] [-- curl arguments...]
# Signs the request with `lakeport sign` and sends exactly what it printed
# (request line and headers) with curl. Prints the HTTP status.
signed() {
    local method="$1" url="$2" out="$3"
    shift 3
    local sign_opts=() curl_opts=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do sign_opts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    curl_opts=("$@")
    local request
    request="$("$LAKEPORT" sign --region "$REGION" ${sign_opts[@]+"${sign_opts[@]}"} "$method" "$url")" ||
        fail "lakeport sign $method $url"
    local verb target _version headers=() line
    {
        read -r verb target _version
        while IFS= read -r line && [ -n "$line" ]; do headers+=(-H "$line"); done
    } <<<"$request"
    [ "$verb" = "$method" ] || fail "unexpected request line from lakeport sign: $verb $target"
    printf '%s\n' "$request" | sed 's/^/      | /; s/\(Signature=\)[0-9a-f]*/\1…/' >&3
    # The target is wire-encoded by lakeport; send it byte for byte.
    http "$out" -X "$method" "${headers[@]}" -H 'Expect:' ${curl_opts[@]+"${curl_opts[@]}"} "$endpoint$target"
}

expect_status() { # WANT GOT WHAT BODYFILE
    if [ "$2" != "$1" ]; then
        [ -f "$4" ] && sed 's/^/      /' "$4" >&2
        fail "$3: expected HTTP $1, got $2"
    fi
    ok "$3: HTTP $2"
}

# ---------------------------------------------------------------------------
step "An unsigned request is refused"
status="$(http "$work/body" "$endpoint/")"
case "$status" in
    4??) ok "GET / without a signature: HTTP $status ($(grep -o '<Code>[^<]*</Code>' "$work/body" | sed 's/<[^>]*>//g'))" ;;
    *) fail "an unsigned request got HTTP $status" ;;
esac

# ---------------------------------------------------------------------------
step "Create the bucket '$BUCKET' (signed PUT)"
status="$(signed PUT "$endpoint/$BUCKET" "$work/body")"
expect_status 200 "$status" "create bucket" "$work/body"

# ---------------------------------------------------------------------------
step "Upload '$KEY' (signed PUT; the body's SHA-256 is part of the signature)"
{
    printf 'sample,value\n'
    for i in $(seq 1 2000); do printf 'row-%d,%d\n' "$i" $((i * i)); done
    head -c 65536 /dev/urandom
} >"$work/upload.bin"
size="$(wc -c <"$work/upload.bin" | tr -d ' ')"
info "file: $size bytes"
status="$(signed PUT "$endpoint/$BUCKET/$KEY" "$work/body" --body-file "$work/upload.bin" -H 'Content-Type: application/octet-stream' \
    -- --data-binary "@$work/upload.bin")"
expect_status 200 "$status" "upload" "$work/body"

# ---------------------------------------------------------------------------
step "Download it with a presigned URL (lakeport presign, fetched by plain curl)"
url="$("$LAKEPORT" presign --region "$REGION" --expires 300 GET "$endpoint/$BUCKET/$KEY")" || fail "lakeport presign"
info "URL: ${url%%X-Amz-Signature=*}X-Amz-Signature=…"
status="$(http "$work/download.bin" "$url")"
expect_status 200 "$status" "presigned GET" "$work/download.bin"
cmp -s "$work/upload.bin" "$work/download.bin" || fail "the downloaded bytes differ from the uploaded ones"
ok "downloaded $(wc -c <"$work/download.bin" | tr -d ' ') bytes, identical to the upload"
if [ "${url: -1}" = 0 ]; then tampered="${url%?}1"; else tampered="${url%?}0"; fi
status="$(http "$work/body" "$tampered")"
case "$status" in
    403) ok "the same URL with one signature digit changed: HTTP 403 ($(grep -o '<Code>[^<]*</Code>' "$work/body" | sed 's/<[^>]*>//g'))" ;;
    *) fail "a tampered presigned URL got HTTP $status" ;;
esac

# ---------------------------------------------------------------------------
step "List the bucket (signed ListObjectsV2)"
status="$(signed GET "$endpoint/$BUCKET?list-type=2&prefix=results/" "$work/list.xml")"
expect_status 200 "$status" "list" "$work/list.xml"
keys="$(grep -o '<Key>[^<]*</Key>' "$work/list.xml" | sed 's/<[^>]*>//g')"
printf '%s\n' "$keys" | sed 's/^/      key: /'
[ "$keys" = "$KEY" ] || fail "the listing does not show exactly '$KEY'"
ok "the listing shows the decoded key"

# ---------------------------------------------------------------------------
# The chain: OIDC token -> STS keys -> awscli, against local stand-ins.
NODE="$(find_tool node "${LAKEPORT_NODE:-}" /nonexistent)"
PYTHON="$(find_tool python3 "${LAKEPORT_PYTHON:-}" "$root/.venv/bin/python")"
AWS="$(find_tool aws "${LAKEPORT_AWS:-}" "$root/.venv/bin/aws")"
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL PID LOG WHAT
    for _ in $(seq 1 300); do
        "$CURL" -s -o /dev/null "$1" && return 0
        kill -0 "$2" 2>/dev/null || { cat "$3" >&2; fail "$4 exited"; }
        sleep 0.1
    done
    cat "$3" >&2
    fail "$4 did not start within 30 s"
}

step "Start an OpenID provider (for INFN IAM) and a Ceph RADOS Gateway (INFN Cloud's server type) with STS"
op_port="$(free_port)"
"$NODE" "$root/tests/peers/oidc-provider.mjs" "$op_port" </dev/null >"$work/op.log" 2>&1 &
server_pids+=("$!")
issuer="http://127.0.0.1:$op_port"
wait_http "$issuer/.well-known/openid-configuration" "$!" "$work/op.log" "the OpenID provider"
ok "OpenID provider at $issuer"
command -v radosgw >/dev/null 2>&1 || fail "radosgw not found: run ./dev setup"
rgw_port="$(free_port)"
mkdir -p "$work/ceph"
# One monitor, one OSD in memory, radosgw; the issuer registered with it and
# the role IAMaccess trusting its tokens for audience "object".
"$PYTHON" "$root/tests/peers/ceph/start.py" --scratch "$work/ceph" --port "$rgw_port" \
    --oidc-issuer "$issuer" --client-id object </dev/null >"$work/rgw.out" 2>"$work/rgw.err" &
server_pids+=("$!")
rgw="http://127.0.0.1:$rgw_port"
for _ in $(seq 600); do
    grep -q '^READY ' "$work/rgw.out" 2>/dev/null && break
    kill -0 "${server_pids[-1]}" 2>/dev/null || { cat "$work/rgw.err" >&2; fail "Ceph RGW did not start"; }
    sleep 0.1
done
grep -q '^READY ' "$work/rgw.out" || { cat "$work/rgw.err" >&2; fail "Ceph RGW did not start within 60 s"; }
ok "Ceph $(ceph --version | cut -d' ' -f3) RADOS Gateway at $rgw ($(tail -n1 "$work/rgw.err" | sed 's/^ceph peer: //'))"

# This part of the demo has its own lakeport configuration, caches and ~/.aws.
export LAKEPORT_CONFIG="$work/lakeport.toml" XDG_CACHE_HOME="$work/cache" XDG_DATA_HOME="$work/data-home"
export AWS_CONFIG_FILE="$work/aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/aws-credentials"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
cat >"$LAKEPORT_CONFIG" <<CONF
[profiles.infncloud]
issuer = "$issuer"
grant = "client_credentials"
client_id = "service"
client_secret = "service-secret"
audience = "object"
sts_endpoint = "$rgw"
role_arn = "arn:aws:iam:::role/IAMaccess"
region = "default"
s3_endpoint = "$rgw"
CONF
info "profile 'infncloud' in $LAKEPORT_CONFIG (service account, audience \"object\")"

step "Get an access token (lakeport token get)"
"$LAKEPORT" token get --profile infncloud --output json >"$work/token.json" || fail "lakeport token get"
"$PYTHON" - "$work/token.json" <<'PY' || fail "the token answer is not what was asked for"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["audience"] == ["object"], t["audience"]
print(f"    ok: a JWT for audience {t['audience'][0]!r} from {t['issuer']}, valid until {t['expires_at']}")
PY

step "Wire lakeport into awscli (lakeport creds --format aws-config)"
"$LAKEPORT" creds --profile infncloud --format aws-config >"$AWS_CONFIG_FILE" || fail "lakeport creds --format aws-config"
sed 's/^/      | /' "$AWS_CONFIG_FILE"

step "awscli uploads, lists and downloads with temporary keys from STS"
aws_s3() { "$AWS" --profile infncloud s3 "$@"; }
aws_s3 mb s3://chain >/dev/null || fail "aws s3 mb"
ok "aws s3 mb s3://chain"
aws_s3 cp "$work/upload.bin" "s3://chain/$KEY" --only-show-errors || fail "aws s3 cp (upload)"
ok "aws s3 cp: uploaded $size bytes"
aws_s3 ls --recursive s3://chain/ | sed 's/^/      | /'
aws_s3 cp "s3://chain/$KEY" "$work/chain.bin" --only-show-errors || fail "aws s3 cp (download)"
cmp -s "$work/upload.bin" "$work/chain.bin" || fail "the bytes awscli downloaded differ"
ok "downloaded again: identical bytes"
# STS calls in RGW's access log (the IAM set-up calls were made as admin).
sts_calls="$(grep '"POST / HTTP/1.1" 200' "$work/ceph/log/client.rgw.log" | grep -vc ' - admin \[' || true)"
ok "$sts_calls STS call for 4 awscli runs: the keys came from lakeport's cache after the first"
if "$AWS" --profile infncloud s3 ls s3://chain/ --no-sign-request >/dev/null 2>&1; then
    fail "RGW accepted an unsigned request"
fi
ok "the same listing without the keys is refused"

step "lakeport s3: a multipart upload and a parallel, verified download with the same STS keys"
"$PYTHON" -c 'import os, sys; sys.stdout.buffer.write(os.urandom(13 * 1024 * 1024 + 7))' >"$work/big.bin" || fail "writing a 13 MiB file"
"$LAKEPORT" s3 cp --profile infncloud --quiet --part-size 5M --output json "$work/big.bin" "s3://chain/runs/run 42.h5" >"$work/put.json" ||
    fail "lakeport s3 cp (upload)"
"$PYTHON" - "$work/put.json" <<'PY' || fail "the upload answer is not what was asked for"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["parts"] == 3, r
print(f"    ok: uploaded {r['size']} bytes in {r['parts']} parts of 5 MiB, each with a Content-MD5 the server checked; ETag {r['etag']}")
PY
"$LAKEPORT" s3 ls --profile infncloud --recursive s3://chain/ | sed 's/^/      | /'
"$LAKEPORT" s3 cp --profile infncloud --quiet --part-size 5M "s3://chain/runs/run 42.h5" "$work/big.back" | sed 's/^/      | /'
cmp -s "$work/big.bin" "$work/big.back" || fail "the bytes lakeport downloaded differ"
ok "downloaded in parallel ranges, checked against the multipart ETag, renamed into place: identical bytes"

# ---------------------------------------------------------------------------
step "The components in this lakeport build"
"$LAKEPORT" components | sed 's/^/    /'

printf '\ndemo: all %d steps passed\n' "$step_no"

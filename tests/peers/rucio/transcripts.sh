#!/usr/bin/env bash
# Prints raw HTTP transcripts (Markdown) of the REST calls lakeport's Rucio
# client makes, against a fresh server from start.py (it registers test:ds1,
# test:file1 ... and rules, so run it once per fresh server):
#
#   tests/peers/rucio/transcripts.sh http://127.0.0.1:PORT [ISSUER] > /tmp/transcripts.md
#
# With ISSUER (a server started with --oidc-issuer ISSUER, the provider
# tests/peers/oidc-provider.mjs there; ACCESS_TTL=5 also shows an expired
# token) it adds the JWT access token transcripts at the end.
#
# Requests are shown as curl sends them ("> "), responses as received ("< "),
# then the body. Tokens are replaced by <token>, JWTs by <jwt>; after the first two
# transcripts the headers every exchange carries (Host, User-Agent, Accept: */*;
# Server, Date, Connection, Access-Control-*, Cache-Control, Pragma) are left
# out; everything else is verbatim.
set -euo pipefail
base="${1:?usage: transcripts.sh BASE_URL [OIDC_ISSUER]}"
issuer="${2:-}"
hostport="${base#http://}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

ROOT_PW=rucio-root-secret
JDOE_PW=jdoe-secret

# Real tokens become <token> (JWTs <jwt>); the made-up all-zero ones stay.
elide() {
    sed -E 's/(X-Rucio-Auth-Token: )eyJ[^[:space:]]+/\1<jwt>/; /0{32}|<jwt>/!s/(X-Rucio-Auth-Token: )[^[:space:]]+/\1<token>/; s/\r$//'
}

# Headers every request or answer carries, shown only in the first
# ${FULL:-2} transcripts (FULL=1000 shows them everywhere).
NOISE='^(> (Host|User-Agent):|> Accept: \*/\*$|< (Server|Date|Connection|Access-Control-[A-Za-z-]+|Cache-Control|Pragma):)'
ncall=0

# call TITLE METHOD PATH [BODY] [curl args...]: one transcript section.
# PATH may be a whole URL; the body is sent as $CTYPE (application/json).
call() {
    local title="$1" method="$2" path="$3" body="${4:-}"
    shift 3; [ $# -gt 0 ] && shift
    local args=(-sS -v -X "$method" "$@")
    if [ -n "$body" ]; then
        args+=(-H "Content-Type: ${CTYPE:-application/json}" --data-binary "$body")
    fi
    local url="$base$path"
    case "$path" in http*) url="$path" ;; esac
    curl "${args[@]}" -o "$tmp/body" "$url" 2>"$tmp/err" || true
    ncall=$((ncall + 1))
    local keep='^$'
    [ "$ncall" -gt "${FULL:-2}" ] && keep="$NOISE"
    printf '### %s\n\n```http\n' "$title"
    grep -E '^> ' "$tmp/err" | elide | grep -vE '^> $' | grep -vE "$keep" || true
    if [ -n "$body" ]; then
        printf '> \n> %s\n' "$body"
    fi
    grep -E '^< ' "$tmp/err" | elide | grep -vE "$keep" || true
    if [ -s "$tmp/body" ]; then
        sed -E 's/"access_token":"[^"]+"/"access_token":"<jwt>"/' "$tmp/body"
        [ "$(tail -c1 "$tmp/body" | od -An -c | tr -d ' ')" = '\n' ] || printf '\n(no newline at end of body)\n'
    else
        printf '(empty body)\n'
    fi
    printf '```\n\n'
}

token() { # account username password
    curl -sS -D - -o /dev/null -H "X-Rucio-Account: $1" -H "X-Rucio-Username: $2" -H "X-Rucio-Password: $3" \
        "$base/auth/userpass" | tr -d '\r' | sed -n 's/^X-Rucio-Auth-Token: //Ip'
}

header() { grep -i "^< $1:" "$tmp/err" | head -1 | sed -E "s/^< $1: //I" | tr -d '\r'; }

echo "## Authentication"
echo
call "GET /auth/userpass (root)" GET /auth/userpass "" \
    -H 'X-Rucio-Account: root' -H 'X-Rucio-Username: root' -H "X-Rucio-Password: $ROOT_PW"
call "GET /auth/userpass without X-Rucio-Account (the server picks the identity's account)" GET /auth/userpass "" \
    -H 'X-Rucio-Username: jdoe' -H "X-Rucio-Password: $JDOE_PW"
call "GET /auth/userpass, wrong password" GET /auth/userpass "" \
    -H 'X-Rucio-Account: root' -H 'X-Rucio-Username: root' -H 'X-Rucio-Password: wrong'
call "GET /auth/userpass, wrong password, no X-Rucio-Account" GET /auth/userpass "" \
    -H 'X-Rucio-Username: jdoe' -H 'X-Rucio-Password: wrong'
call "GET /auth/userpass, unknown user" GET /auth/userpass "" \
    -H 'X-Rucio-Account: nobody' -H 'X-Rucio-Username: nobody' -H 'X-Rucio-Password: x'
call "GET /auth/userpass, identity not mapped to the account" GET /auth/userpass "" \
    -H 'X-Rucio-Account: root' -H 'X-Rucio-Username: jdoe' -H "X-Rucio-Password: $JDOE_PW"

T="$(token root root "$ROOT_PW")"
J="$(token jdoe jdoe "$JDOE_PW")"
A=(-H "X-Rucio-Auth-Token: $T")
AJ=(-H "X-Rucio-Auth-Token: $J")

call "GET /auth/validate" GET /auth/validate "" "${A[@]}"
call "GET /accounts/whoami (303 to the account, relative Location)" GET /accounts/whoami "" "${A[@]}"
call "GET /accounts/root" GET /accounts/root "" "${A[@]}"
call "GET /accounts/whoami without a token" GET /accounts/whoami ""
call "GET /accounts/whoami with a bad token" GET /accounts/whoami "" -H 'X-Rucio-Auth-Token: root-root-unknown-00000000000000000000000000000000'
call "GET /ping (no token needed)" GET /ping ""

echo "## DIDs"
echo
call "POST /dids/{scope}/{name}: add a dataset" POST /dids/test/ds1 '{"type": "DATASET"}' "${A[@]}"
call "POST /dids/{scope}/{name}: the same again" POST /dids/test/ds1 '{"type": "DATASET"}' "${A[@]}"
call "POST /replicas: register two file replicas on SITE-A (no upload)" POST /replicas \
    '{"rse": "SITE-A", "files": [{"scope": "test", "name": "file1", "bytes": 12, "adler32": "1e720467", "md5": "6f5902ac237024bdd0c176cb93063dc4"}, {"scope": "test", "name": "file2", "bytes": 5, "adler32": "062c0215", "md5": "5d41402abc4b2a76b9719d911017c592", "meta": {"events": 10}}]}' "${A[@]}"
call "POST /replicas: the same file again" POST /replicas \
    '{"rse": "SITE-A", "files": [{"scope": "test", "name": "file1", "bytes": 12, "adler32": "1e720467", "md5": "6f5902ac237024bdd0c176cb93063dc4"}]}' "${A[@]}"
call "POST /dids/{scope}/{name}/dids: attach files to the dataset" POST /dids/test/ds1/dids \
    '{"dids": [{"scope": "test", "name": "file1"}, {"scope": "test", "name": "file2"}]}' "${A[@]}"
call "GET /dids/{scope}/{name}" GET /dids/test/ds1 "" "${A[@]}"
call "GET /dids/{scope}/{name} of a file" GET /dids/test/file1 "" "${A[@]}"
call "GET /dids/{scope}/{name}, unknown DID" GET /dids/test/nosuch "" "${A[@]}"
call "GET /dids/{scope}/{name}, unknown scope" GET /dids/nosuchscope/x "" "${A[@]}"
call "GET /dids/{scope}/dids/search (default type=collection)" GET '/dids/test/dids/search?name=*' "" "${A[@]}"
call "GET /dids/{scope}/dids/search?type=file&long=True" GET '/dids/test/dids/search?type=file&name=file*&long=True' "" "${A[@]}"
call "GET /dids/{scope}/dids/search?type=all, no match" GET '/dids/test/dids/search?type=all&name=zzz*' "" "${A[@]}"
call "GET /dids/{scope}/dids/search in an unknown scope (no error)" GET '/dids/nosuchscope/dids/search?name=*' "" "${A[@]}"
call "GET /dids/{scope}/{name}/dids: content" GET /dids/test/ds1/dids "" "${A[@]}"
call "GET /dids/{scope}/{name}/dids of an unknown DID" GET /dids/test/nosuch/dids "" "${A[@]}"
call "GET /dids/{scope}/{name}/dids with Accept: application/json (streams accept only x-json-stream)" GET /dids/test/ds1/dids "" "${A[@]}" -H 'Accept: application/json'
call "GET /dids/{scope}/{name}/files" GET /dids/test/ds1/files "" "${A[@]}"

echo "## Replicas"
echo
call "GET /rses/{rse}/lfns2pfns: where a new file goes (before it is registered)" GET '/rses/SITE-A/lfns2pfns?lfn=test:file9&lfn=user.jdoe:a/b.txt&scheme=s3&operation=write' "" "${A[@]}"
call "GET /rses/{rse}/lfns2pfns, default scheme (the first by priority)" GET '/rses/SITE-B/lfns2pfns?lfn=test:file9' "" "${A[@]}"
call "POST /replicas/list of a dataset" POST /replicas/list \
    '{"dids": [{"scope": "test", "name": "ds1"}], "all_states": false, "resolve_archives": true}' "${A[@]}"
call "POST /replicas/list, schemes [http]" POST /replicas/list \
    '{"dids": [{"scope": "test", "name": "file1"}], "schemes": ["http"]}' "${A[@]}"
call "POST /replicas/list, unknown DID" POST /replicas/list \
    '{"dids": [{"scope": "test", "name": "nosuch"}]}' "${A[@]}"

echo "## Rules"
echo
call "POST /rules/: to SITE-A, where the replicas are (OK at once)" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "ds1"}], "account": "root", "copies": 1, "rse_expression": "SITE-A", "grouping": "DATASET", "lifetime": null}' "${A[@]}"
RA="$(tr -d '[]" \n' <"$tmp/body")"
call "POST /rules/: to type=DISK\\SITE-A (SITE-B: REPLICATING)" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "ds1"}], "account": "root", "copies": 1, "rse_expression": "type=DISK\\SITE-A", "grouping": "DATASET", "comment": "lakeport"}' "${A[@]}"
RB="$(tr -d '[]" \n' <"$tmp/body")"
call "POST /rules/: the same rule again" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "ds1"}], "account": "root", "copies": 1, "rse_expression": "SITE-A", "grouping": "DATASET", "lifetime": null}' "${A[@]}"
call "POST /rules/: another expression for the same RSE is not a duplicate" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "ds1"}], "account": "root", "copies": 1, "rse_expression": "site=A"}' "${A[@]}"
RC="$(tr -d '[]" \n' <"$tmp/body")"
call "POST /rules/: unknown DID" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "nosuch"}], "account": "root", "copies": 1, "rse_expression": "SITE-A"}' "${A[@]}"
call "POST /rules/: RSE expression matching nothing" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "ds1"}], "account": "root", "copies": 1, "rse_expression": "NOWHERE"}' "${A[@]}"
call "POST /rules/: two copies on one RSE" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "file1"}], "account": "root", "copies": 2, "rse_expression": "SITE-A"}' "${A[@]}"
call "POST /rules/: jdoe, for account root" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "file1"}], "account": "root", "copies": 1, "rse_expression": "SITE-B"}' "${AJ[@]}"
call "GET /rules/{id} (SITE-A)" GET "/rules/$RA" "" "${A[@]}"
call "GET /rules/{id} (SITE-B, REPLICATING)" GET "/rules/$RB" "" "${A[@]}"
call "GET /rules/{id}/locks" GET "/rules/$RB/locks" "" "${A[@]}"
call "POST /replicas/list, all_states (SITE-B replicas are COPYING)" POST /replicas/list \
    '{"dids": [{"scope": "test", "name": "file1"}], "all_states": true}' "${A[@]}"
call "PUT /replicas: jdoe may not" PUT /replicas \
    '{"rse": "SITE-B", "files": [{"scope": "test", "name": "file1", "state": "A"}]}' "${AJ[@]}"
call "PUT /replicas: mark the SITE-B replicas AVAILABLE (as the conveyor would)" PUT /replicas \
    '{"rse": "SITE-B", "files": [{"scope": "test", "name": "file1", "state": "A"}, {"scope": "test", "name": "file2", "state": "A"}]}' "${A[@]}"
call "GET /rules/{id} (SITE-B, now OK)" GET "/rules/$RB" "" "${A[@]}"
call "PUT /replicas: a replica that does not exist" PUT /replicas \
    '{"rse": "SITE-B", "files": [{"scope": "test", "name": "nosuch", "state": "A"}]}' "${A[@]}"
call "GET /dids/{scope}/{name}/rules" GET /dids/test/ds1/rules "" "${A[@]}"
call "GET /rules/?account=root&state=O (filters: any rule column)" GET '/rules/?account=root&state=O' "" "${A[@]}"
call "GET /accounts/{account}/rules" GET /accounts/root/rules "" "${A[@]}"
call "PUT /rules/{id}: lifetime" PUT "/rules/$RA" '{"options": {"lifetime": 3600}}' "${A[@]}"
call "GET /rules/{id} after the lifetime change" GET "/rules/$RA" "" "${A[@]}"
call "PUT /rules/{id}: an unknown option" PUT "/rules/$RA" '{"options": {"colour": "blue"}}' "${A[@]}"
call "PUT /rules/{id}: unknown rule" PUT /rules/00000000000000000000000000000000 '{"options": {"lifetime": 60}}' "${A[@]}"
call "DELETE /rules/{id} without a body" DELETE "/rules/$RA" "" "${A[@]}"
call "DELETE /rules/{id}" DELETE "/rules/$RA" '{"purge_replicas": false}' "${A[@]}"
call "GET /rules/{id} of the deleted rule" GET "/rules/$RA" "" "${A[@]}"
call "PUT /rules/{id}: lifetime 0 (expires now; rucio-judge-cleaner --run-once then deletes it)" PUT "/rules/$RC" '{"options": {"lifetime": 0}}' "${A[@]}"
call "DELETE /rules/{id}: unknown rule" DELETE /rules/00000000000000000000000000000000 '{"purge_replicas": false}' "${A[@]}"

echo "## An RSE that is not writable"
echo
call "PUT /rses/{rse}: availability_write false" PUT /rses/SITE-B '{"availability_write": false}' "${A[@]}"
call "POST /replicas on it" POST /replicas \
    '{"rse": "SITE-B", "files": [{"scope": "test", "name": "file3", "bytes": 3, "adler32": "024d0127", "md5": "900150983cd24fb0d6963f7d28e17f72"}]}' "${A[@]}"
call "POST /rules/ to it" POST /rules/ \
    '{"dids": [{"scope": "test", "name": "file1"}], "account": "jdoe", "copies": 1, "rse_expression": "SITE-B"}' "${A[@]}"
call "PUT /rses/{rse}: availability_write true again" PUT /rses/SITE-B '{"availability_write": true}' "${A[@]}"

[ -n "$issuer" ] || exit 0

echo "## JWT access tokens (start.py --oidc-issuer)"
echo

# jwt [FORM]: a client-credentials token of the provider's client "service"
# (FORM: the form body; by default audience and scope rucio).
jwt() {
    curl -sS -u service:service-secret --data "${1:-grant_type=client_credentials&audience=rucio&scope=rucio}" \
        "$issuer/token" | sed -nE 's/.*"access_token":"([^"]+)".*/\1/p'
}
claims() { # the payload of a JWT, decoded
    python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; print(json.dumps(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))))' "$1"
}

CTYPE=application/x-www-form-urlencoded call "POST {issuer}/token: client credentials, audience and scope rucio (the provider, not Rucio)" \
    POST "$issuer/token" 'grant_type=client_credentials&audience=rucio&scope=rucio' -u service:service-secret
W="$(sed -nE 's/.*"access_token":"([^"]+)".*/\1/p' "$tmp/body")"
ttl="$(sed -nE 's/.*"expires_in":([0-9]+).*/\1/p' "$tmp/body")"
printf 'Its claims:\n\n```json\n%s\n```\n\n' "$(claims "$W")"
AW=(-H "X-Rucio-Auth-Token: $W")

call "GET /accounts/whoami with the JWT (its subject is mapped to jdoe)" GET /accounts/whoami "" "${AW[@]}"
call "GET /accounts/jdoe with the JWT" GET /accounts/jdoe "" "${AW[@]}"
call "GET /auth/validate with the JWT" GET /auth/validate "" "${AW[@]}"

W_S3="$(jwt 'grant_type=client_credentials&audience=s3&scope=rucio')"
printf 'A token for audience s3: `%s`\n\n' "$(claims "$W_S3")"
call "GET /accounts/whoami, JWT of the wrong audience" GET /accounts/whoami "" -H "X-Rucio-Auth-Token: $W_S3"
W_NOSCOPE="$(jwt 'grant_type=client_credentials&audience=rucio&scope=s3')"
printf 'A token without scope rucio: `%s`\n\n' "$(claims "$W_NOSCOPE")"
call "GET /accounts/whoami, JWT without scope rucio" GET /accounts/whoami "" -H "X-Rucio-Auth-Token: $W_NOSCOPE"
W_POST="$(curl -sS --data 'grant_type=client_credentials&audience=rucio&scope=rucio&client_id=service-post&client_secret=service-post-secret' \
    "$issuer/token" | sed -nE 's/.*"access_token":"([^"]+)".*/\1/p')"
printf 'A token of the client service-post: `%s`\n\n' "$(claims "$W_POST")"
call "GET /accounts/whoami, JWT whose subject has no Rucio identity" GET /accounts/whoami "" -H "X-Rucio-Auth-Token: $W_POST"
W_NEW="$(jwt)"
call "GET /accounts/whoami, a fresh JWT with its signature changed" GET /accounts/whoami "" -H "X-Rucio-Auth-Token: ${W_NEW%.*}.AAAA${W_NEW##*.}"
call "GET /accounts/whoami, garbage in JWT form" GET /accounts/whoami "" -H 'X-Rucio-Auth-Token: garbage.00000000000000000000000000000000.garbage'

if [ -n "$ttl" ] && [ "$ttl" -le 30 ]; then
    sleep "$((ttl + 1))"
    call "GET /accounts/whoami with the first JWT, now expired (it was accepted before)" GET /accounts/whoami "" "${AW[@]}"
else
    echo "transcripts.sh: tokens live ${ttl:-?} s; run the provider with ACCESS_TTL=5 to see an expired one" >&2
fi

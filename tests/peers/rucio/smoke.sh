#!/usr/bin/env bash
# Starts a Rucio server with start.py in a temporary directory and drives it
# with the real `rucio` CLI and Python client (the ones in the same venv):
# whoami, a dataset, replicas registered without upload, rules that are OK at
# once and REPLICATING, the replica state update that makes a REPLICATING rule
# OK, rule listing, lifetime update, deletion, and the errors lakeport maps.
# Exits non-zero on the first check that fails; stops the server on exit.
#
#   tests/peers/rucio/smoke.sh [PYTHON]     (default: .venv-rucio/bin/python)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
py="${1:-$root/.venv-rucio/bin/python}"
bin="$(dirname "$py")"
scratch="$(mktemp -d)"
port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

fail() { echo "smoke: FAILED: $*" >&2; tail -20 "$scratch/server.log" >&2 || true; exit 1; }
passed=0
check() { echo "smoke: ok: $*"; passed=$((passed + 1)); }

t0=$(date +%s.%N)
"$py" "$here/start.py" --scratch "$scratch" --port "$port" --s3 http://127.0.0.1:9 >"$scratch/start.out" 2>"$scratch/start.err" &
server_pid=$!
for _ in $(seq 1 600); do
    grep -q '^READY ' "$scratch/start.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$scratch/start.err" >&2; fail "start.py exited"; }
    sleep 0.1
done
grep -q "^READY http://127.0.0.1:$port\$" "$scratch/start.out" || fail "no READY line"
t1=$(date +%s.%N)
echo "smoke: server ready in $(echo "$t1 - $t0" | bc) s ($(tr '\n' ';' <"$scratch/start.err"))"

export RUCIO_CONFIG="$scratch/client-root.cfg"
rucio() { "$bin/rucio" "$@"; }

# First, while no token is cached (the client reuses a cached token whatever
# password it is given).
if out="$(rucio -u root --password wrong whoami 2>&1)"; then fail "wrong password accepted"; fi
grep -q CannotAuthenticate <<<"$out" || fail "wrong password: $out"; check "wrong password: CannotAuthenticate"
out="$(rucio whoami)"; grep -q 'account *: root' <<<"$out" || fail "whoami root: $out"; check "rucio whoami (root)"
out="$(RUCIO_CONFIG="$scratch/client-jdoe.cfg" rucio whoami)"; grep -q 'account *: jdoe' <<<"$out" || fail "whoami jdoe: $out"; check "rucio whoami (jdoe)"

rucio did add --type dataset test:ds1 >/dev/null; check "rucio did add --type dataset test:ds1"

SMOKE_IDS="$scratch/rule_ids" SMOKE_BIN="$bin" SMOKE_SERVER_CFG="$scratch/rucio.cfg" "$py" - <<'EOF' || fail "python client"
import os
import subprocess

from rucio.client import Client
from rucio.common.exception import DataIdentifierNotFound, DuplicateRule, ResourceTemporaryUnavailable, RSEWriteBlocked

c = Client()
passed = 0


def ok(msg):
    global passed
    passed += 1
    print('smoke: ok:', msg, flush=True)


c.add_replicas('SITE-A', [
    {'scope': 'test', 'name': 'file1', 'bytes': 12, 'adler32': '1e720467', 'md5': '6f5902ac237024bdd0c176cb93063dc4'},
    {'scope': 'test', 'name': 'file2', 'bytes': 5, 'adler32': '062c0215', 'md5': '5d41402abc4b2a76b9719d911017c592'},
])
c.attach_dids('test', 'ds1', [{'scope': 'test', 'name': 'file1'}, {'scope': 'test', 'name': 'file2'}])
ok('add_replicas on SITE-A and attach to test:ds1')

[reps] = list(c.list_replicas([{'scope': 'test', 'name': 'file1'}]))
assert reps['rses'] == {'SITE-A': ['s3://127.0.0.1:9/rucio-site-a/test/80/25/file1']}, reps
ok('list_replicas pfn ' + reps['rses']['SITE-A'][0])

[ra] = c.add_replication_rule([{'scope': 'test', 'name': 'ds1'}], 1, 'SITE-A')
[rb] = c.add_replication_rule([{'scope': 'test', 'name': 'ds1'}], 1, 'SITE-B')
assert c.get_replication_rule(ra)['state'] == 'OK'
assert c.get_replication_rule(rb)['state'] == 'REPLICATING'
ok('rule to SITE-A is OK, rule to SITE-B is REPLICATING')

try:
    c.add_replication_rule([{'scope': 'test', 'name': 'ds1'}], 1, 'SITE-A')
    raise SystemExit('duplicate rule accepted')
except DuplicateRule:
    ok('duplicate rule: DuplicateRule')

try:
    c.get_did('test', 'nosuch')
    raise SystemExit('unknown DID found')
except DataIdentifierNotFound:
    ok('unknown DID: DataIdentifierNotFound')

c.update_replicas_states('SITE-B', [{'scope': 'test', 'name': n, 'state': 'A'} for n in ('file1', 'file2')])
rule = c.get_replication_rule(rb)
assert (rule['state'], rule['locks_ok_cnt'], rule['locks_replicating_cnt']) == ('OK', 2, 0), rule
ok('update_replicas_states(SITE-B, A) turns the REPLICATING rule OK')

# Files attached after a rule exists get locks only from the judge-evaluator.
c.add_replicas('SITE-A', [{'scope': 'test', 'name': 'file4', 'bytes': 4, 'adler32': '03d8018b', 'md5': 'e2fc714c4727ee9395f324cd2e7f331f'}])
c.attach_dids('test', 'ds1', [{'scope': 'test', 'name': 'file4'}])
rule = c.get_replication_rule(rb)
assert (rule['state'], rule['locks_ok_cnt'], rule['locks_replicating_cnt']) == ('OK', 2, 0), rule
subprocess.run([os.environ['SMOKE_BIN'] + '/rucio-judge-evaluator', '--run-once'], check=True, capture_output=True,
               env=dict(os.environ, RUCIO_CONFIG=os.environ['SMOKE_SERVER_CFG']))
rule = c.get_replication_rule(rb)
assert (rule['state'], rule['locks_ok_cnt'], rule['locks_replicating_cnt']) == ('REPLICATING', 2, 1), rule
c.update_replicas_states('SITE-B', [{'scope': 'test', 'name': 'file4', 'state': 'A'}])
assert c.get_replication_rule(rb)['state'] == 'OK'
ok('a file attached later: rucio-judge-evaluator --run-once adds its lock, then the state update makes the rule OK')

c.update_rse('SITE-B', {'availability_write': False})
try:
    c.add_replicas('SITE-B', [{'scope': 'test', 'name': 'file3', 'bytes': 3, 'adler32': '024d0127'}], ignore_availability=False)
    raise SystemExit('replica on a non-writable RSE accepted')
except ResourceTemporaryUnavailable:
    ok('add_replicas on a non-writable RSE: ResourceTemporaryUnavailable')
try:
    c.add_replication_rule([{'scope': 'test', 'name': 'file1'}], 1, 'SITE-B', account='jdoe')
    raise SystemExit('rule to a non-writable RSE accepted')
except RSEWriteBlocked:
    ok('rule to a non-writable RSE: RSEWriteBlocked')
c.update_rse('SITE-B', {'availability_write': True})

open(os.environ['SMOKE_IDS'], 'w').write(f'{ra} {rb} {passed}\n')
EOF
read -r ra rb n <"$scratch/rule_ids"; passed=$((passed + n))

out="$(rucio rule list --did test:ds1)"; grep -q "$ra" <<<"$out" && grep -q "$rb" <<<"$out" || fail "rule list --did: $out"; check "rucio rule list --did test:ds1"
out="$(rucio rule list --account root)"; grep -q "$rb" <<<"$out" || fail "rule list --account: $out"; check "rucio rule list --account root"
rucio rule update --lifetime 3600 "$ra" >/dev/null
out="$(rucio rule show "$ra")"; grep -q 'Expires at: *[0-9]' <<<"$out" || fail "lifetime: $out"; check "rucio rule update --lifetime 3600"
rucio rule remove "$ra" >/dev/null; check "rucio rule remove (soft: expires within the hour)"
rucio rule update --lifetime 0 "$rb" >/dev/null
RUCIO_CONFIG="$scratch/rucio.cfg" "$bin/rucio-judge-cleaner" --run-once >/dev/null 2>&1
if out="$(rucio rule show "$rb" 2>&1)"; then fail "rule still there: $out"; fi
grep -q "No rule with the id" <<<"$out" || fail "deleted rule: $out"; check "lifetime 0 + rucio-judge-cleaner --run-once deletes the rule"

echo "smoke: $passed passed, 0 failed"

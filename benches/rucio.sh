#!/usr/bin/env bash
# Whole-process `lakeport rucio` beside the Python `rucio` CLI (41.5.1, the
# tests' peer), in one run against one real Rucio server on 127.0.0.1
# (tests/peers/rucio/start.py: SQLite, one gunicorn worker) whose RSEs point
# at a local s3s-fs:
#   - a scope search:      lakeport rucio ls 'test:*'
#                          rucio did list --filter type=all 'test:*'
#   - a dataset's content: lakeport rucio ls test:bench
#                          rucio did content list test:bench
#   - one rule:            lakeport rucio rule show RULE_ID
#                          rucio rule show RULE_ID
# The fixtures, made with the Python client as root: dataset test:bench of
# 200 files with replicas registered at SITE-A (bytes, adler32, md5), and a
# rule on it at SITE-A (OK at once). Both tools log in as root with
# userpass and keep their token: each command runs once untimed first, so
# the tokens are cached (and lakeport's compiled components, and Python's
# bytecode), then RUNS times, the tools interleaved and alternating which
# goes first. Wall time from time.perf_counter around the child, peak
# memory from its rusage (wait4: what GNU time's %M reports). Before the
# timings both tools' outputs are checked and compared (same DIDs with the
# same types, the same rule state and locks); every timed run must print
# what its untimed run printed. Results: target/bench-results/rucio.md
# (and stdout).
#
# Nothing is built here: build lakeport first (cargo build --release -p
# lakeport).
#
# Needs: ./dev setup (s3s-fs in .tools, the Rucio peer in .venv-rucio).
# Environment: RUNS (default 10), LAKEPORT (default target/release/lakeport),
# LAKEPORT_S3S_FS (as in the tests).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. benches/peers.sh
runs=${RUNS:-10}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
lakeport_bin=${LAKEPORT:-$target/release/lakeport}
rucio_bin=$root/.venv-rucio/bin/rucio
files=200
mkdir -p "$out"

"$lakeport_bin" rucio --help >/dev/null 2>&1 ||
    die "no lakeport with a rucio command at $lakeport_bin: cargo build --release -p lakeport (or set LAKEPORT)"
[ -x "$rucio_bin" ] || die "the rucio CLI is missing ($rucio_bin): run ./dev setup"

# Both clients on their own configuration only: nothing from the user's
# home, RUCIO_* or LAKEPORT_* settings (but LAKEPORT_S3S_FS, the peer), and
# no proxy for 127.0.0.1.
while read -r var; do
    case $var in LAKEPORT_S3S_FS) ;; RUCIO_* | LAKEPORT_* | X509_*) unset "$var" ;; esac
done < <(compgen -e)
export HOME=$scratch/home
export XDG_CONFIG_HOME=$HOME/.config XDG_CACHE_HOME=$scratch/cache XDG_DATA_HOME=$scratch/data
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME"

step "starting s3s-fs and a Rucio server"
start_s3s_fs
start_rucio "$s3s"
# The Python client and CLI as root (its token cached in $rucio_dir/tokens).
export RUCIO_CONFIG=$rucio_dir/client-root.cfg

step "fixtures: test:bench with $files files at SITE-A, and a rule on it"
rule_id=$("$rucio_python" - "$files" <<'PY'
import hashlib, sys, zlib
from rucio.client import Client

n = int(sys.argv[1])
c = Client()
files = []
for i in range(n):
    data = f"lakeport bench file {i}\n".encode() * (i + 1)
    files.append({"scope": "test", "name": f"bench.f{i:03d}", "bytes": len(data),
                  "adler32": f"{zlib.adler32(data):08x}", "md5": hashlib.md5(data).hexdigest()})
c.add_replicas(rse="SITE-A", files=files)
c.add_dataset(scope="test", name="bench")
c.attach_dids(scope="test", name="bench", dids=[{"scope": "test", "name": f["name"]} for f in files])
[rule] = c.add_replication_rule([{"scope": "test", "name": "bench"}], 1, "SITE-A")
got = c.get_replication_rule(rule)
assert (got["state"], got["locks_ok_cnt"]) == ("OK", n), got
print(rule)
PY
) || die "the fixtures could not be made: $(tail -n 20 "$rucio_dir/server.log")"
[[ $rule_id =~ ^[0-9a-f]{32}$ ]] || die "no rule id from the Python client: '$rule_id'"
echo "rule $rule_id: OK, $files locks" >&2

# lakeport: a profile logging in to the server as root with userpass.
cat >"$scratch/lakeport.toml" <<CONF
[profiles.bench]
rucio_host = "$rucio"
rucio_account = "root"
rucio_username = "root"
rucio_password = "$rucio_root_password"
CONF
export LAKEPORT_CONFIG=$scratch/lakeport.toml LAKEPORT_PROFILE=bench

# The commands of each row: lakeport's, then the rucio CLI's. Arrays by
# name: ROW_lakeport and ROW_rucio.
rows=(search content rule)
# shellcheck disable=SC2034
{
    search_lakeport=("$lakeport_bin" rucio ls 'test:*')
    search_rucio=("$rucio_bin" did list --filter type=all 'test:*')
    content_lakeport=("$lakeport_bin" rucio ls test:bench)
    content_rucio=("$rucio_bin" did content list test:bench)
    rule_lakeport=("$lakeport_bin" rucio rule show "$rule_id")
    rule_rucio=("$rucio_bin" rule show "$rule_id")
}
declare -A labels=(
    [search]="search a scope: \`ls 'test:*'\` ($((files + 1)) DIDs)"
    [content]="dataset content: \`ls test:bench\` ($files files)"
    [rule]="one rule: \`rule show RULE_ID\`"
)

# Warm-up: every command once, not timed; its stdout is kept in
# $scratch/ref/ROW-TOOL.out, what every timed run must print again.
step "warm-up: each command once (tokens, compiled components, bytecode)"
mkdir -p "$scratch/ref"
for row in "${rows[@]}"; do
    for tool in lakeport rucio; do
        declare -n cmd=${row}_$tool
        "${cmd[@]}" >"$scratch/ref/$row-$tool.out" 2>"$scratch/ref/$row-$tool.err" || {
            cat "$scratch/ref/$row-$tool.err" >&2
            die "$tool failed on $row: ${cmd[*]}"
        }
        [ -s "$scratch/ref/$row-$tool.out" ] || die "$tool printed nothing on $row: ${cmd[*]}"
        unset -n cmd
    done
done
[ -s "$XDG_CACHE_HOME/lakeport/rucio/bench.json" ] || die "lakeport cached no Rucio token"
"$lakeport_bin" -v rucio whoami >/dev/null 2>"$scratch/whoami.err" || die "lakeport rucio whoami failed: $(cat "$scratch/whoami.err")"
grep -q 'using the cached Rucio token' "$scratch/whoami.err" || die "lakeport does not use its cached Rucio token: $(cat "$scratch/whoami.err")"
ls "$rucio_dir"/tokens/* >/dev/null 2>&1 || die "the rucio CLI cached no token"

# "SCOPE:NAME TYPE" per DID, sorted: lakeport's table (DID TYPE BYTES) and
# the rucio CLI's boxed table (| SCOPE:NAME | [DID TYPE] |).
lakeport_dids() { awk 'NR == 1 { if ($1 != "DID") exit 1; next } { print $1, $2 }' "$1" | sort; }
rucio_dids() {
    awk -F'|' 'NF == 4 && $2 !~ /SCOPE:NAME/ { gsub(/ /, "", $2); gsub(/ /, "", $3); print $2, $3 }' "$1" | sort
}
# The same DIDs with the same types from both, COUNT of them, with EXPECT.
same_dids() { # ROW COUNT EXPECT_LINE...
    local row=$1 count=$2
    shift 2
    lakeport_dids "$scratch/ref/$row-lakeport.out" >"$scratch/$row-lakeport.dids" || die "lakeport's $row table has no DID header"
    rucio_dids "$scratch/ref/$row-rucio.out" >"$scratch/$row-rucio.dids"
    [ "$(wc -l <"$scratch/$row-lakeport.dids")" -eq "$count" ] ||
        die "lakeport lists $(wc -l <"$scratch/$row-lakeport.dids") DIDs on $row, not $count"
    diff "$scratch/$row-lakeport.dids" "$scratch/$row-rucio.dids" >"$scratch/$row.diff" || {
        head -n 20 "$scratch/$row.diff" >&2
        die "lakeport and the rucio CLI list different DIDs on $row"
    }
    for line in "$@"; do
        grep -qxF "$line" "$scratch/$row-lakeport.dids" || die "$row: '$line' is not listed"
    done
    [ "$(grep -c ' FILE$' "$scratch/$row-lakeport.dids")" -eq "$files" ] || die "$row: not $files files"
}

step "checking the outputs"
same_dids search $((files + 1)) "test:bench DATASET" "test:bench.f000 FILE" "test:bench.f199 FILE"
same_dids content "$files" "test:bench.f000 FILE" "test:bench.f199 FILE"
grep -q 'test:bench  *DATASET' "$scratch/ref/search-lakeport.out" || die "lakeport's search does not show test:bench"
# lakeport's byte counts are the registered ones.
"$rucio_python" - "$scratch/ref/content-lakeport.out" "$files" <<'PY' || die "lakeport's content listing has wrong sizes"
import sys
path, n = sys.argv[1], int(sys.argv[2])
sizes = {}
for line in open(path).read().splitlines()[1:]:
    did, _type, size = line.split()
    sizes[did] = int(size)
want = {f"test:bench.f{i:03d}": len(f"lakeport bench file {i}\n".encode()) * (i + 1) for i in range(n)}
assert sizes == want, "sizes differ"
PY
# The rule: lakeport's "name value" lines, the CLI's "Name: value" lines.
rule_l=$scratch/ref/rule-lakeport.out
rule_r=$scratch/ref/rule-rucio.out
grep -qx "id  *$rule_id" "$rule_l" || die "lakeport's rule show lacks the id: $(cat "$rule_l")"
grep -qx "did  *test:bench" "$rule_l" || die "lakeport's rule show lacks the DID: $(cat "$rule_l")"
grep -qx "state  *OK" "$rule_l" || die "lakeport's rule is not OK: $(cat "$rule_l")"
grep -qx "locks  *$files OK, 0 replicating, 0 stuck" "$rule_l" || die "lakeport's locks are wrong: $(cat "$rule_l")"
grep -qx "rse_expression  *SITE-A" "$rule_l" || die "lakeport's RSE expression is wrong: $(cat "$rule_l")"
grep -qx "Id:  *$rule_id" "$rule_r" || die "the CLI's rule show lacks the id: $(cat "$rule_r")"
grep -qx "Scope:  *test" "$rule_r" && grep -qx "Name:  *bench" "$rule_r" || die "the CLI's rule show lacks the DID: $(cat "$rule_r")"
grep -qx "State:  *OK" "$rule_r" || die "the CLI's rule is not OK: $(cat "$rule_r")"
grep -qx "Locks OK/REPLICATING/STUCK:  *$files/0/0" "$rule_r" || die "the CLI's locks are wrong: $(cat "$rule_r")"
grep -qx "RSE Expression:  *SITE-A" "$rule_r" || die "the CLI's RSE expression is wrong: $(cat "$rule_r")"
echo "both list the same $((files + 1)) DIDs of test and $files files of test:bench, and show rule $rule_id OK with $files locks" >&2

lakeport_version=$("$lakeport_bin" --version 2>/dev/null || echo "lakeport (version unknown)")
rucio_version=$("$rucio_bin" --version 2>&1)
sync
busy_before=$(busy_cpus)
if awk -v b="$busy_before" 'BEGIN { exit !(b > 0.25) }'; then
    echo "rucio.sh: warning: other work keeps $busy_before of $(nproc) CPUs busy; the timings will be noisy" >&2
fi

# The timing driver reads "ROW<TAB>TOOL<TAB>REF<TAB>ARG..." lines and writes
# "ROW TOOL RUN SECONDS MAXRSS_KIB" lines.
: >"$scratch/commands.tsv"
for row in "${rows[@]}"; do
    for tool in lakeport rucio; do
        declare -n cmd=${row}_$tool
        (IFS=$'\t' && echo "$row"$'\t'"$tool"$'\t'"$scratch/ref/$row-$tool.out"$'\t'"${cmd[*]}") >>"$scratch/commands.tsv"
        unset -n cmd
    done
done

step "timing ($runs runs of each command, interleaved)"
python3 - "$scratch/commands.tsv" "$runs" "$scratch/run.out" >"$scratch/results.tsv" <<'PY'
import os, subprocess, sys, time

spec, runs, run_out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
commands = [line.rstrip("\n").split("\t") for line in open(spec)]
rows = list(dict.fromkeys(c[0] for c in commands))
for run in range(1, runs + 1):
    for row in rows:
        pair = [c for c in commands if c[0] == row]
        if run % 2 == 0:
            pair.reverse()
        for _row, tool, ref, *argv in pair:
            with open(run_out, "wb") as out:
                start = time.perf_counter()
                child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
                _pid, status, usage = os.wait4(child.pid, 0)
                wall = time.perf_counter() - start
            code = os.waitstatus_to_exitcode(status)
            if code != 0:
                sys.exit(f"{tool} exited with {code} on {row} (run {run}): {' '.join(argv)}")
            if open(run_out, "rb").read() != open(ref, "rb").read():
                sys.exit(f"{tool} printed something else on {row} (run {run}) than in its untimed run")
            print(f"{row}\t{tool}\t{run}\t{wall:.6f}\t{usage.ru_maxrss}", flush=True)
            print(f"    {tool:<8} {row:<8} run {run}: {wall * 1000:8.1f} ms, {usage.ru_maxrss / 1024:6.1f} MiB max RSS",
                  file=sys.stderr, flush=True)
PY
busy_after=$(busy_cpus)

step "report"
{
    echo "## Rucio, whole process: \`lakeport rucio\` vs the \`rucio\` CLI (ms)"
    echo
    echo "One real Rucio server (PyPI rucio 41.5.1 under gunicorn, one sync worker, SQLite) on"
    echo "127.0.0.1; dataset test:bench of $files files at SITE-A with one rule. Both clients log in"
    echo "as root with userpass and reuse their cached token; each command ran once untimed, then"
    echo "$runs times, the tools interleaved. Outputs checked: the same DIDs and types, the same rule."
    echo "Target: lakeport 10× faster than the rucio CLI on every row."
    echo
    python3 - "$scratch/results.tsv" "$runs" "${labels[search]}" "${labels[content]}" "${labels[rule]}" <<'PY'
import collections, statistics, sys

path, runs, *labels = sys.argv[1:]
walls, rss = collections.defaultdict(list), collections.defaultdict(list)
for line in open(path):
    row, tool, _run, wall, kib = line.split("\t")
    walls[row, tool].append(float(wall) * 1000)
    rss[row, tool].append(int(kib))

def cell(row, tool):
    w = walls[row, tool]
    return f"{statistics.median(w):.1f} ({min(w):.1f}–{max(w):.1f})"

print(f"| command | lakeport median (min–max) | rucio CLI median (min–max) | speed-up (rucio / lakeport) | peak RSS MiB, lakeport / rucio CLI |")
print("|---|---:|---:|---:|---:|")
for row, label in zip(["search", "content", "rule"], labels):
    speedup = statistics.median(walls[row, "rucio"]) / statistics.median(walls[row, "lakeport"])
    peak = f"{max(rss[row, 'lakeport']) / 1024:.1f} / {max(rss[row, 'rucio']) / 1024:.1f}"
    print(f"| {label} | {cell(row, 'lakeport')} | {cell(row, 'rucio')} | {speedup:.1f}× | {peak} |")
PY
    echo
    echo "Commands: \`lakeport rucio ls 'test:*'\` / \`rucio did list --filter type=all 'test:*'\`"
    echo "(without the filter the CLI lists only collections); \`lakeport rucio ls test:bench\` /"
    echo "\`rucio did content list test:bench\`; \`lakeport rucio rule show RULE_ID\` / \`rucio rule show RULE_ID\`."
    echo "Peak RSS: the largest max RSS of the runs."
    echo
    echo "Tools: $lakeport_version; $rucio_version (Python $("$rucio_python" -c 'import platform; print(platform.python_version())'))."
    echo
    echo "Machine: $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d); CPUs busy with other work before the timings: $busy_before, after: $busy_after."
} | tee "$out/rucio.md"
echo "written to $out/rucio.md" >&2

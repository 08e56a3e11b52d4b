#!/usr/bin/env bash
# The gateway (`lakeport serve`, and the same component under `wasmtime
# serve` when .tools/bin/wasmtime is there) beside requests straight to the
# backend with presigned URLs, in one run against one local S3 server
# (SERVER: s3s-fs, the default, or rclone for `rclone serve s3`), tokens
# from the local OpenID provider. s3s-fs writes an answer's head and body
# apart, and without TCP_NODELAY the body then waits for the client's
# delayed ACK (about 40 ms): a small GET straight to it measures that wait,
# which the gateway's kept-alive backend connection does not meet; rclone
# answers at once, the baseline for the latency overhead.
#   - 4 KiB GETs with wrk, 1 and 16 connections, 10 s each: p50 and p99
#     latency and requests/s (target: p50 overhead at most 1 ms, keys
#     cached: the gateway signs with the profile's static keys here);
#   - one 1 GiB GET and one 1 GiB PUT with curl, through the gateway and on
#     a presigned URL (target: the gateway at least 90 % of direct);
#   - the gateway's peak RSS while 16 clients GET 1 GiB each at once
#     (target: at most 128 MiB).
# Results: target/bench-results/gateway-$SERVER.md (and stdout).
#
# Nothing is built here: build lakeport first (cargo build --release -p
# lakeport). Needs: ./dev setup (node peers, s3s-fs), wrk (installed if
# missing), curl, about 2 GiB free under TMPDIR.
# Environment: SERVER (s3s-fs or rclone), RUNS (1 GiB rows, default 3), LAKEPORT (default
# target/release/lakeport), SECONDS_PER_WRK (default 10), BIG_MIB (the
# large object's size, default 1024: smaller only to try the script out).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. benches/peers.sh
runs=${RUNS:-3}
wrk_secs=${SECONDS_PER_WRK:-10}
big_mib=${BIG_MIB:-1024}
server=${SERVER:-s3s-fs}
case $server in s3s-fs | rclone) ;; *) die "SERVER must be s3s-fs or rclone, not '$server'" ;; esac
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
lakeport=${LAKEPORT:-$target/release/lakeport}
wasmtime_bin=$root/.tools/bin/wasmtime
mkdir -p "$out"
"$lakeport" serve --help >/dev/null 2>&1 || die "no lakeport with 'serve' at $lakeport: cargo build --release -p lakeport"
command -v wrk >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk </dev/null >/dev/null 2>&1 || die "wrk is needed (apt install wrk)"

step "starting the OpenID provider and $server"
start_provider
case $server in
    s3s-fs) start_s3s_fs ;;
    rclone) start_rclone_s3 ;;
esac
gw_port=$(free_port)
cat >"$scratch/config.toml" <<CONF
[profiles.user]
issuer = "$issuer"
grant = "client_credentials"
client_id = "service"
client_secret = "service-secret"
audience = "object"

[profiles.gw]
s3_endpoint = "$s3s/"
addressing_style = "path"
region = "us-east-1"
access_key_id = "$s3s_access_key"
secret_access_key = "$s3s_secret_key"
[profiles.gw.gateway]
issuer = "$issuer"
audience = "object"
authorization = "backend"
listen = "127.0.0.1:$gw_port"
CONF
export LAKEPORT_CONFIG=$scratch/config.toml XDG_CACHE_HOME=$scratch/cache XDG_DATA_HOME=$scratch/data
token=$("$lakeport" token get --profile user)

step "writing the objects: 4 KiB and $big_mib MiB"
head -c 4096 /dev/urandom >"$scratch/small.bin"
head -c $((big_mib * 1024 * 1024)) /dev/urandom >"$scratch/big.bin"
"$lakeport" s3 mb --profile gw s3://bkt >/dev/null
"$lakeport" s3 cp --profile gw -q "$scratch/small.bin" s3://bkt/small.bin
"$lakeport" s3 cp --profile gw -q "$scratch/big.bin" s3://bkt/big.bin
presigned_small=$("$lakeport" s3 presign --profile gw s3://bkt/small.bin)
presigned_big=$("$lakeport" s3 presign --profile gw s3://bkt/big.bin)
presigned_put=$("$lakeport" s3 presign --profile gw --method PUT s3://bkt/put-direct.bin)

# Starts a gateway host NAME in the background; sets $gw (its URL), $gw_pid.
start_gateway() { # NAME
    local port
    case $1 in
        "lakeport serve")
            setsid "$lakeport" serve --profile gw </dev/null >"$scratch/serve.out" 2>"$scratch/serve.log" &
            gw_pid=$!
            gw="http://127.0.0.1:$gw_port"
            ;;
        "wasmtime serve")
            port=$(free_port)
            "$lakeport" components --export "$scratch/components" >/dev/null
            setsid "$wasmtime_bin" serve --addr "127.0.0.1:$port" -S config -S keyvalue --max-instance-reuse-count 1000 --idle-instance-timeout 60s \
                -S "config-var=issuer=$issuer" -S config-var=audience=object -S config-var=authorization=backend \
                -S "config-var=s3_endpoint=$s3s" -S config-var=region=us-east-1 \
                -S "config-var=access_key_id=$s3s_access_key" -S "config-var=secret_access_key=$s3s_secret_key" \
                "$scratch/components/gateway.wasm" </dev/null >"$scratch/serve.out" 2>"$scratch/serve.log" &
            gw_pid=$!
            gw="http://127.0.0.1:$port"
            ;;
    esac
    peer_pids+=("$gw_pid")
    for _ in $(seq 200); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$gw/bkt/small.bin")" = 200 ] && return 0
        sleep 0.1
    done
    die "$1 does not serve: $(tail -n 5 "$scratch/serve.log")"
}

stop_gateway() {
    kill -- "-$gw_pid" 2>/dev/null || kill "$gw_pid" 2>/dev/null || true
    wait "$gw_pid" 2>/dev/null || true
}

# One wrk run: prints "p50_ms p99_ms requests_per_s".
wrk_row() { # CONNECTIONS URL [HEADER]
    local args=(-t "$(($1 < 2 ? 1 : 2))" -c "$1" -d "${wrk_secs}s" --latency)
    [ -n "${3:-}" ] && args+=(-H "$3")
    wrk "${args[@]}" "$2" >"$scratch/wrk.out" 2>&1 || die "wrk failed: $(tail -n 3 "$scratch/wrk.out")"
    grep -q "Non-2xx" "$scratch/wrk.out" && die "wrk saw errors: $(grep Non-2xx "$scratch/wrk.out")"
    python3 - "$scratch/wrk.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(r"^\s*" + label + r"\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
print(f"{ms('50%'):.3f} {ms('99%'):.3f} {rps:.0f}")
PY
}

# CPU seconds (user + system) a process has used so far.
cpu_seconds() { # PID
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# Median MiB/s of RUNS curl transfers: prints "median min max".
curl_rate() { # curl args...
    local speeds=() i
    for i in $(seq "$runs"); do
        speeds+=("$(curl -s -f -o /dev/null -w '%{speed_download} %{speed_upload}' "$@" | awk '{ print ($1 > $2 ? $1 : $2) / 1048576 }')") \
            || die "curl failed: $*"
    done
    printf '%s\n' "${speeds[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f %.1f %.1f", a[int((NR + 1) / 2)], a[1], a[NR] }'
}

rows=$scratch/rows
: >"$rows"
step "direct: presigned URLs to $server"
for c in 1 16; do echo "small $c direct $(wrk_row "$c" "$presigned_small")" >>"$rows"; done
echo "get direct $(curl_rate "$presigned_big")" >>"$rows"
echo "put direct $(curl_rate -T "$scratch/big.bin" "$presigned_put")" >>"$rows"

hosts=("lakeport serve")
[ -x "$wasmtime_bin" ] && hosts+=("wasmtime serve")
for host in "${hosts[@]}"; do
    step "through $host"
    start_gateway "$host"
    for c in 1 16; do echo "small $c $host $(wrk_row "$c" "$gw/bkt/small.bin" "Authorization: Bearer $token")" >>"$rows"; done
    # The gateway's own CPU time per GiB moved, over the RUNS transfers.
    cpu_before=$(cpu_seconds "$gw_pid")
    echo "get $host $(curl_rate -H "Authorization: Bearer $token" "$gw/bkt/big.bin")" >>"$rows"
    cpu_after=$(cpu_seconds "$gw_pid")
    echo "cpu get $host $(awk -v a="$cpu_before" -v b="$cpu_after" -v n="$runs" -v m="$big_mib" 'BEGIN { printf "%.2f", (b - a) / n / (m / 1024) }')" >>"$rows"
    echo "put $host $(curl_rate -H "Authorization: Bearer $token" -T "$scratch/big.bin" "$gw/bkt/put-gw.bin")" >>"$rows"
    echo "cpu put $host $(awk -v a="$cpu_after" -v b="$(cpu_seconds "$gw_pid")" -v n="$runs" -v m="$big_mib" 'BEGIN { printf "%.2f", (b - a) / n / (m / 1024) }')" >>"$rows"
    # 16 clients at once, each a whole 1 GiB GET; VmHWM is the peak RSS
    # of the gateway's process since it started.
    pids=()
    for i in $(seq 16); do curl -s -f -o /dev/null -H "Authorization: Bearer $token" "$gw/bkt/big.bin" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || die "a concurrent GET through $host failed"; done
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$gw_pid/status")
    echo "rss $host $((hwm / 1024))" >>"$rows"
    stop_gateway
done

step "report"
python3 - "$rows" "$out/gateway-$server.md" "$(busy_cpus)" "$runs" "$wrk_secs" "$server" <<'PY'
import sys
rows, path, busy, runs, secs, server = sys.argv[1:7]
small, rate, rss, cpu, hosts = {}, {}, {}, {}, []
for line in open(rows):
    kind, rest = line.split(" ", 1)
    if kind == "cpu":
        transfer, rest = rest.split(" ", 1)
        *name, seconds = rest.split()
        cpu[(transfer, " ".join(name))] = float(seconds)
        continue
    if kind == "small":
        c, rest = rest.split(" ", 1)
        *name, p50, p99, rps = rest.split()
        small[(int(c), " ".join(name))] = (float(p50), float(p99), float(rps))
    elif kind in ("get", "put"):
        *name, med, lo, hi = rest.split()
        rate[(kind, " ".join(name))] = (float(med), float(lo), float(hi))
    else:
        *name, mib = rest.split()
        rss[" ".join(name)] = int(mib)
    n = " ".join(name)
    if n != "direct" and n not in hosts:
        hosts.append(n)
server = "rclone serve s3" if server == "rclone" else server
out = [f"## The gateway vs presigned requests straight to {server}", ""]
out += [f"4 KiB GETs: wrk, {secs} s per row. 1 GiB rows: curl, median of {runs} (min–max).", ""]
out += ["### 4 KiB GETs", "", "| connections | path | p50 ms | p99 ms | requests/s | p50 overhead ms |", "|---:|---|---:|---:|---:|---:|"]
for c in (1, 16):
    base = small[(c, "direct")]
    out.append(f"| {c} | direct (presigned) | {base[0]:.3f} | {base[1]:.3f} | {base[2]:.0f} | |")
    for h in hosts:
        r = small[(c, h)]
        out.append(f"| {c} | {h} | {r[0]:.3f} | {r[1]:.3f} | {r[2]:.0f} | {r[0] - base[0]:.3f} |")
out += ["", "### 1 GiB transfers (MiB/s)", "", "| transfer | path | MiB/s | of direct | gateway CPU s per GiB |", "|---|---|---:|---:|---:|"]
for kind in ("get", "put"):
    base = rate[(kind, "direct")]
    out.append(f"| {kind.upper()} | direct (presigned, curl) | {base[0]:.1f} ({base[1]:.1f}–{base[2]:.1f}) | | |")
    for h in hosts:
        r = rate[(kind, h)]
        out.append(f"| {kind.upper()} | {h} | {r[0]:.1f} ({r[1]:.1f}–{r[2]:.1f}) | {100 * r[0] / base[0]:.0f} % | {cpu[(kind, h)]:.2f} |")
out += ["", "### Peak RSS of the gateway with 16 concurrent 1 GiB GETs", "", "| host | MiB |", "|---|---:|"]
out += [f"| {h} | {rss[h]} |" for h in hosts]
out += ["", "### Targets (issue 15)", "", "| target | measured | verdict |", "|---|---:|---:|"]
for h in hosts:
    for c in (1, 16):
        o = small[(c, h)][0] - small[(c, "direct")][0]
        # s3s-fs's direct answers wait for delayed ACKs: no baseline.
        verdict = "no baseline: use SERVER=rclone" if server == "s3s-fs" else "met" if o <= 1 else "not met"
        out.append(f"| {h}, {c} connection(s): p50 overhead ≤ 1 ms | {o:.3f} ms | {verdict} |")
    for kind in ("get", "put"):
        f = rate[(kind, h)][0] / rate[(kind, "direct")][0]
        out.append(f"| {h}, 1 GiB {kind.upper()} ≥ 90 % of direct | {100 * f:.0f} % | {'met' if f >= 0.9 else 'not met'} |")
    out.append(f"| {h}, peak RSS ≤ 128 MiB | {rss[h]} MiB | {'met' if rss[h] <= 128 else 'not met'} |")
out += ["", f"CPUs busy with other work after the run: {busy}. The clients, the gateway and {server} share the machine's CPUs."]
text = "\n".join(out) + "\n"
open(path, "w").write(text)
print(text)
PY

# Sourced by the whole-process benchmarks: local peers on 127.0.0.1 and
# oidc-agent with a registered account, all stopped on exit.
# Needs: ./dev setup. Provides: step, die, free_port, start_provider,
# start_oidc_agent, start_moto, start_s3s_fs, start_rclone_s3, start_ceph_rgw, start_rucio, use_bench_profile,
# prepare_bench, busy_cpus, write_report, and $scratch (removed on exit).

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/lakeport-bench.XXXXXX")
peer_pids=()
stop_peers() {
    local pid
    for pid in "${peer_pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
    # Gone before the script ends (Rucio's gunicorn takes 2-3 s to stop);
    # whatever still runs after 20 s is killed.
    for pid in "${peer_pids[@]}"; do
        for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$scratch"
}
trap stop_peers EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # URL
    for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
    die "nothing answers at $1"
}

# Sets $issuer.
start_provider() {
    local port
    port=$(free_port)
    setsid node tests/peers/oidc-provider.mjs "$port" >"$scratch/provider.log" 2>&1 &
    peer_pids+=($!)
    issuer="http://127.0.0.1:$port"
    wait_http "$issuer/.well-known/openid-configuration"
}

# Sets $moto (STS and S3 endpoint) with role s3access.
start_moto() {
    local port
    port=$(free_port)
    LAKEPORT_MOTO_ROLES=s3access setsid .venv/bin/python tests/peers/moto_server.py -H 127.0.0.1 -p "$port" >"$scratch/moto.log" 2>&1 &
    peer_pids+=($!)
    moto="http://127.0.0.1:$port"
    wait_http "$moto/"
}

# s3s-fs (.tools, or $LAKEPORT_S3S_FS as in the tests) with SigV4 auth over
# a directory of $scratch. Sets $s3s (the endpoint), $s3s_data (the
# directory: bucket/key files, and its own .bucket-*.json beside them),
# $s3s_bin, and the keys $s3s_access_key and $s3s_secret_key.
start_s3s_fs() {
    local port
    s3s_bin=${LAKEPORT_S3S_FS:-$PWD/.tools/bin/s3s-fs}
    [ -x "$s3s_bin" ] || die "s3s-fs is missing ($s3s_bin): run ./dev setup"
    port=$(free_port)
    s3s_data=$scratch/s3s-data
    s3s_access_key=bench-access-key
    s3s_secret_key=bench-secret-key
    mkdir -p "$s3s_data"
    setsid "$s3s_bin" --host 127.0.0.1 --port "$port" --access-key "$s3s_access_key" --secret-key "$s3s_secret_key" \
        "$s3s_data" </dev/null >"$scratch/s3s-fs.log" 2>&1 &
    peer_pids+=($!)
    s3s="http://127.0.0.1:$port"
    wait_http "$s3s/"
}

# `rclone serve s3` (.venv) with SigV4 auth over a directory of $scratch,
# setting the same variables as start_s3s_fs (the keys are rclone's own
# test keys: it refuses short ones).
start_rclone_s3() {
    local port
    s3s_bin=$PWD/.venv/bin/rclone
    [ -x "$s3s_bin" ] || die "rclone is missing ($s3s_bin): run ./dev setup"
    port=$(free_port)
    s3s_data=$scratch/rclone-data
    s3s_access_key=benchAccessKeyId0001
    s3s_secret_key=benchSecretAccessKey0123456789
    mkdir -p "$s3s_data"
    setsid "$s3s_bin" serve s3 --auth-key "$s3s_access_key,$s3s_secret_key" --addr "127.0.0.1:$port" \
        --config "$scratch/rclone-server.conf" --cache-dir "$scratch/rclone-server-cache" \
        "$s3s_data" </dev/null >"$scratch/rclone-server.log" 2>&1 &
    peer_pids+=($!)
    s3s="http://127.0.0.1:$port"
    wait_http "$s3s/"
}

# Prints the URL of a peer started with stdout to LOG.out and stderr to
# LOG.err once it prints "READY URL"; dies if PID exits first or SECONDS pass.
await_ready() { # PID LOG SECONDS WHAT
    local _i
    for _i in $(seq $(($3 * 10))); do
        grep -q '^READY ' "$2.out" && { sed -n 's/^READY //p' "$2.out"; return; }
        kill -0 "$1" 2>/dev/null || die "$4 did not start: $(cat "$2.err")"
        sleep 0.1
    done
    die "$4 did not start within $3 s: $(cat "$2.err")"
}

# A real single-node Ceph RADOS Gateway (tests/peers/ceph/start.py: one
# monitor, one memstore OSD of MEMSTORE_MIB, radosgw) with the tests' user,
# setting the same variables as start_s3s_fs but $s3s_data (objects live in
# the OSD's memory), plus $rgw_conf (its ceph.conf, for radosgw-admin) and
# $rgw_daemons (the PIDs of radosgw, ceph-osd and ceph-mon).
start_ceph_rgw() { # [MEMSTORE_MIB]
    local port pid
    command -v radosgw >/dev/null 2>&1 || die "radosgw is missing: run ./dev setup"
    port=$(free_port)
    s3s_bin=$(command -v radosgw)
    s3s_data=""
    s3s_access_key=lakeportTestAccessKey
    s3s_secret_key=lakeportTestSecretKey0123456789
    rgw_conf=$scratch/ceph/ceph.conf
    setsid .venv/bin/python tests/peers/ceph/start.py --scratch "$scratch/ceph" --port "$port" \
        --memstore-mib "${1:-1024}" </dev/null >"$scratch/rgw.out" 2>"$scratch/rgw.err" &
    pid=$!
    peer_pids+=($pid)
    s3s=$(await_ready "$pid" "$scratch/rgw" 60 "Ceph RGW")
    [ "$s3s" = "http://127.0.0.1:$port" ] || die "Ceph RGW is not on port $port: $s3s"
    rgw_daemons=$(pgrep -P "$pid" | tr '\n' ' ')
}

# A real Rucio server (tests/peers/rucio/start.py in .venv-rucio: SQLite,
# one gunicorn worker) whose RSEs SITE-A and SITE-B point at S3_ENDPOINT,
# built in $scratch/rucio. Sets $rucio (its URL), $rucio_dir (rucio.cfg,
# client-root.cfg and client-jdoe.cfg for the Python client, server.log),
# $rucio_python and $rucio_root_password (root's userpass password).
start_rucio() { # S3_ENDPOINT
    local port pid
    rucio_python=$PWD/.venv-rucio/bin/python
    [ -x "$rucio_python" ] || die "the Rucio peer is missing ($rucio_python): run ./dev setup"
    port=$(free_port)
    rucio_dir=$scratch/rucio
    setsid "$rucio_python" tests/peers/rucio/start.py --scratch "$rucio_dir" --port "$port" --s3 "$1" \
        --loglevel WARNING </dev/null >"$scratch/rucio.out" 2>"$scratch/rucio.err" &
    pid=$!
    peer_pids+=($pid)
    rucio=$(await_ready "$pid" "$scratch/rucio" 180 "the Rucio server")
    [ "$rucio" = "http://127.0.0.1:$port" ] || die "the Rucio server is not on port $port: $rucio"
    rucio_root_password=$(sed -n 's/^password = //p' "$rucio_dir/client-root.cfg")
    [ -n "$rucio_root_password" ] || die "no root password in $rucio_dir/client-root.cfg"
}

# Starts oidc-agent (exports OIDC_SOCK) and registers account NAME with the
# device flow against $issuer, approved through the provider's test route.
start_oidc_agent() { # NAME
    local name=$1 code="" gen
    export OIDC_CONFIG_DIR=$scratch/agent-config
    mkdir -p -m 0700 "$OIDC_CONFIG_DIR"
    export OIDC_SOCK=$scratch/agent.sock
    setsid oidc-agent -d --json --log-stderr --socket-path "$OIDC_SOCK" >"$scratch/agent.log" 2>&1 &
    peer_pids+=($!)
    for _ in $(seq 100); do [ -S "$OIDC_SOCK" ] && break; sleep 0.05; done
    export OIDC_ENCRYPTION_PW=bench-password
    setsid oidc-gen "$name" --iss="$issuer" --client-id=device-basic --client-secret=device-basic-secret \
        --scope="openid offline_access profile s3 rucio" --flow=device --pw-env --no-url-call \
        --confirm-default --prompt=none </dev/null >"$scratch/gen.out" 2>"$scratch/gen.err" &
    gen=$!
    peer_pids+=($gen)
    for _ in $(seq 200); do
        code=$(grep -ao 'enter the code: [A-Z0-9-]*' "$scratch/gen.err" | head -1 | sed 's/.*: //') || true
        [ -n "$code" ] && break
        sleep 0.05
    done
    [ -n "$code" ] || die "oidc-gen printed no user code: $(cat "$scratch/gen.err")"
    # The audience is granted at approval, as on an IAM consent page.
    curl -fsS -X POST "$issuer/test/device/approve?user_code=$code&audience=object" >/dev/null
    wait "$gen" || die "oidc-gen failed: $(cat "$scratch/gen.err")"
}

# A lakeport configuration with profile `bench`: the provider's service
# account (audience "object") plus EXTRA lines; caches under $scratch.
use_bench_profile() { # [EXTRA]
    cat >"$scratch/config.toml" <<CONF
[profiles.bench]
issuer = "$issuer"
grant = "client_credentials"
client_id = "service"
client_secret = "service-secret"
audience = "object"
${1:-}
CONF
    export LAKEPORT_CONFIG=$scratch/config.toml XDG_CACHE_HOME=$scratch/cache XDG_DATA_HOME=$scratch/data
}

need_hyperfine() {
    command -v hyperfine >/dev/null 2>&1 && return
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine </dev/null >/dev/null 2>&1 || die "hyperfine is needed (apt install hyperfine)"
}

# Checks the tools, builds lakeport in release. Sets $out (the results
# folder) and $lakeport (the binary).
prepare_bench() {
    local target=${CARGO_TARGET_DIR:-$PWD/target}
    out=$target/bench-results
    mkdir -p "$out"
    need_hyperfine
    for tool in node oidc-agent oidc-gen oidc-token curl; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run ./dev setup"
    done
    step "building lakeport (release)"
    cargo build --release --locked -p lakeport >&2
    lakeport=$target/release/lakeport
}

# CPUs kept busy by other work over one second (from /proc/stat, as in
# run.sh); the load average would count the script's own setup.
busy_cpus() {
    local a b
    read -ra a </proc/stat
    sleep 1
    read -ra b </proc/stat
    awk -v u="$((b[1] + b[2] + b[3] + b[6] + b[7] - a[1] - a[2] - a[3] - a[6] - a[7]))" \
        -v t="$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] - a[1] - a[2] - a[3] - a[4] - a[5] - a[6] - a[7]))" \
        -v n="$(nproc)" 'BEGIN { printf "%.2f", (t > 0 ? u / t : 0) * n }'
}

# The timings of $scratch/hf.json (hyperfine's JSON export) as a Markdown
# table under TITLE, written to $out/NAME.md and shown.
write_report() { # TITLE NAME
    {
        echo "## $1"
        echo
        echo "| command | median | mean | min | runs |"
        echo "|---|---:|---:|---:|---:|"
        python3 - "$scratch/hf.json" <<'PY'
import json, statistics, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = [x * 1000 for x in r["times"]]
    print(f"| {r['command']} | {statistics.median(t):.2f} | {statistics.mean(t):.2f} | {min(t):.2f} | {len(t)} |")
PY
        echo
        echo "Machine: $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d)."
    } | tee "$out/$2.md"
    echo "written to $out/$2.md" >&2
}

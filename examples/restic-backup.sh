#!/usr/bin/env bash
# INFN Cloud's restic backup recipe, without Docker: restic talks to
# `rclone serve restic`, which stores the repository in S3 through the rclone
# remote of examples/rclone.conf, whose keys come from `lakeport creds`.
#
#   restic-backup.sh init | backup DIR... | restore SNAPSHOT --target DIR | snapshots | ...
#     (any restic command and its arguments)
#
# Environment:
#   RESTIC_PASSWORD or RESTIC_PASSWORD_FILE   the repository's password (restic's own)
#   LAKEPORT_RESTIC_REMOTE   rclone remote and path (default infncloud:restic)
#   RCLONE_CONFIG, AWS_PROFILE, AWS_CONFIG_FILE   as for rclone (see rclone.conf)
set -euo pipefail

remote=${LAKEPORT_RESTIC_REMOTE:-infncloud:restic}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp "${TMPDIR:-/tmp}/restic-rclone.XXXXXX")

rclone serve restic "$remote" --addr "127.0.0.1:$port" >"$log" 2>&1 &
server=$!
stop_server() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -f "$log"
}
trap stop_server EXIT

# Wait until rclone listens (it exits at once on a bad remote).
for _ in $(seq 100); do
    if ! kill -0 "$server" 2>/dev/null; then
        echo "restic-backup.sh: rclone serve restic failed:" >&2
        cat "$log" >&2
        exit 1
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

export RESTIC_REPOSITORY="rest:http://127.0.0.1:$port/"
restic "$@"

#!/usr/bin/env bash
# Creates (or refreshes) the venv of the Rucio peer from requirements.txt:
#
#   tests/peers/rucio/setup.sh [VENV]     (default: .venv-rucio at the repository root)
#
# Idempotent: a venv whose stamp matches requirements.txt is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${1:-$root/.venv-rucio}"
req="$here/requirements.txt"
stamp="$venv/.lakeport-rucio-pins"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [ -x "$venv/bin/gunicorn" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
fi
python="$(command -v python3)" || { echo "rucio peer: python3 is needed" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
echo "rucio peer: installing $(grep -E '^rucio==' "$req") into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" </dev/null
printf '%s\n' "$want" >"$stamp"

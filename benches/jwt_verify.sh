#!/usr/bin/env bash
# RS256 verification, µs per token: the gateway's verifier (claims, key
# lookup, signature: the code its component runs) compiled for
# wasm32-wasip2 with the components' profile and run by the wasmtime CLI,
# the same code native, and the native `jsonwebtoken` crate (ring), one
# 2048-bit key and token for all. Results: target/bench-results/jwt_verify.md.
#
# Needs: ./dev setup (.venv with Python's cryptography, .tools/bin/wasmtime
# for the wasm row). Builds lakeport-jwt-bench natively and for wasm.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. benches/peers.sh
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/bench-results
mkdir -p "$out"
wasmtime_bin=$root/.tools/bin/wasmtime

step "building the verifier natively and for wasm32-wasip2"
cargo build --locked --release -p lakeport-jwt-bench >&2
cargo build --locked --profile component --target wasm32-wasip2 -p lakeport-jwt-bench >&2
native=$target/release/lakeport-jwt-bench
wasm=$target/wasm32-wasip2/component/lakeport-jwt-bench.wasm

step "a key, its JWKS and a token"
.venv/bin/python - "$scratch" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
n = key.public_key().public_numbers()
jwk = {"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
       "n": b64(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")), "e": b64(n.e.to_bytes(3, "big"))}
now = int(time.time())
header = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
claims = {"iss": "https://iam.example/", "sub": "alice", "aud": "object", "iat": now, "exp": now + 3600,
          "scope": "storage.read:/ storage.create:/"}
signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
open(sys.argv[1] + "/jwks.json", "w").write(json.dumps({"keys": [jwk]}))
open(sys.argv[1] + "/token", "w").write(signing_input + "." + b64(sig))
PY
jwks=$(cat "$scratch/jwks.json")
token=$(cat "$scratch/token")
args=("$jwks" "$token" "https://iam.example/" "object")

step "timing"
rows=()
if [ -x "$wasmtime_bin" ]; then
    rows+=("| the gateway's verifier, wasm32-wasip2 in wasmtime (as in the component) | $("$wasmtime_bin" run "$wasm" "${args[@]}") |")
else
    rows+=("| the gateway's verifier, wasm32-wasip2 in wasmtime (as in the component) | not run: no .tools/bin/wasmtime |")
fi
rows+=("| the gateway's verifier, native | $("$native" "${args[@]}") |")
rows+=("| jsonwebtoken 9 (ring), native | $("$native" "${args[@]}" jsonwebtoken) |")
{
    echo "## RS256 verification (µs per token, median of 9 rounds of 200)"
    echo
    echo "| verifier | µs |"
    echo "|---|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Machine: $(uname -m), $(nproc) CPUs, $(date -u +%Y-%m-%d); CPUs busy with other work: $(busy_cpus)."
} | tee "$out/jwt_verify.md"

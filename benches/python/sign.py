"""µs per SigV4 signature from Python: lakeport's sigv4 component through
the lakeport package (and, for comparison, its exports through wasmtime's
generic component API) against botocore's S3SigV4Auth, on the same request:
AWS's S3 GET-object-with-Range example at its fixed signing time. Every
signer's signature is checked against AWS's published one before it is
timed; rounds are interleaved and the medians reported.

    python sign.py [--rounds N] [--iterations N] [--warmup N] [--json FILE]
"""

import argparse
import datetime
import importlib.metadata
import json
import statistics
import sys
import time
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import lakeport
import wasmtime
import wasmtime.component as wc
from lakeport import _runtime

EXPECTED = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
URL = "https://examplebucket.s3.amazonaws.com/test.txt"
AMZ_DATE = "20130524T000000Z"
KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def signature_of(authorization):
    return authorization.rsplit("Signature=", 1)[1]


def package_sign():
    signed = lakeport.sign("GET", URL, headers=[("Range", "bytes=0-9")], access_key_id=KEY_ID, secret_access_key=SECRET, region="us-east-1", time=AMZ_DATE)
    return signed.signature


signer = lakeport.Signer(KEY_ID, SECRET, region="us-east-1")


def package_signer():
    return signer.sign("GET", URL, headers=[("Range", "bytes=0-9")], time=AMZ_DATE).signature


# The component's exports called as wasmtime's documentation shows: the
# function handle looked up once, each call through `Func.__call__`.
store = wasmtime.Store(_runtime.engine())
instance = wc.Linker(_runtime.engine()).instantiate(store, _runtime.component("sigv4"))
sign_records = _runtime.export_func(store, instance, "sigv4", "sign")
sign_flat = _runtime.export_func(store, instance, "sigv4", "sign-flat")


def generic_records():
    request = _runtime.record(method="GET", url=URL, headers=[("Range", "bytes=0-9")], payload=wc.Variant("empty"))
    credentials = _runtime.record(access_key_id=KEY_ID, secret_access_key=SECRET, session_token=None)
    options = _runtime.record(region="us-east-1", service="s3", time=AMZ_DATE, presign_expires=None, normalize_path=True, sign_body=False, sign_session_token=True)
    return sign_records(store, request, credentials, options).signature


def generic_flat():
    out = sign_flat(store, "GET", URL, "Range\0bytes=0-9", 1, "", KEY_ID, SECRET, "", "us-east-1", "s3", AMZ_DATE, 0, True, False, True)
    return out.split("\0", 2)[1]


fixed = datetime.datetime.strptime(AMZ_DATE, "%Y%m%dT%H%M%SZ")
credentials = Credentials(KEY_ID, SECRET)


def botocore_s3sigv4auth():
    # A fresh request and signer per signature, as botocore's RequestSigner does.
    request = AWSRequest(method="GET", url=URL, headers={"Range": "bytes=0-9"})
    botocore.auth.S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
    return signature_of(request.headers["Authorization"])


SIGNERS = [
    ("lakeport.sign (package: sign-flat, types read once)", package_sign),
    ("lakeport.Signer.sign", package_signer),
    ("component sign-flat via wasmtime Func.__call__", generic_flat),
    ("component sign (records) via wasmtime Func.__call__", generic_records),
    (f"botocore {botocore.__version__} S3SigV4Auth.add_auth", botocore_s3sigv4auth),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--json")
    args = parser.parse_args()
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: fixed):
        for name, fn in SIGNERS:
            got = fn()
            if got != EXPECTED:
                sys.exit(f"{name} signs {got}, not AWS's {EXPECTED}")
            for _ in range(args.warmup):
                fn()
        per_signer = {name: [] for name, _ in SIGNERS}
        for _ in range(args.rounds):
            for name, fn in SIGNERS:
                start = time.perf_counter()
                for _ in range(args.iterations):
                    fn()
                per_signer[name].append((time.perf_counter() - start) / args.iterations * 1e6)
    results = [{"signer": name, "median_us": statistics.median(us), "min_us": min(us), "max_us": max(us)} for name, us in per_signer.items()]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(f"python {sys.version.split()[0]}, wasmtime {importlib.metadata.version('wasmtime')}, "
          f"{args.rounds} rounds x {args.iterations} signatures after {args.warmup} warm-up, µs per signature")
    print("| signer | median µs | min | max |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['signer']} | {r['median_us']:.1f} | {r['min_us']:.1f} | {r['max_us']:.1f} |")


if __name__ == "__main__":
    main()

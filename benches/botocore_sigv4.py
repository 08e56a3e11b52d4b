#!/usr/bin/env python3
"""Time per signature of botocore's S3 SigV4 signer on lakeport's benchmark
requests.

Reads the request set written by the Rust benchmark (cases.json: requests,
fixed signing time, credentials and the signature every signer produced),
signs each request with botocore at that same time, checks the signature
matches, then times it:

- header signing: S3SigV4Auth(credentials, 's3', region).add_auth(AWSRequest(...))
- the presigned GET: S3SigV4QueryAuth(..., expires=N).add_auth(...), the
  signer botocore's generate_presigned_url uses.

Each timed iteration builds a fresh AWSRequest (add_auth mutates it) and a
signer, as botocore's RequestSigner does per request. botocore always hashes
the body itself, so for the precomputed-hash PUT it gets the body bytes
(a few KiB; hashlib's C SHA-256 adds about a microsecond).

Output, one line per case and one summary line, machine-readable:
  botocore case=NAME median_us=X mean_us=Y iterations=N
  botocore all median_us_per_signature=X
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from unittest import mock

try:
    # awscli 1.x ships its own botocore; importing awscli puts it on the path.
    import awscli  # noqa: F401
except ImportError:
    pass
import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def make_request(case):
    # AWSRequest takes a mapping; the cases never repeat a header name.
    return AWSRequest(
        method=case["method"],
        url=case["url"],
        headers=dict(case["headers"]),
        data=case["body"].encode() if case["body"] else None,
    )


def make_signer(doc, case):
    creds = Credentials(doc["access_key_id"], doc["secret_access_key"], case["session_token"])
    if case["presign_expires"] is not None:
        return botocore.auth.S3SigV4QueryAuth(creds, doc["service"], doc["region"], expires=case["presign_expires"])
    return botocore.auth.S3SigV4Auth(creds, doc["service"], doc["region"])


def signature_of(request, presign):
    if presign:
        return request.url.rsplit("X-Amz-Signature=", 1)[1]
    return request.headers["Authorization"].rsplit("Signature=", 1)[1]


def sign_once(doc, case):
    request = make_request(case)
    make_signer(doc, case).add_auth(request)
    return request


def time_case(doc, case, seconds, batch):
    """Median and mean microseconds per signature over batches of `batch`."""
    presign = case["presign_expires"] is not None
    per_sig = []
    total = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(per_sig) < 20:
        requests = [make_request(case) for _ in range(batch)]
        start = time.perf_counter()
        for request in requests:
            make_signer(doc, case).add_auth(request)
        elapsed = time.perf_counter() - start
        per_sig.append(elapsed / batch * 1e6)
        total += batch
    # The last signed request must still carry the expected signature.
    assert signature_of(requests[-1], presign) == case["signature"]
    return statistics.median(per_sig), statistics.fmean(per_sig), total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", help="cases.json written by the Rust benchmark")
    parser.add_argument("--seconds", type=float, default=3.0, help="measurement time per case")
    parser.add_argument("--batch", type=int, default=200, help="signatures per timed batch")
    args = parser.parse_args()

    with open(args.cases) as f:
        doc = json.load(f)
    for case in doc["cases"]:
        names = [n.lower() for n, _ in case["headers"]]
        if len(names) != len(set(names)):
            sys.exit(f"{case['name']}: repeated header names are not supported here")
    fixed = datetime.datetime.strptime(doc["amz_date"], "%Y%m%dT%H%M%SZ")
    print(f"# botocore {botocore.__version__}, python {sys.version.split()[0]}", flush=True)

    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: fixed):
        # Same signatures as the other signers, or the timing means nothing.
        for case in doc["cases"]:
            got = signature_of(sign_once(doc, case), case["presign_expires"] is not None)
            if got != case["signature"]:
                request = make_request(case)
                signer = make_signer(doc, case)
                request.context["timestamp"] = doc["amz_date"]
                signer._modify_request_before_signing(request)
                sys.exit(
                    f"botocore disagrees on {case['name']}: {got} != {case['signature']}\n"
                    f"botocore canonical request:\n{signer.canonical_request(request)}"
                )
            print(f"# verified {case['name']} {got}", flush=True)

        medians = []
        for case in doc["cases"]:
            for _ in range(200):  # warm up
                sign_once(doc, case)
            median, mean, n = time_case(doc, case, args.seconds, args.batch)
            medians.append(median)
            print(f"botocore case={case['name']} median_us={median:.3f} mean_us={mean:.3f} iterations={n}", flush=True)
    print(f"botocore all median_us_per_signature={statistics.fmean(medians):.3f}", flush=True)


if __name__ == "__main__":
    main()

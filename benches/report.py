#!/usr/bin/env python3
"""Side-by-side table of benches/run.sh's results (standard library only).

Reads criterion's estimates (TARGET/criterion/sigv4/IMPL/CASE/new/estimates.json),
the botocore script's output and hyperfine's JSON export (or the fallback
loop's), prints a Markdown table and writes it to OUT/sigv4.md.
"""

import argparse
import json
import os
import re
import statistics
import sys

CASES = ["get_range", "put_precomputed_token", "list_objects_v2", "presign_get"]
RUST = [
    ("component_oneshot", "sigv4 component via host, one-shot `sign`"),
    ("component_signer", "sigv4 component via host, reused `signer`"),
    ("component_send", "sigv4 component via host, reused `signer`, `sign-for-sending`"),
    ("native_oneshot", "lakeport-sigv4 native, one-shot"),
    ("native_signer", "lakeport-sigv4 native, reused `Signer`"),
    ("aws_sigv4", "aws-sigv4 1.6.4 (native)"),
]


def criterion_median_us(target, impl, case):
    path = os.path.join(target, "criterion", "sigv4", impl, case, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"] / 1000.0


def botocore_results(path):
    per_case, version, hashing = {}, "botocore", {}
    with open(path) as f:
        for line in f:
            m = re.match(r"botocore case=(\S+) median_us=([\d.]+)", line)
            if m:
                per_case[m.group(1)] = float(m.group(2))
            m = re.match(r"botocore case=(\S+) .*body_sha256_us=([\d.]+)", line)
            if m:
                hashing[m.group(1)] = float(m.group(2))
            m = re.match(r"# botocore (\S+)", line)
            if m:
                version = f"botocore {m.group(1).rstrip(',')}"
    return per_case, version, hashing


def fmt(x):
    return f"{x:,.2f}" if x < 100 else f"{x:,.1f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--botocore", required=True)
    p.add_argument("--process", required=True, help="hyperfine JSON export or fallback JSON")
    p.add_argument("--process-tool", default="hyperfine")
    p.add_argument("--cold-ms", type=float)
    p.add_argument("--machine", default="")
    args = p.parse_args()

    rows = []
    for impl, label in RUST:
        per = [criterion_median_us(args.target, impl, c) for c in CASES]
        rows.append((impl, label, per))
    boto, boto_label, boto_hashing = botocore_results(args.botocore)
    missing = [c for c in CASES if c not in boto]
    if missing:
        sys.exit(f"botocore results lack {missing}")
    rows.append(("botocore", f"{boto_label} S3SigV4Auth / S3SigV4QueryAuth", [boto[c] for c in CASES]))
    mean = {impl: statistics.fmean(per) for impl, _, per in rows}

    with open(args.process) as f:
        proc = json.load(f)["results"][0]
    proc_median_ms = proc["median"] * 1000
    proc_mean_ms = proc["mean"] * 1000
    proc_min_ms = proc["min"] * 1000
    proc_runs = len(proc.get("times", [])) or proc.get("runs", 0)

    lines = []
    lines.append("## SigV4: time per signature (median µs; same 4 S3 requests, same fixed time, verified identical signatures)")
    lines.append("")
    lines.append("| signer | " + " | ".join(CASES) + " | **mean µs/signature** |")
    lines.append("|---|" + "---:|" * (len(CASES) + 1))
    for impl, label, per in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(x) for x in per) + f" | **{fmt(mean[impl])}** |")
    for case, us in boto_hashing.items():
        lines.append("")
        lines.append(
            f"botocore always hashes the body itself: its {case} figure includes {us:.1f} µs of hashlib SHA-256 "
            "over the body; the other signers are given the precomputed hash."
        )
    lines.append("")
    r_one = mean["component_oneshot"] / mean["aws_sigv4"]
    r_res = mean["component_signer"] / mean["aws_sigv4"]
    b_one = mean["botocore"] / mean["component_oneshot"]
    b_res = mean["botocore"] / mean["component_signer"]
    r_send = mean["component_send"] / mean["aws_sigv4"]
    b_send = mean["botocore"] / mean["component_send"]
    ok = lambda cond: "PASS" if cond else "FAIL"
    lines.append("| ratio | value | target | |")
    lines.append("|---|---:|---|---|")
    lines.append(f"| component one-shot / aws-sigv4 | {r_one:.2f}x | ≤ 2x | {ok(r_one <= 2)} |")
    lines.append(f"| component signer / aws-sigv4 | {r_res:.2f}x | ≤ 2x | {ok(r_res <= 2)} |")
    lines.append(f"| botocore / component one-shot | {b_one:.1f}x | ≥ 10x | {ok(b_one >= 10)} |")
    lines.append(f"| botocore / component signer | {b_res:.1f}x | ≥ 10x | {ok(b_res >= 10)} |")
    lines.append(f"| component sign-for-sending / aws-sigv4 | {r_send:.2f}x | ≤ 2x | {ok(r_send <= 2)} |")
    lines.append(f"| botocore / component sign-for-sending | {b_send:.1f}x | ≥ 10x | {ok(b_send >= 10)} |")
    lines.append(f"| native core one-shot / aws-sigv4 | {mean['native_oneshot'] / mean['aws_sigv4']:.2f}x | (info) | |")
    lines.append(f"| component one-shot / native core one-shot (host + wasm overhead) | {mean['component_oneshot'] / mean['native_oneshot']:.2f}x | (info) | |")
    lines.append("")
    lines.append("## `lakeport sign`, whole process, warm compiled-component cache")
    lines.append("")
    lines.append("| measure | median ms | mean ms | min ms | runs | target | |")
    lines.append("|---|---:|---:|---:|---:|---|---|")
    lines.append(
        f"| {args.process_tool} | {proc_median_ms:.2f} | {proc_mean_ms:.2f} | {proc_min_ms:.2f} | {proc_runs} | < 20 ms | {ok(proc_median_ms < 20)} |"
    )
    if args.cold_ms is not None:
        lines.append(f"| first run, empty cache (compiles the component; one run) | {args.cold_ms:.1f} | | | 1 | (info) | |")
    if args.machine:
        lines.append("")
        lines.append(args.machine)
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "sigv4.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

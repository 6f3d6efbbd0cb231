#!/usr/bin/env python3
"""Summarise Nsight Compute's per-instruction warp-stall samples of each profiled kernel.

Input: the CSV of `ncu --import REPORT --page source --csv --print-source sass` (one table per
kernel launch). For each launch it prints the samples in total, the stall reasons of the whole
kernel, the same per region (the code between block barriers, BAR.SYNC: usually start-up, main
loop, reduction), and the instructions with the most samples and their top reasons. This is how
session 8 found the decode GEMV's local-memory stores (docs/perf-cuda-notes.md).

usage: tools/bench/ncu-stalls.py SOURCE.csv [--top N] [--kernel SUBSTRING]
"""
import csv
import sys


def kernels(rows):
    cur = None
    for r in rows:
        if r and r[0] == "Kernel Name":
            cur = {"name": r[1] if len(r) > 1 else "?", "head": None, "body": []}
            yield cur
        elif r and r[0] == "Address" and cur is not None:
            cur["head"] = r
        elif cur is not None and cur["head"] and len(r) == len(cur["head"]):
            cur["body"].append(r)


def num(s):
    try:
        return int(float(s))
    except ValueError:
        return 0


def reasons(body, idx, cols, top):
    agg = {c[6:]: sum(num(r[idx[c]]) for r in body) for c in cols}
    return ", ".join(f"{k} {v}" for v, k in sorted(((v, k) for k, v in agg.items() if v), reverse=True)[:top])


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    top, want = 15, None
    args = argv[2:]
    while args:
        if args[0] == "--top" and len(args) > 1:
            if not args[1].isdigit() or int(args[1]) < 1:
                print(f"ncu-stalls: --top takes a positive count, not {args[1]!r}", file=sys.stderr)
                return 2
            top, args = int(args[1]), args[2:]
        elif args[0] == "--kernel" and len(args) > 1:
            want, args = args[1], args[2:]
        else:
            print(f"ncu-stalls: unknown argument {args[0]}", file=sys.stderr)
            return 2
    try:
        with open(argv[1], newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        print(f"ncu-stalls: {e}", file=sys.stderr)
        return 1
    n = 0
    for k in list(kernels(rows)):  # the generator fills each launch after yielding it
        if want and want not in k["name"]:
            continue
        h, body = k["head"], k["body"]
        if not h or not body:
            continue
        idx = {c: i for i, c in enumerate(h)}
        if "Warp Stall Sampling (All Samples)" not in idx or "Source" not in idx:
            print(f"ncu-stalls: {k['name'][:60]}: no stall-sampling columns (profile with --set full)", file=sys.stderr)
            continue
        n += 1
        S = idx["Warp Stall Sampling (All Samples)"]
        cols = [c for c in h if c.startswith("stall_") and "Not Issued" not in c]
        total = sum(num(r[S]) for r in body) or 1
        print(f"== {k['name'][:150]}")
        print(f"   {len(body)} instructions, {total} samples; reasons: {reasons(body, idx, cols, 10)}")
        cuts = [0] + [i + 1 for i, r in enumerate(body) if "BAR.SYNC" in r[idx["Source"]]] + [len(body)]
        for a, b in zip(cuts, cuts[1:]):
            if b <= a:
                continue
            s = sum(num(r[S]) for r in body[a:b])
            if s:
                print(f"   region {a:5d}-{b - 1:5d}: {100.0 * s / total:5.1f}%  {reasons(body[a:b], idx, cols, 6)}")
        print("   top instructions:")
        for r in sorted(body, key=lambda r: -num(r[S]))[:top]:
            s = num(r[S])
            if not s:
                break
            det = sorted(((num(r[idx[c]]), c[6:]) for c in cols if num(r[idx[c]])), reverse=True)[:3]
            print(f"   {100.0 * s / total:5.1f}%  {r[idx['Source']].strip()[:64]:64s} {', '.join(f'{k} {v}' for v, k in det)}")
    if not n:
        print("ncu-stalls: no kernel with stall samples in the file", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

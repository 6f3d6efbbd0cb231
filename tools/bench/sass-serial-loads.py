#!/usr/bin/env python3
"""Flag CUDA kernels whose global loads ptxas serialised by register reuse.

A load written as `v = cond ? __ldg(p) : 0` inside an unrolled loop, or a load-then-store loop, can
compile to one register that is zeroed, loaded and consumed before the next load into it is issued:
each load then waits a full memory round trip for the one before. This session's SASS reading found
three such chains (the decode GEMV's x staging, the MoE router's logits, the MoE experts' group
parameters). The check here is a heuristic: per kernel, how many global loads write a register that
one of the previous three global loads also wrote. High ratios are worth reading in the SASS.

usage: tools/bench/sass-serial-loads.py OBJECT_OR_BINARY... [--top N]
needs cuobjdump and nvdisasm on PATH (CUDA toolkit, or PyPI's nvidia-cuda-cuobjdump and
nvidia-cuda-nvdisasm wheels) and c++filt.
"""
import re
import subprocess
import sys


def scan(sass):
    res, fn, recent, hits, total = {}, None, [], 0, 0
    for line in sass.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            if fn and total:
                res[fn] = (hits, total)
            fn, recent, hits, total = m.group(1), [], 0, 0
            continue
        m = re.search(r"\bLDG\.E[.\w]* (R\d+),", line)
        if m and fn:
            reg = m.group(1)
            total += 1
            hits += reg in recent
            recent = (recent + [reg])[-3:]
    if fn and total:
        res[fn] = (hits, total)
    return res


def main(argv):
    top = 25
    files = []
    it = iter(argv)
    for a in it:
        if a == "--top":
            v = next(it, "")
            if not v.isdigit() or int(v) < 1:
                print(f"sass-serial-loads: --top takes a positive count, not {v!r}", file=sys.stderr)
                return 2
            top = int(v)
        else:
            files.append(a)
    if not files:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    res = {}
    for f in files:
        try:
            out = subprocess.run(["cuobjdump", "-sass", f], capture_output=True, text=True)
        except FileNotFoundError:
            print("cuobjdump is not on PATH (CUDA toolkit, or PyPI's nvidia-cuda-cuobjdump)", file=sys.stderr)
            return 1
        if out.returncode != 0:
            print(f"cuobjdump failed on {f}: {out.stderr.strip()}", file=sys.stderr)
            return 1
        res.update(scan(out.stdout))
    ranked = sorted(res.items(), key=lambda kv: -kv[1][0] / kv[1][1])[:top]
    names = subprocess.run(["c++filt"], input="\n".join(k for k, _ in ranked), capture_output=True,
                           text=True).stdout.splitlines()
    print("reused/loads  kernel")
    for (_, (h, t)), name in zip(ranked, names):
        print(f"{h:6d}/{t:<5d}  {name[:100]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

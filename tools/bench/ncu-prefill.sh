#!/bin/bash
# Nsight Compute's duration of every kernel of one prefill (a short llama2-7b AWQ bench, -p 512 by
# default: the warm-up and the timed prefill; AWQ_CUDA_NO_GRAPH=1; ncu serialises the kernels, so
# these are isolated kernel times), summed per kernel name: where a prefill's time goes. The sums
# cover both prefills (halve them), the load-time repack kernels (q4_repack_*) and the few one-token
# decode launches (q4_gemv2, attn_warp). Device machine, from the repository root:
#   BIN=.bin bash tools/bench/ncu-prefill.sh        (carry .bin .deps)
# MODEL, PRECISION, P (prompt length) pick another run; the CSV stays in $OUT.
set -u
OUT=${OUT:-/tmp/awq-gpu-out}
BIN=$(cd "${BIN:-.bin}" && pwd)
mkdir -p "$OUT"
. tools/bench/device-deps.sh
export PATH=/usr/local/cuda/bin:$PATH AWQ_PLUGIN_DIR=$BIN AWQ_CUDA_NO_GRAPH=1
m=${MODEL:-llama2-7b} pr=${PRECISION:-awq} p=${P:-512}
f="$OUT/ncu_prefill_${m}_${pr}_$p.csv"
timeout 400 ncu --clock-control none --csv --print-units base --metrics gpu__time_duration.sum \
	"$BIN/awqrun" bench --synthetic "$m" --precision "$pr" --backend cuda -p "$p" -n 1 -r 1 --no-predict \
	>"$f" 2>"$f.err"
echo "ncu prefill $m $pr pp$p: rc=$?"
python3 - "$f" <<'PY'
import collections, csv, sys
hdr, tot, cnt = None, collections.Counter(), collections.Counter()
for r in csv.reader(open(sys.argv[1])):
    if r and r[0] == 'ID':
        hdr = r
        continue
    if not hdr or len(r) != len(hdr):
        continue
    d = dict(zip(hdr, r))
    if d.get('Metric Name') != 'gpu__time_duration.sum':
        continue
    name = d['Kernel Name'].split('(')[0][:70]
    tot[name] += float(d['Metric Value'].replace(',', '')) / 1e3  # ncu prints 138,720
    cnt[name] += 1
all_us = sum(tot.values())
print(f"{'kernel':70s} {'launches':>8s} {'us total':>10s} {'share':>6s}")
for k, v in tot.most_common(30):
    print(f"{k:70s} {cnt[k]:8d} {v:10.1f} {100 * v / all_us:5.1f}%")
print(f"all kernels: {all_us:.1f} us")
PY

#!/bin/bash
# Nsight Compute's duration of every kernel of one prefill (a short llama2-7b AWQ bench, -p 512 by
# default: the warm-up and the timed prefill; AWQ_CUDA_NO_GRAPH=1; ncu serialises the kernels, so
# these are isolated kernel times), summed per kernel name: where a prefill's time goes. The sums
# cover both prefills (halve them), the load-time repack kernels (q4_repack_*) and the few one-token
# decode launches (q4_gemv2, attn_warp). Device machine, from the repository root:
#   BIN=.bin bash tools/bench/ncu-prefill.sh        (carry .bin .deps)
# MODEL, PRECISION, P (prompt length) pick another run; the CSV stays in $OUT.
set -u
. tools/bench/ncu-env.sh
m=${MODEL:-llama2-7b} pr=${PRECISION:-awq} p=${P:-512}
f="$OUT/ncu_prefill_${m}_${pr}_$p.csv"
timeout 400 ncu --clock-control none --csv --print-units base --metrics gpu__time_duration.sum \
	"$BIN/awqrun" bench --synthetic "$m" --precision "$pr" --backend cuda -p "$p" -n 1 -r 1 --no-predict \
	>"$f" 2>"$f.err"
echo "ncu prefill $m $pr pp$p: rc=$?"
python3 tools/bench/ncu-csv.py names "$f"

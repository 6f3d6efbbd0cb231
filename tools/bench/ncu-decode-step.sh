#!/bin/bash
# Nsight Compute's duration of every decode GEMV and add + RMSNorm launch of about one decode step
# (launches 200-399 of a short llama2-7b AWQ run; AWQ_CUDA_NO_GRAPH=1, so ncu serialises them and
# programmatic launch does not overlap them: isolated kernel times), once with the producer-epilogue
# norm (default) and once with AWQ_CUDA_EPINORM=0, summarised per kernel instantiation and grid.
# Device machine, from the repository root:  BIN=.bin bash tools/bench/ncu-decode-step.sh  (carry .bin .deps)
# MODEL=NAME picks another synthetic preset. The CSVs stay in $OUT.
set -u
. tools/bench/ncu-env.sh
for e in 1 0; do
	AWQ_CUDA_EPINORM=$e timeout 250 ncu --clock-control none --csv --print-units base \
		--metrics gpu__time_duration.sum,launch__grid_size,launch__registers_per_thread,launch__block_size \
		-k regex:'q4_gemv2|add_rmsnorm' --launch-skip 200 --launch-count 200 \
		"$BIN/awqrun" bench --synthetic "${MODEL:-llama2-7b}" --precision awq --backend cuda -p 16 -n 6 -r 1 \
		--no-predict >"$OUT/ncu_$e.csv" 2>"$OUT/ncu_$e.err"
	echo "AWQ_CUDA_EPINORM=$e: rc=$?"
	python3 tools/bench/ncu-csv.py launches "$OUT/ncu_$e.csv"
done

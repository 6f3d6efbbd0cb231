#!/bin/bash
# Nsight Compute's duration of every decode GEMV and add + RMSNorm launch of about one decode step
# (launches 200-399 of a short llama2-7b AWQ run; AWQ_CUDA_NO_GRAPH=1, so ncu serialises them and
# programmatic launch does not overlap them: isolated kernel times), once with the producer-epilogue
# norm (default) and once with AWQ_CUDA_EPINORM=0, summarised per kernel instantiation and grid.
# Device machine, from the repository root:  BIN=.bin bash tools/bench/ncu-decode-step.sh  (carry .bin .deps)
# MODEL=NAME picks another synthetic preset. The CSVs stay in $OUT.
set -u
OUT=${OUT:-/tmp/awq-gpu-out}
BIN=$(cd "${BIN:-.bin}" && pwd)
mkdir -p "$OUT"
. tools/bench/device-deps.sh
export PATH=/usr/local/cuda/bin:$PATH AWQ_PLUGIN_DIR=$BIN AWQ_CUDA_NO_GRAPH=1
for e in 1 0; do
	AWQ_CUDA_EPINORM=$e timeout 250 ncu --clock-control none --csv --print-units base \
		--metrics gpu__time_duration.sum,launch__grid_size,launch__registers_per_thread,launch__block_size \
		-k regex:'q4_gemv2|add_rmsnorm' --launch-skip 200 --launch-count 200 \
		"$BIN/awqrun" bench --synthetic "${MODEL:-llama2-7b}" --precision awq --backend cuda -p 16 -n 6 -r 1 \
		--no-predict >"$OUT/ncu_$e.csv" 2>"$OUT/ncu_$e.err"
	echo "AWQ_CUDA_EPINORM=$e: rc=$?"
	python3 - "$OUT/ncu_$e.csv" <<'PY'
import collections, csv, sys
hdr, data = None, collections.defaultdict(dict)
for r in csv.reader(open(sys.argv[1])):
    if r and r[0] == 'ID':
        hdr = r
        continue
    if not hdr or len(r) != len(hdr):
        continue
    d = dict(zip(hdr, r))
    data[d['ID']]['name'] = d['Kernel Name'][:60]
    data[d['ID']][d['Metric Name']] = d['Metric Value']
agg = collections.defaultdict(list)
for v in data.values():
    key = (v['name'], v.get('launch__grid_size'), v.get('launch__block_size'), v.get('launch__registers_per_thread'))
    agg[key].append(float(v.get('gpu__time_duration.sum', '0').replace(',', '')))
for key, ds in sorted(agg.items(), key=lambda x: -sum(x[1])):
    print(f"{len(ds):4d} x {sum(ds) / len(ds) / 1000:7.2f} us  grid {key[1]:>5} block {key[2]:>4} regs {key[3]:>4}  {key[0]}")
PY
done

#!/bin/bash
# One short device-machine session for the CUDA MoE path (issue 7): build for sm_90 only the
# targets it needs, run the MoE op test and the golden models on CUDA (dense and MoE), then
# `awqrun bench` on the qwen3-30b-a3b-shaped synthetic model (AWQ and BF16) and the qwen3-14b AWQ
# dense model for comparison. Logs under $OUT, a summary printed last. Phases: build test bench.
# BIN=DIR uses binaries built elsewhere (awqrun, libawqrun-cuda.so, test_cuda_moe, test_golden
# copied into one carried folder) instead of the build phase, saving the device's build minutes.
set -u
OUT=${OUT:-/tmp/awq-gpu-out}
BUILD=${BUILD:-build-gpu}
BIN=${BIN:-}
mkdir -p "$OUT"
phases=${*:-build test bench}
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
has() { [[ " $phases " == *" $1 "* ]]; }
export PATH=/usr/local/cuda/bin:$PATH
note "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"

. tools/bench/device-deps.sh

if has build; then
	t0=$SECONDS
	{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=ON -DAWQ_CUDA_ARCHS=90 -DAWQ_VULKAN=OFF \
		-DAWQ_OPENCL=OFF && cmake --build "$BUILD" -j16 --target awqrun awqrun-cuda test_cuda_moe test_golden; } \
		>"$OUT/build.log" 2>&1
	rc=$?
	note "build: rc=$rc in $((SECONDS - t0)) s"
	if [ $rc -ne 0 ]; then
		grep -E "error|Error" "$OUT/build.log" | head -30
		exit 1
	fi
fi

if [ -n "$BIN" ]; then
	export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	export AWQ_PLUGIN_DIR=$BIN
	AWQRUN=$BIN/awqrun MOE_TEST=$BIN/test_cuda_moe
else
	export AWQ_PLUGIN_DIR=$PWD/$BUILD
	AWQRUN=$BUILD/awqrun MOE_TEST=$BUILD/tests/cuda/test_cuda_moe
fi

if has test; then
	t0=$SECONDS
	timeout ${MOE_TEST_TIMEOUT:-150} "$MOE_TEST" >"$OUT/test_moe.log" 2>&1
	note "test_cuda_moe: rc=$? ($(grep -c '^ok' "$OUT/test_moe.log") ok, $(grep -c '^FAIL' "$OUT/test_moe.log") FAIL) in $((SECONDS - t0)) s"
	grep '^FAIL' "$OUT/test_moe.log" | head -20 | tee -a "$summary"
	t0=$SECONDS
	if [ -n "$BIN" ]; then
		for d in tests/data/golden_moe/*/ tests/data/golden/*/; do
			timeout 30 "$BIN/test_golden" "${d%/}" --backend cuda --tol 1e-2 >"$OUT/golden_one.log" 2>&1
			rc=$?
			echo "golden_cuda $(basename "$d"): rc=$rc $(tail -1 "$OUT/golden_one.log")" >>"$OUT/golden.log"
			[ $rc -ne 0 ] && cat "$OUT/golden_one.log" >>"$OUT/golden.log"
		done
		note "golden on cuda: $(grep -c ': rc=0' "$OUT/golden.log") passed, $(grep -c ': rc=[1-9]' "$OUT/golden.log") failed in $((SECONDS - t0)) s"
		grep ': rc=[1-9]' "$OUT/golden.log" | tee -a "$summary"
	else
		(cd "$BUILD" && timeout 120 ctest -L gpu -R golden_cuda --output-on-failure) >"$OUT/ctest_golden.log" 2>&1
		note "golden on cuda (dense + moe): rc=$? in $((SECONDS - t0)) s: $(grep -E 'tests passed|tests failed' "$OUT/ctest_golden.log")"
		grep -E 'Failed|\*\*\*' "$OUT/ctest_golden.log" | head -20 | tee -a "$summary"
	fi
fi

if has bench; then
	# model, precision, time limit (s): the 61 GB BF16 model last, it takes longest to make and upload
	for spec in "qwen3-30b-a3b awq 60" "qwen3-14b awq 50" "qwen3-30b-a3b bf16 120"; do
		set -- $spec
		t0=$SECONDS
		cmd="$AWQRUN bench --synthetic $1 --precision $2 --backend cuda -p 512 -n 128 -r 3"
		echo "\$ $cmd" >"$OUT/bench_$1_$2.log"
		timeout $3 $cmd >>"$OUT/bench_$1_$2.log" 2>&1
		note "bench $1 $2: rc=$? in $((SECONDS - t0)) s"
	done
fi

echo
echo "===== summary ====="
cat "$summary"
for f in "$OUT"/bench_*.log; do
	[ -f "$f" ] && { echo "--- $(basename "$f")"; tail -12 "$f"; }
done
exit 0

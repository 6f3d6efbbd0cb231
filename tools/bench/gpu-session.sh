#!/bin/bash
# One device-machine session of the CUDA backend: build (sm_90 only), op and model tests, the
# compute-sanitizer runs, the kernel micro-benchmark and `awqrun bench`, each logged under $OUT,
# with a short table printed last. Phases to run are the arguments (default: all), e.g.
#   tools/bench/gpu-session.sh build test sanitize kbench bench
# Phase "kernels" builds only the kernels, their direct test and the micro-benchmark with nvcc (no
# CMake, no other part of the project) and runs them, sanitizers included.
set -u
OUT=${OUT:-/tmp/awq-gpu-out}
BUILD=${BUILD:-build-gpu}
mkdir -p "$OUT"
phases=${*:-kernels build test sanitize bench}
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
has() { [[ " $phases " == *" $1 "* ]]; }
export PATH=/usr/local/cuda/bin:$PATH

note "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader 2>/dev/null)"
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1

if has kernels; then
	t0=$SECONDS
	K="$BUILD/kernels"
	mkdir -p "$K"
	NV="nvcc -O3 -std=c++17 -arch=sm_90 -lineinfo -Ibackends/cuda -Icore -Iinclude"
	{
		for f in backends/cuda/*.cu; do $NV -c "$f" -o "$K/$(basename "$f").o" & done
		wait
		gcc -std=c11 -O2 -Icore -Iinclude -Ibackends/cuda -I/usr/local/cuda/include -c tests/cuda/test_cuda_kernels.c -o "$K/t.o" &&
		gcc -std=c11 -O2 -Icore -Iinclude -c core/dtype.c -o "$K/dtype.o" &&
		nvcc -arch=sm_90 "$K"/k_*.cu.o "$K/t.o" "$K/dtype.o" -o "$K/test_cuda_kernels" &&
		$NV tools/bench/cuda_kernel_bench.cu "$K"/k_*.cu.o -lcublas -o "$K/awq-cuda-bench"
	} >"$OUT/build_kernels.log" 2>&1
	note "kernels build: rc=$? in $((SECONDS - t0)) s"
	t0=$SECONDS
	timeout 100 "$K/test_cuda_kernels" >"$OUT/test_kernels.log" 2>&1
	note "test_cuda_kernels: rc=$? ($(grep -c '^ok' "$OUT/test_kernels.log") ok, $(grep -c '^FAIL' "$OUT/test_kernels.log") FAIL) in $((SECONDS - t0)) s"
	grep '^FAIL' "$OUT/test_kernels.log" | head -20 | tee -a "$summary"
	for tool in memcheck racecheck; do
		t0=$SECONDS
		AWQ_CUDA_TEST_SMALL=1 timeout 100 compute-sanitizer --tool $tool --error-exitcode 9 "$K/test_cuda_kernels" \
			>"$OUT/sanitize_kernels_$tool.log" 2>&1
		note "compute-sanitizer $tool (kernels): rc=$? in $((SECONDS - t0)) s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize_kernels_$tool.log" | tail -1)"
	done
	timeout 120 "$K/awq-cuda-bench" >"$OUT/kbench.log" 2>&1
	note "awq-cuda-bench: rc=$?"
fi

. tools/bench/device-deps.sh
[ "${AWQ_DEVICE_DEPS:-}" = unpacked ] && note "using unpacked Debian libraries from .deps/debs"

if has build; then
	t0=$SECONDS
	{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=ON -DAWQ_CUDA_ARCHS=90 -DAWQ_VULKAN=OFF \
		-DAWQ_OPENCL=OFF && cmake --build "$BUILD" -j16 --target awqrun awqrun-cuda awq-cuda-bench test_cuda_ops \
		test_cuda_model; } >"$OUT/build.log" 2>&1
	rc=$?
	# Everything else too (golden tests and the rest); failures there are reported, not fatal.
	cmake --build "$BUILD" -j16 >>"$OUT/build.log" 2>&1 || note "note: full build had errors (see build.log)"
	note "build: rc=$rc in $((SECONDS - t0)) s"
	if [ $rc -ne 0 ]; then
		grep -E "error|Error" "$OUT/build.log" | head -30
		exit 1
	fi
fi

if has test; then
	export AWQ_PLUGIN_DIR=$PWD/$BUILD
	t0=$SECONDS
	timeout 180 "$BUILD/tests/cuda/test_cuda_ops" >"$OUT/test_ops.log" 2>&1
	note "test_cuda_ops: rc=$? ($(grep -c '^ok' "$OUT/test_ops.log") ok, $(grep -c '^FAIL' "$OUT/test_ops.log") FAIL) in $((SECONDS - t0)) s"
	grep '^FAIL' "$OUT/test_ops.log" | head -20 | tee -a "$summary"
	t0=$SECONDS
	timeout 150 "$BUILD/tests/cuda/test_cuda_model" >"$OUT/test_model.log" 2>&1
	note "test_cuda_model: rc=$? in $((SECONDS - t0)) s"
	grep -E '^(ok|FAIL)' "$OUT/test_model.log" | head -20 | tee -a "$summary"
	t0=$SECONDS
	(cd "$BUILD" && timeout 120 ctest -L gpu -E 'cuda_(ops|model)' --output-on-failure) >"$OUT/ctest_gpu.log" 2>&1
	note "other gpu-labelled ctest (golden): rc=$? in $((SECONDS - t0)) s: $(grep -E 'tests passed|tests failed' "$OUT/ctest_gpu.log")"
fi

if has kbench; then
	timeout 300 "$BUILD/awq-cuda-bench" >"$OUT/kbench.log" 2>&1
	note "awq-cuda-bench: rc=$?"
fi

if has bench; then
	# Decode is reported against the copy bandwidth measured by the kernel benchmark of this run.
	bw=$(sed -n 's/^ceilings: copy \([0-9]*\) GB.*/\1/p' "$OUT/kbench.log" 2>/dev/null)
	bwopt=${bw:+--bw $bw}
	for model in llama2-7b qwen3-8b; do
		t0=$SECONDS
		cmd="$BUILD/awqrun bench --synthetic $model --precision awq,bf16 --backend cuda -p 512 -n 128 -r 3 $bwopt"
		echo "\$ $cmd" >"$OUT/bench_$model.log"
		timeout 200 $cmd >>"$OUT/bench_$model.log" 2>&1
		note "bench $model: rc=$? in $((SECONDS - t0)) s"
	done
fi

if has sanitize; then
	for tool in memcheck racecheck; do
		t0=$SECONDS
		AWQ_CUDA_TEST_SMALL=1 timeout 90 compute-sanitizer --tool $tool --error-exitcode 9 \
			"$BUILD/tests/cuda/test_cuda_ops" >"$OUT/sanitize_$tool.log" 2>&1
		note "compute-sanitizer $tool: rc=$? in $((SECONDS - t0)) s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize_$tool.log" | tail -1)"
	done
fi

if has longctx; then
	bw=$(sed -n 's/^ceilings: copy \([0-9]*\) GB.*/\1/p' "$OUT/kbench.log" 2>/dev/null)
	t0=$SECONDS
	cmd="$BUILD/awqrun bench --synthetic llama2-7b --precision awq --backend cuda -p 4096 -n 4096 -r 1 ${bw:+--bw $bw}"
	echo "\$ $cmd" >"$OUT/bench_ctx.log"
	timeout 150 $cmd >>"$OUT/bench_ctx.log" 2>&1
	note "bench llama2-7b 4k context: rc=$? in $((SECONDS - t0)) s"
fi

echo
echo "===== summary ====="
cat "$summary"
[ -f "$OUT/kbench.log" ] && sed -n '/^kernel/,$p' "$OUT/kbench.log"
for f in "$OUT"/bench_*.log; do
	[ -f "$f" ] && { echo "--- $(basename "$f")"; tail -12 "$f"; }
done
exit 0

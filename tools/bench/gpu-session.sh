#!/bin/bash
# One device-machine session of the GPU backends: tests, sanitizers, profiles and benchmarks, each
# logged under $OUT/logs (packed into $OUT/logs.tgz at the end: the device tool returns at most 8
# files), with a summary printed as it goes. Phases are the arguments, in any order:
#   build     CMake build for sm_90 on the device (skip it with BIN, below)
#   kernels   nvcc-only build of the kernels, their direct test and the micro-benchmark (no CMake)
#   test      test_cuda_kernels, test_cuda_ops, test_cuda_model, test_cuda_moe, the goldens on CUDA; the
#             op test, the model test and the goldens again under each knob of CU_TEST_KNOBS
#             (AWQ_CUDA_EPINORM=0, AWQ_CUDA_EPINORM_W16=0, AWQ_CUDA_EPINORM_MOE=0,
#             AWQ_CUDA_MOE_CLUSTER=0, AWQ_CUDA_QKV_ROPE=0, AWQ_CUDA_ATTN_RING=0, AWQ_CUDA_ATTN_MMA=0, AWQ_CUDA_ATTN_SPAN=0, AWQ_CUDA_ATTN_BLOCKS_PER_SM=0, AWQ_CUDA_DEQ_ROWS=9: every prefill AWQ matmul through the
#             dequantised copy and cuBLAS, AWQ_CUDA_DEQ_ROWS=0: none)
#   sanitize  compute-sanitizer memcheck and racecheck on the op, kernel and MoE tests (SANITIZE_ONLY=
#             "moe_memcheck kernels_racecheck ..." for some of them)
#   kbench    awq-cuda-bench (kernel rates and the copy / cuBLAS ceilings)
#   ksweep    awq-cuda-bench --sweep (decode GEMV launch variants on every llama2-7b / qwen3-8b shape)
#   kparts    awq-cuda-bench --parts (that stream with the GEMV's start-up / end phases added one at a time)
#   kpattern  awq-cuda-bench --pattern (the decode GEMV's weight stream alone, tile- and chunk-major)
#   kchain    awq-cuda-bench --chain (a layer's four dependent GEMVs as launches or one persistent kernel)
#   profile   AWQ_CUDA_PROFILE=1 decode of qwen3-0.6b, llama2-7b, qwen3-30b-a3b (per node kind); others
#             with PROFILE_MODELS="MODEL PRECISION,..." (e.g. "qwen3-30b-a3b awq")
#   bench     awqrun bench of qwen3-0.6b, llama2-7b, qwen3-8b in AWQ and BF16
#   depth     qwen3-8b decode after 4096 and 16384 positions of context (bench -d)
#   moe       qwen3-30b-a3b AWQ/BF16 and the dense qwen3-14b AWQ
#   ab        llama2-7b and qwen3-8b AWQ decode with each switchable decode change on and off
#             (AWQ_CUDA_ATTN_MERGE, AWQ_CUDA_PDL), in the same call
#   variants  each CUDA plugin under $BIN/var/NAME (tools/bench/pack-variants.sh): its kernel, op,
#             model and MoE tests, then AWQ decode of llama2-7b, qwen3-8b and qwen3-30b-a3b (or
#             VARIANT_MODELS, VARIANT_PRECISION), between two runs of the .bin plugin (the drift of
#             the machine shows in those two); VARIANTS="NAME ..." runs only those
#   inmodel   llama2-7b and qwen3-8b (or INMODEL_MODELS) AWQ decode with each decode-GEMV launch override of the
#             environment variable GEMV_OVERRIDES (space-separated AWQ_CUDA_GEMV specs, e.g.
#             GEMV_OVERRIDES="4096x4096:2,8,8 4096x11008:2,16,2"), between two runs without: launch
#             choices judged inside the decode graph (a sweep of the kernel alone misled, session 8)
#   ncu       Nsight Compute (--set full, clocks left alone) of the MoE decode kernels and the fused
#             router inside qwen3-30b-a3b AWQ decode (no graph, two layers' launches), of
#             the dense decode GEMV (awq-cuda-bench --profile) and of decode attention after 16384
#             positions, 32/8 and 32/32 heads (awq-cuda-bench --attn); per-instruction stall samples
#             summarised by tools/bench/ncu-stalls.py into the summary, reports kept in the logs
#   vulkan    test_vulkan_ops (also under each knob of VK_OPS_KNOBS, default AWQ_VK_ATTN_ILP=1),
#             test_vulkan_moe with AWQ_VK_MOE_FOLD=1, the goldens and a bench of
#             VK_BENCH_MODELS (llama2-7b) through NVIDIA's
#             Vulkan driver and CUDA, then AWQ_VK_PROFILE=1 of llama2-7b AWQ decode (GPU time per
#             decode step and op, mat-vecs by shape), and its decode with the mat-vec workgroup sizes
#             of VK_MATVEC_WGS (AWQ_VK_MATVEC_WG; 64 256 512) and the knob runs of VK_KNOB_RUNS
#             (the K-split 4-bit kernel off; 4 chunks per lane in flight and/or 2 rows per subgroup)
#             (carry .gl: the loader debs, see the device tool's README)
#   vkab      Vulkan AWQ decode (-p 16 -n 128) of each model of VK_AB_MODELS (llama2-7b) at the
#             defaults, with each run of VK_AB_RUNS ("name VAR=V ...;name ...", default
#             AWQ_VK_ATTN_ILP=1), then at the defaults again (carry .gl)
#   cuab      CUDA decode (-p 16 -n 128; CU_AB_PRECISION, default awq; after CU_AB_DEPTH positions, a
#             bench -d list, e.g. 1024,2048,3072) of each model of CU_AB_MODELS (llama2-7b) at the defaults,
#             with each run of CU_AB_RUNS (as VK_AB_RUNS; default AWQ_CUDA_EPINORM=0), then the defaults again
#             (session 29's next step: CU_AB_MODELS=qwen3-8b,llama3-8b,qwen2.5-7b,qwen3-30b-a3b
#             CU_AB_DEPTH=1024,2048,3072 CU_AB_RUNS="split256 AWQ_CUDA_ATTN_MMA_CHUNK=256")
#   benchx    awqrun bench runs given by BENCHX ("name [VAR=V ...] bench arguments...;name ...", e.g.
#             "p16 --synthetic qwen3-8b --precision awq --backend cuda -p 16 -n 128 -r 3"): one-off
#             comparisons (settings, knobs, profiles) without a phase of their own
#   vkbench   awq-vk-bench: llama2-7b's decode mat-vec shapes alone through NVIDIA's Vulkan driver,
#             timed with a barrier after every dispatch (as decode), without (throughput) and one
#             per submit, AWQ and F16, then AWQ with the knob runs of VKB_KNOB_RUNS (as
#             VK_KNOB_RUNS; default: K-split off, 2 chunks in flight, int8 dots), then each
#             barrier form (--barrier) on one workgroup and on 4096 x 4096 (carry .gl)
#   vkrows    Vulkan steps of 2-8 rows: test_vulkan_ops and the goldens at the defaults and under
#             each knob run of VKR_KNOB_RUNS (as VK_KNOB_RUNS; default none: session 20's
#             AWQ_VK_MATVEC_XR was measured and removed), then awq-vk-bench --rows 2 and --rows 4 and
#             `awqrun bench -p 2,4,8 -n 1` of VKR_MODELS (llama2-7b,qwen3-8b) at the defaults, then
#             (with knob runs) under each and at the defaults again (carry .gl)
# (default: test sanitize profile bench). BIN=DIR uses binaries built elsewhere
# (tools/bench/pack-bin.sh on the development machine; carry DIR), which saves the device's build
# minutes. Carry .deps too (Debian libraries the device machine lacks, tools/bench/device-deps.sh).
set -u
OUT=${OUT:-/tmp/awq-gpu-out}
BUILD=${BUILD:-build-gpu}
BIN=${BIN:-}
L="$OUT/logs"
mkdir -p "$L"
phases=${*:-test sanitize profile bench}
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
has() { [[ " $phases " == *" $1 "* ]]; }
counts() { echo "$(grep -c '^ok' "$1") ok, $(grep -c '^FAIL' "$1") FAIL"; }
export PATH=/usr/local/cuda/bin:$PATH
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
T0=$SECONDS

note "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader 2>/dev/null)"
nvidia-smi >"$L/nvidia-smi.txt" 2>&1
# SM and memory clocks, power and temperature once a second for the whole call (read-only: AWQ
# decode is latency-bound and follows the SM clock, so runs of different calls are compared with it)
DMON_PID=
if command -v nvidia-smi >/dev/null; then
	nvidia-smi dmon -s pc -d 1 >"$L/dmon.log" 2>&1 &
	DMON_PID=$!
	# stopped at the end, and also when the script leaves early (an exit, the device tool's timeout)
	trap 'kill "$DMON_PID" 2>/dev/null' EXIT
	trap 'exit 143' TERM
	trap 'exit 130' INT
fi

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
	} >"$L/build_kernels.log" 2>&1
	note "kernels build: rc=$? in $((SECONDS - t0)) s"
	[ -z "$BIN" ] && BIN_KERNELS=$K
fi

. tools/bench/device-deps.sh
[ "${AWQ_DEVICE_DEPS:-}" = unpacked ] && note "using unpacked Debian libraries from .deps/debs"

if has build && [ -z "$BIN" ]; then
	t0=$SECONDS
	{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=ON -DAWQ_CUDA_ARCHS=90 -DAWQ_VULKAN=OFF \
		-DAWQ_OPENCL=OFF && cmake --build "$BUILD" -j16; } >"$L/build.log" 2>&1
	rc=$?
	note "build: rc=$rc in $((SECONDS - t0)) s"
	if [ $rc -ne 0 ]; then
		grep -E "error|Error" "$L/build.log" | head -30
		exit 1
	fi
fi

# Where each program is: one folder (BIN) or the build tree.
if [ -n "$BIN" ]; then
	BIN=$(cd "$BIN" && pwd)
	export AWQ_PLUGIN_DIR=$BIN
	AWQRUN=$BIN/awqrun KT=$BIN/test_cuda_kernels KB=$BIN/awq-cuda-bench OPS=$BIN/test_cuda_ops
	MODEL=$BIN/test_cuda_model MOE=$BIN/test_cuda_moe GOLDEN=$BIN/test_golden VKOPS=$BIN/test_vulkan_ops VKMOE=$BIN/test_vulkan_moe
	VKB=$BIN/awq-vk-bench
else
	export AWQ_PLUGIN_DIR=$PWD/$BUILD
	AWQRUN=$BUILD/awqrun KT=${BIN_KERNELS:-$BUILD}/test_cuda_kernels KB=${BIN_KERNELS:-$BUILD}/awq-cuda-bench
	[ -z "${BIN_KERNELS:-}" ] && KT=$BUILD/tests/cuda/test_cuda_kernels
	OPS=$BUILD/tests/cuda/test_cuda_ops MODEL=$BUILD/tests/cuda/test_cuda_model MOE=$BUILD/tests/cuda/test_cuda_moe
	GOLDEN=$BUILD/tests/golden/test_golden VKOPS=$BUILD/tests/vulkan/test_vulkan_ops VKMOE=$BUILD/tests/vulkan/test_vulkan_moe
	VKB=$BUILD/backends/vulkan/awq-vk-bench
fi

# NVIDIA's Vulkan loader (the carried .gl debs) and ICD
vk_setup() {
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
	[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
	# Prime NVIDIA's shader disk cache once per call: on a fresh machine a pipeline's first uses in
	# the first process ran at a quarter of its rate for a few hundred milliseconds (llama2-7b pp2
	# 92-104 tok/s against 398; with a fresh cache folder or __GL_SHADER_DISK_CACHE=0 in any
	# process, 243-333 +- 120-133 over 30 runs, the next test at full rate: session 21, calls 2-6).
	# The dense pipelines of 1-8 and 512-row steps, AWQ and BF16; with VK_PRIME_MOE=1 also
	# qwen3-30b-a3b's AWQ MoE pipelines (~20 s more for the 30B synthetic weights; its BF16 form
	# would take ~60 s), for calls that time Vulkan MoE.
	if [ -z "${VK_PRIMED:-}" ]; then
		VK_PRIMED=1
		local t0=$SECONDS
		timeout 120 "$AWQRUN" bench --backend vulkan --precision awq,bf16 --synthetic qwen3-0.6b -p 2,4,8,512 -n 2 \
			-r 1 --no-predict >"$L/vk_prime.log" 2>&1
		note "Vulkan shader cache primed: rc=$? in $((SECONDS - t0)) s"
		if [ -n "${VK_PRIME_MOE:-}" ]; then
			t0=$SECONDS
			timeout 120 "$AWQRUN" bench --backend vulkan --precision awq --synthetic qwen3-30b-a3b -p 2,4,8,512 -n 2 \
				-r 1 --no-predict >>"$L/vk_prime.log" 2>&1
			note "Vulkan shader cache primed for MoE: rc=$? in $((SECONDS - t0)) s"
		fi
	fi
}

# knob_runs DEFAULT FUNC [LISTVAR]: FUNC NAME once per run of the list in $LISTVAR (VK_KNOB_RUNS;
# "name VAR=V ...;name ...", default DEFAULT), in a subshell with that run's variables exported
knob_runs() {
	local runs v listvar=${3:-VK_KNOB_RUNS}
	IFS=';' read -ra runs <<<"${!listvar:-$1}"
	for v in "${runs[@]}"; do
		(
			set -- $v "$2"
			local name=$1 fn=${!#}
			[ $# -gt 2 ] && export "${@:2:$#-2}"
			"$fn" "$name"
		)
	done
}

goldens() { # backend [what the environment changes]; GOLDEN_AWQ_TOL: the AWQ models' bound (1e-2)
	local ok=0 bad=0 t0=$SECONDS tol
	for d in tests/data/golden/*/ tests/data/golden_moe/*/; do
		[ -f "$d/config.json" ] || continue
		tol=1e-2
		case "$d" in *awq*) tol=${GOLDEN_AWQ_TOL:-1e-2} ;; esac
		if timeout 30 "$GOLDEN" "${d%/}" --backend "$1" --tol "$tol" >"$L/golden_one.log" 2>&1; then
			ok=$((ok + 1))
		else
			bad=$((bad + 1))
			{ echo "== $d ${2:-}"; cat "$L/golden_one.log"; } >>"$L/golden_$1.log"
		fi
	done
	note "golden models on $1${2:+ ($2)}: $ok passed, $bad failed in $((SECONDS - t0)) s"
}

bench() { # name, time limit, awqrun bench arguments...
	local name=$1 lim=$2 t0=$SECONDS
	shift 2
	echo "\$ awqrun bench $*" >"$L/bench_$name.log"
	timeout "$lim" "$AWQRUN" bench "$@" --json-out "$L/bench_$name.json" >>"$L/bench_$name.log" 2>&1
	note "bench $name: rc=$? in $((SECONDS - t0)) s"
	grep -E '^\| [a-z0-9].*\| (pp|tg)' "$L/bench_$name.log" | tee -a "$summary"
}

if has test; then
	for t in "kernels $KT 100" "ops $OPS 150" "model $MODEL 120" "moe $MOE 150"; do
		set -- $t
		t0=$SECONDS
		timeout "$3" "$2" >"$L/test_$1.log" 2>&1
		note "test_cuda_$1: rc=$? ($(counts "$L/test_$1.log")) in $((SECONDS - t0)) s"
		grep '^FAIL' "$L/test_$1.log" | head -10 | tee -a "$summary"
	done
	goldens cuda
	# the op test, the model test (decode = prefill) and the goldens under each knob of CU_TEST_KNOBS
	# (a knob may set several variables, joined by commas: A=1,B=2)
	for kv in ${CU_TEST_KNOBS-AWQ_CUDA_EPINORM=0 AWQ_CUDA_EPINORM_W16=0 AWQ_CUDA_EPINORM_MOE=0 AWQ_CUDA_MOE_CLUSTER=0 AWQ_CUDA_QKV_ROPE=0 AWQ_CUDA_ATTN_RING=0 AWQ_CUDA_ATTN_MMA=0 AWQ_CUDA_ATTN_SPAN=0 AWQ_CUDA_ATTN_BLOCKS_PER_SM=0 AWQ_CUDA_DEQ_ROWS=9 AWQ_CUDA_DEQ_ROWS=0}; do
		IFS=, read -ra kvs <<<"$kv"
		t0=$SECONDS
		env "${kvs[@]}" timeout 150 "$OPS" >"$L/test_ops_$kv.log" 2>&1
		note "test_cuda_ops ($kv): rc=$? ($(counts "$L/test_ops_$kv.log")) in $((SECONDS - t0)) s"
		grep '^FAIL' "$L/test_ops_$kv.log" | head -10 | tee -a "$summary"
		t0=$SECONDS
		env "${kvs[@]}" timeout 120 "$MODEL" >"$L/test_model_$kv.log" 2>&1
		note "test_cuda_model ($kv): rc=$? ($(counts "$L/test_model_$kv.log")) in $((SECONDS - t0)) s"
		grep '^FAIL' "$L/test_model_$kv.log" | head -10 | tee -a "$summary"
		(export "${kvs[@]}"; goldens cuda "$kv")
	done
fi

if has sanitize; then
	for t in "ops $OPS memcheck" "ops $OPS racecheck" "kernels $KT memcheck" "kernels $KT racecheck" "moe $MOE memcheck" \
		"moe $MOE racecheck"; do
		set -- $t
		# SANITIZE_ONLY="moe_memcheck ...": only those runs
		[ -n "${SANITIZE_ONLY:-}" ] && [[ " $SANITIZE_ONLY " != *" $1_$3 "* ]] && continue
		t0=$SECONDS
		AWQ_CUDA_TEST_SMALL=1 timeout 150 compute-sanitizer --tool "$3" --error-exitcode 9 "$2" \
			>"$L/sanitize_$1_$3.log" 2>&1
		note "compute-sanitizer $3 ($1): rc=$? in $((SECONDS - t0)) s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$L/sanitize_$1_$3.log" | tail -1)"
	done
fi

if has kbench; then
	timeout 300 "$KB" >"$L/kbench.log" 2>&1
	note "awq-cuda-bench: rc=$? $(grep '^ceilings' "$L/kbench.log")"
	# the decode GEMV at 4096 x 14336 (its n = 1 sweep, then 1-8 tokens for the n = 8 target of <= 1.3x
	# n = 1, the fallback and XR rows included)
	grep -E "^W4A16 GEMV m=4096 k=14336 n=[1248] " "$L/kbench.log" | tee -a "$summary"
fi

if has ksweep; then
	# the decode GEMV's launch variants on every llama2-7b / qwen3-8b decode shape, n = 1
	timeout 300 "$KB" --sweep >"$L/ksweep.log" 2>&1
	note "awq-cuda-bench --sweep: rc=$?"
	grep -E "^(W4A16 GEMV|copy kernel|read-only)" "$L/ksweep.log" | tee -a "$summary"
fi

if has kparts; then
	# the weight stream with the GEMV's start-up and end phases added one at a time
	timeout 200 "$KB" --parts >"$L/kparts.log" 2>&1
	note "awq-cuda-bench --parts: rc=$?"
	grep -E "^(parts|copy kernel|read-only)" "$L/kparts.log" | tee -a "$summary"
fi

if has kpattern; then
	# the decode GEMV's weight stream alone (no arithmetic), tile-major against chunk-major layout
	timeout 200 "$KB" --pattern >"$L/kpattern.log" 2>&1
	note "awq-cuda-bench --pattern: rc=$?"
	grep -E "^(read pattern|copy kernel|read-only)" "$L/kpattern.log" | tee -a "$summary"
fi

if has kchain; then
	# llama2-7b's four decode GEMVs per layer, 32 layers: one launch each against one persistent kernel
	timeout 120 "$KB" --chain >"$L/kchain.log" 2>&1
	note "awq-cuda-bench --chain: rc=$?"
	grep -E "^(chain|copy kernel|read-only|ceilings)" "$L/kchain.log" | tee -a "$summary"
fi

if has profile; then
	IFS=, read -ra specs <<<"${PROFILE_MODELS:-qwen3-0.6b awq,llama2-7b awq,llama2-7b bf16,qwen3-30b-a3b awq}"
	for spec in "${specs[@]}"; do
		set -- $spec
		t0=$SECONDS
		AWQ_CUDA_PROFILE=1 timeout 120 "$AWQRUN" bench --synthetic "$1" --precision "$2" --backend cuda -p 16 -n 64 \
			-r 1 --no-predict >"$L/profile_$1_$2.log" 2>&1
		note "profile $1 $2: rc=$? in $((SECONDS - t0)) s"
		grep -A16 "cuda profile: [0-9.]* us" "$L/profile_$1_$2.log" | tee -a "$summary"
	done
fi

has bench && bench dense 300 --synthetic qwen3-0.6b,llama2-7b,qwen3-8b --precision awq,bf16 --backend cuda -p 512 -n 128 -r 3
if has ab; then
	bench ab_default 120 --synthetic llama2-7b,qwen3-8b --precision awq --backend cuda -p 512 -n 128 -r 3
	AWQ_CUDA_ATTN_MERGE=0 bench ab_no_attn_merge 120 --synthetic llama2-7b,qwen3-8b --precision awq --backend cuda \
		-p 512 -n 128 -r 3
	AWQ_CUDA_PDL=0 bench ab_no_pdl 120 --synthetic llama2-7b,qwen3-8b --precision awq --backend cuda -p 512 -n 128 -r 3
fi
if has ncu; then
	NCU=ncu # on PATH: /usr/local/cuda/bin is added above
	ncu_one() { # name, kernel regex, launches to skip, launches, command...
		local name=$1 re=$2 skip=$3 cnt=$4 t0=$SECONDS
		shift 4
		timeout 400 "$NCU" --clock-control none --set full --import-source no -k "regex:$re" --launch-skip "$skip" \
			--launch-count "$cnt" -f -o "$L/ncu_$name" "$@" >"$L/ncu_$name.log" 2>&1
		note "ncu $name: rc=$? in $((SECONDS - t0)) s"
		"$NCU" --import "$L/ncu_$name.ncu-rep" --page source --csv --print-source sass >"$L/ncu_${name}_src.csv" 2>&1
		"$NCU" --import "$L/ncu_$name.ncu-rep" --page details >"$L/ncu_${name}_details.txt" 2>&1
		grep -E "^  [a-z_]+.*\(|Duration|DRAM Throughput|Issued Ipc Active|Eligible Warps|Registers Per" \
			"$L/ncu_${name}_details.txt" | tee -a "$summary"
		python3 tools/bench/ncu-stalls.py "$L/ncu_${name}_src.csv" --top 10 | tee -a "$summary"
	}
	# decode steps only (a 16-token prefill takes the unfused router and the grouped GEMMs)
	AWQ_CUDA_NO_GRAPH=1 ncu_one moe 'moe_(gu|down)_(decode|q4m)|moe_route_fused' 300 6 "$AWQRUN" bench \
		--synthetic qwen3-30b-a3b --precision awq --backend cuda -p 16 -n 8 -r 1 --no-predict
	ncu_one gemv 'q4_gemv2' 0 2 "$KB" --profile
	# decode attention after 16384 positions, grouped (qwen3-8b's 32/8 heads) and not: the second
	# launch of each (session 26: 32/8 at 41% of the copy rate, 32/32 at 76%; session 27: 32/8 on tensor cores 68%, 32/32 on the ring 90%)
	ncu_one attn_gqa 'attn_(warp|ring|mma)_kernel' 1 1 "$KB" --attn 16384 32 8
	ncu_one attn_mha 'attn_(warp|ring)_kernel' 1 1 "$KB" --attn 16384 32 32
fi
if has inmodel; then
	ibench() { # name, then the AWQ_CUDA_GEMV value
		AWQ_CUDA_GEMV=$2 bench "inmodel_$1" 120 --synthetic "${INMODEL_MODELS:-llama2-7b,qwen3-8b}" --precision awq \
			--backend cuda -p 512 -n 128 -r 3
	}
	ibench base_first ""
	i=0
	for spec in ${GEMV_OVERRIDES:-}; do
		i=$((i + 1))
		note "inmodel $i: AWQ_CUDA_GEMV=$spec"
		ibench "$i" "$spec"
	done
	ibench base_last ""
fi
if has variants; then
	vbench() { # name, plugin dir
		AWQ_PLUGIN_DIR=$2 bench "variant_$1" 150 --synthetic "${VARIANT_MODELS:-llama2-7b,qwen3-8b,qwen3-30b-a3b}" \
			--precision "${VARIANT_PRECISION:-awq}" --backend cuda -p 512 -n 128 -r 3
	}
	vbench base_first "$AWQ_PLUGIN_DIR"
	for vd in "${BIN:-$BUILD}"/var/*/; do
		[ -f "$vd/libawqrun-cuda.so" ] || continue
		vn=$(basename "$vd")
		[ -n "${VARIANTS:-}" ] && [[ " $VARIANTS " != *" $vn "* ]] && continue
		note "variant $vn: commit $(cat "$vd/commit" 2>/dev/null)"
		if [ -x "$vd/test_cuda_kernels" ]; then
			timeout 300 "$vd/test_cuda_kernels" >"$L/variant_${vn}_kernels.log" 2>&1
			note "variant $vn test_cuda_kernels: rc=$? ($(counts "$L/variant_${vn}_kernels.log"))"
		fi
		for t in "ops $OPS" "model $MODEL" "moe $MOE"; do
			set -- $t
			AWQ_PLUGIN_DIR=$vd timeout 300 "$2" >"$L/variant_${vn}_$1.log" 2>&1
			note "variant $vn test_cuda_$1: rc=$? ($(counts "$L/variant_${vn}_$1.log"))"
		done
		vbench "$vn" "$vd"
	done
	vbench base_last "$AWQ_PLUGIN_DIR"
fi
if has benchx; then
	IFS=';' read -ra bxs <<<"${BENCHX:-}"
	for bx in "${bxs[@]}"; do
		set -- $bx
		[ $# -gt 1 ] || continue
		bn=$1
		shift
		bxenv=()
		while [ $# -gt 0 ] && [[ $1 == [A-Z]*=* ]]; do
			bxenv+=("$1")
			shift
		done
		(if [ ${#bxenv[@]} -gt 0 ]; then export "${bxenv[@]}"; note "benchx $bn: ${bxenv[*]}"; fi; bench "x_$bn" 200 "$@")
		# a profile's per-node table (AWQ_CUDA_PROFILE=1) goes to the summary too
		grep -A40 '^cuda profile' "$L/bench_x_$bn.log" | grep -E 'profile|^  [A-Za-z/+ _0-9]+ +[0-9]+ +[0-9.]+ ' | tee -a "$summary"
	done
fi
has depth && bench depth 200 --synthetic qwen3-8b --precision awq,bf16 --backend cuda -p 512 -n 128 -d 4096,16384 -r 2
if has moe; then
	bench moe 200 --synthetic qwen3-30b-a3b,qwen3-14b --precision awq --backend cuda -p 512 -n 128 -r 3
	bench moe_bf16 200 --synthetic qwen3-30b-a3b --precision bf16 --backend cuda -p 512 -n 128 -r 2
fi

if has vulkan; then
	vk_setup
	t0=$SECONDS
	timeout 200 "$VKOPS" >"$L/test_vulkan_ops.log" 2>&1
	note "test_vulkan_ops: rc=$? in $((SECONDS - t0)) s: $(tail -1 "$L/test_vulkan_ops.log")"
	# the op tests under each knob of VK_OPS_KNOBS ("VAR=V ...;..."; knobs not yet run on a GPU)
	IFS=';' read -ra okn <<<"${VK_OPS_KNOBS:-AWQ_VK_ATTN_ILP=1}"
	# and the MoE op tests under AWQ_VK_MOE_FOLD=1 (not yet run on a GPU)
	t0=$SECONDS
	AWQ_VK_MOE_FOLD=1 timeout 200 "$VKMOE" >"$L/test_vulkan_moe_fold.log" 2>&1
	note "test_vulkan_moe (AWQ_VK_MOE_FOLD=1): rc=$? in $((SECONDS - t0)) s: $(tail -1 "$L/test_vulkan_moe_fold.log")"
	for kv in "${okn[@]}"; do
		t0=$SECONDS
		(export $kv; timeout 200 "$VKOPS") >"$L/test_vulkan_ops_${kv%%=*}.log" 2>&1
		note "test_vulkan_ops ($kv): rc=$? in $((SECONDS - t0)) s: $(tail -1 "$L/test_vulkan_ops_${kv%%=*}.log")"
		grep FAIL "$L/test_vulkan_ops_${kv%%=*}.log" | head -5 | tee -a "$summary"
	done
	goldens vulkan
	# the int8-activation 4-bit decode knob, with the CPU int8 path's bound (tests/golden)
	AWQ_VK_Q8=1 GOLDEN_AWQ_TOL=5e-2 goldens vulkan AWQ_VK_Q8=1
	bench vulkan 300 --synthetic "${VK_BENCH_MODELS:-llama2-7b}" --precision awq,bf16 --backend vulkan,cuda -p 512 -n 128 -r 2
	# GPU time per decode step and op (timestamps between nodes) against the step's wall time
	t0=$SECONDS
	AWQ_VK_PROFILE=1 timeout 120 "$AWQRUN" bench --synthetic llama2-7b --precision awq --backend vulkan -p 16 -n 64 \
		-r 1 --no-predict >"$L/profile_vulkan_llama2-7b_awq.log" 2>&1
	note "vulkan profile llama2-7b awq: rc=$? in $((SECONDS - t0)) s"
	grep -A14 "single-token steps" "$L/profile_vulkan_llama2-7b_awq.log" | tee -a "$summary"
	grep -A12 "by weight shape" "$L/profile_vulkan_llama2-7b_awq.log" | grep -E "shape|per call" | tee -a "$summary"
	grep "tg64" "$L/profile_vulkan_llama2-7b_awq.log" | tee -a "$summary"
	# the mat-vec's workgroup size (default 128): how its N / 4 subgroups spread over the SMs
	for wg in ${VK_MATVEC_WGS:-64 256 512}; do
		AWQ_VK_MATVEC_WG=$wg bench "vulkan_wg$wg" 120 --synthetic llama2-7b --precision awq --backend vulkan -p 16 \
			-n 64 -r 2 --no-predict
	done
	# twice the weight loads per lane in flight (4 chunks instead of 2), twice the subgroups (2 rows
	# each instead of 4), both
	# (VK_KNOB_RUNS: "name VAR=V ...;name ..." overrides the list; the 4-bit K-split kernel off first)
	knob_bench() { bench "vulkan_$1" 120 --synthetic llama2-7b --precision awq --backend vulkan -p 16 -n 64 -r 2 --no-predict; }
	knob_runs "noksplit AWQ_VK_MATVEC_KSPLIT=0;u4 AWQ_VK_MATVEC_U4=1;nr2 AWQ_VK_MATVEC_NR=2;nr2u4 AWQ_VK_MATVEC_NR=2 AWQ_VK_MATVEC_U4=1" knob_bench
fi

# Same-call A/B of Vulkan decode knobs: for each model of VK_AB_MODELS (default llama2-7b), a run
# at the defaults, one per run of VK_AB_RUNS (as VK_KNOB_RUNS), and the defaults again (the drift)
if has vkab; then
	vk_setup
	for m in $(echo "${VK_AB_MODELS:-llama2-7b}" | tr ',' ' '); do
		ab_bench() { bench "vkab_${m}_$1" 150 --synthetic "$m" --precision awq --backend vulkan -p 16 -n 128 -r 3 --no-predict; }
		ab_bench base
		knob_runs "ilp AWQ_VK_ATTN_ILP=1" ab_bench VK_AB_RUNS
		ab_bench base_again
	done
fi

# Same-call A/B of CUDA decode knobs, as vkab: each model of CU_AB_MODELS (default llama2-7b) at the
# defaults, once per run of CU_AB_RUNS ("name VAR=V ...;name ...", default AWQ_CUDA_EPINORM=0), defaults again
if has cuab; then
	for m in $(echo "${CU_AB_MODELS:-llama2-7b}" | tr ',' ' '); do
		cuab_bench() { bench "cuab_${m}_$1" 150 --synthetic "$m" --precision "${CU_AB_PRECISION:-awq}" --backend cuda -p 16 \
			-n 128 -r 3 --no-predict ${CU_AB_DEPTH:+-d "$CU_AB_DEPTH"}; }
		cuab_bench base
		knob_runs "noepinorm AWQ_CUDA_EPINORM=0" cuab_bench CU_AB_RUNS
		cuab_bench base_again
	done
fi

if has vkbench; then
	vk_setup
	t0=$SECONDS
	{
		timeout 120 "$VKB"
		timeout 120 "$VKB" --format f16 --no-bw --shape 4096x4096,32000x4096
	} >"$L/vkbench.log" 2>&1
	note "vkbench: rc=$? in $((SECONDS - t0)) s"
	grep -E '^\| |^# (read|of BW)' "$L/vkbench.log" | tee -a "$summary"
	knob_vkb() {
		echo "== vkbench $1"
		timeout 120 "$VKB" --no-bw | grep -E '^\| awq'
	}
	knob_runs "noksplit AWQ_VK_MATVEC_KSPLIT=0;ku2 AWQ_VK_MATVEC_KU=2;q8 AWQ_VK_Q8=1" knob_vkb VKB_KNOB_RUNS 2>&1 |
		tee -a "$summary"
	# what a dependent dispatch pays for its barrier: each barrier form, on one workgroup (8x128:
	# the dispatch-to-dispatch latency alone) and on the 4096 x 4096 mat-vec
	for bar in compute exec buffer full; do
		echo "== vkbench barrier $bar"
		timeout 60 "$VKB" --no-bw --barrier "$bar" --shape 8x128,4096x4096 | grep -E '^\| awq'
	done 2>&1 | tee -a "$summary"
fi

if has vkrows; then
	vk_setup
	vkr_test() {
		local t0=$SECONDS
		timeout 150 "$VKOPS" >"$L/vkrows_ops_$1.log" 2>&1
		note "test_vulkan_ops ($1): rc=$? in $((SECONDS - t0)) s: $(tail -1 "$L/vkrows_ops_$1.log")"
		grep FAIL "$L/vkrows_ops_$1.log" | head -5 | tee -a "$summary"
		goldens vulkan "$1"
	}
	vkr_test default
	knob_runs "" vkr_test VKR_KNOB_RUNS
	vkr_bench() {
		echo "== vkrows $1"
		for r in 2 4; do
			timeout 120 "$VKB" --rows "$r" --shape 4096x4096,11008x4096,4096x11008 | grep -E '^\| awq'
		done
		timeout 200 "$AWQRUN" bench --backend vulkan --precision awq --no-predict \
			--synthetic "${VKR_MODELS:-llama2-7b,qwen3-8b}" -p 2,4,8 -n 1 -r 3 2>&1 | grep -E '\| pp|rror' | cut -d'|' -f2-8
	}
	{
		vkr_bench default
		if [ -n "${VKR_KNOB_RUNS:-}" ]; then # the defaults again after the knob runs, for drift
			knob_runs "" vkr_bench VKR_KNOB_RUNS
			vkr_bench default
		fi
	} 2>&1 | tee -a "$summary"
fi

if [ -n "$DMON_PID" ]; then
	kill "$DMON_PID" 2>/dev/null
	# mean SM clock (MHz) over the samples where the GPU drew more than 150 W (under load)
	note "SM clock under load: $(awk '$1 ~ /^[0-9]+$/ && $2 > 150 { n++; s += $NF } END { if (n) printf "%.0f MHz mean over %d s", s / n, n; else print "no loaded samples" }' "$L/dmon.log")"
fi
note "total $((SECONDS - T0)) s"
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$L"
exit 0

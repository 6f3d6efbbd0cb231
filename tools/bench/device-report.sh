#!/bin/bash
# The whole GPU picture in one or two device-machine calls: CUDA build + tests + sanitizers + kernel
# ceilings + llama2-7b/qwen3-8b benchmarks (tools/bench/gpu-session.sh), the Vulkan backend on the
# same GPU through NVIDIA's driver (backends/vulkan/h100-check.sh), and the public-report table of
# issue 8 (qwen3 shapes in BF16 and AWQ, with the capability model's prediction beside each row).
#   tools/bench/device-report.sh [cuda|CUDA-PHASES...] [vulkan] [report] [moe]   (default: cuda vulkan)
# cuda runs every phase of gpu-session.sh; naming some of its phases (build test sanitize kbench bench
# longctx) runs only those.
# Carry .deps (core libraries), .gl (Vulkan loader), .vkspv and .vkdev (SPIR-V and Vulkan headers made
# here: backends/vulkan/h100-check.sh prepare BUILD_DIR). Every log is packed into $OUT/logs.tgz (the
# device tool returns few files); $OUT/summary.txt and the tables are copied beside it.
set -u
cd "$(dirname "$0")/../.." || exit 1
FINAL=${OUT:-/tmp/awq-dev-out}
LOGS=/tmp/awq-dev-logs
mkdir -p "$FINAL" "$LOGS"
phases=${*:-cuda vulkan}
has() { [[ " $phases " == *" $1 "* ]]; }
summary="$LOGS/summary.txt"
note() { echo "$*" | tee -a "$summary"; }
export BUILD=build-gpu

cuda_phases=""
for p in build test sanitize kbench bench longctx; do has $p && cuda_phases="$cuda_phases $p"; done
has cuda && cuda_phases="build test sanitize kbench bench longctx"
if [ -n "$cuda_phases" ]; then
	OUT=$LOGS/cuda bash tools/bench/gpu-session.sh $cuda_phases >"$LOGS/cuda.txt" 2>&1
	note "cuda session: rc=$?"
	sed -n '/===== summary =====/,$p' "$LOGS/cuda.txt" >>"$summary"
fi
if has vulkan; then
	OUT=$LOGS/vulkan BUILD=build-vkdev bash backends/vulkan/h100-check.sh build test bench >"$LOGS/vulkan.txt" 2>&1
	note "vulkan session: rc=$?"
	cat "$LOGS/vulkan/summary.txt" >>"$summary" 2>/dev/null
	tail -8 "$LOGS/vulkan/bench.log" >>"$summary" 2>/dev/null
fi

# The core's Debian libraries for the report phases (gpu-session.sh sets these inside its own shell).
if [ -d .deps/root ]; then
	export LD_LIBRARY_PATH=$PWD/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
export AWQ_PLUGIN_DIR=$PWD/$BUILD
bw=$(sed -n 's/^ceilings: copy \([0-9]*\) GB.*/\1/p' "$LOGS/cuda/kbench.log" 2>/dev/null)

if has report; then
	shapes=qwen3-0.6b,qwen3-1.7b,qwen3-4b,qwen3-8b,qwen3-14b,qwen3-32b
	has moe && shapes=$shapes,qwen3-30b-a3b
	cmd="$BUILD/awqrun bench --synthetic $shapes --precision bf16,awq --backend cuda -p 512 -n 128 -r 3 ${bw:+--bw $bw}"
	t0=$SECONDS
	{ echo "\$ $cmd"; timeout 480 $cmd; } >"$LOGS/report.md" 2>"$LOGS/report.err"
	note "report: rc=$? in $((SECONDS - t0)) s"
	timeout 60 "$BUILD/awqrun" caps --synthetic "$shapes" >"$LOGS/caps.txt" 2>&1
	note "caps: rc=$?"
	cp "$LOGS/report.md" "$LOGS/caps.txt" "$FINAL/" 2>/dev/null
fi
if has moe && ! has report; then
	cmd="$BUILD/awqrun bench --synthetic qwen3-30b-a3b,qwen3-14b --precision awq,bf16 --backend cuda -p 512 -n 128 -r 3 ${bw:+--bw $bw}"
	{ echo "\$ $cmd"; timeout 400 $cmd; } >"$LOGS/moe.md" 2>&1
	note "moe bench: rc=$?"
	cp "$LOGS/moe.md" "$FINAL/"
fi

cp "$summary" "$FINAL/summary.txt"
tar czf "$FINAL/logs.tgz" -C /tmp awq-dev-logs
cat "$summary"
exit 0

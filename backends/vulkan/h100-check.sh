#!/bin/bash
# The Vulkan backend on the device machine (NVIDIA H100 through NVIDIA's Vulkan driver). That machine
# has neither glslang nor the Vulkan headers or loader, so:
#   here, once:  backends/vulkan/h100-check.sh prepare BUILD_DIR
#                  copies BUILD_DIR/shaders/spirv (SPIR-V headers compiled and spirv-val'ed here) to
#                  .vkspv/ and downloads libvulkan-dev (headers) to .vkdev/; both are git-ignored
#                  through .git/info/exclude, like .gl/ (the loader, see the device README)
#   there:       backends/vulkan/h100-check.sh [build] [test] [bench] [profile]   (default: all)
#                  run with carry [".gl", ".vkspv", ".vkdev", ".deps"]; logs go to $OUT
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here" || exit 1
if [ "${1:-}" = prepare ]; then
	b=${2:?usage: h100-check.sh prepare BUILD_DIR}
	[ -f "$b/shaders/spirv/awq_spirv.h" ] || { echo "no $b/shaders/spirv/awq_spirv.h: build awqrun-vulkan there first"; exit 1; }
	for d in /.gl/ /.vkspv/ /.vkdev/; do grep -qx "$d" .git/info/exclude || echo "$d" >>.git/info/exclude; done
	rm -rf .vkspv && mkdir -p .vkspv .vkdev && cp "$b"/shaders/spirv/*.h .vkspv/
	(cd .vkdev && apt-get download libvulkan-dev) || exit 1
	echo "prepared .vkspv ($(ls .vkspv | wc -l) headers) and .vkdev; carry .gl .vkspv .vkdev"
	exit 0
fi
OUT=${OUT:-/tmp/awq-vk-out}
BUILD=${BUILD:-build-vkdev}
mkdir -p "$OUT"
phases=${*:-build test bench profile}
has() { [[ " $phases " == *" $1 "* ]]; }
note() { echo "$*" | tee -a "$OUT/summary.txt"; }

for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/vkdev
for f in .vkdev/*.deb; do dpkg -x "$f" /tmp/vkdev; done
[ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] &&
	export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
. tools/bench/device-deps.sh
note "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"

if has build; then
	t0=$SECONDS
	{ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=OFF -DAWQ_OPENCL=OFF -DAWQ_VULKAN=ON \
		-DAWQ_VULKAN_SPIRV_DIR="$here/.vkspv" -DVulkan_INCLUDE_DIR=/tmp/vkdev/usr/include \
		-DVulkan_LIBRARY=/usr/lib/x86_64-linux-gnu/libvulkan.so.1 &&
		cmake --build "$BUILD" -j16 --target awqrun awqrun-vulkan test_vulkan_ops test_golden; } >"$OUT/build.log" 2>&1
	rc=$?
	note "build: rc=$rc in $((SECONDS - t0)) s"
	[ $rc -ne 0 ] && { grep -E "error|Error" "$OUT/build.log" | head -20; exit 1; }
fi
export AWQ_PLUGIN_DIR=$here/$BUILD
if has test; then
	t0=$SECONDS
	timeout 300 "$BUILD/tests/vulkan/test_vulkan_ops" >"$OUT/test_ops.log" 2>&1
	note "test_vulkan_ops: rc=$? in $((SECONDS - t0)) s: $(tail -1 "$OUT/test_ops.log")"
	grep -E "FAIL|Vulkan device" "$OUT/test_ops.log" | head -20 | tee -a "$OUT/summary.txt"
	# On NVIDIA the matmuls take fp16 activations (fp16 arithmetic in the mat-vec, fp16 cooperative
	# matrices in prefill), so the bound is the CUDA backend's (tests/cuda: --tol 1e-2); lavapipe in
	# CI runs the f32 paths at the default 1e-3.
	for m in tests/data/golden/*/ tests/data/golden_moe/*/; do
		[ -f "$m/config.json" ] || continue
		timeout 120 "$BUILD/tests/golden/test_golden" "$m" --backend vulkan --tol 1e-2 >>"$OUT/golden.log" 2>&1
		rc=$?
		note "golden $(basename "$m"): rc=$rc"
	done
fi
if has bench; then
	timeout 400 "$BUILD/awqrun" bench --synthetic llama2-7b --precision awq,bf16 --backend vulkan -p 512 -n 128 \
		>"$OUT/bench.log" 2>&1
	note "bench: rc=$?"
	tee -a "$OUT/summary.txt" <"$OUT/bench.log" | tail -8
fi
if has profile; then
	AWQ_VK_PROFILE=1 timeout 300 "$BUILD/awqrun" bench --synthetic llama2-7b --precision awq --backend vulkan \
		-p 512 -n 32 >"$OUT/profile.log" 2>&1
	note "profile: rc=$?"
	grep -A12 "vulkan profile" "$OUT/profile.log" | tee -a "$OUT/summary.txt"
fi

#!/bin/sh
# Copy what the device scripts run from a build made here (CUDA for sm_90, Vulkan plugin with its
# SPIR-V embedded) into one folder to carry to the device machine, so that no device time goes to
# building:   tools/bench/pack-bin.sh [BUILD_DIR] [DEST]        (defaults: build, .bin)
# then e.g.   device run: BIN=.bin bash tools/bench/gpu-session.sh test profile bench   carry [.bin, .deps, .gl]
# DEST must be ignored by git (it is added to .git/info/exclude).
set -eu
cd "$(dirname "$0")/../.."
b=${1:-build}
d=${2:-.bin}
grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >>.git/info/exclude
rm -rf "$d"
mkdir -p "$d"
for f in awqrun libawqrun-cuda.so libawqrun-vulkan.so awq-cuda-bench tests/cuda/test_cuda_kernels tests/cuda/test_cuda_ops \
	tests/cuda/test_cuda_model tests/cuda/test_cuda_moe tests/cuda/test_cuda_fuse tests/golden/test_golden tests/golden/test_sampled tests/vulkan/test_vulkan_ops \
	tests/vulkan/test_vulkan_moe backends/vulkan/awq-vk-bench; do
	if [ -f "$b/$f" ]; then
		cp "$b/$f" "$d/"
	else
		echo "pack-bin: no $b/$f (not built there)" >&2
	fi
done
du -sh "$d"

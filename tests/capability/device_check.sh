#!/bin/bash
# The capability probe on a GPU machine (not part of CI, which has no GPU): builds awqrun, the CUDA
# backend and the capability tests, runs the tests (the CUDA probe test then checks real figures),
# prints `awqrun caps` for the GPU, and `awqrun bench` beside it so predictions can be compared with
# measurements. Logs go to $OUT. Run from the repository root:
#   bash tests/capability/device_check.sh
# Optional inputs: .deps/debs (Debian -dev packages the core needs, unpacked locally as
# tools/bench/gpu-session.sh does), .gl/*.deb (the Vulkan loader), .deps/vkheaders (Vulkan headers).
set -u
OUT=${OUT:-/tmp/caps-device}
B=${BUILD:-build-capsdev}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee "$OUT/gpu.txt"

. tools/bench/device-deps.sh
if ! ldconfig -p | grep -q libvulkan.so.1 && ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
vkinc=()
[ -f .deps/vkheaders/vulkan/vulkan.h ] && vkinc=(-DAWQ_VULKAN_HEADERS="$PWD/.deps/vkheaders")

cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=ON -DAWQ_CUDA_ARCHS=90 -DAWQ_VULKAN=OFF "${vkinc[@]}" \
	>"$OUT/configure.log" 2>&1 || { tail -20 "$OUT/configure.log"; exit 1; }
cmake --build "$B" -j16 --target awqrun test_caps_probe_cpu test_caps_probe_gpu test_caps_gpudb \
	test_caps_perfmodel test_caps_report >"$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head; exit 1; }
cmake --build "$B" -j16 --target awqrun-cuda >"$OUT/build_cuda.log" 2>&1
echo "CUDA backend plugin build: rc=$?"

(cd "$B" && ctest -R caps --output-on-failure) >"$OUT/ctest.log" 2>&1
grep -E "Test +#|tests passed|tests failed" "$OUT/ctest.log"
"$B/tests/capability/test_caps_probe_gpu" cuda 2>&1 | tee "$OUT/probe_cuda.txt"
"$B/tests/capability/test_caps_probe_gpu" vulkan 2>&1 | tee "$OUT/probe_vulkan.txt"
"$B/awqrun" caps --synthetic qwen3-0.6b,qwen3-8b,llama2-7b 2>&1 | tee "$OUT/caps.txt"
"$B/awqrun" caps --synthetic qwen3-8b --json >"$OUT/caps.json" 2>&1
export AWQ_PLUGIN_DIR=$PWD/$B
if [ -f "$B/libawqrun-cuda.so" ]; then
	for m in qwen3-0.6b qwen3-8b llama2-7b; do
		timeout 240 "$B/awqrun" bench --synthetic $m --precision awq,bf16 --backend cuda -p 512 -n 128 -r 2 \
			2>&1 | tee -a "$OUT/bench.txt"
	done
fi

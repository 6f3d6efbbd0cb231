# Sourced by the ncu scripts (tools/bench/ncu-*.sh) on the device machine: OUT (their CSVs), BIN (the
# carried binaries), the unpacked Debian libraries, ncu on PATH, the plugin from BIN, and no CUDA
# graph (ncu serialises the kernels: isolated kernel times).
OUT=${OUT:-/tmp/awq-gpu-out}
BIN=$(cd "${BIN:-.bin}" && pwd)
mkdir -p "$OUT"
. tools/bench/device-deps.sh
export PATH=/usr/local/cuda/bin:$PATH AWQ_PLUGIN_DIR=$BIN AWQ_CUDA_NO_GRAPH=1

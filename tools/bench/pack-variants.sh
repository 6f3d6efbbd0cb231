#!/bin/sh
# Build the CUDA plugin (and the kernel test) of other commits or branches, so that one device call
# tests and benchmarks them beside the current build:
#     tools/bench/pack-bin.sh                      (the current build into .bin)
#     tools/bench/pack-variants.sh REF[=NAME] ...  (each into .bin/var/NAME)
#     device run: BIN=.bin bash tools/bench/gpu-session.sh variants    carry [.bin, .deps]
# NAME defaults to REF with '/' made '-'. A variant is libawqrun-cuda.so (~7 MB) and
# test_cuda_kernels (~7 MB): with the 26 MB of .bin, two variants fit the device tool's 64 MiB carry.
# Variants must keep the backend ABI of .bin's awqrun (the plugin loader refuses others).
# pack-bin.sh empties .bin (its var/ too): pack the variants after it.
# Environment: BIN_DIR (default .bin), NO_KERNEL_TEST=1 leaves the kernel test out (not built; half the
# size), BUILD_JOBS (default 2),
# AWQ_CUDA_ARCHS (default 90-real: the device machine's SASS, no PTX, which halves the files),
# EXTRA="PATH ..." more of the variant's build outputs, as paths under its build folder (the target is
# the file's name; e.g. EXTRA="awq-cuda-bench tests/cuda/test_cuda_model"), copied beside its plugin.
# The carry limit counts the tracked tree too (~7 MB): when .bin outgrows it, carry it compressed
# (tar czf .run/bin.tgz .bin, ~17 MB for .bin and three variants; carry [.run, .deps]) and unpack
# it first on the device (tar xzf .run/bin.tgz && BIN=.bin bash tools/bench/gpu-session.sh ...).
set -eu
cd "$(dirname "$0")/../.."
root=$PWD
bin=${BIN_DIR:-.bin}
if [ ! -x "$bin/awqrun" ]; then
	echo "pack-variants: $bin/awqrun missing: run tools/bench/pack-bin.sh first" >&2
	exit 1
fi
[ $# -gt 0 ] || { echo "usage: tools/bench/pack-variants.sh REF[=NAME] ..." >&2; exit 2; }
for spec in "$@"; do
	ref=${spec%%=*}
	name=${spec#*=}
	[ "$name" = "$spec" ] && name=$(printf '%s' "$ref" | tr '/' '-')
	git rev-parse --verify --quiet "$ref^{commit}" >/dev/null || { echo "pack-variants: no commit '$ref'" >&2; exit 1; }
	wt=$(mktemp -d /tmp/awq-variant-XXXXXX)
	git worktree add --detach "$wt" "$ref" >/dev/null
	echo "pack-variants: $name = $(git rev-parse --short "$ref") ($ref), building in $wt"
	if ! { cmake -S "$wt" -B "$wt/build" -DCMAKE_BUILD_TYPE=Release -DAWQ_CUDA=ON -DAWQ_CUDA_ARCHS="${AWQ_CUDA_ARCHS:-90-real}" \
		-DAWQ_VULKAN=OFF -DAWQ_OPENCL=OFF >"$wt/configure.log" 2>&1 &&
		cmake --build "$wt/build" -j "${BUILD_JOBS:-2}" --target awqrun-cuda \
			$([ "${NO_KERNEL_TEST:-0}" = 1 ] || echo test_cuda_kernels) \
			$(for e in ${EXTRA:-}; do basename "$e"; done) >"$wt/build.log" 2>&1; }; then
		echo "pack-variants: $name failed to build; logs in $wt" >&2
		exit 1
	fi
	dest="$bin/var/$name"
	rm -rf "$dest"
	mkdir -p "$dest"
	cp "$wt/build/libawqrun-cuda.so" "$dest/"
	[ "${NO_KERNEL_TEST:-0}" = 1 ] || cp "$wt/build/tests/cuda/test_cuda_kernels" "$dest/"
	for e in ${EXTRA:-}; do cp "$wt/build/$e" "$dest/"; done
	git rev-parse "$ref" >"$dest/commit"
	git worktree remove --force "$wt"
	rm -rf "$wt"
done
git worktree prune
du -sh "$bin"

#!/bin/sh
# No decode kernel may use local memory (a stack frame): ptxas puts a kernel's parameter struct on
# the stack when it is indexed at run time (o.ptr[s]), and the copy at kernel entry cost the decode
# GEMVs ~9% of llama2-7b decode on the H200 (docs/perf-cuda-notes.md, session 8). Compiles every
# backends/cuda/k_*.cu for one architecture with -warn-lmem-usage and fails on any kernel that uses
# local memory and is not in the allowed list below (each with its reason). Needs no GPU.
# Usage: check_local_memory.sh NVCC SOURCE_DIR ARCH
set -u
nvcc=$1 src=$2 arch=$3
# kernel-name substrings allowed a stack frame (ARCH:name: on that architecture only, so that the
# measured sm_90 code of those kernels stays checked):
#   rope_kernel        sincosf's slow path (arguments beyond 1e5) keeps its table in local memory;
#                      not in the decode graph (attention prep does its own RoPE)
#   attn_prep_rows_kernel  the same table: the prefill attention prep (not in the decode graph)
#   q4_repack_         load-time repack of the AutoAWQ tensors
#   attn_split_kernel  the decode attention for head dims other than 64 / 128 (8 bytes)
#   q4_gemv_kernelILi1ELb1E  the fallback GEMV (rows > 2, or no cp.async), one tile, 64-wide groups (8 bytes)
#   moe_gemm_kernelILi0ELi4ELi0E, moe_logits_kernel  8 bytes on sm_120 only (none on sm_90): the MoE
#                      prefill GEMM and the router's two-launch (prefill) path
#   attn_warp_kernelILi4E  a 4-byte register spill on sm_120 and 8 bytes on sm_100 (none on sm_90, whose
#                      code was measured): __launch_bounds__(128, 1) removes it but changes the
#                      sm_90 code too, so it waits for a GPU to measure on
#   w16_gemv_kernelILi8E   the 16-bit decode GEMV at 5-8 tokens: 16 bytes on sm_75, sm_80, sm_86 and sm_89
#                      (none on sm_90 and newer); not measured on those GPUs
#   moe_down_q4m_kernelILi12E, moe_down_w16_kernelILi3ELi8E  8 bytes on sm_120 and on sm_100 only (none on
#                      sm_90): MoE down kernels (found 2026-12-01 by running this check for every
#                      architecture; not measured on those GPUs)
#   attn_warp_kernelILi2E  the head-dim-64 decode attention: 8 bytes (16 of spill) on sm_75 only since its
#                      16-position rounds of loads (session 25; none on sm_80 and newer); not measured on a T4
#   moe_route_cluster_kernel  the cluster decode router: 32 bytes on sm_100 only (none on sm_90 and sm_120;
#                      found in session 25 compiling for every architecture; not measured on a B200)
allowed='rope_kernel attn_prep_rows_kernel q4_repack_ attn_split_kernel q4_gemv_kernelILi1ELb1E 120:moe_gemm_kernelILi0ELi4ELi0E
120:moe_logits_kernel 120:attn_warp_kernelILi4E 100:attn_warp_kernelILi4E 89:w16_gemv_kernelILi8E
86:w16_gemv_kernelILi8E 80:w16_gemv_kernelILi8E 75:w16_gemv_kernelILi8E 120:moe_down_q4m_kernelILi12E
100:moe_down_w16_kernelILi3ELi8E 75:attn_warp_kernelILi2E
100:moe_route_cluster_kernel'
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0
for f in "$src"/backends/cuda/k_*.cu; do
	if ! "$nvcc" -O3 -std=c++17 -arch=sm_"$arch" -I"$src/backends/cuda" -I"$src/core" -I"$src/include" \
		-c "$f" -o "$tmp/k.o" -Xptxas -warn-lmem-usage >"$tmp/log" 2>&1; then
		cat "$tmp/log"
		echo "FAIL: $f does not compile"
		fail=1
		continue
	fi
	grep "Local memory used for function" "$tmp/log" | sed "s/.*function '\([^']*\)'.*frame: \([0-9]*\).*/\1 \2/" |
		while read -r name bytes; do
			ok=0
			for a in $allowed; do
				case "$a" in *:*) [ "${a%%:*}" = "$arch" ] || continue; a=${a#*:} ;; esac
				case "$name" in *"$a"*) ok=1 ;; esac
			done
			if [ $ok = 1 ]; then
				echo "allowed: $name ($bytes bytes of local memory) in $(basename "$f")"
			else
				echo "FAIL: $name uses $bytes bytes of local memory ($(basename "$f")): a parameter struct or array indexed at run time?"
				echo x >>"$tmp/bad"
			fi
		done
done
[ -f "$tmp/bad" ] && fail=1
[ $fail = 0 ] && echo "ok: no other kernel uses local memory (sm_$arch)"
exit $fail

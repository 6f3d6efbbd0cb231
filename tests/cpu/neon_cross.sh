#!/bin/sh
# The NEON kernels of backends/cpu on arm64 from an x86-64 machine: cross-compiled with -Werror
# for plain Armv8-A (widening multiplies) and for Armv8.2-A with the dot-product instructions, then
# run through qemu-aarch64 against the scalar reference (tests/cpu/test_cpu_kernels.c). Without
# qemu-aarch64 the build is still checked and the run is reported as skipped.
#   neon_cross.sh CC SOURCE_DIR OUT_DIR [QEMU]
set -u
CC=$1 SRC=$2 OUT=$3 QEMU=${4:-}
mkdir -p "$OUT" || exit 1
for march in armv8-a armv8.2-a+dotprod; do
	bin="$OUT/test_cpu_kernels_$(echo "$march" | tr '.+' '__')"
	"$CC" -std=c11 -D_GNU_SOURCE -O2 -march="$march" -static -Wall -Wextra -Werror \
		-I"$SRC/include" -I"$SRC/core" -I"$SRC/backends/cpu" \
		"$SRC/tests/cpu/test_cpu_kernels.c" "$SRC/backends/cpu/cpu_kernels_neon.c" "$SRC/backends/cpu/cpu_ref.c" \
		"$SRC/backends/cpu/cpu_q4.c" "$SRC/core/dtype.c" "$SRC/core/error.c" -o "$bin" -lm || exit 1
	echo "built $bin (-march=$march)"
	if [ -z "$QEMU" ]; then
		echo "qemu-aarch64 not installed: $march kernels compiled, not run"
		continue
	fi
	"$QEMU" -cpu max "$bin" >"$bin.log" 2>&1 || { cat "$bin.log"; echo "FAIL: $march kernels"; exit 1; }
	tail -n 1 "$bin.log"
done

#!/bin/sh
# The mat-vec and tiled matmul shaders must keep their accumulators in registers: after spirv-opt's loop
# unrolling and standard optimisation no function-scope variable (an array a driver would place in
# memory because some index of it is only known at run time) may remain. A run-time loop bound
# (rows, nr) around an accumulator access was enough to defeat it (2026-11-30). Needs no device.
# Usage: check_shader_arrays.sh SPIRV_OPT SPIRV_DIS SPV_DIR NAME...
set -u
opt=$1 dis=$2 dir=$3
shift 3
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp" "$tmp.txt"' EXIT
fail=0
for n in "$@"; do
	if [ ! -f "$dir/$n.spv" ]; then
		echo "FAIL: $dir/$n.spv does not exist"
		fail=1
		continue
	fi
	# twice: one pass leaves function-scope arrays (nested loops) that a second pass unrolls
	if ! "$opt" --loop-unroll -O --loop-unroll -O "$dir/$n.spv" -o "$tmp"; then
		echo "FAIL: spirv-opt could not optimise $n.spv"
		fail=1
		continue
	fi
	if ! "$dis" "$tmp" -o "$tmp.txt"; then
		echo "FAIL: spirv-dis could not disassemble $n.spv"
		fail=1
		continue
	fi
	vars=$(grep "OpVariable %_ptr_Function_" "$tmp.txt" | awk '{print $1}' | tr '\n' ' ')
	if [ -n "$vars" ]; then
		echo "FAIL: $n: function-scope variables left after unrolling: $vars(an index known only at run time?)"
		fail=1
	else
		echo "ok: $n keeps every array in registers"
	fi
done
exit $fail

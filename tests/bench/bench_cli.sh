#!/bin/sh
# `awqrun bench` and `awqrun compare` from the command line, on the tiny golden models (fast: a
# given --bw skips the bandwidth measurement). Usage: bench_cli.sh CASE AWQRUN BENCH_CHECK GOLDEN WORKDIR
# Exit 0 = pass; every failure prints what was expected and the output it got.
case_name=$1 awqrun=$2 check=$3 golden=$4 work=$5
mkdir -p "$work" || exit 1
cd "$work" || exit 1
fail=0

bad() {
	echo "FAIL ($case_name): $*" >&2
	fail=1
}

# has FILE PATTERN...: every fixed string appears in FILE
has() {
	f=$1
	shift
	for p in "$@"; do
		grep -qF -- "$p" "$f" || { bad "'$p' not in $f:"; cat "$f" >&2; }
	done
}

# usage_error ARGS...: exit status 2 and a message on stderr
usage_error() {
	"$awqrun" "$@" >out.txt 2>err.txt
	rc=$?
	[ $rc -eq 2 ] || bad "awqrun $* exited $rc, not 2"
	[ -s err.txt ] || bad "awqrun $* printed no message"
}

bf16="$golden/qwen3-bf16"
awq="$golden/qwen3-awq-g64"
quick="-p 8 -n 8 -r 1 --bw 10"

case $case_name in
json)
	"$awqrun" bench -m "$bf16" $quick --backend cpu --json >out.json 2>err.txt || bad "exit $?"
	"$check" json out.json llama || bad "schema"
	has out.json '"test": "pp8"' '"test": "tg8"' '"bw_gbs": 10.000'
	;;
csv)
	"$awqrun" bench -m "$awq" $quick --backend cpu --csv >out.csv 2>err.txt || bad "exit $?"
	"$check" csv out.csv || bad "csv"
	[ "$(wc -l <out.csv)" -eq 3 ] || bad "want a header and 2 lines"
	;;
markdown)
	"$awqrun" bench -m "$awq" $quick --backend cpu --json-out side.json >out.md 2>err.txt || bad "exit $?"
	"$check" json side.json llama || bad "--json-out schema"
	has out.md "# awqrun bench" "- date: " "(commit " "- device: cpu 0: " "driver: " \
		"| model | test | precision | backend | device | GPUs | tok/s | predicted tok/s | error | bound |" \
		"| qwen3-awq-g64 | pp8 | awq-int4-g64 | cpu |" "| qwen3-awq-g64 | tg8 |" \
		"Memory the backend allocated" "of which int4"
	# prefill rows have no GB/s and no % of BW
	grep -F "| pp8 |" out.md | grep -qF "| - | - |" || bad "prefill row shows a GB/s figure"
	;;
all)
	# every present backend: the CPU always, Vulkan where a driver (lavapipe) is; absent ones skipped
	"$awqrun" bench -m "$bf16" $quick --backend all --json >out.json 2>err.txt || bad "exit $?"
	"$check" json out.json || bad "schema"
	has out.json '"backend": "cpu"'
	;;
qwen)
	"$awqrun" bench -m "$bf16" --method qwen --inputs 8,24 --gen 4 --bw 10 --backend cpu >out.md 2>err.txt ||
		bad "exit $?"
	has out.md "| Model | Input Length | Quantization | Backend | Device | GPU Num | Speed (tokens/s) |" \
		"| qwen3-bf16 | 8 | bf16 | cpu |" "| qwen3-bf16 | 24 | bf16 | cpu |"
	"$awqrun" bench -m "$bf16" --method qwen --inputs 8 --gen 4 --bw 10 --backend cpu --json >out.json 2>err.txt ||
		bad "exit $?"
	"$check" json out.json qwen || bad "schema"
	;;
depth)
	# -d: the tests run after that many positions are in the KV cache; decode reads them too
	"$awqrun" bench -m "$awq" -p 8 -n 8 -d 0,24 -r 1 --bw 10 --backend cpu --json >out.json 2>err.txt ||
		bad "exit $?"
	"$check" json out.json llama || bad "schema"
	has out.json '"test": "tg8"' '"test": "tg8 @ d24"' '"test": "pp8 @ d24"' '"n_depth": 24'
	b0=$(grep -o '"test": "tg8", [^}]*"bytes_per_token": [0-9.e+]*' out.json | sed 's/.*bytes_per_token": //')
	b24=$(grep -o '"test": "tg8 @ d24", [^}]*"bytes_per_token": [0-9.e+]*' out.json | sed 's/.*bytes_per_token": //')
	awk -v a="$b0" -v b="$b24" 'BEGIN { exit !(b > a && a > 0) }' || bad "decode at depth 24 should count more KV bytes ($b24 vs $b0)"
	! grep -q "past the model" err.txt || bad "a note on positions within the model's 256"
	# a depth past the model's trained positions runs, with a note on stderr
	"$awqrun" bench -m "$awq" -p 8 -n 8 -d 250 -r 1 --bw 10 --backend cpu >out.md 2>err.txt || bad "exit $?"
	has out.md "tg8 @ d250 *" "the test ran past the model's trained positions (256): a speed figure only"
	"$awqrun" bench -m "$awq" -p 4 -n 8 -d 0,252 -r 1 --bw 10 --backend cpu --json >out.json 2>err.txt || bad "exit $?"
	"$check" json out.json llama || bad "schema"
	has out.json '"test": "tg8", "n_prompt": 0, "n_gen": 8, "n_depth": 0, "n_devices": 1, "repeats": 1, "modeled": false, "trained_positions": 256, "past_trained_positions": false'
	has out.json '"test": "pp4 @ d252", "n_prompt": 4, "n_gen": 0, "n_depth": 252, "n_devices": 1, "repeats": 1, "modeled": false, "trained_positions": 256, "past_trained_positions": false'
	has out.json '"test": "tg8 @ d252", "n_prompt": 0, "n_gen": 8, "n_depth": 252, "n_devices": 1, "repeats": 1, "modeled": false, "trained_positions": 256, "past_trained_positions": true'
	"$awqrun" bench -m "$awq" -p 8 -n 8 -d 250 -r 1 --bw 10 --backend cpu --csv >out.csv 2>err.txt || bad "exit $?"
	head -1 out.csv | grep -q ',modeled,past_trained_positions$' || bad "csv header"
	grep -F 'tg8 @ d250,' out.csv | grep -q ',0,1$' || bad "csv row past the trained positions"
	has err.txt "the tests reach 258 positions, past the model's 256: speed figures only"
	usage_error bench -m "$awq" -d x
	usage_error bench -m "$awq" -d 8 --method qwen
	;;
sample)
	# --sample: decode tests sample as awqrun run does (rows "tgN sampled", at depth too), repeatably
	# for one --seed; pp rows unchanged
	"$awqrun" bench -m "$awq" -p 8 -n 8 -d 0,24 -r 1 --bw 10 --backend cpu --sample --seed 5 --json >out.json \
		2>err.txt || bad "exit $?"
	"$check" json out.json llama || bad "schema"
	has out.json '"test": "tg8 sampled"' '"test": "tg8 sampled @ d24"' '"test": "pp8"' '"test": "pp8 @ d24"'
	grep -q '"test": "tg8"' out.json && bad "a greedy tg row with --sample"
	"$awqrun" bench -m "$awq" $quick --backend cpu --sample >out.md 2>err.txt || bad "exit $?"
	has out.md "| tg8 sampled |"
	usage_error bench -m "$awq" --sample --method qwen
	# --repeat-penalty: awqrun run's penalised sampling, from the candidates (>= 1) or the row (< 1)
	"$awqrun" bench -m "$awq" $quick --backend cpu --sample --repeat-penalty 1.3 >out.md 2>err.txt || bad "exit $?"
	has out.md "| tg8 sampled rp1.3 |"
	"$awqrun" bench -m "$awq" $quick -d 0,24 --backend cpu --sample --repeat-penalty 1.3 --json >out.json \
		2>err.txt || bad "exit $?"
	"$check" json out.json llama || bad "schema"
	has out.json '"test": "tg8 sampled rp1.3"' '"test": "tg8 sampled rp1.3 @ d24"'
	"$awqrun" bench -m "$awq" $quick --backend cpu --sample --repeat-penalty 0.8 >out.md 2>err.txt || bad "exit $?"
	has out.md "| tg8 sampled rp0.8 |"
	usage_error bench -m "$awq" --repeat-penalty 1.1
	usage_error bench -m "$awq" --sample --repeat-penalty 0
	;;
cpu_profile)
	# AWQ_CPU_PROFILE=1: the per-op table of single-token steps on stderr at close; anything else: none
	AWQ_CPU_PROFILE=1 "$awqrun" bench -m "$awq" $quick --backend cpu >out.md 2>err.txt || bad "exit $?"
	has err.txt "cpu profile: " " MATMUL " " ATTENTION " " ARGMAX "
	AWQ_CPU_PROFILE=yes "$awqrun" bench -m "$awq" $quick --backend cpu >out.md 2>err.txt || bad "exit $?"
	grep -q "cpu profile" err.txt && bad "AWQ_CPU_PROFILE=yes should not profile"
	;;
vk_profile)
	# AWQ_VK_PROFILE=1: the all-steps table and the decode steps' GPU time per step and op
	AWQ_VK_PROFILE=1 "$awqrun" bench -m "$awq" $quick --backend vulkan >out.md 2>err.txt
	rc=$?
	if [ $rc -ne 0 ] && grep -q "has no usable device" err.txt; then
		echo "SKIP: no Vulkan device: $(grep -m1 'no usable device' err.txt)"
		exit 77
	fi
	[ $rc -eq 0 ] || bad "exit $rc"
	has err.txt "vulkan profile (GPU time per op, all steps)" "single-token steps" "ms of GPU time per step" \
		" MATMUL " "us per step"
	;;
progress)
	"$awqrun" bench -m "$bf16" $quick --backend cpu --progress >out.md 2>err.txt || bad "exit $?"
	has err.txt "warm-up" "tg8 run 1/1"
	"$awqrun" bench -m "$bf16" $quick --backend cpu >out.md 2>err.txt || bad "exit $?"
	grep -q "warm-up" err.txt && bad "progress lines without a terminal or --progress"
	;;
compare)
	"$awqrun" bench -m "$bf16" --name qwen3-tiny $quick --backend cpu --json >a.json 2>err.txt || bad "bench a"
	"$awqrun" bench -m "$awq" --name qwen3-tiny $quick --backend cpu --json >b.json 2>err.txt || bad "bench b"
	"$awqrun" compare a.json b.json --svg chart.svg >out.md 2>err.txt || bad "compare exit $?"
	has out.md "| model | device | backend | source | decode bf16 | decode awq-int4-g64 | AWQ speedup |" \
		"| qwen3-tiny | " "| measured |"
	grep -F "| qwen3-tiny |" out.md | grep -qE "\| [0-9]+\.[0-9]+x \|" || bad "no AWQ speedup in the merged row"
	"$check" svg chart.svg || bad "svg"
	;;
compare_live)
	# a run now on every present backend, beside the same checkpoint modeled on a database GPU
	"$awqrun" compare -m "$bf16" --backend all -p 8 -n 8 -r 1 --bw 10 --gpu t4 --svg chart.svg >out.md 2>err.txt ||
		bad "compare exit $?"
	has out.md "| cpu | measured |" "| qwen3-bf16 | NVIDIA T4 | cuda | modeled |"
	"$check" svg chart.svg || bad "svg"
	;;
modeled)
	# JSON of an earlier run of a preset (schema 1, as the first bench version wrote it) beside
	# modeled database GPUs
	cat >old.json <<'EOF'
{"awqrun": "0.1.0", "results": [
  {"model": "qwen3-8b", "precision": "bf16", "backend": "cuda", "device": "NVIDIA H200", "kernels": "sm_90", "test": "tg128", "n_prompt": 0, "n_gen": 128, "repeats": 3, "tok_s": 150.5, "tok_s_stddev": 0.4, "bytes_per_token": 16400000000, "gbs": 2468.2, "bw_gbs": 4200, "weight_bytes": 16400000000, "device_bytes": 17000000000},
  {"model": "qwen3-8b", "precision": "awq-int4-g128", "backend": "cuda", "device": "NVIDIA H200", "kernels": "sm_90", "test": "tg128", "n_prompt": 0, "n_gen": 128, "repeats": 3, "tok_s": 240.1, "tok_s_stddev": 0.9, "bytes_per_token": 6100000000, "gbs": 1464.6, "bw_gbs": 4200, "weight_bytes": 6100000000, "device_bytes": 6800000000}
]}
EOF
	"$awqrun" compare old.json --gpu t4,h100 --svg chart.svg >out.md 2>err.txt || bad "compare exit $?"
	has out.md "| qwen3-8b | NVIDIA H200 | cuda | measured | 150 | 240 | 1.60x |" "| qwen3-8b | NVIDIA T4 | cuda | modeled |" \
		"| qwen3-8b | NVIDIA H100 SXM5 | cuda | modeled |"
	"$check" svg chart.svg || bad "svg"
	has chart.svg "url(#hatch" "NVIDIA T4" "stroke-dasharray"
	;;
fit)
	"$awqrun" bench --fit --ctx 4096 >out.md 2>err.txt || bad "exit $?"
	has out.md "## Which models fit: context 4096 tokens" "| 16 GiB | 24 GiB | 48 GiB | 80 GiB |" \
		"| qwen3-30b-a3b | awq |" "| qwen3-235b-a22b | bf16 |"
	# an 8B model in AWQ fits 16 GiB; 16-bit 235B fits nothing; 16-bit 32B needs the 80 GiB card
	grep -F "| qwen3-8b | awq |" out.md | grep -qE "\| yes [^|]*\| yes [^|]*\| yes [^|]*\| yes [^|]*\|$" ||
		bad "qwen3-8b awq should fit every size"
	grep -F "| qwen3-235b-a22b | bf16 |" out.md | grep -qE "\| no \| no \| no \| no \|$" ||
		bad "qwen3-235b-a22b bf16 should fit nothing"
	grep -F "| qwen3-32b | bf16 |" out.md | grep -qE "\| no \| no \| no \| yes [^|]*\|$" ||
		bad "qwen3-32b bf16 should fit 80 GiB only"
	"$awqrun" bench --fit --ctx 32768 --synthetic qwen3-8b,qwen3-30b-a3b --gpu-mem 24,80 --json >fit.json 2>err.txt ||
		bad "exit $?"
	"$check" fit fit.json || bad "fit schema"
	"$awqrun" bench --fit --csv --synthetic qwen3-0.6b --precision awq >fit.csv 2>err.txt || bad "exit $?"
	[ "$(wc -l <fit.csv)" -eq 2 ] || bad "fit CSV: want a header and 1 line"
	;;
usage)
	usage_error bench
	usage_error bench -m "$bf16" -r 0
	usage_error bench -m "$bf16" -p 8,x
	usage_error bench -m "$bf16" --method nosuch
	usage_error bench -m "$bf16" --json --csv
	usage_error bench -m "$bf16" --synthetic qwen3-0.6b
	usage_error bench -m "$bf16" --nosuch
	usage_error bench --fit --gpu-mem 16,big
	usage_error bench --fit --precision int3
	usage_error compare
	usage_error compare --nosuch 1
	usage_error compare -r 0 a.json
	"$awqrun" compare /nonexistent.json >out.txt 2>err.txt
	[ $? -eq 1 ] || bad "a missing JSON file should exit 1"
	"$awqrun" bench -m "$bf16" $quick --backend nosuch >out.txt 2>err.txt
	[ $? -eq 1 ] || bad "an unknown backend should exit 1"
	;;
*)
	bad "unknown case"
	;;
esac
exit $fail

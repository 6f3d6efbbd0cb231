#!/bin/sh
# CLI checks of `awqrun run` / `awqrun perplexity` on tests/data/gen/qwen3-tiny (issue 3).
#   cli_test.sh AWQRUN DATA_DIR BUILD_DIR CASE
set -u
AWQRUN=$1 DATA=$2 BUILD=$3 CASE=$4
GEN=$DATA/gen/qwen3-tiny
out=$(mktemp) && trap 'rm -f "$out"' EXIT

# expect_fail REGEX CMD...: non-zero exit and REGEX in the output
expect_fail() {
	re=$1; shift
	if "$@" >"$out" 2>&1; then echo "FAIL: exit 0 from: $*"; cat "$out"; exit 1; fi
	grep -Eq "$re" "$out" || { echo "FAIL: no /$re/ in the output of: $*"; cat "$out"; exit 1; }
	cat "$out"; echo "ok: failed as expected"
}

case $CASE in
greedy) # the same tokens as transformers' generate(), through both command spellings
	want=$(cat "$GEN/golden_tokens.txt")
	for cmd in "run -m" "-m"; do
		$AWQRUN $cmd "$GEN" -p "Why is the sky blue?" --no-think --temp 0 -n 24 --backend cpu --print-token-ids \
			>"$out" 2>&1 || { cat "$out"; exit 1; }
		grep -q "generated ids: $want\$" "$out" || { echo "FAIL: want ids $want"; cat "$out"; exit 1; }
	done
	grep -Eq 'prompt 32 tokens, generated 24 tokens \| prefill [0-9.]+ tok/s, decode [0-9.]+ tok/s \| peak RSS' "$out" ||
		{ echo "FAIL: closing line"; cat "$out"; exit 1; }
	cat "$out" ;;
perplexity) # transformers' sliding-window perplexity to 1e-3 relative
	want=$(sed -n 's/.*"value": \([0-9.e+-]*\).*/\1/p' "$GEN/golden.json")
	$AWQRUN perplexity -m "$GEN" -f "$GEN/ppl.txt" --ctx 64 --stride 24 --backend cpu >"$out" 2>&1 ||
		{ cat "$out"; exit 1; }
	cat "$out"
	got=$(sed -n 's/^perplexity: \([0-9.]*\).*/\1/p' "$out")
	awk -v g="$got" -v w="$want" 'BEGIN { d = (g - w) / w; if (d < 0) d = -d; if (g == "" || d > 1e-3) {
		print "FAIL: perplexity " g ", want " w; exit 1 } print "ok: " g " vs " w }' ;;
seed) # sampling repeats with a seed; stop strings cut the output
	a=$($AWQRUN run -m "$GEN" -p "Hello" --temp 1.0 --top-k 50 --top-p 0.9 --min-p 0.01 --repeat-penalty 1.1 \
		--seed 123 -n 16 --backend cpu --print-token-ids 2>&1 | grep "generated ids") || exit 1
	b=$($AWQRUN run -m "$GEN" -p "Hello" --temp 1.0 --top-k 50 --top-p 0.9 --min-p 0.01 --repeat-penalty 1.1 \
		--seed 123 -n 16 --backend cpu --print-token-ids 2>&1 | grep "generated ids") || exit 1
	[ "$a" = "$b" ] || { echo "FAIL: same seed, different tokens: $a / $b"; exit 1; }
	echo "ok: $a"
	# top-k without a penalty: sampled from each step's top-k (awq_session_decode_sampled)
	c=$($AWQRUN run -m "$GEN" -p "Hello" --temp 0.8 --top-k 40 --seed 123 -n 16 --backend cpu --print-token-ids 2>&1 |
		grep "generated ids") || exit 1
	d=$($AWQRUN run -m "$GEN" -p "Hello" --temp 0.8 --top-k 40 --seed 123 -n 16 --backend cpu --print-token-ids 2>&1 |
		grep "generated ids") || exit 1
	[ "$c" = "$d" ] && [ "$(echo "$c" | wc -w)" -eq 18 ] || { echo "FAIL: top-k sampling: $c / $d"; exit 1; }
	echo "ok: $c" ;;
stop) # a stop string ends the output just before it
	full=$($AWQRUN run -m "$GEN" -p "Why is the sky blue?" --no-think --temp 0 -n 24 --backend cpu 2>/dev/null) || exit 1
	cut=$($AWQRUN run -m "$GEN" -p "Why is the sky blue?" --no-think --temp 0 -n 24 --backend cpu --stop ber \
		--stop "never there" 2>/dev/null) || exit 1
	case $full in *ber*) ;; *) echo "FAIL: the golden text has no 'ber' any more: $full"; exit 1 ;; esac
	[ "$cut" = "${full%%ber*}" ] || { echo "FAIL: --stop ber gave '$cut' from '$full'"; exit 1; }
	echo "ok: '$cut'" ;;
interactive) # two turns on one KV cache
	printf 'Hi\nAnd then?\n\n' | $AWQRUN run -m "$GEN" -i --no-think --temp 0 -n 6 --backend cpu >"$out" 2>&1 ||
		{ cat "$out"; exit 1; }
	cat "$out"
	grep -Eq 'generated 12 tokens' "$out" || { echo "FAIL: want 12 generated tokens over two turns"; exit 1; }
	# sampled (top-k, no penalty: each reply's steps as one sampled run)
	printf 'Hi\nAnd then?\n\n' | $AWQRUN run -m "$GEN" -i --no-think --temp 0.8 --seed 3 -n 6 --backend cpu >"$out" 2>&1 ||
		{ cat "$out"; exit 1; }
	cat "$out"
	grep -Eq 'generated 12 tokens' "$out" || { echo "FAIL: want 12 sampled tokens over two turns"; exit 1; } ;;
err_no_tokenizer)
	expect_fail 'tokenizer.json: missing' $AWQRUN run -m "$DATA/golden/qwen3-bf16" -p hi ;;
err_bad_json)
	mkdir -p "$BUILD/bad_tokenizer" && printf '{"model": {"type": "BPE", "vocab": ' >"$BUILD/bad_tokenizer/tokenizer.json"
	expect_fail 'bad_tokenizer/tokenizer.json: invalid JSON' $AWQRUN run -m "$BUILD/bad_tokenizer" -p hi ;;
err_bad_model)
	mkdir -p "$BUILD/unigram_tokenizer" &&
		printf '{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}' >"$BUILD/unigram_tokenizer/tokenizer.json"
	expect_fail 'tokenizer.json: model type "Unigram" is not supported' $AWQRUN run -m "$BUILD/unigram_tokenizer" -p hi ;;
err_ctx)
	expect_fail 'the prompt has 32 tokens but the context holds 16' \
		$AWQRUN run -m "$GEN" -p "Why is the sky blue?" --no-think --ctx 16 --backend cpu ;;
err_no_file) # a prompt or text file that cannot be read
	expect_fail '/nonexistent/prompt.txt: cannot read it' $AWQRUN run -m "$GEN" -f /nonexistent/prompt.txt --backend cpu
	expect_fail '/nonexistent/text.txt: cannot read it' \
		$AWQRUN perplexity -m "$GEN" -f /nonexistent/text.txt --backend cpu ;;
err_template)
	expect_fail 'unknown chat template' $AWQRUN run -m "$DATA/tokenizer/llama2" -p hi --chat ;;
gen_config) # generation_config.json's sampling settings are the defaults, as in vLLM; options win
	m="$BUILD/gen_config_model"
	rm -rf "$m" && mkdir -p "$m" && cp "$GEN"/* "$m"/ || exit 1
	printf '{"do_sample": true, "temperature": 0.6, "top_k": 20, "top_p": 0.95, "eos_token_id": [2, 0]}\n' \
		>"$m/generation_config.json"
	$AWQRUN run -m "$m" -p hi -n 4 --seed 7 --backend cpu >"$out" 2>&1 || { cat "$out"; exit 1; }
	grep -q 'sampling from generation_config.json: temperature 0.6, top-k 20, top-p 0.95, min-p 0, repeat penalty 1 ' \
		"$out" || { echo "FAIL: file defaults not applied"; cat "$out"; exit 1; }
	$AWQRUN run -m "$m" -p hi -n 4 --seed 7 --temp 0.9 --min-p 0.1 --backend cpu >"$out" 2>&1 || { cat "$out"; exit 1; }
	grep -q 'temperature 0.9, top-k 20, top-p 0.95, min-p 0.1,' "$out" ||
		{ echo "FAIL: command-line options must win"; cat "$out"; exit 1; }
	$AWQRUN run -m "$m" -p hi -n 4 --seed 7 --no-gen-config --backend cpu >"$out" 2>&1 || { cat "$out"; exit 1; }
	grep -q 'sampling from generation_config' "$out" && { echo "FAIL: --no-gen-config ignored"; cat "$out"; exit 1; }
	printf '{"top_p": 2}\n' >"$m/generation_config.json"
	expect_fail 'generation_config.json: "top_p" must be a number from 1e-06 to 1' $AWQRUN run -m "$m" -p hi --backend cpu ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac

/* llama-bench style measurement shared by `awqrun bench` and the built-in default. */
#ifndef AWQ_BENCH_H
#define AWQ_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "awqrun.h"

#define BENCH_MAX_TESTS 8

struct bench_result {
	char model[96], precision[32], backend[16], device[128], kernels[96], test[32];
	int n_prompt, n_gen, repeats;
	double tok_s, tok_s_stddev;
	double bytes_per_token; /* weights read per token (+ mean KV read for decode) */
	double gbs;             /* bytes_per_token * tok_s / 1e9 */
	double bw_gbs;          /* bandwidth reference (0 = unknown) */
	uint64_t weight_bytes, device_bytes;
};

struct bench_opts {
	int prompts[BENCH_MAX_TESTS], n_prompts;
	int gens[BENCH_MAX_TESTS], n_gens;
	int repeats;
	int threads;
	int device;
	int quiet;
	int progress; /* print a line per finished long run */
	double bw_gbs;
	uint64_t seed;
};

/* Run every pp/tg test for one model on one backend; appends to res (capacity max), returns the
 * number of rows added or a negative status with err filled. */
int bench_model(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		struct bench_result *res, int max, char *err, size_t errlen);

/* The long-context method of the Qwen speed benchmark: batch 1, for each input length L a fresh
 * session sized to L + gen, prefill L tokens then decode gen; speed = (L + gen) / total time; the
 * device memory the session holds is reported. Lengths the model or device cannot hold are skipped
 * with a note. */
int bench_long_context(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		       const int *inputs, int n_inputs, int gen, struct bench_result *res, int max, char *err,
		       size_t errlen);
void bench_print_long_markdown(FILE *f, const struct bench_result *r, int n);

void bench_print_markdown(FILE *f, const struct bench_result *r, int n);
void bench_print_json(FILE *f, const struct bench_result *r, int n);

#endif

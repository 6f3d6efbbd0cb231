/* Whole-model checks on CUDA with synthetic random-weight models of a real (small) shape:
 * decoding token by token (captured CUDA graph, GEMV kernels, split-K attention) must give the
 * logits that one prefill of the same tokens gives (GEMM kernels, flash attention); so must steps
 * of 2-8 tokens (the decode kernels' multi-token forms: AWQ GEMVs reading the f16 copies their
 * producers write, XH). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "cu_test.h"

#define T_ALL 80 /* past 64 positions: the steps cross from the first attention span to the next (max_ctx 128) */
#define T_PRE 20

static double row_err(const float *a, const float *b, int n, int *same_argmax)
{
	double num = 0, den = 0;
	int ia = 0, ib = 0;
	for (int i = 0; i < n; i++) {
		if (!isfinite(b[i]))
			return INFINITY;
		num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		den += (double)a[i] * a[i];
		ia = a[i] > a[ia] ? i : ia;
		ib = b[i] > b[ib] ? i : ib;
	}
	*same_argmax = ia == ib;
	return sqrt(num / (den > 0 ? den : 1e-30));
}

static int check_model(const char *preset, const char *precision)
{
	char err[AWQ_ERRLEN] = "";
	awq_model *m = NULL;
	awq_session *a = NULL, *b = NULL, *c = NULL;
	struct awq_model_info mi;
	float *ref = NULL, *got = NULL, *got3 = NULL;
	int32_t toks[T_ALL];
	int fails = 0, agree = 0;
	double worst = 0;
	/* Prefill feeds the tensor cores 16-bit activations: f16 for AWQ (as the decode GEMV does),
	 * bf16 for BF16 weights (cuBLAS), while the BF16 decode GEMV keeps them f32. bf16's 8-bit
	 * mantissa rounds each matmul input 8x more coarsely than f16, and the random weights of the
	 * synthetic 24-layer model amplify it: 2-4% of the row norm was measured on the H200. */
	double tol = strcmp(precision, "bf16") ? 2e-2 : 6e-2;
	if (awq_model_synthetic(preset, precision, 7, &m, err, sizeof(err)) || awq_model_get_info(m, &mi)) {
		printf("FAIL %s %s: %s\n", preset, precision, err);
		return 1;
	}
	struct awq_session_opts o;
	awq_session_opts_default(&o);
	o.backend = "cuda";
	o.max_ctx = 128;
	o.max_batch = 64;
	o.quiet = 1;
	if (awq_session_create(m, &o, &a, err, sizeof(err)) || awq_session_create(m, &o, &b, err, sizeof(err)) ||
	    awq_session_create(m, &o, &c, err, sizeof(err))) {
		printf("FAIL %s %s: session: %s\n", preset, precision, err);
		fails = 1;
		goto out;
	}
	uint64_t seed = 11;
	for (int i = 0; i < T_ALL; i++)
		toks[i] = (int32_t)(cu_rand_u64(&seed) % (uint64_t)mi.vocab);
	ref = malloc((size_t)T_ALL * mi.vocab * sizeof(float));
	got = malloc((size_t)T_ALL * mi.vocab * sizeof(float));
	got3 = malloc((size_t)T_ALL * mi.vocab * sizeof(float));
	if (!ref || !got || !got3) {
		fails = 1;
		goto out;
	}
	for (size_t i = 0; i < (size_t)T_ALL * mi.vocab; i++)
		got[i] = got3[i] = NAN;
	int rc = awq_session_eval(a, toks, T_ALL, 0, 1, ref, err, sizeof(err));
	if (!rc)
		rc = awq_session_eval(b, toks, T_PRE, 0, 1, got, err, sizeof(err));
	for (int i = T_PRE; i < T_ALL && !rc; i++)
		rc = awq_session_eval(b, toks + i, 1, i, 0, got + (size_t)i * mi.vocab, err, sizeof(err));
	/* steps of 2-8 tokens after the same prefill (T_ALL - T_PRE = 60), one across position 64 */
	static const int steps[] = {3, 5, 8, 2, 4, 6, 7, 8, 8, 5, 4};
	const int n_steps = (int)(sizeof(steps) / sizeof(steps[0]));
	if (!rc)
		rc = awq_session_eval(c, toks, T_PRE, 0, 1, got3, err, sizeof(err));
	for (int i = T_PRE, s = 0; s < n_steps && !rc; i += steps[s++])
		rc = awq_session_eval(c, toks + i, steps[s], i, 1, got3 + (size_t)i * mi.vocab, err, sizeof(err));
	if (rc) {
		printf("FAIL %s %s: eval: %s\n", preset, precision, err);
		fails = 1;
		goto out;
	}
	for (int i = 0; i < T_ALL; i++) {
		int same = 0;
		double e = row_err(ref + (size_t)i * mi.vocab, got + (size_t)i * mi.vocab, mi.vocab, &same);
		worst = e > worst ? e : worst;
		agree += same;
		if (!(e <= tol)) {
			printf("FAIL %s %s: token %d (%s) rel_err %.3g\n", preset, precision, i, i < T_PRE ? "prefill" : "decode", e);
			fails++;
		}
	}
	int agree3 = 0, fails0 = fails;
	double worst3 = 0;
	for (int i = T_PRE; i < T_ALL; i++) {
		int same = 0;
		double e = row_err(ref + (size_t)i * mi.vocab, got3 + (size_t)i * mi.vocab, mi.vocab, &same);
		worst3 = e > worst3 ? e : worst3;
		agree3 += same;
		if (!(e <= tol)) {
			printf("FAIL %s %s: token %d (steps of 2-8) rel_err %.3g\n", preset, precision, i, e);
			fails++;
		}
	}
	if (agree3 < (T_ALL - T_PRE) * 9 / 10) {
		printf("FAIL %s %s: steps of 2-8 tokens: greedy tokens agree on only %d of %d rows\n", preset, precision,
		       agree3, T_ALL - T_PRE);
		fails++;
	}
	printf("%s %s %s: steps of 2-8 tokens vs prefill worst rel_err %.3g, argmax agree %d/%d\n", fails > fails0 ? "FAIL" : "ok  ",
	       preset, precision, worst3, agree3, T_ALL - T_PRE);
	if (agree < T_ALL * 9 / 10) {
		printf("FAIL %s %s: greedy tokens agree on only %d of %d rows\n", preset, precision, agree, T_ALL);
		fails++;
	}
	printf("%s %s %s: decode vs prefill worst rel_err %.3g, argmax agree %d/%d\n", fails ? "FAIL" : "ok  ", preset,
	       precision, worst, agree, T_ALL);
out:
	free(ref);
	free(got);
	free(got3);
	awq_session_free(a);
	awq_session_free(b);
	awq_session_free(c);
	awq_model_free(m);
	return fails;
}

int main(void)
{
	struct cu_pair p;
	int rc = cu_pair_open(&p);
	if (rc)
		return rc;
	cu_pair_close(&p);
	/* Sessions find the plugin through the registry: point it at the one under test. */
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", AWQ_CUDA_PLUGIN_PATH);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		setenv("AWQ_PLUGIN_DIR", dir, 0);
	}
	int f = check_model("qwen2.5-0.5b", "awq") + check_model("qwen2.5-0.5b", "bf16") + check_model("qwen3-0.6b", "awq");
	printf("%s: %d failure(s)\n", f ? "FAIL" : "PASS", f);
	return f ? 1 : 0;
}

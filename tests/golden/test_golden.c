/* Golden test: awqrun's logits against Hugging Face transformers' for a tiny checkpoint made by
 * tools/reference/make_golden.py.
 *   test_golden MODEL_DIR [--backend NAME] [--scalar] [--tol REL] [--atol ABS]
 * The golden token sequence is evaluated three ways on one session:
 *   prefill  one call, every row's logits;
 *   decode   one token per call through the KV cache;
 *   split    two calls of several tokens, the second at pos > 0 (multi-token eval on a cache);
 * and a greedy call must pick the prefill's top token of the last row. Every row of each pass must
 * satisfy  max_i |out_i - ref_i| <= tol * max_i |ref_i| + atol  against the reference, and decode
 * and split against prefill with the same bound. The reference is float32 on the stored weights,
 * so exact paths differ by summation order only: tol 1e-3, atol 1e-4 by default. Paths with
 * lower-precision arithmetic (the CPU int8-activation AWQ kernels, GPU fp16) are registered with a
 * looser stated --tol. Whatever the tolerance, each row's top-1 token must be the reference's
 * unless the reference's own margin between the two is within the error bound (a near-tie that
 * the allowed error may flip). Exit 77 (skip) when the backend has no device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_test.h"
#include "awqrun.h"
#include "awqrun_text.h"
#include "safetensors.h"

struct golden {
	struct awq_st_file file;
	const int32_t *tokens;
	const float *logits; /* [T, V] */
	int T, V;
	double tol, atol;
};

static int argmax(const float *x, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

static double abs_max(const float *x, int n)
{
	double m = 0;
	for (int i = 0; i < n; i++)
		m = fabs(x[i]) > m ? fabs(x[i]) : m;
	return m;
}

/* Largest |a - ref| of one row; infinite when a has a non-finite value (poison left unwritten). */
static double row_diff(const float *a, const float *ref, int n)
{
	double mx = 0;
	for (int i = 0; i < n; i++) {
		if (!isfinite(a[i]))
			return INFINITY;
		double d = fabs((double)a[i] - ref[i]);
		mx = d > mx ? d : mx;
	}
	return mx;
}

static int load_golden(const char *dir, struct golden *g)
{
	char path[4096], err[AWQ_ERRLEN];
	snprintf(path, sizeof(path), "%s/golden.safetensors", dir);
	if (awq_safetensors_open(path, &g->file, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return -1;
	}
	const struct awq_st_tensor *tt = awq_safetensors_find(&g->file.hdr, "tokens");
	const struct awq_st_tensor *lt = awq_safetensors_find(&g->file.hdr, "logits");
	if (!tt || !lt || tt->dtype != AWQ_DT_I32 || tt->n_dims != 1 || lt->dtype != AWQ_DT_F32 ||
	    lt->n_dims != 2 || lt->shape[0] != tt->shape[0] || tt->shape[0] < 2 || lt->shape[1] < 2) {
		fprintf(stderr, "FAIL: %s lacks tokens I32 [T >= 2] and logits F32 [T, vocab]\n", path);
		awq_safetensors_close(&g->file);
		return -1;
	}
	g->T = (int)tt->shape[0];
	g->V = (int)lt->shape[1];
	g->tokens = awq_safetensors_data(&g->file, tt);
	g->logits = awq_safetensors_data(&g->file, lt);
	for (int t = 0; t < g->T; t++) {
		if (g->tokens[t] < 0 || g->tokens[t] >= g->V) {
			fprintf(stderr, "FAIL: %s: token %d at position %d is outside the vocabulary of %d\n", path,
				(int)g->tokens[t], t, g->V);
			awq_safetensors_close(&g->file);
			return -1;
		}
	}
	return 0;
}

/* Compare T rows of out against ref (the reference or another pass); returns the number of
 * failing rows and raises *worst to the largest diff / bound seen. */
static int check_rows(const struct golden *g, const char *what, const float *out, const float *ref,
		      double *worst)
{
	int fails = 0;
	for (int t = 0; t < g->T; t++) {
		const float *o = out + (size_t)t * g->V, *r = ref + (size_t)t * g->V;
		double bound = g->tol * abs_max(r, g->V) + g->atol;
		double d = row_diff(o, r, g->V);
		*worst = d / bound > *worst ? d / bound : *worst;
		if (!(d <= bound)) {
			fprintf(stderr, "%s row %d: max |diff| %.4g > bound %.4g\n", what, t, d, bound);
			fails++;
		}
	}
	return fails;
}

/* Top-1 of every row of out must be the reference's, unless the reference's margin between the
 * two tokens is within twice the bound (each logit may move by the bound). */
static int check_top1(const struct golden *g, const char *what, const float *out)
{
	int fails = 0;
	for (int t = 0; t < g->T; t++) {
		const float *r = g->logits + (size_t)t * g->V;
		int want = argmax(r, g->V), got = argmax(out + (size_t)t * g->V, g->V);
		double bound = g->tol * abs_max(r, g->V) + g->atol;
		if (got == want)
			continue;
		if (r[want] - r[got] <= 2 * bound) {
			printf("note: %s row %d top-1 %d vs reference %d, a near-tie (margin %.3g)\n", what, t, got,
			       want, r[want] - r[got]);
			continue;
		}
		fprintf(stderr, "%s row %d: top-1 token %d, reference %d (margin %.3g)\n", what, t, got, want,
			r[want] - r[got]);
		fails++;
	}
	return fails;
}

static void poison(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		x[i] = NAN;
}

/* The three passes and the greedy call; fills pre, dec, split ([T, V] each). */
static int run_passes(awq_session *s, const struct golden *g, float *pre, float *dec, float *split,
		      int32_t *next, char *err, size_t errlen)
{
	const size_t rows = (size_t)g->T * g->V;
	const int half = g->T / 2;
	poison(pre, rows);
	poison(dec, rows);
	poison(split, rows);
	int rc = awq_session_eval(s, g->tokens, g->T, 0, 1, pre, err, errlen);
	for (int t = 0; !rc && t < g->T; t++)
		rc = awq_session_eval(s, g->tokens + t, 1, t, 0, dec + (size_t)t * g->V, err, errlen);
	if (!rc)
		rc = awq_session_eval(s, g->tokens, half, 0, 1, split, err, errlen);
	if (!rc)
		rc = awq_session_eval(s, g->tokens + half, g->T - half, half, 1, split + (size_t)half * g->V, err,
				      errlen);
	*next = -1;
	if (!rc)
		rc = awq_session_eval_greedy(s, g->tokens, g->T, 0, next, err, errlen);
	return rc;
}

static int compare(const struct golden *g, const float *pre, const float *dec, const float *split,
		   int32_t next, double worst[4])
{
	int fails = check_rows(g, "prefill", pre, g->logits, &worst[0]);
	fails += check_rows(g, "decode", dec, g->logits, &worst[1]);
	fails += check_rows(g, "split", split, g->logits, &worst[2]);
	fails += check_rows(g, "decode vs prefill", dec, pre, &worst[3]);
	fails += check_rows(g, "split vs prefill", split, pre, &worst[3]);
	fails += check_top1(g, "prefill", pre);
	fails += check_top1(g, "decode", dec);
	const float *last = pre + (size_t)(g->T - 1) * g->V;
	double bound = g->tol * abs_max(last, g->V) + g->atol;
	if (next < 0 || next >= g->V || !(last[argmax(last, g->V)] - last[next] <= bound)) {
		fprintf(stderr, "greedy: token %d, the prefill's last row picks %d\n", (int)next,
			argmax(last, g->V));
		fails++;
	}
	return fails;
}

/* Tokens a decode chain hands back, and where it is asked to stop. */
struct chain_rec {
	int32_t ids[256];
	int n, stop_at;
};

static int chain_take(void *user, int32_t id)
{
	struct chain_rec *r = user;
	if (r->n < 256)
		r->ids[r->n] = id;
	r->n++;
	return r->n == r->stop_at;
}

/* Where the backend's chain is expected to take a decode (awq_test_expect_chain), the last one ran
 * all `want` of its steps in it: a chain refused quietly (the core then runs the steps itself, with
 * the same tokens) is a failure. Returns 1 on failure. */
static int chained(awq_session *s, int sampled, int want, const char *what)
{
	struct awq_session_info si;
	awq_session_get_info(s, &si);
	if (!awq_test_expect_chain(si.backend, si.device, sampled) || si.chained_steps == want)
		return 0;
	fprintf(stderr, "FAIL: %s: %d of its %d steps ran in the %s backend's chain, expected all of them there\n",
		what, si.chained_steps, want, si.backend);
	return 1;
}

/* Greedy decoding as one chain (awq_session_decode_greedy: on CUDA each argmax fed to the next step
 * on the device) equals the same steps one at a time, token for token: the first half of the golden
 * tokens prefilled, then the rest of the context decoded. Then a chain stopped half way (the
 * backend may have run the step after the stop) and resumed from its last token gives the same
 * tokens again, and a single step after that agrees too. Returns the number of failures. */
static int check_chain(awq_session *s, const struct golden *g, char *err, size_t errlen)
{
	const int h = g->T / 2, k = g->T - h < 256 ? g->T - h : 256;
	int32_t ref[256], first, t;
	struct chain_rec a = {.stop_at = -1}, b = {.stop_at = k / 2 > 0 ? k / 2 : 1}, c = {.stop_at = -1};
	int steps = 0, fails = 0;
	if (k < 2)
		return 0;
	if (awq_session_eval_greedy(s, g->tokens, h, 0, &first, err, errlen))
		goto failed;
	t = first;
	for (int i = 0; i < k; i++) {
		if (awq_session_eval_greedy(s, &t, 1, h + i, &t, err, errlen))
			goto failed;
		ref[i] = t;
	}
	if (awq_session_decode_greedy(s, first, h, k, chain_take, &a, &steps, err, errlen))
		goto failed;
	if (steps != k || a.n != k || memcmp(a.ids, ref, (size_t)k * sizeof(int32_t))) {
		fprintf(stderr, "FAIL: greedy chain of %d steps (%d delivered) differs from the steps one at a time\n",
			k, steps);
		fails++;
	}
	fails += chained(s, 0, k, "greedy chain");
	if (awq_session_decode_greedy(s, first, h, k, chain_take, &b, &steps, err, errlen))
		goto failed;
	if (steps != b.stop_at || b.n != b.stop_at) {
		fprintf(stderr, "FAIL: a chain asked to stop after %d tokens delivered %d\n", b.stop_at, steps);
		return fails + 1;
	}
	if (awq_session_decode_greedy(s, b.ids[b.n - 1], h + b.n, k - b.n, chain_take, &c, &steps, err, errlen))
		goto failed;
	if (c.n != k - b.n || memcmp(b.ids, ref, (size_t)b.n * sizeof(int32_t)) ||
	    memcmp(c.ids, ref + b.n, (size_t)c.n * sizeof(int32_t))) {
		fprintf(stderr, "FAIL: a chain stopped after %d tokens and resumed differs from the steps one at a time\n",
			b.n);
		fails++;
	}
	if (awq_session_eval_greedy(s, &ref[k - 2], 1, h + k - 1, &t, err, errlen))
		goto failed;
	if (t != ref[k - 1]) {
		fprintf(stderr, "FAIL: a single step after the chains gives %d, not %d\n", (int)t, (int)ref[k - 1]);
		fails++;
	}
	/* bad requests are refused with the error they are, before any step */
	static const struct {
		int first_v, pos_from_end, n, rc; /* first_v: 0 a token, -1 below the vocabulary, 1 its size */
	} bad[] = {{0, 1, 0, AWQ_EINVAL}, {0, 1, 2, AWQ_ETOOBIG}, {-1, 2, 1, AWQ_EINVAL}, {1, 2, 1, AWQ_EINVAL}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int32_t tok = bad[i].first_v < 0 ? -1 : bad[i].first_v > 0 ? g->V : first;
		char e2[AWQ_ERRLEN] = "";
		int rc = awq_session_decode_greedy(s, tok, g->T - bad[i].pos_from_end, bad[i].n, chain_take, &c, &steps, e2,
						   sizeof(e2));
		if (rc != bad[i].rc || !e2[0] || steps != 0) {
			fprintf(stderr, "FAIL: a bad chain request (%zu) gave %d (%s), %d steps; wanted %d\n", i, rc, e2, steps,
				bad[i].rc);
			fails++;
		}
	}
	return fails;
failed:
	fprintf(stderr, "FAIL: greedy chain: %s\n", err);
	return fails + 1;
}

/* The top-k of the last row (awq_session_eval_topk: selected on the device where the backend can)
 * against the host's selection from another evaluation of the same tokens: ids distinct and in
 * range, ranked (larger value, then lower id), each value its row's within the golden bound, and the
 * j-th value the row's j-th best within it (a GPU's two evaluations may differ in the last bits,
 * so near-ties may swap; the kernel test checks the selection bit for bit). After a prefill of the
 * whole context and after one step, for k = 1, 40 and 256 (where the vocabulary has that many).
 * Returns the number of failures. */
static int check_topk(awq_session *s, const struct golden *g, char *err, size_t errlen)
{
	float *row = malloc((size_t)g->V * sizeof(float));
	int32_t ids[AWQ_TOPK_MAX], want[AWQ_TOPK_MAX];
	float vals[AWQ_TOPK_MAX];
	const int ks[] = {1, 40, 256};
	int fails = 0;
	if (!row) {
		fprintf(stderr, "FAIL: out of memory for a row\n");
		return 1;
	}
	for (int pass = 0; pass < 2; pass++) {
		const int n = pass ? 1 : g->T, pos = pass ? g->T - 1 : 0;
		const int32_t *tok = g->tokens + (pass ? g->T - 1 : 0);
		for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
			const int k = ks[i];
			if (k > g->V)
				continue;
			if (awq_session_eval(s, tok, n, pos, 0, row, err, errlen) ||
			    awq_session_eval_topk(s, tok, n, pos, k, ids, vals, err, errlen)) {
				fprintf(stderr, "FAIL: top-%d: %s\n", k, err);
				free(row);
				return fails + 1;
			}
			awq_topk_select(row, g->V, k, want);
			const double bound = g->tol * abs_max(row, g->V) + g->atol;
			int bad = -1;
			for (int j = 0; j < k && bad < 0; j++) {
				int ok = ids[j] >= 0 && ids[j] < g->V && fabs(vals[j] - row[ids[j]]) <= bound &&
					 fabs(vals[j] - row[want[j]]) <= bound;
				if (j > 0)
					ok = ok && (vals[j - 1] > vals[j] || (vals[j - 1] == vals[j] && ids[j - 1] < ids[j]));
				for (int q = 0; q < j && ok; q++)
					ok = ids[q] != ids[j];
				if (!ok)
					bad = j;
			}
			if (bad >= 0) {
				fprintf(stderr,
					"FAIL: top-%d after %s: rank %d is %d (%g; the row has %g there), the row's is %d (%g); "
					"bound %g\n",
					k, pass ? "a step" : "a prefill", bad, ids[bad], vals[bad],
					ids[bad] >= 0 && ids[bad] < g->V ? row[ids[bad]] : NAN, want[bad], row[want[bad]], bound);
				fails++;
			}
		}
	}
	/* bad requests are refused */
	char e2[AWQ_ERRLEN] = "";
	if (awq_session_eval_topk(s, g->tokens, 1, 0, 0, ids, vals, e2, sizeof(e2)) != AWQ_EINVAL || !e2[0] ||
	    awq_session_eval_topk(s, g->tokens, 1, 0, AWQ_TOPK_MAX + 1, ids, vals, e2, sizeof(e2)) != AWQ_EINVAL) {
		fprintf(stderr, "FAIL: a top-k of 0 or %d candidates was not refused\n", AWQ_TOPK_MAX + 1);
		fails++;
	}
	free(row);
	return fails;
}

static int sampler_for(struct awq_sampler *smp, int V, char *err, size_t errlen)
{
	struct awq_sampler_opts o;
	awq_sampler_opts_default(&o);
	o.temperature = 0.9f, o.top_k = V > 40 ? 40 : V - 1, o.top_p = 0.9f, o.min_p = 0.02f, o.seed = 7;
	return awq_sampler_init(smp, &o, V, err, errlen);
}

/* Sampled decoding as one run (awq_session_decode_sampled: on CUDA drawn on the device in one chain)
 * equals the same draws made on the host from each step's top-k, one step at a time, token for token,
 * with the random stream in the same place after; stopped half way and resumed from its last token it
 * gives the same tokens again. Samplers it cannot take are refused before any step. Returns the
 * number of failures. */
static int check_sampled(awq_session *s, const struct golden *g, char *err, size_t errlen)
{
	const int h = g->T / 2, k = g->T - h < 256 ? g->T - h : 256;
	int32_t ref[256], ids[AWQ_TOPK_MAX], first = 0, t;
	float vals[AWQ_TOPK_MAX];
	struct awq_sampler a = {0}, b = {0}, c = {0};
	struct chain_rec ra = {.stop_at = -1}, rb = {.stop_at = k / 2 > 0 ? k / 2 : 1}, rc2 = {.stop_at = -1};
	int steps = 0, fails = 0;
	if (k < 2 || g->V < 3)
		return 0;
	if (sampler_for(&a, g->V, err, errlen) || sampler_for(&b, g->V, err, errlen) || sampler_for(&c, g->V, err, errlen))
		goto failed;
	/* the reference: the prefill's top-k, then each step's, drawn on the host */
	if (awq_session_eval_topk(s, g->tokens, h, 0, a.o.top_k, ids, vals, err, errlen))
		goto failed;
	first = t = awq_sampler_sample_topk(&a, ids, vals, a.o.top_k);
	awq_sampler_sample_topk(&b, ids, vals, b.o.top_k);
	awq_sampler_sample_topk(&c, ids, vals, c.o.top_k);
	for (int i = 0; i < k; i++) {
		if (awq_session_eval_topk(s, &t, 1, h + i, a.o.top_k, ids, vals, err, errlen))
			goto failed;
		ref[i] = t = awq_sampler_sample_topk(&a, ids, vals, a.o.top_k);
	}
	if (awq_session_decode_sampled(s, &b, first, h, k, chain_take, &ra, &steps, err, errlen))
		goto failed;
	if (steps != k || ra.n != k || memcmp(ra.ids, ref, (size_t)k * sizeof(int32_t)) || memcmp(a.rng, b.rng, sizeof(a.rng))) {
		fprintf(stderr, "FAIL: sampled run of %d steps (%d delivered) differs from the host's draws%s\n", k, steps,
			memcmp(a.rng, b.rng, sizeof(a.rng)) ? " (random stream elsewhere)" : "");
		fails++;
	}
	fails += chained(s, 1, k, "sampled run");
	if (awq_session_decode_sampled(s, &c, first, h, k, chain_take, &rb, &steps, err, errlen))
		goto failed;
	if (steps != rb.stop_at || rb.n != rb.stop_at) {
		fprintf(stderr, "FAIL: a sampled run asked to stop after %d tokens delivered %d\n", rb.stop_at, steps);
		fails++;
		goto out;
	}
	if (awq_session_decode_sampled(s, &c, rb.ids[rb.n - 1], h + rb.n, k - rb.n, chain_take, &rc2, &steps, err, errlen))
		goto failed;
	if (rc2.n != k - rb.n || memcmp(rb.ids, ref, (size_t)rb.n * sizeof(int32_t)) ||
	    memcmp(rc2.ids, ref + rb.n, (size_t)rc2.n * sizeof(int32_t)) || memcmp(a.rng, c.rng, sizeof(a.rng))) {
		fprintf(stderr, "FAIL: a sampled run stopped after %d tokens and resumed differs from the host's draws\n",
			rb.n);
		fails++;
	}
	{ /* refused: greedy, a repetition penalty, top-k off */
		struct awq_sampler bad;
		char e2[AWQ_ERRLEN] = "";
		int refused = 0;
		for (int v = 0; v < 3; v++) {
			if (sampler_for(&bad, g->V, err, errlen))
				goto failed;
			if (v == 0)
				bad.o.temperature = 0;
			else if (v == 1)
				bad.o.repeat_penalty = 1.1f;
			else
				bad.o.top_k = 0;
			refused += awq_session_decode_sampled(s, &bad, first, h, 2, chain_take, &rc2, &steps, e2, sizeof(e2)) ==
					   AWQ_EINVAL && e2[0] && steps == 0;
			awq_sampler_free(&bad);
		}
		if (refused != 3) {
			fprintf(stderr, "FAIL: %d of 3 samplers sampled decoding cannot take were refused\n", refused);
			fails++;
		}
	}
out:
	awq_sampler_free(&a);
	awq_sampler_free(&b);
	awq_sampler_free(&c);
	return fails;
failed:
	fprintf(stderr, "FAIL: sampled run: %s\n", err);
	fails++;
	goto out;
}

static int run_model(const char *dir, const char *backend, int scalar, struct golden *g)
{
	char err[AWQ_ERRLEN];
	awq_model *m = NULL;
	awq_session *s = NULL;
	if (awq_model_load(dir, &m, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	struct awq_session_opts o;
	awq_session_opts_default(&o);
	o.backend = backend;
	o.cpu_scalar = scalar;
	o.max_ctx = g->T;
	o.quiet = 1;
	int rc = awq_session_create(m, &o, &s, err, sizeof(err));
	if (rc) {
		awq_model_free(m);
		return awq_test_no_session(rc == AWQ_ENODEV, err);
	}
	const size_t rows = (size_t)g->T * g->V;
	float *pre = malloc(rows * sizeof(float)), *dec = malloc(rows * sizeof(float));
	float *split = malloc(rows * sizeof(float));
	int32_t next;
	double worst[4] = {0, 0, 0, 0};
	int fails = 1;
	if (!pre || !dec || !split)
		fprintf(stderr, "FAIL: out of memory for %zu logits\n", rows);
	else if (run_passes(s, g, pre, dec, split, &next, err, sizeof(err)))
		fprintf(stderr, "FAIL: %s\n", err);
	else
		fails = compare(g, pre, dec, split, next, worst) + check_chain(s, g, err, sizeof(err)) +
			check_topk(s, g, err, sizeof(err)) + check_sampled(s, g, err, sizeof(err));
	struct awq_session_info si;
	if (!awq_session_get_info(s, &si))
		printf("%s on %s (%s): %d tokens; max diff / bound: prefill %.3g, decode %.3g, split %.3g, between passes %.3g (tol %.3g, atol %.3g): %s\n",
		       dir, si.backend, si.kernels, g->T, worst[0], worst[1], worst[2], worst[3], g->tol, g->atol,
		       fails ? "FAIL" : "ok");
	free(pre);
	free(dec);
	free(split);
	awq_session_free(s);
	awq_model_free(m);
	return fails ? 1 : 0;
}

static int parse_tol(const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || !(v >= 0 && v < 1)) {
		fprintf(stderr, "test_golden: tolerance '%s' is not a number in [0, 1)\n", s);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *backend = "cpu";
	struct golden g = {.tol = 1e-3, .atol = 1e-4};
	int scalar = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
			backend = argv[++i];
		} else if (!strcmp(argv[i], "--scalar")) {
			scalar = 1;
		} else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
			if (parse_tol(argv[++i], &g.tol))
				return 2;
		} else if (!strcmp(argv[i], "--atol") && i + 1 < argc) {
			if (parse_tol(argv[++i], &g.atol))
				return 2;
		} else if (argv[i][0] != '-' && !dir) {
			dir = argv[i];
		} else {
			dir = NULL;
			break;
		}
	}
	if (!dir) {
		fprintf(stderr, "usage: test_golden MODEL_DIR [--backend NAME] [--scalar] [--tol REL] [--atol ABS]\n");
		return 2;
	}
	if (load_golden(dir, &g))
		return 1;
	int rc = run_model(dir, backend, scalar, &g);
	awq_safetensors_close(&g.file);
	return rc;
}

/* Golden test: awqrun's logits against Hugging Face transformers' for a tiny checkpoint.
 *   test_golden MODEL_DIR [--backend NAME] [--scalar] [--tol REL]
 * Evaluates the golden token sequence (a) as one prefill returning every row and (b) one token per
 * call through the KV cache, and checks both against golden.safetensors:
 *   max |awqrun - ref| <= tol * max |ref|    (per row)
 * that (a) and (b) agree with each other to the same tolerance, and that the top-1 token of every
 * row equals the reference's (unless the reference has a near-tie within the tolerance). The reference is computed in
 * float32 on the stored weights, so the exact paths differ only by summation order (default tol
 * 1e-3); the CPU backend's AWQ path quantizes activations to int8 per block of 64 and is registered
 * with a looser stated tolerance. Exit 77 (skip) when the backend has no device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "safetensors.h"

static int argmax(const float *x, int n)
{
	int b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

static double row_err(const float *a, const float *ref, int n)
{
	double mx = 0, ref_mx = 0;
	for (int i = 0; i < n; i++) {
		if (!isfinite(a[i]))
			return INFINITY;
		double d = fabs((double)a[i] - ref[i]);
		mx = d > mx ? d : mx;
		ref_mx = fabs(ref[i]) > ref_mx ? fabs(ref[i]) : ref_mx;
	}
	return mx / (ref_mx > 0 ? ref_mx : 1);
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *backend = "cpu";
	double tol = 1e-3;
	int scalar = 0;
	char err[AWQ_ERRLEN], path[4096];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--backend") && i + 1 < argc)
			backend = argv[++i];
		else if (!strcmp(argv[i], "--scalar"))
			scalar = 1;
		else if (!strcmp(argv[i], "--tol") && i + 1 < argc)
			tol = atof(argv[++i]);
		else
			dir = argv[i];
	}
	if (!dir) {
		fprintf(stderr, "usage: test_golden MODEL_DIR [--backend NAME] [--scalar] [--tol REL]\n");
		return 2;
	}
	struct awq_st_file gf;
	snprintf(path, sizeof(path), "%s/golden.safetensors", dir);
	if (awq_safetensors_open(path, &gf, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	const struct awq_st_tensor *tt = awq_safetensors_find(&gf.hdr, "tokens");
	const struct awq_st_tensor *lt = awq_safetensors_find(&gf.hdr, "logits");
	if (!tt || !lt || tt->dtype != AWQ_DT_I32 || lt->dtype != AWQ_DT_F32 || lt->n_dims != 2 ||
	    lt->shape[0] != tt->shape[0]) {
		fprintf(stderr, "FAIL: %s lacks tokens I32 [T] / logits F32 [T, vocab]\n", path);
		return 1;
	}
	const int T = (int)tt->shape[0], V = (int)lt->shape[1];
	const int32_t *tokens = awq_safetensors_data(&gf, tt);
	const float *ref = awq_safetensors_data(&gf, lt);

	awq_model *m = NULL;
	if (awq_model_load(dir, &m, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	struct awq_session_opts o;
	awq_session_opts_default(&o);
	o.backend = backend;
	o.cpu_scalar = scalar;
	o.max_ctx = T;
	o.quiet = 1;
	awq_session *s = NULL;
	int rc = awq_session_create(m, &o, &s, err, sizeof(err));
	if (rc == AWQ_ENODEV) {
		printf("SKIP: %s\n", err);
		awq_model_free(m);
		awq_safetensors_close(&gf);
		return 77;
	}
	if (rc) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	float *pre = malloc((size_t)T * V * sizeof(float)), *dec = malloc((size_t)T * V * sizeof(float));
	if (!pre || !dec)
		return 1;
	for (size_t i = 0; i < (size_t)T * V; i++)
		pre[i] = dec[i] = NAN; /* poison: an unwritten row fails */
	rc = awq_session_eval(s, tokens, T, 0, 1, pre, err, sizeof(err));
	for (int t = 0; !rc && t < T; t++)
		rc = awq_session_eval(s, tokens + t, 1, t, 0, dec + (size_t)t * V, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	double worst_pre = 0, worst_dec = 0, worst_pd = 0;
	int fails = 0;
	for (int t = 0; t < T; t++) {
		double ep = row_err(pre + (size_t)t * V, ref + (size_t)t * V, V);
		double ed = row_err(dec + (size_t)t * V, ref + (size_t)t * V, V);
		double epd = row_err(dec + (size_t)t * V, pre + (size_t)t * V, V);
		worst_pre = ep > worst_pre ? ep : worst_pre;
		worst_dec = ed > worst_dec ? ed : worst_dec;
		worst_pd = epd > worst_pd ? epd : worst_pd;
		/* the top-1 token must agree unless the reference itself has a near-tie within tolerance */
		const float *rr = ref + (size_t)t * V;
		int top_ref = argmax(rr, V), top = argmax(pre + (size_t)t * V, V);
		double ref_max = 0;
		for (int i = 0; i < V; i++)
			ref_max = fabs(rr[i]) > ref_max ? fabs(rr[i]) : ref_max;
		if (top != top_ref && rr[top_ref] - rr[top] > 2 * tol * ref_max) {
			fprintf(stderr, "row %d: top-1 token %d differs from the reference's %d\n", t, top, top_ref);
			fails++;
		}
		if (!(ep <= tol) || !(ed <= tol) || !(epd <= tol)) {
			fprintf(stderr, "row %d: prefill err %.3g, decode err %.3g, prefill-vs-decode %.3g (tol %.3g)\n", t, ep,
				ed, epd, tol);
			fails++;
		}
	}
	struct awq_session_info si;
	awq_session_get_info(s, &si);
	printf("%s on %s (%s): %d tokens, max rel err prefill %.3g decode %.3g, prefill vs decode %.3g, tol %.3g: %s\n",
	       dir, si.backend, si.kernels, T, worst_pre, worst_dec, worst_pd, tol, fails ? "FAIL" : "ok");
	free(pre);
	free(dec);
	awq_session_free(s);
	awq_model_free(m);
	awq_safetensors_close(&gf);
	return fails ? 1 : 0;
}

/* Prefill (ppN) and decode (tgN) throughput, llama-bench style: a warm-up, then `repeats` timed runs,
 * mean and standard deviation of tokens/s. Decode feeds back the device's greedy token each step, as
 * a real generation does, so no step can run ahead of the previous one. */
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void random_tokens(int32_t *t, int n, int vocab, uint64_t *state)
{
	for (int i = 0; i < n; i++) {
		*state = *state * 6364136223846793005ull + 1442695040888963407ull;
		t[i] = (int32_t)((*state >> 33) % (uint64_t)vocab);
	}
}

static int time_prefill(awq_session *s, const int32_t *tok, int n, double *secs, char *err, size_t errlen)
{
	double t0 = now_s();
	int rc = awq_session_eval(s, tok, n, 0, 0, NULL, err, errlen);
	if (!rc)
		rc = awq_session_sync(s, err, errlen);
	*secs = now_s() - t0;
	return rc;
}

static int time_decode(awq_session *s, int32_t first, int n, double *secs, char *err, size_t errlen)
{
	int32_t tok = first;
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		int rc = awq_session_eval_greedy(s, &tok, 1, i, &tok, err, errlen);
		if (rc)
			return rc;
	}
	*secs = now_s() - t0;
	return 0;
}

static void stats(const double *v, int n, double *mean, double *sd)
{
	double m = 0, q = 0;
	for (int i = 0; i < n; i++)
		m += v[i];
	m /= n;
	for (int i = 0; i < n; i++)
		q += (v[i] - m) * (v[i] - m);
	*mean = m;
	*sd = n > 1 ? sqrt(q / (n - 1)) : 0.0;
}

int bench_model(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		struct bench_result *res, int max, char *err, size_t errlen)
{
	struct awq_model_info mi;
	struct awq_session_opts so;
	struct awq_session_info si;
	awq_session *s = NULL;
	int max_p = 1, max_n = 1, rows = 0, rc;
	uint64_t rng = o->seed ? o->seed : 1234;

	awq_model_get_info(m, &mi);
	for (int i = 0; i < o->n_prompts; i++)
		max_p = o->prompts[i] > max_p ? o->prompts[i] : max_p;
	for (int i = 0; i < o->n_gens; i++)
		max_n = o->gens[i] > max_n ? o->gens[i] : max_n;
	awq_session_opts_default(&so);
	so.backend = backend;
	so.device = o->device;
	so.threads = o->threads;
	so.quiet = o->quiet;
	so.max_batch = max_p;
	so.max_ctx = (max_p > max_n ? max_p : max_n) + 1;
	rc = awq_session_create(m, &so, &s, err, errlen);
	if (rc)
		return rc;
	awq_session_get_info(s, &si);
	double bw = o->bw_gbs;
	if (bw <= 0 && awq_session_bandwidth(s, &bw, err, errlen) != 0)
		bw = 0; /* unknown: the fraction column stays empty */
	int32_t *tok = malloc((size_t)max_p * sizeof(int32_t));
	double *tps = malloc((size_t)(o->repeats > 0 ? o->repeats : 1) * sizeof(double));
	if (!tok || !tps) {
		rc = AWQ_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Warm-up: first-touch of weights, kernel selection, graph capture. */
	random_tokens(tok, max_p < 8 ? max_p : 8, mi.vocab, &rng);
	rc = time_prefill(s, tok, max_p < 8 ? max_p : 8, &(double){0}, err, errlen);
	if (!rc)
		rc = time_decode(s, tok[0], 4 < max_n ? 4 : max_n, &(double){0}, err, errlen);
	double kv_per_pos = si.kv_bytes && si.max_ctx ? (double)si.kv_bytes / si.max_ctx : (double)mi.kv_bytes_per_token;
	for (int t = 0; !rc && t < o->n_prompts + o->n_gens; t++) {
		int is_pp = t < o->n_prompts;
		int n = is_pp ? o->prompts[t] : o->gens[t - o->n_prompts];
		if (n <= 0)
			continue;
		if (rows >= max) {
			rc = AWQ_EINVAL;
			snprintf(err, errlen, "too many benchmark rows");
			break;
		}
		for (int r = 0; r < o->repeats && !rc; r++) {
			double secs = 0;
			random_tokens(tok, is_pp ? n : 1, mi.vocab, &rng);
			rc = is_pp ? time_prefill(s, tok, n, &secs, err, errlen) : time_decode(s, tok[0], n, &secs, err, errlen);
			tps[r] = n / secs;
		}
		if (rc)
			break;
		struct bench_result *b = &res[rows++];
		memset(b, 0, sizeof(*b));
		snprintf(b->model, sizeof(b->model), "%s", model_name);
		snprintf(b->precision, sizeof(b->precision), "%s", mi.precision);
		snprintf(b->backend, sizeof(b->backend), "%s", si.backend);
		snprintf(b->device, sizeof(b->device), "%s", si.device);
		snprintf(b->kernels, sizeof(b->kernels), "%s", si.kernels);
		snprintf(b->test, sizeof(b->test), "%s%d", is_pp ? "pp" : "tg", n);
		b->n_prompt = is_pp ? n : 0;
		b->n_gen = is_pp ? 0 : n;
		b->repeats = o->repeats;
		stats(tps, o->repeats, &b->tok_s, &b->tok_s_stddev);
		/* Decode reads every weight (top-k experts) once per token plus the KV cache so far
		 * (mean position (n-1)/2); prefill's bytes per token are the weights spread over n. */
		b->bytes_per_token = is_pp ? (double)mi.decode_bytes / n
					   : (double)mi.decode_bytes + kv_per_pos * (n - 1) / 2.0;
		b->gbs = b->bytes_per_token * b->tok_s / 1e9;
		b->bw_gbs = bw;
		b->weight_bytes = mi.weight_bytes;
		b->device_bytes = si.device_bytes;
	}
out:
	free(tok);
	free(tps);
	awq_session_free(s);
	return rc ? rc : rows;
}

void bench_print_markdown(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "| model | precision | backend | device | test | tok/s | bytes/token | GB/s | %% of BW |\n");
	fprintf(f, "|---|---|---|---|---|---:|---:|---:|---:|\n");
	for (int i = 0; i < n; i++) {
		char frac[32] = "-";
		if (r[i].bw_gbs > 0 && r[i].n_gen > 0)
			snprintf(frac, sizeof(frac), "%.0f%%", 100.0 * r[i].gbs / r[i].bw_gbs);
		fprintf(f, "| %s | %s | %s | %s | %s | %.2f ± %.2f | %.3g MB | %.1f | %s |\n", r[i].model,
			r[i].precision, r[i].backend, r[i].device, r[i].test, r[i].tok_s, r[i].tok_s_stddev,
			r[i].bytes_per_token / 1e6, r[i].n_gen > 0 ? r[i].gbs : 0.0, frac);
	}
}

static void json_str(FILE *f, const char *key, const char *v, int comma)
{
	fprintf(f, "\"%s\": \"", key);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		if ((unsigned char)*p >= 0x20)
			fputc(*p, f);
	}
	fprintf(f, "\"%s", comma ? ", " : "");
}

void bench_print_json(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "{\"awqrun\": \"%s\", \"results\": [\n", awq_version());
	for (int i = 0; i < n; i++) {
		fprintf(f, "  {");
		json_str(f, "model", r[i].model, 1);
		json_str(f, "precision", r[i].precision, 1);
		json_str(f, "backend", r[i].backend, 1);
		json_str(f, "device", r[i].device, 1);
		json_str(f, "kernels", r[i].kernels, 1);
		json_str(f, "test", r[i].test, 1);
		fprintf(f, "\"n_prompt\": %d, \"n_gen\": %d, \"repeats\": %d, \"tok_s\": %.4f, \"tok_s_stddev\": %.4f, "
			   "\"bytes_per_token\": %.0f, \"gbs\": %.3f, \"bw_gbs\": %.3f, \"weight_bytes\": %llu, "
			   "\"device_bytes\": %llu}%s\n",
			r[i].n_prompt, r[i].n_gen, r[i].repeats, r[i].tok_s, r[i].tok_s_stddev, r[i].bytes_per_token,
			r[i].gbs, r[i].bw_gbs, (unsigned long long)r[i].weight_bytes,
			(unsigned long long)r[i].device_bytes, i + 1 < n ? "," : "");
	}
	fprintf(f, "]}\n");
}

int bench_long_context(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		       const int *inputs, int n_inputs, int gen, struct bench_result *res, int max, char *err,
		       size_t errlen)
{
	struct awq_model_info mi;
	int rows = 0;
	uint64_t rng = o->seed ? o->seed : 4321;

	awq_model_get_info(m, &mi);
	for (int i = 0; i < n_inputs && rows < max; i++) {
		int L = inputs[i] > 0 ? inputs[i] : 1;
		struct awq_session_opts so;
		struct awq_session_info si;
		awq_session *s = NULL;
		if (mi.max_position > 0 && L + gen > mi.max_position) {
			fprintf(stderr, "bench: skipping input %d: %d + %d tokens exceed the model's %d positions\n", L, L,
				gen, mi.max_position);
			continue;
		}
		awq_session_opts_default(&so);
		so.backend = backend;
		so.device = o->device;
		so.threads = o->threads;
		so.quiet = 1;
		so.max_ctx = L + gen;
		so.max_batch = L < 2048 ? L : 2048;
		int rc = awq_session_create(m, &so, &s, err, errlen);
		if (rc == AWQ_ETOOBIG || rc == AWQ_ENOMEM) {
			fprintf(stderr, "bench: skipping input %d: %s\n", L, err);
			continue;
		}
		if (rc)
			return rc;
		awq_session_get_info(s, &si);
		int32_t *tok = malloc((size_t)L * sizeof(int32_t));
		if (!tok) {
			awq_session_free(s);
			return AWQ_ENOMEM;
		}
		random_tokens(tok, L, mi.vocab, &rng);
		double t0 = now_s(), t_dec = 0;
		int32_t next = 0;
		rc = awq_session_eval_greedy(s, tok, L, 0, &next, err, errlen);
		for (int k = 0; !rc && k < gen - 1; k++)
			rc = awq_session_eval_greedy(s, &next, 1, L + k, &next, err, errlen);
		t_dec = now_s() - t0;
		free(tok);
		awq_session_free(s);
		if (rc)
			return rc;
		if (o->progress)
			fprintf(stderr, "bench: %s input %d + %d: %.1f s\n", model_name, L, gen, t_dec);
		struct bench_result *b = &res[rows++];
		memset(b, 0, sizeof(*b));
		snprintf(b->model, sizeof(b->model), "%s", model_name);
		snprintf(b->precision, sizeof(b->precision), "%s", mi.precision);
		snprintf(b->backend, sizeof(b->backend), "%s", si.backend);
		snprintf(b->device, sizeof(b->device), "%s", si.device);
		snprintf(b->kernels, sizeof(b->kernels), "%s", si.kernels);
		snprintf(b->test, sizeof(b->test), "ctx%d+%d", L, gen);
		b->n_prompt = L;
		b->n_gen = gen;
		b->repeats = 1;
		b->tok_s = (L + gen) / t_dec;
		b->weight_bytes = mi.weight_bytes;
		b->device_bytes = si.device_bytes;
	}
	return rows;
}

void bench_print_long_markdown(FILE *f, const struct bench_result *r, int n)
{
	fprintf(f, "| Model | Input Length | Quantization | Backend | Device | GPU Num | Speed (tokens/s) | "
		   "Memory (MB) |\n|---|---:|---|---|---|---:|---:|---:|\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "| %s | %d | %s | %s | %s | 1 | %.2f | %.0f |\n", r[i].model, r[i].n_prompt, r[i].precision,
			r[i].backend, r[i].device, r[i].tok_s, (double)r[i].device_bytes / (1 << 20));
}

/* Prefill (ppN) and decode (tgN) throughput, llama-bench style: a warm-up, then `repeats` timed runs,
 * mean and standard deviation of tokens/s; and the long-context method of the Qwen speed benchmark.
 * Decode feeds back the device's greedy token each step, as a real generation does, so no step can
 * run ahead of the previous one. Each row carries the performance model's prediction for the same
 * device and test, and the session's memory beside the model's accounting of it. */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "awqrun_caps.h"
#include "awqrun_text.h"
#include "clock.h"

/* --- progress line ---------------------------------------------------------------------------- */

static int progress_on = -1, progress_tty, progress_shown;

void bench_progress_enable(int on)
{
	progress_tty = isatty(2);
	progress_on = on || progress_tty;
}

void bench_progress(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	if (progress_on <= 0)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* On a terminal one line is rewritten in place; in a log each step is a line. */
	if (progress_tty)
		fprintf(stderr, "\r\033[K%s", line);
	else
		fprintf(stderr, "%s\n", line);
	progress_shown = 1;
}

void bench_progress_done(void)
{
	if (progress_on > 0 && progress_tty && progress_shown)
		fputs("\r\033[K", stderr);
	progress_shown = 0;
}

/* --- device bandwidth, once per device per run ------------------------------------------------- */

#define BW_CACHE 16
static struct {
	char backend[16];
	int index;
	double gbs;
	const char *source;
} bw_cache[BW_CACHE];
static int n_bw_cache;

double bench_device_bandwidth(awq_session *s, const char *backend, int device_index, const char *device,
			      const char **source)
{
	char err[AWQ_ERRLEN];
	for (int i = 0; i < n_bw_cache; i++)
		if (!strcmp(bw_cache[i].backend, backend) && bw_cache[i].index == device_index) {
			*source = bw_cache[i].source;
			return bw_cache[i].gbs;
		}
	/* Each backend run is already best-of-passes; a few runs more take out a busy moment of a shared
	 * machine (single runs on a 2-core VM scattered by a factor of two). */
	double best = 0, t0 = awq_now_s();
	*source = "read kernel";
	for (int run = 0; run < 4 && (run < 2 || awq_now_s() - t0 < 3.0); run++) {
		double gbs = 0;
		if (awq_session_bandwidth(s, &gbs, err, sizeof(err)) != 0)
			break;
		best = gbs > best ? gbs : best;
	}
	if (best <= 0)
		best = bench_probe_bandwidth(backend, device_index, device, source);
	if (n_bw_cache < BW_CACHE) {
		snprintf(bw_cache[n_bw_cache].backend, sizeof(bw_cache[0].backend), "%s", backend);
		bw_cache[n_bw_cache].index = device_index;
		bw_cache[n_bw_cache].source = *source;
		bw_cache[n_bw_cache++].gbs = best;
	}
	return best;
}

/* After a model's tests: measure once more with the same session and keep the higher reading for
 * this device (a shared machine's bandwidth moves within seconds; one early reading made rows above
 * 100%). Returns the device's best reading; only sessions measured by their own read kernel. */
static double remeasure_bandwidth(awq_session *s, const char *backend, int device_index, double bw)
{
	char err[AWQ_ERRLEN];
	double gbs = 0;
	if (awq_session_bandwidth(s, &gbs, err, sizeof(err)) != 0 || !(gbs > bw))
		return bw;
	for (int i = 0; i < n_bw_cache; i++)
		if (!strcmp(bw_cache[i].backend, backend) && bw_cache[i].index == device_index &&
		    gbs > bw_cache[i].gbs)
			bw_cache[i].gbs = gbs;
	return gbs;
}

/* --- helpers ----------------------------------------------------------------------------------- */

static void random_tokens(int32_t *t, int n, int vocab, uint64_t *state)
{
	for (int i = 0; i < n; i++) {
		*state = *state * 6364136223846793005ull + 1442695040888963407ull;
		t[i] = (int32_t)((*state >> 33) % (uint64_t)vocab);
	}
}

static int time_prefill(awq_session *s, const int32_t *tok, int n, int pos, double *secs, char *err, size_t errlen)
{
	double t0 = awq_now_s();
	int rc = awq_session_eval(s, tok, n, pos, 0, NULL, err, errlen);
	if (!rc)
		rc = awq_session_sync(s, err, errlen);
	*secs = awq_now_s() - t0;
	return rc;
}

/* Sampling with a repetition penalty, step by step as `awqrun run` does it: each step's best top-k +
 * repeat_last_n logits come back (awq_session_eval_topk; on CUDA selected on the device) and the host
 * draws from them with the penalty over the tokens so far; where the sampler needs the whole row (a
 * penalty below 1), the row comes back. */
static int decode_penalised(awq_session *s, struct awq_sampler *smp, int32_t first, int pos0, int n, double *secs,
			    char *err, size_t errlen)
{
	const int nc = awq_sampler_candidates_needed(smp);
	int32_t ids[AWQ_TOPK_MAX], *hist = malloc((size_t)n * sizeof(*hist));
	float vals[AWQ_TOPK_MAX], *row = nc ? NULL : malloc((size_t)smp->vocab * sizeof(*row));
	int rc = 0;
	if (!hist || (!nc && !row)) {
		rc = AWQ_ENOMEM;
		snprintf(err, errlen, "out of memory");
	}
	int32_t tok = first;
	const double t0 = awq_now_s(); /* the steps only, not the buffers' allocation */
	for (int i = 0; i < n && !rc; i++) {
		hist[i] = tok;
		rc = nc ? awq_session_eval_topk(s, &tok, 1, pos0 + i, nc, ids, vals, err, errlen)
			: awq_session_eval(s, &tok, 1, pos0 + i, 0, row, err, errlen);
		if (!rc)
			tok = nc ? awq_sampler_sample_candidates(smp, ids, vals, nc, hist, i + 1)
				 : awq_sampler_sample(smp, row, hist, i + 1);
		if (!rc && tok < 0) {
			rc = AWQ_EINVAL;
			snprintf(err, errlen, "the sampler refused the step's candidates");
		}
	}
	*secs = awq_now_s() - t0;
	free(hist);
	free(row);
	return rc;
}

/* n steps from `first` at positions pos0.., decoded as `awqrun run` decodes them: greedy
 * (awq_session_decode_greedy: where the backend feeds each argmax to the next step on the device,
 * the next step is queued while the host reads a token), or sampled with smp (bench --sample:
 * awq_session_decode_sampled, drawn on the device in the same kind of chain where the backend can,
 * else from each step's top-k on the host); timed to the last token's arrival. */
static int time_decode(awq_session *s, struct awq_sampler *smp, int32_t first, int pos0, int n, double *secs,
		       char *err, size_t errlen)
{
	if (smp && !awq_sampler_topk_only(smp))
		return decode_penalised(s, smp, first, pos0, n, secs, err, errlen);
	double t0 = awq_now_s();
	int rc = smp ? awq_session_decode_sampled(s, smp, first, pos0, n, NULL, NULL, NULL, err, errlen)
		     : awq_session_decode_greedy(s, first, pos0, n, NULL, NULL, NULL, err, errlen);
	*secs = awq_now_s() - t0;
	return rc;
}

/* The long-context method's progress line every 256 decoded tokens. */
struct qwen_progress {
	const char *model, *precision, *backend;
	int input, gen, done;
};

static int qwen_token(void *user, int32_t id)
{
	struct qwen_progress *q = user;
	(void)id;
	if (++q->done % 256 == 0)
		bench_progress("bench: %s %s on %s: input %d + %d: token %d", q->model, q->precision, q->backend,
			       q->input, q->gen, q->done);
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

double bench_pred_error(const struct bench_result *r)
{
	return r->predicted_tok_s > 0 && r->tok_s > 0 ? 100.0 * (r->tok_s - r->predicted_tok_s) / r->predicted_tok_s
						       : 0.0;
}

/* A backend that cannot run a model's ops hands the session to the CPU; the rows say where they
 * ran, and this says why they are not on the backend asked for. */
static void note_fallback(const char *asked, const struct awq_session_info *si, const char *model_name)
{
	if (strcmp(asked, "auto") && strcmp(asked, si->backend)) {
		bench_progress_done();
		fprintf(stderr, "bench: %s: the %s backend cannot run this model; the session runs on %s (%s)\n",
			model_name, asked, si->backend, si->device);
	}
}

/* The fields every row of one session shares. */
static void fill_common(struct bench_result *b, const char *model_name, const char *method,
			const struct awq_model_info *mi, const struct awq_session_info *si, int device_index,
			const struct bench_mem *mem, double bw, const char *bw_source)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->model, sizeof(b->model), "%s", model_name);
	snprintf(b->method, sizeof(b->method), "%s", method);
	snprintf(b->precision, sizeof(b->precision), "%s", mi->precision);
	snprintf(b->backend, sizeof(b->backend), "%s", si->backend);
	snprintf(b->device, sizeof(b->device), "%s", si->device);
	snprintf(b->kernels, sizeof(b->kernels), "%s", si->kernels ? si->kernels : "");
	snprintf(b->driver, sizeof(b->driver), "%s", bench_device_driver(si->backend, device_index, si->device));
	b->device_index = device_index < 0 ? 0 : device_index;
	b->n_devices = 1;
	b->weight_bytes = mi->weight_bytes;
	b->mem = *mem;
	b->bw_gbs = bw;
	snprintf(b->bw_source, sizeof(b->bw_source), "%s", bw > 0 ? bw_source : "unknown");
}

static void session_memory(const awq_model *m, const struct awq_session_info *si, int predict, struct bench_mem *mem)
{
	char err[AWQ_ERRLEN];
	memset(mem, 0, sizeof(*mem));
	if (predict && bench_mem_account(m, si->backend, si->device, si->max_ctx, si->max_batch, mem, err,
					 sizeof(err)) != 0)
		memset(mem, 0, sizeof(*mem));
	mem->weights = si->weight_bytes;
	mem->kv = si->kv_bytes;
	mem->act = si->act_bytes;
	mem->total = si->device_bytes;
	mem->max_ctx = si->max_ctx;
	mem->max_batch = si->max_batch;
	uint64_t parts = si->weight_bytes + si->kv_bytes + si->act_bytes;
	mem->workspace = si->device_bytes > parts ? si->device_bytes - parts : 0;
}

/* The performance model for one row: prefill of n_prompt tokens then n_gen decode steps starting at
 * position n_prompt (its mean KV length n_prompt + n_gen / 2); speed as the row counts it. */
static void predict_row(const awq_model *m, struct bench_result *b, int chunk)
{
	struct awq_perf_query q = {.scheme = AWQ_SCHEME_STORED, .batch = 1, .chunk = chunk};
	struct awq_perf_result r;
	char err[AWQ_ERRLEN];
	q.n_prompt = b->n_prompt > 0 ? b->n_prompt : 1;
	q.ctx = b->n_depth + b->n_prompt + (b->n_gen > 1 ? b->n_gen / 2 : 1);
	if (awq_caps_predict_device(b->backend, b->device, m, &q, b->bw_gbs, &r, err, sizeof(err)) != 0)
		return;
	if (r.limit == AWQ_LIMIT_UNKNOWN || r.limit == AWQ_LIMIT_UNSUPPORTED)
		return;
	double secs = 0;
	if (b->n_prompt > 0)
		secs += r.prefill.seconds;
	if (b->n_gen > 0)
		secs += b->n_gen * r.decode.seconds;
	enum awq_limit lim = b->n_gen > 0 ? r.decode.limit : r.prefill.limit;
	b->predicted_tok_s = secs > 0 ? (b->n_prompt + b->n_gen) / secs : 0;
	snprintf(b->bound, sizeof(b->bound), "%s", r.limit == AWQ_LIMIT_MEMORY ? "memory" : awq_limit_name(lim));
}

/* --- llama-bench method -------------------------------------------------------------------------- */

int bench_model(awq_model *m, const char *model_name, const char *backend, const struct bench_opts *o,
		struct bench_result *res, int max, char *err, size_t errlen)
{
	struct awq_model_info mi;
	struct awq_session_opts so;
	struct awq_session_info si;
	struct bench_mem mem;
	awq_session *s = NULL;
	struct awq_sampler sampler, *smp = NULL;
	int max_p = 1, max_n = 1, rows = 0, rc;
	uint64_t rng = o->seed ? o->seed : 1234;

	awq_model_get_info(m, &mi);
	if (o->sample) { /* awqrun run's default sampling, seeded like the tokens */
		struct awq_sampler_opts so_s;
		awq_sampler_opts_default(&so_s);
		so_s.seed = rng;
		if (o->repeat_penalty > 0)
			so_s.repeat_penalty = o->repeat_penalty;
		if (mi.vocab <= so_s.top_k) {
			snprintf(err, errlen, "--sample: the vocabulary (%d) is not larger than top-k %d", mi.vocab,
				 so_s.top_k);
			return AWQ_EINVAL;
		}
		if ((rc = awq_sampler_init(&sampler, &so_s, mi.vocab, err, errlen)))
			return rc;
		smp = &sampler;
	}
	for (int i = 0; i < o->n_prompts; i++)
		max_p = o->prompts[i] > max_p ? o->prompts[i] : max_p;
	for (int i = 0; i < o->n_gens; i++)
		max_n = o->gens[i] > max_n ? o->gens[i] : max_n;
	awq_session_opts_default(&so);
	so.backend = backend;
	so.device = o->device;
	so.threads = o->threads;
	so.quiet = o->quiet;
	int max_d = 0, n_depths = o->n_depths > 0 ? o->n_depths : 1;
	for (int i = 0; i < o->n_depths; i++)
		max_d = o->depths[i] > max_d ? o->depths[i] : max_d;
	so.max_batch = max_p;
	so.max_ctx = max_d + (max_p > max_n ? max_p : max_n) + 1;
	if (mi.max_position > 0 && so.max_ctx - 1 > mi.max_position) /* (prompt inputs past it are skipped) */
		fprintf(stderr, "bench: %s: the tests reach %d positions, past the model's %d: speed figures only\n",
			model_name, so.max_ctx - 1, mi.max_position);
	bench_progress("bench: %s %s on %s: loading", model_name, mi.precision, backend);
	rc = awq_session_create(m, &so, &s, err, errlen);
	if (rc) {
		if (smp)
			awq_sampler_free(smp);
		return rc;
	}
	awq_session_get_info(s, &si);
	note_fallback(backend, &si, model_name);
	double bw = o->bw_gbs;
	const char *bw_src = "given (--bw)";
	if (bw <= 0) {
		bench_progress("bench: %s: measuring read bandwidth", si.device);
		bw = bench_device_bandwidth(s, si.backend, o->device, si.device, &bw_src);
	}
	session_memory(m, &si, o->predict, &mem);
	int32_t *tok = malloc((size_t)(max_p > max_d ? max_p : max_d > 0 ? max_d : 1) * sizeof(int32_t));
	double *tps = malloc((size_t)(o->repeats > 0 ? o->repeats : 1) * sizeof(double));
	if (!tok || !tps) {
		rc = AWQ_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Warm-up: first touch of weights, kernel selection, graph capture. */
	bench_progress("bench: %s %s on %s: warm-up", model_name, mi.precision, si.backend);
	const double warm0 = awq_now_s();
	random_tokens(tok, max_p < 8 ? max_p : 8, mi.vocab, &rng);
	rc = time_prefill(s, tok, max_p < 8 ? max_p : 8, 0, &(double){0}, err, errlen);
	/* decode steps for at least half a second in all, so that an idle GPU's clocks are up (an H200
	 * idles at 345 MHz). (The slow first Vulkan test of a fresh device call, 107 tok/s against 417 in
	 * session 20, was not the clocks but NVIDIA's cold shader disk cache, which no warm-up here
	 * fixes: session 21, docs/perf.md; tools/bench/gpu-session.sh primes that cache.) */
	for (int i = 0; !rc && i < 200 && (i == 0 || awq_now_s() - warm0 < 0.5); i++)
		rc = time_decode(s, NULL, tok[0], 0, 4 < max_n ? 4 : max_n, &(double){0}, err, errlen);
	double kv_per_pos = si.kv_bytes && si.max_ctx ? (double)si.kv_bytes / si.max_ctx : (double)mi.kv_bytes_per_token;
	int n_tests = o->n_prompts + o->n_gens;
	for (int t = 0; !rc && t < n_tests * n_depths; t++) {
		int depth = o->n_depths > 0 ? o->depths[t / n_tests] : 0;
		int is_pp = t % n_tests < o->n_prompts;
		int n = is_pp ? o->prompts[t % n_tests] : o->gens[t % n_tests - o->n_prompts];
		if (depth > 0 && t % n_tests == 0) {
			/* The context the tests of this depth start from: prefilled once, not timed.
			 * Tests write positions depth.. only, so it stays valid for all of them. */
			bench_progress("bench: %s %s on %s: filling %d positions of context", model_name, mi.precision,
				       si.backend, depth);
			random_tokens(tok, depth, mi.vocab, &rng);
			rc = time_prefill(s, tok, depth, 0, &(double){0}, err, errlen);
			if (rc)
				break;
		}
		if (n <= 0)
			continue;
		if (rows >= max) {
			rc = AWQ_EINVAL;
			snprintf(err, errlen, "too many benchmark rows");
			break;
		}
		/* A warm-up run of this test, as llama-bench does: prefill shapes pick their own kernels
		 * (and cuBLAS its heuristics) on first use. Decode warms up on a few steps. */
		random_tokens(tok, is_pp ? n : 1, mi.vocab, &rng);
		rc = is_pp ? time_prefill(s, tok, n, depth, &(double){0}, err, errlen)
			   : time_decode(s, smp, tok[0], depth, n < 16 ? n : 16, &(double){0}, err, errlen);
		for (int r = 0; r < o->repeats && !rc; r++) {
			double secs = 0;
			bench_progress("bench: %s %s on %s: %s%d run %d/%d", model_name, mi.precision, si.backend,
				       is_pp ? "pp" : "tg", n, r + 1, o->repeats);
			random_tokens(tok, is_pp ? n : 1, mi.vocab, &rng);
			rc = is_pp ? time_prefill(s, tok, n, depth, &secs, err, errlen)
				   : time_decode(s, smp, tok[0], depth, n, &secs, err, errlen);
			tps[r] = secs > 0 ? n / secs : 0;
		}
		if (rc)
			break;
		struct bench_result *b = &res[rows++];
		fill_common(b, model_name, "llama", &mi, &si, o->device, &mem, bw, bw_src);
		char how[32] = "";
		if (!is_pp && smp)
			snprintf(how, sizeof(how), smp->o.repeat_penalty != 1.0f ? " sampled rp%g" : " sampled",
				 (double)smp->o.repeat_penalty);
		if (depth > 0)
			snprintf(b->test, sizeof(b->test), "%s%d%s @ d%d", is_pp ? "pp" : "tg", n, how, depth);
		else
			snprintf(b->test, sizeof(b->test), "%s%d%s", is_pp ? "pp" : "tg", n, how);
		b->n_prompt = is_pp ? n : 0;
		b->n_gen = is_pp ? 0 : n;
		b->n_depth = depth;
		/* the positions the test's tokens take: depth .. depth + n - 1 */
		b->trained_positions = mi.max_position > 0 ? mi.max_position : 0;
		b->past_trained = mi.max_position > 0 && depth + n > mi.max_position;
		b->repeats = o->repeats;
		stats(tps, o->repeats, &b->tok_s, &b->tok_s_stddev);
		/* Decode reads every weight (top-k experts) once per token plus the KV cache so far
		 * (mean position depth + (n-1)/2); prefill's bytes per token are the weights spread over n. */
		b->bytes_per_token = is_pp ? (double)mi.decode_bytes / n
					   : (double)mi.decode_bytes + kv_per_pos * (depth + (n - 1) / 2.0);
		b->gbs = is_pp ? 0 : b->bytes_per_token * b->tok_s / 1e9;
		if (o->predict)
			predict_row(m, b, si.max_batch);
	}
	if (!rc && o->bw_gbs <= 0 && !strcmp(bw_src, "read kernel")) {
		double again = remeasure_bandwidth(s, si.backend, o->device, bw);
		for (int i = 0; again > bw && i < rows; i++) {
			res[i].bw_gbs = again;
			if (o->predict)
				predict_row(m, &res[i], si.max_batch);
		}
	}
out:
	bench_progress_done();
	free(tok);
	free(tps);
	if (smp)
		awq_sampler_free(smp);
	awq_session_free(s);
	return rc ? rc : rows;
}

/* --- Qwen long-context method ------------------------------------------------------------------- */

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
		struct bench_mem mem;
		awq_session *s = NULL;
		if (mi.max_position > 0 && L + gen > mi.max_position) {
			bench_progress_done();
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
		bench_progress("bench: %s %s on %s: input %d: loading", model_name, mi.precision, backend, L);
		int rc = awq_session_create(m, &so, &s, err, errlen);
		if (rc == AWQ_ETOOBIG || rc == AWQ_ENOMEM) {
			bench_progress_done();
			fprintf(stderr, "bench: skipping input %d: %s\n", L, err);
			continue;
		}
		if (rc)
			return rc;
		awq_session_get_info(s, &si);
		if (i == 0)
			note_fallback(backend, &si, model_name);
		const char *bw_src = "given (--bw)";
		double bw = o->bw_gbs > 0 ? o->bw_gbs : bench_device_bandwidth(s, si.backend, o->device, si.device, &bw_src);
		session_memory(m, &si, o->predict, &mem);
		int32_t *tok = malloc((size_t)L * sizeof(int32_t));
		if (!tok) {
			awq_session_free(s);
			return AWQ_ENOMEM;
		}
		random_tokens(tok, L, mi.vocab, &rng);
		/* Warm-up: a short prefill and two decode steps; the timed run overwrites their positions. */
		int32_t next = 0;
		int wl = L < 8 ? L : 8;
		rc = awq_session_eval_greedy(s, tok, wl, 0, &next, err, errlen);
		for (int k = 0; !rc && k < 2 && wl + k < so.max_ctx; k++)
			rc = awq_session_eval_greedy(s, &next, 1, wl + k, &next, err, errlen);
		bench_progress("bench: %s %s on %s: input %d + %d", model_name, mi.precision, si.backend, L, gen);
		double t0 = awq_now_s();
		if (!rc)
			rc = awq_session_eval_greedy(s, tok, L, 0, &next, err, errlen);
		if (!rc && gen > 1) {
			struct qwen_progress q = {model_name, mi.precision, si.backend, L, gen, 0};
			rc = awq_session_decode_greedy(s, next, L, gen - 1, qwen_token, &q, NULL, err, errlen);
		}
		double t = awq_now_s() - t0;
		free(tok);
		if (rc) {
			awq_session_free(s);
			return rc;
		}
		/* The session's info strings live in the session: copy them before freeing it. */
		struct bench_result *b = &res[rows++];
		fill_common(b, model_name, "qwen", &mi, &si, o->device, &mem, bw, bw_src);
		awq_session_free(s);
		snprintf(b->test, sizeof(b->test), "ctx%d+%d", L, gen);
		b->n_prompt = L;
		b->n_gen = gen;
		b->repeats = 1;
		b->tok_s = (L + gen) / t;
		if (o->predict)
			predict_row(m, b, so.max_batch);
	}
	bench_progress_done();
	return rows;
}

/* Sampled decoding drawn on the device against the host's draws, at a real vocabulary's size: a
 * one-layer model with Qwen3's 151936-entry vocabulary, built in memory with random weights, decodes
 * 48 steps as one awq_session_decode_sampled run (on CUDA and Vulkan the top-k and the draw on the
 * device, in the chain) and as host draws from each step's top-k (awq_session_eval_topk +
 * awq_sampler_sample_topk), token for token, the random stream ending in the same place, for several
 * samplers (top-k 1 to 256, top-p, min-p, temperatures). On the CPU both are the host's draws.
 * Where the chain is expected (awq_test_expect_chain), every step must have run in it
 * (awq_session_info.chained_steps), so that a chain that quietly fell back to the host's draws fails.
 * usage: test_sampled BACKEND. Exit 77 where the backend has no device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awq_test.h"
#include "awqrun.h"
#include "awqrun_text.h"
#include "synthetic.h"

#define STEPS 48

struct rec {
	int32_t ids[STEPS];
	int n;
};

static int collect(void *user, int32_t id)
{
	struct rec *r = user;
	if (r->n < STEPS)
		r->ids[r->n] = id;
	r->n++;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		float t, p, minp;
		int k;
	} cfg[] = {{0.8f, 0.95f, 0.05f, 40}, {1.5f, 1.0f, 0, 256}, {0.3f, 1.0f, 0, 1}, {1.0f, 0.5f, 0.01f, 100},
		   {2.0f, 0.99f, 0, 200}};
	char err[AWQ_ERRLEN];
	struct awq_config c;
	awq_model *m = NULL;
	awq_session *s = NULL;
	if (argc != 2) {
		fprintf(stderr, "usage: test_sampled BACKEND\n");
		return 2;
	}
	if (awq_preset_config("qwen3-0.6b", &c, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	/* head_dim 64: a head size GPU decode attention's fast variants take (Vulkan's grouped-query
	 * workgroups per span included: ctest sampled_vulkan_attn_span) */
	c.hidden = 64, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 64, c.intermediate = 128;
	if (awq_model_from_config(&c, "bf16", 1, 11, &m, err, sizeof(err))) {
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	struct awq_session_opts o;
	awq_session_opts_default(&o);
	o.backend = argv[1];
	o.max_ctx = 64;
	o.quiet = 1;
	int rc = awq_session_create(m, &o, &s, err, sizeof(err));
	if (rc) {
		awq_model_free(m);
		return awq_test_no_session(rc == AWQ_ENODEV, err);
	}
	const int32_t prompt[4] = {151643, 9707, 11, 1879};
	int fails = 0;
	struct awq_session_info si;
	awq_session_get_info(s, &si);
	const int expect = awq_test_expect_chain(o.backend, si.device, 1);
	printf("%s on %s: every step in the backend's chain %s\n", o.backend, si.device,
	       expect ? "expected" : "not expected");
	for (size_t ci = 0; ci < sizeof(cfg) / sizeof(cfg[0]); ci++) {
		struct awq_sampler_opts so;
		struct awq_sampler a, b;
		awq_sampler_opts_default(&so);
		so.temperature = cfg[ci].t, so.top_p = cfg[ci].p, so.min_p = cfg[ci].minp, so.top_k = cfg[ci].k;
		so.seed = 1000 + ci;
		if (awq_sampler_init(&a, &so, c.vocab, err, sizeof(err)) || awq_sampler_init(&b, &so, c.vocab, err, sizeof(err))) {
			fprintf(stderr, "FAIL: %s\n", err);
			return 1;
		}
		int32_t ids[AWQ_TOPK_MAX], ref[STEPS], first, t;
		float vals[AWQ_TOPK_MAX];
		struct rec r = {.n = 0};
		const int k = so.top_k;
		rc = awq_session_eval_topk(s, prompt, 4, 0, k, ids, vals, err, sizeof(err));
		first = t = rc ? 0 : awq_sampler_sample_topk(&a, ids, vals, k);
		for (int i = 0; i < STEPS && !rc; i++) {
			rc = awq_session_eval_topk(s, &t, 1, 4 + i, k, ids, vals, err, sizeof(err));
			ref[i] = t = awq_sampler_sample_topk(&a, ids, vals, k);
		}
		if (!rc)
			rc = awq_session_eval_topk(s, prompt, 4, 0, k, ids, vals, err, sizeof(err));
		if (!rc && awq_sampler_sample_topk(&b, ids, vals, k) != first) {
			fprintf(stderr, "FAIL: the prefill's draw differs between two evaluations\n");
			fails++;
		}
		int steps = 0;
		if (!rc)
			rc = awq_session_decode_sampled(s, &b, first, 4, STEPS, collect, &r, &steps, err, sizeof(err));
		if (rc) {
			fprintf(stderr, "FAIL: T %g top-k %d: %s\n", so.temperature, k, err);
			return 1;
		}
		awq_session_get_info(s, &si);
		int same = steps == STEPS && r.n == STEPS && !memcmp(r.ids, ref, sizeof(ref)),
		    stream = !memcmp(a.rng, b.rng, sizeof(a.rng)), chained = si.chained_steps == STEPS;
		int at = 0;
		while (at < STEPS && at < r.n && r.ids[at] == ref[at])
			at++;
		const int ok = same && stream && (chained || !expect);
		printf("%s: T %g top-k %d top-p %g min-p %g: %d steps %s the host's draws%s, %d in the chain\n",
		       ok ? "ok" : "FAIL", so.temperature, k, so.top_p, so.min_p, steps, same ? "equal" : "differ from",
		       stream ? "" : " (random stream elsewhere)", si.chained_steps);
		if (!same)
			printf("  first difference at step %d: %d against %d\n", at, at < r.n ? r.ids[at] : -1, ref[at]);
		fails += !ok;
		awq_sampler_free(&a);
		awq_sampler_free(&b);
	}
	awq_session_free(s);
	awq_model_free(m);
	printf("%s: %d failure(s) on %s\n", fails ? "FAIL" : "PASS", fails, argv[1]);
	return fails ? 1 : 0;
}

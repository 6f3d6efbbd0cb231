/* Sampler unit tests: repetition penalty, temperature, top-k / top-p / min-p masks, greedy, the
 * sampled distribution, and seed reproducibility. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "awqrun_text.h"
#include "awq_test.h"

static int failures;
#define CHECK(cond, ...) AWQ_CHECK(failures, cond, __VA_ARGS__)

static struct awq_sampler make(float temp, int k, float p, float minp, int vocab, uint64_t seed)
{
	struct awq_sampler_opts o;
	struct awq_sampler s;
	char err[256];
	awq_sampler_opts_default(&o);
	o.temperature = temp;
	o.top_k = k;
	o.top_p = p;
	o.min_p = minp;
	o.seed = seed;
	if (awq_sampler_init(&s, &o, vocab, err, sizeof(err)))
		fprintf(stderr, "init: %s\n", err);
	return s;
}

static void log_probs(float *logits, const double *p, int n)
{
	for (int i = 0; i < n; i++)
		logits[i] = (float)log(p[i]);
}

int main(void)
{
	float logits[8], prob[8];

	/* repetition penalty: each distinct token once, positive divided, negative multiplied */
	float pen[4] = {2, -2, 1, 3};
	int32_t hist[4] = {0, 1, 0, 0};
	awq_sampler_apply_penalty(pen, 4, hist, 4, 2.0f);
	CHECK(pen[0] == 1 && pen[1] == -4 && pen[2] == 1 && pen[3] == 3, "penalty gave %g %g %g %g", pen[0], pen[1],
	      pen[2], pen[3]);

	/* top-k: only the k largest survive, renormalised */
	struct awq_sampler s = make(1, 2, 1, 0, 5, 1);
	float l5[5] = {1, 2, 3, 4, 5};
	int keep = awq_sampler_probs(&s, l5, prob);
	double z = exp(4.0) + exp(5.0);
	CHECK(keep == 2 && prob[0] == 0 && prob[1] == 0 && prob[2] == 0, "top-k kept %d", keep);
	CHECK(fabs(prob[4] - exp(5.0) / z) < 1e-6 && fabs(prob[3] - exp(4.0) / z) < 1e-6, "top-k probs %g %g", prob[4],
	      prob[3]);
	awq_sampler_free(&s);

	/* top-p: smallest set reaching p */
	double p4[4] = {0.5, 0.3, 0.15, 0.05};
	log_probs(logits, p4, 4);
	s = make(1, 0, 0.75f, 0, 4, 1);
	keep = awq_sampler_probs(&s, logits, prob);
	CHECK(keep == 2 && fabs(prob[0] - 0.625) < 1e-6 && fabs(prob[1] - 0.375) < 1e-6 && prob[2] == 0,
	      "top-p kept %d: %g %g", keep, prob[0], prob[1]);
	awq_sampler_free(&s);

	/* min-p: drop tokens below min_p times the top probability */
	s = make(1, 0, 1, 0.2f, 4, 1);
	keep = awq_sampler_probs(&s, logits, prob);
	CHECK(keep == 3 && prob[3] == 0 && fabs(prob[0] - 0.5 / 0.95) < 1e-6, "min-p kept %d: %g", keep, prob[0]);
	awq_sampler_free(&s);

	/* temperature 0.5 squares the probability ratios */
	s = make(0.5f, 0, 1, 0, 4, 1);
	awq_sampler_probs(&s, logits, prob);
	CHECK(fabs(prob[0] / prob[1] - (0.5 / 0.3) * (0.5 / 0.3)) < 1e-4, "temperature ratio %g", prob[0] / prob[1]);
	awq_sampler_free(&s);

	/* greedy */
	s = make(0, 0, 1, 0, 4, 1);
	float g[4] = {0.1f, 3, -1, 2.9f};
	CHECK(awq_sampler_sample(&s, g, NULL, 0) == 1, "greedy");
	awq_sampler_free(&s);

	/* the sampled distribution follows the probabilities */
	double p3[3] = {0.5, 0.3, 0.2};
	int count[3] = {0};
	s = make(1, 0, 1, 0, 3, 42);
	for (int i = 0; i < 20000; i++) {
		float l[3];
		log_probs(l, p3, 3);
		count[awq_sampler_sample(&s, l, NULL, 0)]++;
	}
	for (int i = 0; i < 3; i++)
		CHECK(fabs(count[i] / 20000.0 - p3[i]) < 0.015, "token %d sampled %.4f, want %.2f", i, count[i] / 20000.0,
		      p3[i]);
	awq_sampler_free(&s);

	/* the same seed repeats the same tokens; another seed does not */
	int32_t a[64], b[64], c[64];
	struct awq_sampler s1 = make(1, 0, 1, 0, 8, 7), s2 = make(1, 0, 1, 0, 8, 7), s3 = make(1, 0, 1, 0, 8, 8);
	for (int i = 0; i < 64; i++) {
		float l1[8] = {0}, l2[8] = {0}, l3[8] = {0};
		a[i] = awq_sampler_sample(&s1, l1, NULL, 0);
		b[i] = awq_sampler_sample(&s2, l2, NULL, 0);
		c[i] = awq_sampler_sample(&s3, l3, NULL, 0);
	}
	CHECK(!memcmp(a, b, sizeof(a)), "same seed, different tokens");
	CHECK(memcmp(a, c, sizeof(a)), "different seeds, same 64 tokens");
	awq_sampler_free(&s1);
	awq_sampler_free(&s2);
	awq_sampler_free(&s3);

	/* top-k by heap selection keeps exactly the k best (ties: lower id first) */
	static float big[1000];
	static float pb[1000];
	uint64_t rs[4];
	awq_rng_seed(rs, 5);
	for (int i = 0; i < 1000; i++)
		big[i] = (float)(awq_rng_next(rs) % 200) * 0.25f; /* many ties */
	s = make(1, 37, 1, 0, 1000, 1);
	keep = awq_sampler_probs(&s, big, pb);
	int ranked = 0, bad = 0;
	for (int i = 0; i < 1000; i++) {
		int better = 0;
		for (int j = 0; j < 1000; j++)
			better += big[j] > big[i] || (big[j] == big[i] && j < i);
		ranked += better < 37;
		bad += (better < 37) != (pb[i] > 0);
	}
	CHECK(keep == 37 && ranked == 37 && !bad, "top-k selection: kept %d, %d wrong", keep, bad);
	awq_sampler_free(&s);

	/* without top-k, top-p and min-p rank only their candidates (nucleus_candidates): the kept set
	 * and its probabilities are those of ranking the whole vocabulary (the reference below), for
	 * large vocabularies with ties, peaked and flat logits, several temperatures and cuts */
	{
		enum { NV = 50000 };
		static float lv[NV], pv[NV];
		static int32_t ord[NV];
		static const float cfg[][3] = {{1, 0.95f, 0.05f}, {0.6f, 0.95f, 0}, {1, 0.5f, 0}, {1, 0.999f, 0},
					       {0.8f, 1, 0.05f}, {2, 0.9f, 0.2f}, {1, 1e-6f, 0}};
		for (int shape = 0; shape < 3; shape++) {
			awq_rng_seed(rs, 11 + (uint64_t)shape);
			for (int i = 0; i < NV; i++) {
				const double u = (double)(awq_rng_next(rs) >> 11) / 9007199254740992.0;
				/* peaked (a few large logits), flat (within 2 units), and coarse (many ties) */
				lv[i] = shape == 0 ? (float)(20 * u * u * u * u - 5) : shape == 1 ? (float)(2 * u) : (float)(int)(u * 50) * 0.2f;
			}
			for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
				const float t = cfg[c][0], tp = cfg[c][1], mp = cfg[c][2], it = 1.0f / t;
				/* the reference: rank all, top-p over the whole sum, min-p, renormalise */
				for (int i = 0; i < NV; i++)
					ord[i] = i;
				for (int gap = NV / 2; gap > 0; gap /= 2)
					for (int i = gap; i < NV; i++)
						for (int j = i; j >= gap; j -= gap) {
							const int32_t a = ord[j - gap], b = ord[j];
							if (lv[a] > lv[b] || (lv[a] == lv[b] && a < b))
								break;
							ord[j - gap] = b, ord[j] = a;
						}
				const double mx = lv[ord[0]] * it;
				double sum = 0, cum = 0;
				for (int i = 0; i < NV; i++)
					sum += exp(lv[ord[i]] * it - mx);
				int k = 0;
				while (k < NV) {
					cum += exp(lv[ord[k]] * it - mx) / sum;
					k++;
					if (tp < 1.0f && cum >= tp)
						break;
				}
				if (mp > 0) {
					int n = 1;
					while (n < k && exp(lv[ord[n]] * it - mx) >= mp)
						n++;
					k = n;
				}
				double z = 0;
				for (int i = 0; i < k; i++)
					z += exp(lv[ord[i]] * it - mx);
				s = make(t, 0, tp, mp, NV, 1);
				keep = awq_sampler_probs(&s, lv, pv);
				int wrong = keep != k;
				for (int i = 0; i < k && !wrong; i++)
					wrong = fabs(pv[ord[i]] - exp(lv[ord[i]] * it - mx) / z) > 1e-7 || s.index[i] != ord[i];
				CHECK(!wrong, "shape %d T %g top-p %g min-p %g: kept %d, the full ranking keeps %d", shape, t, tp, mp,
				      keep, k);
				awq_sampler_free(&s);
			}
		}
	}

	/* sampling from the top-k candidates alone (awq_sampler_sample_topk, fed as awq_session_eval_topk
	 * feeds it) draws the same tokens as from the whole row, over temperatures, top-k, top-p and
	 * min-p, rows with many ties and with -0/+0, with the same random stream */
	{
		enum { NV = 3000, STEPS = 200 };
		static float row[NV], copy[NV];
		const float temps[] = {0.1f, 0.8f, 1.0f, 2.5f}, tps[] = {1.0f, 0.95f, 0.5f}, mps[] = {0, 0.05f, 0.3f};
		const int ks[] = {1, 2, 40, 256};
		int cases = 0, diff = 0, refused = 0;
		for (int ti = 0; ti < 4; ti++)
			for (int ki = 0; ki < 4; ki++)
				for (int pi = 0; pi < 3; pi++)
					for (int mi = 0; mi < 3; mi++) {
						struct awq_sampler sa = make(temps[ti], ks[ki], tps[pi], mps[mi], NV, 11 + ti);
						struct awq_sampler sb = make(temps[ti], ks[ki], tps[pi], mps[mi], NV, 11 + ti);
						int32_t ids[256];
						float vals[256];
						for (int step = 0; step < STEPS; step++) {
							for (int i = 0; i < NV; i++) {
								uint64_t r = awq_rng_next(rs);
								row[i] = step % 3 == 0   ? (float)(r % 64) * 0.125f - 4.0f
									 : step % 3 == 1 ? (r % 5 == 0 ? -0.0f : r % 5 == 1 ? 0.0f : -1.0f)
											 : (float)((double)(r >> 11) / 9007199254740992.0 * 30 - 15);
							}
							memcpy(copy, row, sizeof(row));
							awq_topk_select(row, NV, ks[ki], ids);
							for (int i = 0; i < ks[ki]; i++)
								vals[i] = row[ids[i]];
							int32_t x = awq_sampler_sample(&sa, copy, NULL, 0);
							int32_t y = awq_sampler_sample_topk(&sb, ids, vals, ks[ki]);
							diff += x != y;
							refused += y < 0;
							cases++;
						}
						awq_sampler_free(&sa);
						awq_sampler_free(&sb);
					}
		CHECK(!diff && !refused, "top-k candidates: %d of %d draws differ from the whole row's (%d refused)", diff,
		      cases, refused);
		struct awq_sampler sc = make(0.8f, 40, 1, 0, NV, 1);
		int32_t ids[40] = {0};
		float vals[40] = {0};
		CHECK(awq_sampler_sample_topk(&sc, ids, vals, 39) == -1 && awq_sampler_sample_topk(&sc, ids, vals, 0) == -1,
		      "top-k sampling took a candidate count other than its top-k");
		awq_sampler_free(&sc);
	}

	/* with a repetition penalty (>= 1) the row's best top_k + repeat_last_n are enough: drawing from
	 * them (awq_sampler_sample_candidates) picks what awq_sampler_sample picks from the row, greedy
	 * too, with histories that hit the row's best tokens, repeat, and run past the window */
	{
		enum { NV = 3000, STEPS = 150, NH = 100 };
		static float row[NV], copy[NV];
		const float pens[] = {1.0f, 1.1f, 1.5f, 3.0f}, temps[] = {0, 0.8f, 1.3f};
		const int ks[] = {1, 20, 40}, windows[] = {16, 64};
		int cases = 0, diff = 0, refused = 0;
		for (int pi = 0; pi < 4; pi++)
			for (int ti = 0; ti < 3; ti++)
				for (int ki = 0; ki < 3; ki++)
					for (int wi = 0; wi < 2; wi++) {
						struct awq_sampler sa = make(temps[ti], ks[ki], 0.9f, 0.02f, NV, 5 + ki);
						struct awq_sampler sb = make(temps[ti], ks[ki], 0.9f, 0.02f, NV, 5 + ki);
						sa.o.repeat_penalty = sb.o.repeat_penalty = pens[pi];
						sa.o.repeat_last_n = sb.o.repeat_last_n = windows[wi];
						const int n = awq_sampler_candidates_needed(&sb);
						int32_t ids[AWQ_TOPK_MAX], hist[NH];
						float vals[AWQ_TOPK_MAX];
						for (int step = 0; step < STEPS; step++) {
							for (int i = 0; i < NV; i++) {
								uint64_t r = awq_rng_next(rs);
								/* ties around 0; spread; all below 0 (the penalty multiplies) */
								row[i] = step % 3 == 0	 ? (float)(r % 48) * 0.25f - 6.0f
									 : step % 3 == 1 ? (float)((double)(r >> 11) / 9007199254740992.0 * 24 - 12)
											 : (float)(r % 64) * 0.125f - 20.0f;
							}
							/* half the history among the row's best tokens */
							int32_t top[64];
							awq_topk_select(row, NV, 64, top);
							for (int j = 0; j < NH; j++) {
								uint64_t r = awq_rng_next(rs);
								hist[j] = r % 2 ? top[(r >> 8) % 64] : (int32_t)((r >> 8) % NV);
							}
							memcpy(copy, row, sizeof(row));
							int32_t x = awq_sampler_sample(&sa, copy, hist, NH), y = -1;
							if (n > 0) {
								awq_topk_select(row, NV, n, ids);
								for (int i = 0; i < n; i++)
									vals[i] = row[ids[i]];
								y = awq_sampler_sample_candidates(&sb, ids, vals, n, hist, NH);
							}
							diff += x != y;
							refused += n <= 0;
							cases++;
						}
						awq_sampler_free(&sa);
						awq_sampler_free(&sb);
					}
		CHECK(!diff && !refused, "penalised candidates: %d of %d picks differ from the whole row's (%d refused)", diff,
		      cases, refused);
		/* the whole row is needed: a penalty below 1, a window of all the history, top-k off, too many */
		struct awq_sampler sc = make(0.8f, 40, 1, 0, NV, 1);
		sc.o.repeat_penalty = 0.9f;
		int bad = awq_sampler_candidates_needed(&sc) != 0;
		sc.o.repeat_penalty = 1.1f, sc.o.repeat_last_n = 0;
		bad += awq_sampler_candidates_needed(&sc) != 0;
		sc.o.repeat_last_n = 64, sc.o.top_k = 0;
		bad += awq_sampler_candidates_needed(&sc) != 0;
		sc.o.top_k = 200;
		bad += awq_sampler_candidates_needed(&sc) != 0;
		sc.o.top_k = 40;
		bad += awq_sampler_candidates_needed(&sc) != 104;
		int32_t ids[104] = {0};
		float vals[104] = {0};
		bad += awq_sampler_sample_candidates(&sc, ids, vals, 103, NULL, 0) != -1;
		CHECK(!bad, "candidates needed: %d wrong answers", bad);
		awq_sampler_free(&sc);
	}

	/* a fixed seed gives a fixed stream (xoshiro256** seeded by splitmix64) */
	uint64_t st[4];
	awq_rng_seed(st, 0);
	uint64_t first = awq_rng_next(st);
	awq_rng_seed(st, 0);
	CHECK(awq_rng_next(st) == first && first != 0, "rng not reproducible");

	printf("sampler: %d failures\n", failures);
	return failures ? 1 : 0;
}

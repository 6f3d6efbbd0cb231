/* Sampling. Order and semantics follow transformers' logits processors: repetition penalty on the
 * raw logits, then temperature, top-k, top-p (keep the smallest set whose probability reaches
 * top_p, at least one token) and min-p (drop tokens below min_p times the top probability). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "awqrun_text.h"

void awq_sampler_opts_default(struct awq_sampler_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->temperature = 0.8f;
	o->top_k = 40;
	o->top_p = 0.95f;
	o->min_p = 0.05f;
	o->repeat_penalty = 1.0f;
	o->repeat_last_n = 64;
	o->seed = 0;
}

int awq_sampling_range(unsigned field, double *lo, double *hi)
{
	static const struct {
		unsigned bit;
		double lo, hi;
	} r[] = {
		{AWQ_GEN_TEMPERATURE, 0, 100}, {AWQ_GEN_TOP_K, 0, 1e9},		{AWQ_GEN_TOP_P, 1e-6, 1},
		{AWQ_GEN_MIN_P, 0, 1},	       {AWQ_GEN_REPEAT_PENALTY, 1e-3, 100},
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (r[i].bit == field) {
			*lo = r[i].lo;
			*hi = r[i].hi;
			return 0;
		}
	return -1;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t awq_rng_next(uint64_t st[4])
{
	uint64_t r = rotl(st[1] * 5, 7) * 9, t = st[1] << 17;
	st[2] ^= st[0];
	st[3] ^= st[1];
	st[1] ^= st[2];
	st[0] ^= st[3];
	st[2] ^= t;
	st[3] = rotl(st[3], 45);
	return r;
}

/* splitmix64 expands the seed into the four state words, as xoshiro's authors recommend. */
void awq_rng_seed(uint64_t st[4], uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		st[i] = z ^ (z >> 31);
	}
}

int awq_sampler_init(struct awq_sampler *s, const struct awq_sampler_opts *o, int vocab, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	if (o->temperature < 0 || o->top_k < 0 || !(o->top_p > 0 && o->top_p <= 1) || o->min_p < 0 || o->min_p > 1 ||
	    !(o->repeat_penalty > 0) || vocab <= 0)
		return awq_err(err, errlen, AWQ_EINVAL,
			       "sampling options out of range: need temperature >= 0, top-k >= 0, 0 < top-p <= 1, "
			       "0 <= min-p <= 1, repeat-penalty > 0");
	s->o = *o;
	s->vocab = vocab;
	awq_rng_seed(s->rng, o->seed);
	s->prob = malloc((size_t)vocab * sizeof(*s->prob));
	s->index = malloc((size_t)vocab * sizeof(*s->index));
	if (!s->prob || !s->index) {
		awq_sampler_free(s);
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory for the sampler");
	}
	return 0;
}

void awq_sampler_free(struct awq_sampler *s)
{
	free(s->prob);
	free(s->index);
	s->prob = NULL;
	s->index = NULL;
}

void awq_sampler_apply_penalty(float *logits, int vocab, const int32_t *history, int n, float penalty)
{
	if (penalty == 1.0f)
		return;
	/* each distinct token once, however often it occurs (transformers gathers then scatters) */
	unsigned char *seen = calloc((size_t)vocab, 1);
	for (int i = 0; i < n; i++) {
		int32_t t = history[i];
		if (t < 0 || t >= vocab || (seen && seen[t]))
			continue;
		if (seen)
			seen[t] = 1;
		logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
	}
	free(seen);
}

static int32_t argmax(const float *x, int n)
{
	int32_t b = 0;
	for (int i = 1; i < n; i++)
		if (x[i] > x[b])
			b = i;
	return b;
}

static const float *sort_keys;
static int by_logit_desc(const void *a, const void *b)
{
	float x = sort_keys[*(const int32_t *)a], y = sort_keys[*(const int32_t *)b];
	if (x != y)
		return x > y ? -1 : 1;
	return *(const int32_t *)a - *(const int32_t *)b;
}

/* a ranks before b: larger logit, then lower id (the order a stable descending sort gives) */
static int before(const float *l, int32_t a, int32_t b)
{
	return l[a] != l[b] ? l[a] > l[b] : a < b;
}

/* Put t into the size-k heap idx[0..*n) (idx[0] the worst kept) if it ranks before the worst. */
static void heap_offer(const float *l, int k, int32_t *idx, int *n, int32_t t)
{
	int i;
	if (*n == k && !before(l, t, idx[0]))
		return;
	if (*n < k) { /* sift up */
		i = (*n)++;
		while (i > 0 && before(l, idx[(i - 1) / 2], t)) {
			idx[i] = idx[(i - 1) / 2];
			i = (i - 1) / 2;
		}
	} else { /* replace the worst, sift down */
		i = 0;
		for (;;) {
			int c = 2 * i + 1;
			if (c >= *n)
				break;
			if (c + 1 < *n && before(l, idx[c], idx[c + 1]))
				c++;
			if (!before(l, t, idx[c]))
				break;
			idx[i] = idx[c];
			i = c;
		}
	}
	idx[i] = t;
}

/* The k best ids into idx[0..k), best first: a size-k heap over the vocabulary, O(V log k). Once
 * the heap is full, blocks of 16 logits all below the worst kept one are passed over on one
 * vectorisable test (most of a row: 230 -> ~40 us per 152k-entry row on the development VM). */
#define TOPK_BLOCK 16
static void top_k_select(const float *l, int V, int k, int32_t *idx)
{
	int n = 0, t = 0;
	for (; t < V && n < k; t++)
		heap_offer(l, k, idx, &n, t);
	for (; t + TOPK_BLOCK <= V; t += TOPK_BLOCK) {
		const float worst = l[idx[0]];
		int any = 0;
		for (int j = 0; j < TOPK_BLOCK; j++)
			any |= !(l[t + j] < worst); /* NaN too, as heap_offer sees it */
		if (any)
			for (int j = 0; j < TOPK_BLOCK; j++)
				heap_offer(l, k, idx, &n, t + j);
	}
	for (; t < V; t++)
		heap_offer(l, k, idx, &n, t);
	sort_keys = l;
	qsort(idx, (size_t)n, sizeof(*idx), by_logit_desc);
}

/* Every id into idx in rank order (qsort with a file-scope key: the sampler is used from one
 * thread at a time). */
static void rank_all(const float *l, int V, int32_t *idx)
{
	for (int i = 0; i < V; i++)
		idx[i] = i;
	sort_keys = l;
	qsort(idx, (size_t)V, sizeof(*idx), by_logit_desc);
}

/* Without top-k, the ids top-p and min-p can keep, into idx[0..n) in rank order, without sorting the
 * whole vocabulary (a 152k-entry one took 24.5 ms per token through qsort on the development VM).
 * Every token's weight e = exp(l * inv_t - max) goes into *sum and into a bin by -ln e (16 bins per
 * unit): min-p keeps only e >= min_p, top-p the highest-ranked tokens whose mass reaches top_p * sum,
 * so the bins up to the one where either cut falls hold every token either can keep; one bin more
 * covers rounding. *cut_top_p: whether top-p's cut (not min-p's) bounded the candidates. */
#define NUC_BINS 1024
#define NUC_PER_UNIT 16.0
static int nucleus_candidates(const float *l, int V, float inv_t, float top_p, float min_p, int32_t *idx,
			      double max, double *sum, int *cut_top_p)
{
	static double mass[NUC_BINS]; /* the sampler is used from one thread at a time (as sort_keys) */
	memset(mass, 0, sizeof(mass));
	double s = 0;
	for (int i = 0; i < V; i++) {
		double d = max - l[i] * inv_t, e = exp(l[i] * inv_t - max);
		int b = d < (NUC_BINS - 1) / NUC_PER_UNIT ? (int)(d * NUC_PER_UNIT) : NUC_BINS - 1;
		s += e;
		mass[b] += e;
	}
	*sum = s;
	int cut = NUC_BINS - 1;
	*cut_top_p = 0;
	if (top_p < 1.0f) {
		double want = top_p * s, m = 0;
		int b = 0;
		while (b < NUC_BINS - 1 && (m += mass[b]) < want)
			b++;
		if (b + 1 < cut) {
			cut = b + 1;
			*cut_top_p = 1;
		}
	}
	if (min_p > 0) {
		double d = -log(min_p) * NUC_PER_UNIT;
		int b = d < NUC_BINS - 2 ? (int)d + 1 : NUC_BINS - 1;
		if (b < cut) {
			cut = b;
			*cut_top_p = 0;
		}
	}
	int n = 0;
	for (int i = 0; i < V; i++) {
		double d = max - l[i] * inv_t;
		if (cut == NUC_BINS - 1 || d < cut / NUC_PER_UNIT + 1.0 / NUC_PER_UNIT)
			idx[n++] = i;
	}
	sort_keys = l;
	qsort(idx, (size_t)n, sizeof(*idx), by_logit_desc);
	return n;
}

/* Top-p, min-p and the probabilities over the ranked candidates idx[0..keep) of the V entries of l
 * (max: the top candidate's l * inv_t; sum: the candidates' weights; bounded: nucleus_candidates
 * bounded them by top-p's cut). prob gets V entries, 0 where cut. Returns the number kept. */
static int finish_probs(const struct awq_sampler_opts *o, const float *l, int V, int32_t *idx, int keep, float inv_t,
			double max, double sum, int bounded, float *prob)
{
	if (o->top_p < 1.0f) {
		double cum = 0;
		int n = 0;
		while (n < keep) {
			cum += exp(l[idx[n]] * inv_t - max) / sum;
			n++;
			if (cum >= o->top_p)
				break;
		}
		if (bounded && cum < o->top_p && keep < V) {
			/* top-p's cut fell past the candidates by rounding (their mass reached top_p * sum
			 * when binned): rank the whole vocabulary, as without the candidates */
			rank_all(l, V, idx);
			for (keep = V; n < keep;) {
				cum += exp(l[idx[n]] * inv_t - max) / sum;
				n++;
				if (cum >= o->top_p)
					break;
			}
		}
		keep = n;
	}
	if (o->min_p > 0) {
		int n = 1;
		double top = 1.0; /* relative to the top token: exp(0) */
		while (n < keep && exp(l[idx[n]] * inv_t - max) >= o->min_p * top)
			n++;
		keep = n;
	}
	sum = 0;
	for (int i = 0; i < keep; i++)
		sum += exp(l[idx[i]] * inv_t - max);
	memset(prob, 0, (size_t)V * sizeof(*prob));
	for (int i = 0; i < keep; i++)
		prob[idx[i]] = (float)(exp(l[idx[i]] * inv_t - max) / sum);
	return keep;
}

void awq_topk_select(const float *logits, int vocab, int k, int32_t *idx)
{
	top_k_select(logits, vocab, k, idx);
}

int awq_sampler_probs(struct awq_sampler *s, const float *logits, float *prob)
{
	int V = s->vocab, keep = V, bounded = 0;
	float inv_t = s->o.temperature > 0 ? 1.0f / s->o.temperature : 1.0f;
	int32_t *idx = s->index;
	double max, sum = 0;
	if (s->o.top_k > 0 && s->o.top_k < V) {
		keep = s->o.top_k;
		top_k_select(logits, V, keep, idx);
		max = logits[idx[0]] * inv_t;
		for (int i = 0; i < keep; i++)
			sum += exp(logits[idx[i]] * inv_t - max);
	} else if (s->o.top_p < 1.0f || s->o.min_p > 0) {
		float mx = logits[0];
		for (int i = 1; i < V; i++)
			mx = logits[i] > mx ? logits[i] : mx;
		max = mx * inv_t;
		keep = nucleus_candidates(logits, V, inv_t, s->o.top_p, s->o.min_p, idx, max, &sum, &bounded);
	} else {
		rank_all(logits, V, idx);
		max = logits[idx[0]] * inv_t;
		for (int i = 0; i < keep; i++)
			sum += exp(logits[idx[i]] * inv_t - max);
	}
	return finish_probs(&s->o, logits, V, idx, keep, inv_t, max, sum, bounded, prob);
}

/* 53 random bits -> a uniform double in [0, 1), then the first of the ranked idx[0..keep) whose
 * cumulative probability passes it */
static int draw(struct awq_sampler *s, int keep)
{
	double u = (double)(awq_rng_next(s->rng) >> 11) * (1.0 / 9007199254740992.0), cum = 0;
	for (int i = 0; i < keep; i++) {
		cum += s->prob[s->index[i]];
		if (u < cum)
			return s->index[i];
	}
	return s->index[keep - 1];
}

int32_t awq_sampler_sample_topk(struct awq_sampler *s, const int32_t *ids, const float *vals, int k)
{
	if (k <= 0 || k > s->vocab || !ids || !vals)
		return -1;
	if (s->o.temperature == 0)
		return ids[0];
	if (k != s->o.top_k || k >= s->vocab)
		return -1;
	/* awq_sampler_probs' top-k branch over the k candidates as a row of their own: the same values
	 * in the same order, so the same probabilities and the same draw */
	float inv_t = 1.0f / s->o.temperature;
	double max = vals[0] * inv_t, sum = 0;
	for (int i = 0; i < k; i++) {
		s->index[i] = i;
		sum += exp(vals[i] * inv_t - max);
	}
	int keep = finish_probs(&s->o, vals, k, s->index, k, inv_t, max, sum, 0, s->prob);
	return ids[draw(s, keep)];
}

/* The candidates a draw looks at: the best one when greedy, else top_k (0: the whole row). */
static int draw_k(const struct awq_sampler *s)
{
	if (s->o.temperature == 0)
		return 1;
	return s->o.top_k >= 1 && s->o.top_k < s->vocab ? s->o.top_k : 0;
}

int awq_sampler_topk_only(const struct awq_sampler *s)
{
	return s->o.temperature > 0 && s->o.repeat_penalty == 1.0f && awq_sampler_candidates_needed(s) > 0;
}

int awq_sampler_candidates_needed(const struct awq_sampler *s)
{
	const int k = draw_k(s);
	if (!k)
		return 0;
	if (s->o.repeat_penalty == 1.0f)
		return k <= AWQ_TOPK_MAX ? k : 0;
	/* a penalty lowers only the history's logits; raising them (< 1) could bring any token in */
	if (s->o.repeat_penalty < 1.0f || s->o.repeat_last_n <= 0)
		return 0;
	const long n = (long)k + s->o.repeat_last_n;
	return n <= AWQ_TOPK_MAX && n <= s->vocab ? (int)n : 0;
}

/* a candidate: its logit after the penalty, its id */
struct cand {
	float v;
	int32_t id;
};

static int by_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

int32_t awq_sampler_sample_candidates(struct awq_sampler *s, const int32_t *ids, const float *vals, int n,
				      const int32_t *history, int n_history)
{
	const int k = draw_k(s);
	if (!ids || !vals || n < 1 || n > AWQ_TOPK_MAX || n != awq_sampler_candidates_needed(s))
		return -1;
	if (s->o.repeat_penalty == 1.0f) /* greedy: ids[0] */
		return awq_sampler_sample_topk(s, ids, vals, k);
	if (s->o.repeat_last_n > 0 && n_history > s->o.repeat_last_n) {
		history += n_history - s->o.repeat_last_n;
		n_history = s->o.repeat_last_n;
	}
	/* The penalised row's top-k is among the raw row's best top_k + (distinct tokens of the window):
	 * a token outside them has that many above it, of which at most the window's others drop. With
	 * the penalty applied to the candidates in the history (each once, as awq_sampler_apply_penalty
	 * applies it), their best top_k in the sampler's order are the penalised row's top-k. */
	struct cand c[AWQ_TOPK_MAX];
	for (int i = 0; i < n; i++) {
		float v = vals[i];
		for (int j = 0; j < n_history; j++)
			if (history[j] == ids[i]) {
				v = v > 0 ? v / s->o.repeat_penalty : v * s->o.repeat_penalty;
				break;
			}
		c[i] = (struct cand){v, ids[i]};
	}
	qsort(c, (size_t)n, sizeof(c[0]), by_cand);
	if (s->o.temperature == 0) /* the penalised row's argmax: its first best, as argmax takes it */
		return c[0].id;
	int32_t kid[AWQ_TOPK_MAX];
	float kv[AWQ_TOPK_MAX];
	for (int i = 0; i < k; i++) {
		kid[i] = c[i].id;
		kv[i] = c[i].v;
	}
	return awq_sampler_sample_topk(s, kid, kv, k);
}

int32_t awq_sampler_sample(struct awq_sampler *s, float *logits, const int32_t *history, int n_history)
{
	int n = n_history;
	if (s->o.repeat_last_n > 0 && n > s->o.repeat_last_n) {
		history += n - s->o.repeat_last_n;
		n = s->o.repeat_last_n;
	}
	awq_sampler_apply_penalty(logits, s->vocab, history, n, s->o.repeat_penalty);
	if (s->o.temperature == 0)
		return argmax(logits, s->vocab);
	return draw(s, awq_sampler_probs(s, logits, s->prob));
}

/* Token sampling from a row of logits: repetition penalty, temperature, top-k, top-p, min-p, in
 * the order Hugging Face's generate() applies its logits processors; temperature 0 is greedy.
 * The random numbers come from a seeded xoshiro256** so a run repeats exactly with --seed. */
#ifndef AWQ_SAMPLER_H
#define AWQ_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

struct awq_sampler_opts {
	float temperature;    /* 0 = greedy */
	int top_k;            /* 0 = off */
	float top_p;          /* 1 = off */
	float min_p;          /* 0 = off */
	float repeat_penalty; /* 1 = off; HF's repetition_penalty (divide positive logits, multiply negative) */
	int repeat_last_n;    /* tokens of history the penalty looks at; 0 = all */
	uint64_t seed;
};
void awq_sampler_opts_default(struct awq_sampler_opts *o);

struct awq_sampler {
	struct awq_sampler_opts o;
	uint64_t rng[4];
	int vocab;
	float *prob;    /* scratch: vocab */
	int32_t *index; /* scratch: vocab */
};

int awq_sampler_init(struct awq_sampler *s, const struct awq_sampler_opts *o, int vocab, char *err, size_t errlen);
void awq_sampler_free(struct awq_sampler *s);

/* Pick the next token. logits (vocab floats) is modified in place; history: the tokens so far
 * (prompt and generated) for the repetition penalty. */
int32_t awq_sampler_sample(struct awq_sampler *s, float *logits, const int32_t *history, int n_history);

/* The steps, exposed for tests. */
void awq_sampler_apply_penalty(float *logits, int vocab, const int32_t *history, int n, float penalty);
/* Probabilities after temperature, top-k, top-p and min-p: prob[i] for every token (0 when cut),
 * summing to 1. Returns the number of tokens kept. */
int awq_sampler_probs(struct awq_sampler *s, const float *logits, float *prob);
uint64_t awq_rng_next(uint64_t st[4]);
void awq_rng_seed(uint64_t st[4], uint64_t seed);

#endif

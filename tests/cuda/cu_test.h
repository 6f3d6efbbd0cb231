/* Helpers of the CUDA backend tests: the plugin opened through its entry point, the CPU backend's
 * scalar kernels as the reference, random inputs, poisoned outputs and tolerance checks. */
#ifndef AWQ_CU_TEST_H
#define AWQ_CU_TEST_H

#include <stdint.h>

#include "backend.h"
#include "graph.h"

#define SKIP_CODE 77

struct cu_pair {
	const struct awq_backend_ops *ops[2]; /* 0: CPU scalar reference, 1: CUDA */
	void *ctx[2];
};

/* Load the plugin and open both backends; returns 0, SKIP_CODE (reason printed) or 1. */
int cu_pair_open(struct cu_pair *p);
void cu_pair_close(struct cu_pair *p);
/* Close and open both contexts again (a context is prepared with one graph only). */
int cu_pair_reopen(struct cu_pair *p);

uint64_t cu_rand_u64(uint64_t *s);
float cu_rand_f(uint64_t *s, float lo, float hi);
void cu_fill(float *x, size_t n, uint64_t *seed, float lo, float hi);

/* One input value per step: its rows come from fill(). */
struct cu_input {
	int value;
	float lo, hi; /* uniform range of the random data (ACT values) */
	int vocab;    /* TOKENS values: ids in [0, vocab) */
};

struct cu_case {
	const char *name;
	struct awq_graph *g;
	int max_tokens, max_ctx;
	struct cu_input in[4];
	int n_in;
	int check[4]; /* values compared after each step */
	int n_check;
	double tol; /* relative L2 error bound (TOKENS values must match exactly) */
};

/* Prepare the graph on both backends, run the steps (n_tokens, pos, all_rows triples) with fresh
 * random inputs each, poison the checked values on the device before each run and compare.
 * Prints one line per step; returns the number of failures. */
int cu_run_case(struct cu_pair *p, const struct cu_case *c, const int (*steps)[3], int n_steps, uint64_t seed);

/* The graph plumbing every op test needs: a token input and the given logits output. */
void cu_graph_io(struct awq_graph *g, int tokens, int logits);

#endif

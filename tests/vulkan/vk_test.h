/* Helpers of the Vulkan backend tests: the plugin opened through its entry point beside the CPU
 * backend's scalar reference, random inputs, outputs poisoned with NaN on the device before each
 * run, and relative-error checks. */
#ifndef AWQ_VK_TEST_H
#define AWQ_VK_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "graph.h"

#define VK_SKIP 77

struct vt_pair {
	const struct awq_backend_ops *ops[2]; /* 0: CPU scalar reference, 1: Vulkan */
	void *ctx[2];
	void *lib;
	int coopmat; /* the device runs prefill matmuls on fp16 cooperative matrices */
	int q4_f16;  /* the 4-bit mat-vecs take fp16 arithmetic (shaderFloat16, no knob set) */
	int q8;      /* the 4-bit plain and gate/up mat-vecs take int8 activations (integer dot product) */
};

/* Load the plugin, check for a device; 0, VK_SKIP (reason printed) or 1. */
int vt_load(struct vt_pair *p);
void vt_unload(struct vt_pair *p);

float vt_rand(uint64_t *s, float lo, float hi);
uint64_t vt_rand_u64(uint64_t *s);

struct vt_input {
	int value;
	float lo, hi; /* ACT values: uniform range */
	int vocab;    /* TOKENS values: ids in [0, vocab) */
};

struct vt_case {
	const char *name;
	struct awq_graph *g;
	int max_tokens, max_ctx;
	struct vt_input in[4];
	int n_in;
	int check; /* value compared after each step (made the graph's pinned output) */
	double tol;  /* relative L2 error bound; TOKENS must match exactly */
};

/* Open both backends, prepare the graph, run the steps ({n_tokens, pos, all_rows}) with fresh random
 * inputs, the checked value poisoned on the device before each run; prints one line per case and
 * returns the number of failing steps (or 1 on a backend error). */
int vt_run_case(struct vt_pair *p, const struct vt_case *c, const int (*steps)[3], int n_steps, uint64_t seed);

/* Test weights with random contents, freed together by vt_free_all (exit(1) when out of memory).
 * bias: AWQ_DT_COUNT for none. */
void *vt_alloc(size_t bytes);
void vt_free_all(void);
void *vt_rand_floats(uint64_t *seed, size_t n, enum awq_dtype dt, float lo, float hi);
struct awq_weight *vt_dense(uint64_t *seed, int n, int k, enum awq_dtype dt, float amp, enum awq_dtype bias);
struct awq_weight *vt_awq4(uint64_t *seed, int n, int k, int group, int zero_point, int bias);

/* An array of count weights [n, k] of one kind (experts). */
struct vt_wspec {
	int awq, group, zero_point; /* AWQ4 */
	enum awq_dtype dtype;       /* dense */
	float amp;
};
struct awq_weight *vt_weights(uint64_t *seed, int count, int n, int k, const struct vt_wspec *f);

#endif

/* State of one CPU backend instance, shared by its setup (cpu_backend.c) and its executor
 * (cpu_exec.c). */
#ifndef AWQ_CPU_BACKEND_H
#define AWQ_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "cpu_kernels.h"
#include "cpu_moe.h"
#include "threadpool.h"

struct cpu_weight {
	const struct awq_weight *w;
	struct awq_cpu_q4 q4;     /* q4.q != NULL when repacked */
	struct awq_weight copy;   /* dense weight moved to huge pages: copy.data != NULL */
};

/* A per-step cache of one prepared input: matmuls that share an input (q/k/v, gate/up) prepare
 * it once. Values are written once per step, so the value id names the contents. */
struct cpu_prepared {
	int vid, rows, group;
};

struct cpu_ctx {
	struct awq_backend_opts opts;
	struct awq_pool *pool;
	int threads;
	const struct awq_cpu_kernels *k; /* NULL: scalar reference */
	int exact;                       /* AWQ through the f32 kernels (AWQ_CPU_EXACT=1) */
	const struct awq_graph *g;
	int max_tokens, max_ctx;
	size_t *offsets;
	uint8_t *arena;
	size_t arena_bytes;
	float *kv; /* [layers][2][max_ctx][kv_dim] */
	size_t kv_bytes;
	struct cpu_weight *weights; /* one per distinct matmul weight */
	int n_weights;
	size_t weight_bytes, repack_bytes, copy_bytes;
	struct awq_cpu_qact qa;
	struct cpu_prepared qa_of;
	float *xp; /* bf16-permuted activations [max_tokens][max k] */
	struct cpu_prepared xp_of;
	float *attn_p; /* softmax scratch [threads][AWQ_CPU_ATTN_G][max_ctx] */
	float *rope_cos, *rope_sin; /* [max_tokens][rope_dim/2] of the current step */
	int rope_dim;
	struct {
		int rows, pos, dim;
		struct awq_rope cfg;
	} rope_of;
	struct awq_cpu_moe moe; /* MOE_ROUTE / MOE_EXPERTS state (cpu_moe.h) */
	/* AWQ_CPU_PROFILE=1: seconds per node over single-token steps, printed at close */
	double *prof_s;
	int prof_steps;
	char kernels[256];
	char device[128];
};

const struct cpu_weight *awq_cpu_find_weight(const struct cpu_ctx *c, const struct awq_weight *w);
/* Execute one node of c->g for step s. */
int awq_cpu_run_node(struct cpu_ctx *c, const struct awq_node *n, const struct awq_step *s, char *err,
		     size_t errlen);

#endif

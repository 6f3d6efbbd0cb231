/* Mixture-of-experts ops on the CPU: MOE_ROUTE (router matmul, softmax, top-k) and MOE_EXPERTS
 * (graph.h gives their semantics). The experts path groups a step's tokens by expert (count,
 * prefix sum, permute), runs each selected expert's gate/up and down projections once over its
 * rows with the CPU backend's matmul kernels, and scatters the results back weighted. Only the
 * selected experts' weights are read. With no SIMD kernels (scalar mode) a per-token reference
 * runs instead. */
#ifndef AWQ_CPU_MOE_H
#define AWQ_CPU_MOE_H

#include <stdbool.h>
#include <stddef.h>

#include "cpu_kernels.h"
#include "graph.h"
#include "threadpool.h"

struct awq_cpu_moe_set; /* the experts of one MOE_EXPERTS node, repacked when AWQ */
struct awq_cpu_moe_task;

struct awq_cpu_moe {
	const struct awq_cpu_kernels *k; /* NULL: scalar reference */
	int exact;                   /* AWQ experts through the f32 kernels */
	struct awq_pool *pool;
	int max_rows, max_slots;     /* tokens per step; tokens x top-k */
	int max_experts, max_hidden, max_inter;
	struct awq_cpu_moe_set *sets;
	int n_sets;
	int *set_of_node;            /* graph node index -> set index, -1 elsewhere */
	/* step scratch */
	float *logits;               /* [max_rows][max_experts] */
	int *count, *start, *cursor; /* per expert; start has max_experts + 1 entries */
	int *slot_token;             /* permuted row -> token */
	int *token_slot;             /* token * top_k + j -> permuted row */
	float *xp;                   /* gathered rows [max_slots][max_hidden] */
	float *xpp, *hp;             /* the same and the activations permuted for bf16 weights */
	struct awq_cpu_qact qx, qxp, qh; /* quantized tokens, gathered, activations (AWQ experts) */
	float *gate, *up, *y;        /* [max_slots][max_inter] x2, [max_slots][max_hidden] */
	struct awq_cpu_moe_task *tasks;
	int max_tasks;
	size_t weight_bytes;         /* expert weights as the kernels read them (repacked or in place) */
	size_t scratch_bytes;
};

/* Repack the AWQ experts of every MOE_EXPERTS node of g (when k is not NULL) and size the
 * scratch for steps of up to max_rows tokens; exact: AWQ through the f32 kernels instead of int8
 * activations. m is zeroed first; release it even on failure. */
int awq_cpu_moe_prepare(struct awq_cpu_moe *m, const struct awq_graph *g, int max_rows,
			const struct awq_cpu_kernels *k, int exact, struct awq_pool *pool, char *err,
			size_t errlen);
void awq_cpu_moe_release(struct awq_cpu_moe *m);

/* Whether w is one of the experts m prepared (the backend leaves those to it). */
int awq_cpu_moe_owns(const struct awq_cpu_moe *m, const struct awq_weight *w);

/* MOE_ROUTE node n on rows of x [rows, hidden]: route [rows, 2 * top_k]. */
void awq_cpu_moe_route(struct awq_cpu_moe *m, const struct awq_node *n, const float *x, int rows,
		       float *route);

/* MOE_EXPERTS node n of graph g: out [rows, hidden]. Fails on an expert id that is not one. */
int awq_cpu_moe_experts(struct awq_cpu_moe *m, const struct awq_graph *g, const struct awq_node *n,
			const float *x, const float *route, int rows, float *out, char *err,
			size_t errlen);

/* Softmax over n_experts logits per row in f32, the top_k largest probabilities (ties: lower id
 * first), renormalised to sum 1 when norm: route[r] = [ids as floats..., weights...]. */
void awq_moe_topk(const float *logits, int rows, int n_experts, int top_k, bool norm, float *route);

/* Reference MOE_EXPERTS, one token and one selected expert at a time with awq_ref_matmul.
 * scratch holds 2 * inter + hidden floats. Returns -1 on an expert id out of range. */
int awq_ref_moe_experts(const struct awq_experts *x, const float *in, const float *route, int rows,
			int hidden, int top_k, float *scratch, float *out);

#endif

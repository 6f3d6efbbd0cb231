/* State of the CUDA backend shared by its host-side files. */
#ifndef AWQ_CUDA_INTERNAL_H
#define AWQ_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "backend.h"
#include "env.h"
#include "cu_kernels.h"
#include "cu_moe.h"

enum cu_wkind { CU_W_Q4, CU_W_D16, CU_W_D32, CU_W_VEC };

/* One device weight. AWQ weights of fused matmuls are combined: gate/up interleaved tile by tile
 * (interleave = 1), q/k/v concatenated (segments of seg_tiles[] tiles). */
struct cu_weight {
	const struct awq_weight *src[3];
	int nsrc, interleave;
	enum cu_wkind kind;
	struct awq_cu_q4 q4;
	int seg_tiles[3];
	const void *data; /* dense: device copy in the stored layout (seg_data[0]); VEC: f32 */
	const void *seg_data[3]; /* dense: each source's copy */
	int is_bf16;
	/* > 0: a fused q/k/v AWQ weight whose q and k rows (and biases) are stored per head of rope_hd
	 * rows in the order of awq_rope_perm_src, for the RoPE epilogue (cu_node.rope_attn) */
	int rope_hd;
	float *bias[3];
	void *mem[8];
	uint64_t bytes;
};

#define CU_SPANS 26 /* attention spans 64 * 2^k, k < CU_SPANS (awq_cu_span) */
#define CU_RING 64  /* slots of the greedy chain's token ring (a power of two) */

/* How one graph node runs; fusion rewrites a few of these at prepare time. */
enum cu_exec {
	CU_X_PLAIN,    /* the node's own kernel */
	CU_X_SKIP,     /* folded into another node */
	CU_X_GATE_UP,  /* SILU_MUL node running the fused gate/up matmul */
	CU_X_ADD_NORM, /* ADD node also computing the RMSNORM that follows it */
	CU_X_QKV,      /* last of three MATMULs on one input, running all three as one */
};

struct cu_node {
	enum cu_exec exec;
	int w;         /* index into weights, -1 */
	int in_fused;  /* GATE_UP: the matmuls' input value */
	int mm[3];     /* QKV: the three MATMUL nodes */
	int norm_node; /* ADD_NORM: the folded RMSNORM node */
	/* The producer-epilogue norm of one-token steps (AWQ_CUDA_EPINORM=0: off): on the MATMUL before
	 * an ADD_NORM, epi_norm = that ADD node, whose sum and norm it then writes from its epilogue;
	 * on the ADD and its RMSNORM, epi_by = that MATMUL (-1 when none). The norm's readers (decode
	 * GEMVs) find epi_by on the producer of their input and complete the norm from its sum of
	 * squares (struct awq_cu_xnorm). */
	int epi_norm, epi_by;
	int epi_slot; /* the MATMUL of such a fold: its sum-of-squares accumulator in xn_sumsq */
	/* ATTENTION: the ROPE and per-head RMSNORM nodes of q and k folded into its prep kernel (-1
	 * when none), the values that kernel reads (q_raw, k_raw: before any folded node) and the
	 * weights of the folded norms (-1). */
	int rope_q, rope_k, norm_q, norm_k, q_raw, k_raw, wq_norm, wk_norm;
	/* The prep folded further, into the q/k/v projection's decode epilogue (AWQ_CU_EPI_ROPE_KV; AWQ
	 * weights, RoPE without per-head norms; AWQ_CUDA_QKV_ROPE=0: off): on the QKV node rope_attn =
	 * the ATTENTION node, on that node qkv_by = the QKV node (-1 when none). Decode steps then skip
	 * the prep launch; prefill runs it on the permuted q and k (awq_cu_prep.perm). */
	int rope_attn, qkv_by;
	float *inv_freq; /* ROPE: device table */
};

struct cu_ctx {
	int dev, cc_major, cc_minor, sm_count;
	char name[128], arch[32], kernels[64];
	struct awq_backend_opts opts;
	cudaStream_t stream;
	cublasHandle_t blas;
	void *blas_ws;
	const struct awq_graph *g;
	int max_tokens, max_ctx;
	struct cu_weight *wts;
	int n_wts;
	struct cu_node *nodes;
	int n_nodes; /* entries of nodes */
	char *arena;
	size_t *offs;
	size_t arena_bytes;
	uint16_t *kcache, *vcache;
	size_t kv_slot; /* halves per layer slot */
	int *d_pos;
	uint16_t *x16[2];
	int x16_val[2], x16_bf[2], x16_next;
	size_t x16_elems;
	/* AWQ matmuls of at least deq_rows rows (AWQ_CUDA_DEQ_ROWS; 0 = never) dequantise each source
	 * weight into deq (deq_elems f16, the largest source; NULL when no step is that large) and run
	 * cuBLAS instead of the W4A16 GEMM */
	int deq_rows;
	uint16_t *deq;
	size_t deq_elems;
	/* per value: the 16-bit copy its prefill matmul readers take (1 f16, 2 bf16; 0 none or they
	 * disagree), which the value's producer writes alongside it (x16_claim) unless x16_fuse is 0
	 * (AWQ_CUDA_X16_FUSE=0: separate conversions) */
	signed char *x16_want;
	/* per value: 1 when every matmul reading it is AWQ, so that a decode step of 2-8 tokens has its
	 * producer write the f16 copy too (the XH GEMV streams it: half the activation bytes) */
	unsigned char *x16_dec;
	int x16_fuse, xh_rows;
	int moe_cluster; /* AWQ_CUDA_MOE_CLUSTER: the decode router as a thread-block cluster (sm_90+) */
	float *attn_part;
	float *xn_sumsq; /* producer-epilogue norms: two floats (tokens) per fold, in graph order */
	int n_folds;
	unsigned *attn_ticket; /* inside attn_part, after the partials */
	/* one captured decode step per attention span (awq_cu_span), captured together at the first
	 * one-token step; NULL where not captured */
	cudaGraphExec_t graphs[CU_SPANS];
	int use_graph;
	/* the greedy chain (awq_cu_chain): each one-token step's argmax also goes to ring[pos & mask]
	 * (mapped host memory, d_ring its device address), the token input and the next position;
	 * chain_ev marks the end of the last two steps launched */
	int32_t *ring, *d_ring;
	struct awq_cu_amax_scratch amax_scr; /* the split one-row argmax's (part_v owns the allocation) */
	int amax_split; /* AWQ_CUDA_ARGMAX_SPLIT (default 1): long one-row argmaxes over many blocks */
	cudaEvent_t chain_ev[2];
	/* read_topk (awq_cu_topk), allocated at its first use: the per-slice candidates and ticket, and
	 * the ranked result in mapped host memory (topk_host: AWQ_CU_TOPK_MAX ids, then as many values;
	 * d_topk its device address) */
	void *topk_part;
	size_t topk_part_bytes;
	unsigned *topk_ticket;
	int32_t *topk_host, *d_topk;
	struct awq_cu_sampling *d_samp; /* the sampled chain's state (awq_cu_chain), with the scratch above */
	/* AWQ_CUDA_ATTN_SPAN (default 1): decode attention plans its grid for the span of the step's
	 * positions (awq_cu_span) instead of max_ctx; attn_span: the span of the launches being made */
	int span_on, attn_span;
	/* the decode attention's grid floor in blocks per SM (AWQ_CUDA_ATTN_BLOCKS_PER_SM, default 8),
	 * read when the device opens */
	int attn_blocks_per_sm;
	int attn_ring; /* decode attention's K/V rows through a cp.async ring (AWQ_CUDA_ATTN_RING; sm_80+) */
	int attn_mma; /* grouped-query decode attention on tensor cores (AWQ_CUDA_ATTN_MMA; sm_80+) */
	int attn_mma_chunk; /* its positions per split (AWQ_CUDA_ATTN_MMA_CHUNK: 128-1024; 0 = the plan's rule) */
	uint64_t weight_bytes, kv_bytes, act_bytes;
	int vocab; /* embedding rows, for checking token ids */
	struct cu_moe_state *moe; /* cuda_moe.c: experts and scratch of the MoE nodes, NULL when none */
	struct cu_profile *prof;  /* cuda_profile.c: AWQ_CUDA_PROFILE=1, NULL otherwise */
};

/* The attention span of a step whose positions end before `end` in a cache of max_ctx positions:
 * the smallest 64 * 2^k >= end, at most max_ctx; returns k (< CU_SPANS). Decode attention sizes
 * its grid from the span (k_attn.cu awq_cu_attn_decode_plan), so a step at position 100 of a
 * 4096-position cache gets the grid of a 128-position one; a captured step is valid for every
 * position below its span (the kernels read the position from device memory). */
static inline int awq_cu_span(int max_ctx, int end, int *span)
{
	long s = 64;
	int k = 0;
	while (s < end && s < max_ctx && k < CU_SPANS - 1)
		s <<= 1, k++;
	*span = s < max_ctx ? (int)s : max_ctx;
	return k;
}

int awq_cu_fail(char *err, size_t errlen, cudaError_t e, const char *what);
/* cuda_fuse.c */
void awq_cu_plan_fusions(struct cu_ctx *c, const int *uses);
void awq_cu_fusion_lifetimes(const struct cu_ctx *c, int *live_from, int *live_to);
void awq_cu_check_fusions(struct cu_ctx *c);
/* cuda_weights.c */
int awq_cu_collect_weights(struct cu_ctx *c);
uint64_t awq_cu_weight_bytes(struct cu_weight *w);
int awq_cu_upload_weights(struct cu_ctx *c, char *err, size_t errlen);
int awq_cu_upload_f32(struct cu_ctx *c, const void *src, enum awq_dtype dt, size_t count, float **out, char *err,
		      size_t errlen);
void awq_cu_free_weights(struct cu_ctx *c);
int awq_cu_prepare(struct cu_ctx *c, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err,
		   size_t errlen);
void awq_cu_release(struct cu_ctx *c);
/* cuda_backend.c: the top-k scratch, result and sampler state for rows of cols and k up to k
 * (allocated at the first use, grown as needed). */
int awq_cu_topk_scratch(struct cu_ctx *c, int cols, int k, char *err, size_t errlen);
int awq_cu_run(struct cu_ctx *c, const struct awq_step *step, char *err, size_t errlen);
/* The backend's decode_chain: one-token steps from captured graphs, each launched before the host
 * waits for the one before it. AWQ_EUNSUPPORTED where steps do not replay graphs (AWQ_CUDA_NO_GRAPH,
 * the profiler). */
int awq_cu_chain(struct cu_ctx *c, struct awq_chain *ch, char *err, size_t errlen);
int awq_cu_weight_ok(const struct awq_weight *w, enum awq_op op);
/* cuda_profile.c: per-node GPU times of single-token steps, reported when the context is released */
int awq_cu_profile_init(struct cu_ctx *c);
void awq_cu_profile_report(struct cu_ctx *c);
void awq_cu_profile_free(struct cu_ctx *c);
int awq_cu_run_profiled(struct cu_ctx *c, const struct awq_step *step, char *err, size_t errlen);
int awq_cu_run_node(struct cu_ctx *c, int i, const struct awq_step *step, char *err, size_t errlen);
/* The producer side of node i's producer-epilogue norm (cu_node.epi_norm >= 0): the residual, norm
 * weight and outputs of its ADD and RMSNORM, its accumulator slot and the previous fold's. */
struct awq_cu_xnorm awq_cu_epi_nrm(struct cu_ctx *c, int i);
/* A decode kernel reading value in_v, the norm of a producer-epilogue fold (cu_node.epi_by), gets
 * the reader side of struct awq_cu_xnorm in *x (xn_sumsq, xn_eps; one-token steps). 1 when it does. */
int awq_cu_xn_reader(const struct cu_ctx *c, int in_v, int rows, struct awq_cu_xnorm *x);
/* cuda_moe.c */
int awq_cu_moe_supported(const struct awq_graph *g, const struct awq_node *n);
int awq_cu_moe_plan(struct cu_ctx *c, char *err, size_t errlen);
uint64_t awq_cu_moe_weight_bytes(const struct cu_ctx *c);
uint64_t awq_cu_moe_scratch_bytes(const struct cu_ctx *c);
int awq_cu_moe_upload(struct cu_ctx *c, char *err, size_t errlen);
int awq_cu_moe_run(struct cu_ctx *c, int node, int rows, char *err, size_t errlen);
void awq_cu_moe_free(struct cu_ctx *c);

static inline void awq_cu_q4_geom(struct awq_cu_q4 *q, int tiles, int k, int group_size)
{
	q->tiles = tiles;
	q->k = k;
	q->chunks = (k + 63) / 64;
	q->group_size = group_size;
	q->groups = (q->chunks * 64 + group_size - 1) / group_size;
}

/* The device geometry of a layer's experts (no pointers): what the uploads fill (cuda_moe.c), and
 * what the fusion planner asks awq_cu_moe_q4m about (cuda_fuse.c). */
static inline void awq_cu_moe_geometry(const struct awq_experts *x, struct awq_cu_moe_w *w)
{
	const struct awq_weight *g0 = &x->gate[0];
	*w = (struct awq_cu_moe_w){.n_experts = x->n, .hidden = (int)g0->k, .inter = (int)g0->n,
				   .q4 = g0->fmt == AWQ_WFMT_AWQ4};
	if (w->q4) {
		awq_cu_q4_geom(&w->gu, 2 * ((w->inter + 15) / 16), w->hidden, g0->group_size);
		awq_cu_q4_geom(&w->down, (w->hidden + 15) / 16, w->inter, x->down[0].group_size);
	} else {
		w->is_bf16 = g0->dtype == AWQ_DT_BF16;
	}
}

/* The first tile of source j of a fused AWQ weight: sources concatenated, or (interleave) gate and
 * up alternating tile by tile, stride 2 (awq_cu_q4_repack's stride and base). */
static inline int awq_cu_seg_base(const struct cu_weight *w, int j)
{
	int base = 0;
	for (int i = 0; i < j && !w->interleave; i++)
		base += w->seg_tiles[i];
	return w->interleave ? j : base;
}

static inline void *awq_cu_value(struct cu_ctx *c, int v)
{
	return c->arena + c->offs[v];
}

#endif

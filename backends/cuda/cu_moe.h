/* Launchers of the CUDA backend's mixture-of-experts kernels (k_moe.cu), callable from C.
 * MOE_ROUTE: router logits in f32 (16-bit or f32 router weights), softmax, top-k (ties: lower id),
 * renormalised when asked; the route value is [rows][2k]: k expert ids as floats, then k weights.
 * MOE_EXPERTS: every expert resident on the device, one contiguous buffer per matrix and layer.
 * Decode (rows <= AWQ_CU_DECODE_ROWS): each block reads its expert ids from the route value on the
 * device, so the launches replay unchanged inside the captured decode graph; gate/up with a fused
 * SiLU-mul, then down with the router weights and the sum over the top k inside one block (fixed
 * order: deterministic). AWQ experts with group sizes that are multiples of 64 run the dense
 * streaming GEMV's arithmetic (k_moe.cu, the q4m kernels); the decode router and expert kernels
 * use programmatic launch when pdl is set (awq_cu_pdl_default). Prefill: tokens grouped by expert on the device (count, prefix sum,
 * permute), one grouped tensor-core matmul per projection over (expert, token block) work items,
 * then a weighted scatter back in router order. */
#ifndef AWQ_CU_MOE_H
#define AWQ_CU_MOE_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "cu_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The experts of one layer, all of one format and shape. */
struct awq_cu_moe_w {
	int q4;       /* 1: AWQ INT4 in the fragment layout; 0: 16-bit */
	int is_bf16;  /* 16-bit: bf16, else f16 */
	int n_experts, hidden, inter;
	/* q4: one expert's geometry, pointers at expert 0, experts back to back (expert e at
	 * q + e * tiles * chunks * 32, scales + e * tiles * groups * 8, zeros + e * tiles * groups).
	 * gu holds gate and up tiles interleaved (tile 2i gate, 2i + 1 up) over k = hidden; down has
	 * k = inter. */
	struct awq_cu_q4 gu, down;
	/* 16-bit: gate and up [E][inter][hidden], down [E][hidden][inter] */
	const uint16_t *gate, *up, *dn;
};

/* Device scratch of MOE_EXPERTS, sized by awq_cu_moe_scratch_size for the step's largest rows. */
struct awq_cu_moe_scratch {
	float *h;         /* [rows * k][inter] SiLU(gate) * up per (token, slot) */
	float *y;         /* prefill: [rows * k][hidden] down outputs by grouped slot */
	int *slot_pair;   /* prefill: grouped slot -> token * k + j */
	int *pair_slot;   /* prefill: token * k + j -> grouped slot */
	int4 *blocks;     /* prefill: work items (expert, first slot, slots) */
	int *n_blocks;
	int max_blocks;
};

/* Bytes of each scratch array for up to max_rows rows (decode-only preparations need only h). */
void awq_cu_moe_scratch_size(int max_rows, int top_k, int n_experts, int hidden, int inter, size_t sizes[6]);

/* Router: w [E][hidden], elem_bytes 4 (f32) or 2 (bf16 when is_bf16, else f16). logits is a
 * [rows][E] f32 scratch. With ticket (a device word that is 0 between launches) rows <= 8 run as
 * one launch whose last block does the top-k; otherwise logits and top-k are two launches. cluster
 * (sm_90+ only): that one launch may run as a thread-block cluster instead (16-bit weights, up to 128
 * experts), its logits gathered in one block's shared memory (AWQ_CUDA_MOE_CLUSTER). */
cudaError_t awq_cu_moe_route(cudaStream_t s, const void *w, int elem_bytes, int is_bf16, int n_experts, int hidden,
			     const float *x, int rows, int top_k, int norm_topk, float *logits, float *route,
			     unsigned *ticket, int pdl, int cluster, const float *xn_sumsq, float xn_eps);
/* Whether the decode router can read a producer-epilogue norm's xn (xn_sumsq of struct awq_cu_xnorm,
 * one or two rows, with a ticket): the staged fused kernel, 16-bit weights, hidden a multiple of 8
 * whose two rows fit its 48 KB of staging. */
static inline int awq_cu_moe_route_reads_xn(int elem_bytes, int hidden)
{
	return elem_bytes == 2 && hidden % 8 == 0 && (size_t)2 * hidden * sizeof(float) <= 48 * 1024;
}

/* out[r] = sum_j route weight_j * down_e(silu(gate_e(x_r)) * up_e(x_r)), e = route id j. A row with
 * an id that is not an expert's gets NaN. nrm (NULL: none), struct awq_cu_xnorm (cu_kernels.h): with
 * res set the residual add + RMSNorm after the experts is done in their last kernel (the producer:
 * out gets nrm->res + that sum; hidden a multiple of 4); with xn_sumsq set x is a producer's xn and
 * the gate/up kernel completes its norm (the reader; one or two rows). Either only for decode rows
 * of a layer awq_cu_moe_q4m takes, else cudaErrorInvalidValue. */
cudaError_t awq_cu_moe_experts(cudaStream_t s, const struct awq_cu_moe_w *w, const float *x, const float *route,
			       int rows, int top_k, const struct awq_cu_moe_scratch *sc, float *out, int pdl,
			       const struct awq_cu_xnorm *nrm);
/* Whether the decode steps of this layer run the q4m kernels, the only ones with the producer-epilogue
 * norm: AWQ experts with group sizes that are multiples of 64, whose weights a 32-bit offset
 * addresses (the planner asks too, from the geometry alone). */
static inline int awq_cu_moe_q4m(const struct awq_cu_moe_w *w)
{
	return w->q4 && w->gu.group_size % 64 == 0 && w->down.group_size % 64 == 0 &&
	       (size_t)w->n_experts * w->gu.tiles * w->gu.chunks * 32 <= 0xffffffffu &&
	       (size_t)w->n_experts * w->down.tiles * w->down.chunks * 32 <= 0xffffffffu;
}

#ifdef __cplusplus
}
#endif

#endif

/* run(): launches every node of the graph for one step on the backend's stream. Single-token steps
 * are captured as CUDA graphs and replayed: every launch reads the position from d_pos, and decode
 * attention sizes its grid from the step's attention span (awq_cu_span: 64, 128, ... up to
 * max_ctx), so one graph per span is valid at every position below it. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "error.h"

#define CK(call, what)                                                  \
	do {                                                            \
		cudaError_t e_ = (call);                                \
		if (e_ != cudaSuccess)                                  \
			return awq_cu_fail(err, errlen, e_, what);      \
	} while (0)

static float *act(struct cu_ctx *c, int v)
{
	return (float *)awq_cu_value(c, v);
}

/* The pdl of the element-wise, norm and attention launches of a node of `rows` rows (cu_kernels.h):
 * programmatic launch for decode-sized rows only, as the GEMVs choose their kernels. It gained 4-5%
 * decode on an H200; prefill launches the kernels' instantiation without the PDL instructions
 * (pdl_start), which alone cost it 3-6% (session 11). */
static int pdl_for(const struct cu_ctx *c, int rows)
{
	return rows <= AWQ_CU_DECODE_ROWS && awq_cu_pdl_default(c->cc_major);
}

/* The decode attention grid's floor (struct awq_cu_attn min_grid; cu_ctx attn_blocks_per_sm). */
static int attn_min_grid(const struct cu_ctx *c, int rows)
{
	return rows <= AWQ_CU_DECODE_ROWS ? c->attn_blocks_per_sm * c->sm_count : 0;
}

/* The next of the two 16-bit activation buffers, registered as holding v as f16 or bf16 (the
 * one before stays valid). */
static uint16_t *x16_slot(struct cu_ctx *c, int v, int bf16)
{
	int s = c->x16_next;
	c->x16_next ^= 1;
	c->x16_val[s] = v;
	c->x16_bf[s] = bf16;
	return c->x16[s];
}

/* The 16-bit copy of v (bf16 or f16) already made in this step (x16_claim, x16_of), or NULL. */
static uint16_t *x16_find(const struct cu_ctx *c, int v, int bf16)
{
	for (int i = 0; i < 2; i++)
		if (c->x16_val[i] == v && c->x16_bf[i] == bf16)
			return c->x16[i];
	return NULL;
}

/* A 16-bit copy of an activation for tensor-core inputs, converted once per step and value. */
static int x16_of(struct cu_ctx *c, int v, int rows, int bf16, uint16_t **out, char *err, size_t errlen)
{
	if ((*out = x16_find(c, v, bf16)))
		return 0;
	size_t count = (size_t)rows * c->g->values[v].cols;
	if (count > c->x16_elems)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: %s does not fit the conversion buffer", c->g->values[v].name);
	*out = x16_slot(c, v, bf16);
	CK(awq_cu_to_16(c->stream, act(c, v), *out, count, bf16), "f32 -> 16-bit conversion");
	return 0;
}

/* The 16-bit copy that the producer of value v writes alongside it in a prefill step, for the
 * matmul after it (cu_ctx.x16_want), or in a decode step of 2-8 tokens for AWQ readers only
 * (x16_dec: the XH GEMV), registered as x16_of's conversion of v; NULL: none (then *bf16 is 0). */
static uint16_t *x16_claim(struct cu_ctx *c, int v, int rows, int *bf16)
{
	*bf16 = 0;
	if (rows < c->xh_rows || (rows <= AWQ_CU_DECODE_ROWS && !c->x16_dec[v]) || !c->x16_fuse || !c->x16_want ||
	    !c->x16_want[v] || (size_t)rows * c->g->values[v].cols > c->x16_elems)
		return NULL;
	*bf16 = c->x16_want[v] == 2;
	return x16_slot(c, v, *bf16);
}

/* out[rows][s->n] = x[rows][s->k] . wdata[s->n][s->k]^T (+ bias) through cuBLAS, operands of type t,
 * f32 sums and output. */
static int blas_call(struct cu_ctx *c, const struct awq_weight *s, const void *wdata, const void *x, cudaDataType_t t,
		     int rows, float *out, const float *bias, char *err, size_t errlen)
{
	const float one = 1.0f, zero = 0.0f;
	cublasStatus_t st = cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)s->n, rows, (int)s->k, &one, wdata, t,
					 (int)s->k, x, t, (int)s->k, &zero, out, CUDA_R_32F, (int)s->n, CUBLAS_COMPUTE_32F,
					 CUBLAS_GEMM_DEFAULT);
	if (st != CUBLAS_STATUS_SUCCESS)
		return awq_err(err, errlen, AWQ_EDEVICE, "cuda: cublasGemmEx failed for %s (status %d)", s->name, (int)st);
	if (bias)
		CK(awq_cu_add_bias(c->stream, out, bias, rows, (int)s->n), "bias add");
	return 0;
}

/* Source j of a dense weight (j > 0 only for fused q/k/v, gate/up) through cuBLAS. */
static int blas_gemm(struct cu_ctx *c, const struct cu_weight *w, int j, int in_v, int rows, float *out, char *err,
		     size_t errlen)
{
	const void *x = act(c, in_v);
	cudaDataType_t t = CUDA_R_32F;
	if (w->kind == CU_W_D16) {
		uint16_t *x16;
		int rc = x16_of(c, in_v, rows, w->is_bf16, &x16, err, errlen);
		if (rc)
			return rc;
		x = x16;
		t = w->is_bf16 ? CUDA_R_16BF : CUDA_R_16F;
	}
	return blas_call(c, w->src[j], w->seg_data[j], x, t, rows, out, w->bias[j], err, errlen);
}

/* The SiLU-mul after a prefill gate/up pair: outs[0] = silu(outs[1]) * outs[2], n columns (and the
 * 16-bit copy of outs[0] its matmul reader takes, x16_claim). */
static int silu_after_gate_up(struct cu_ctx *c, const int *outs, int rows, int64_t n, int pdl, char *err,
			      size_t errlen)
{
	int bf;
	uint16_t *o16 = x16_claim(c, outs[0], rows, &bf);
	CK(awq_cu_silu_mul(c->stream, act(c, outs[1]), act(c, outs[2]), act(c, outs[0]), (size_t)rows * n, pdl, o16, bf),
	   "SiLU-mul");
	return 0;
}

/* A decode GEMV reading value in_v, the norm of a producer-epilogue fold (cu_node.epi_by), gets
 * the reader side of struct awq_cu_xnorm: the sum of squares the MATMUL before the ADD accumulated.
 * 1 when it did. */
int awq_cu_xn_reader(const struct cu_ctx *c, int in_v, int rows, struct awq_cu_xnorm *x)
{
	int p = rows == 1 ? awq_graph_producer(c->g, in_v) : -1;
	if (p < 0 || c->nodes[p].epi_by < 0 || c->g->nodes[p].op != AWQ_OP_RMSNORM)
		return 0;
	x->xn_sumsq = c->xn_sumsq + 2 * c->nodes[c->nodes[p].epi_by].epi_slot;
	x->xn_eps = c->g->nodes[p].p.norm.eps;
	return 1;
}

/* Fused 16-bit q/k/v (outs: the three outputs) or gate/up (outs: the SiLU-mul output, then the
 * gate and up values, which prefill fills through cuBLAS before the element-wise SiLU-mul). */
static int dense_fused(struct cu_ctx *c, const struct cu_weight *w, int in_v, int rows, const int *outs,
		       enum awq_cu_epilogue epi, char *err, size_t errlen)
{
	int silu = epi == AWQ_CU_EPI_SILU_MUL;
	if (rows <= AWQ_CU_DECODE_ROWS) {
		struct awq_cu_w16_multi m = {.nseg = w->nsrc, .silu = silu, .is_bf16 = w->is_bf16, .k = (int)w->src[0]->k,
					     .cc_major = c->cc_major};
		struct awq_cu_xnorm xn = {0};
		awq_cu_xn_reader(c, in_v, rows, &xn);
		m.xn_sumsq = xn.xn_sumsq;
		m.xn_eps = xn.xn_eps;
		for (int j = 0; j < w->nsrc; j++) {
			m.w[j] = w->seg_data[j];
			m.bias[j] = w->bias[j];
			m.n[j] = (int)w->src[j]->n;
			m.out[j] = silu ? (j ? NULL : act(c, outs[0])) : act(c, outs[j]);
		}
		CK(awq_cu_w16_gemv_multi(c->stream, &m, act(c, in_v), rows), "16-bit GEMV (fused)");
		return 0;
	}
	for (int j = 0; j < w->nsrc; j++) {
		int rc = blas_gemm(c, w, j, in_v, rows, act(c, outs[silu ? 1 + j : j]), err, errlen);
		if (rc)
			return rc;
	}
	return silu ? silu_after_gate_up(c, outs, rows, w->src[0]->n, pdl_for(c, rows), err, errlen) : 0;
}

struct awq_cu_xnorm awq_cu_epi_nrm(struct cu_ctx *c, int i)
{
	const struct awq_graph *g = c->g;
	const struct cu_node *cn = &c->nodes[i];
	const struct awq_node *a = &g->nodes[cn->epi_norm];
	const struct cu_node *ca = &c->nodes[cn->epi_norm];
	const int res = a->in[0] == g->nodes[i].out ? a->in[1] : a->in[0];
	const int prev = (cn->epi_slot + c->n_folds - 1) % c->n_folds;
	const struct awq_cu_xnorm nrm = {.res = act(c, res), .norm_w = c->wts[ca->w].data,
					 .xn = act(c, g->nodes[ca->norm_node].out), .sumsq = c->xn_sumsq + 2 * cn->epi_slot,
					 .sumsq_clear = c->xn_sumsq + 2 * prev};
	return nrm;
}

/* The MATMUL of a producer-epilogue fold in a one-token step: h = res + W x into the ADD's output,
 * h * norm weight into the RMSNORM's, the sum of squares into its slot (and the previous fold's
 * slot cleared); the ADD node is then skipped. */
static int matmul_add_norm(struct cu_ctx *c, int i, const struct awq_node *n, const struct cu_node *cn,
			   const struct cu_weight *w, char *err, size_t errlen)
{
	const struct awq_node *a = &c->g->nodes[cn->epi_norm];
	const struct awq_cu_xnorm nrm = awq_cu_epi_nrm(c, i);
	if (w->kind == CU_W_D16) {
		CK(awq_cu_w16_gemv_x(c->stream, w->data, w->is_bf16, w->bias[0], (int)w->src[0]->n, (int)w->src[0]->k,
				     act(c, n->in[0]), 1, act(c, a->out), &nrm),
		   "16-bit GEMV with the residual add and RMSNorm");
		return 0;
	}
	struct awq_cu_out o = {.nseg = 1, .ptr = {act(c, a->out)}, .bias = {w->bias[0]}, .n = {(int)w->src[0]->n},
			       .tile_end = {w->q4.tiles, w->q4.tiles, w->q4.tiles}, .nrm = nrm,
			       .x16 = x16_find(c, n->in[0], 0)}; /* (AWQ_CUDA_XH_ROWS=1: its producer's f16 copy) */
	CK(awq_cu_q4_gemv(c->stream, &w->q4, act(c, n->in[0]), 1, &o, AWQ_CU_EPI_ADD_NORM, c->sm_count),
	   "W4A16 GEMV with the residual add and RMSNorm");
	return 0;
}

/* A prefill AWQ matmul through cuBLAS (cu_ctx.deq_rows): each source weight dequantised to f16 in
 * c->deq, then one FP16 GEMM per source (outs as in matmul; gate/up into their own values, then
 * the SiLU-mul). */
static int q4_dequant_gemm(struct cu_ctx *c, const struct cu_weight *w, const uint16_t *x16, int rows, const int *outs,
			   enum awq_cu_epilogue epi, char *err, size_t errlen)
{
	const int silu = epi == AWQ_CU_EPI_SILU_MUL;
	for (int j = 0; j < w->nsrc; j++) {
		const struct awq_weight *s = w->src[j];
		CK(awq_cu_q4_dequant(c->stream, &w->q4, w->interleave ? 2 : 1, awq_cu_seg_base(w, j), (int)s->n, c->deq),
		   "AWQ dequantisation");
		int rc = blas_call(c, s, c->deq, x16, CUDA_R_16F, rows, act(c, outs[silu ? 1 + j : j]), w->bias[j], err,
				   errlen);
		if (rc)
			return rc;
	}
	return silu ? silu_after_gate_up(c, outs, rows, w->src[0]->n, 0, err, errlen) : 0;
}

/* outs: the value of each source weight's output (one, or q/k/v; with AWQ_CU_EPI_ROPE_KV q's is
 * the attention's input, k and v go to the cache of rk), or the SiLU-mul result. */
static int matmul(struct cu_ctx *c, const struct cu_weight *w, int in_v, int rows, const int *outs,
		  enum awq_cu_epilogue epi, const struct awq_cu_rope_kv *rk, char *err, size_t errlen)
{
	if (w->kind == CU_W_Q4) {
		struct awq_cu_out o = {.nseg = epi == AWQ_CU_EPI_SILU_MUL ? 1 : w->nsrc, .rk = rk ? *rk : (struct awq_cu_rope_kv){0}};
		int end = 0;
		for (int s = 0; s < 3; s++) {
			if (s < o.nseg) {
				end += epi == AWQ_CU_EPI_SILU_MUL ? w->q4.tiles : w->seg_tiles[s];
				o.ptr[s] = act(c, outs[s]);
				o.bias[s] = w->bias[s];
				o.n[s] = (int)w->src[s]->n;
			}
			o.tile_end[s] = end;
		}
		if (rows <= AWQ_CU_DECODE_ROWS) {
			awq_cu_xn_reader(c, in_v, rows, &o.nrm);
			if (rows >= c->xh_rows && !o.nrm.xn_sumsq)
				o.x16 = x16_find(c, in_v, 0);
			/* the f16 copy of the SiLU-mul output for the down projection (x16_dec: f16), never in
			 * the slot that holds this launch's own input */
			if (epi == AWQ_CU_EPI_SILU_MUL && (!o.x16 || c->x16[c->x16_next] != o.x16)) {
				int bf;
				o.o16 = x16_claim(c, outs[0], rows, &bf);
			}
			CK(awq_cu_q4_gemv(c->stream, &w->q4, act(c, in_v), rows, &o, epi, c->sm_count), "W4A16 GEMV");
			return 0;
		}
		uint16_t *x16;
		int rc = x16_of(c, in_v, rows, 0, &x16, err, errlen);
		if (rc)
			return rc;
		if (c->deq && rows >= c->deq_rows)
			return q4_dequant_gemm(c, w, x16, rows, outs, epi, err, errlen);
		CK(awq_cu_q4_gemm(c->stream, &w->q4, x16, rows, &o, epi, c->cc_major, c->sm_count), "W4A16 GEMM");
		return 0;
	}
	if (w->nsrc > 1)
		return dense_fused(c, w, in_v, rows, outs, epi, err, errlen);
	float *out = act(c, outs[0]);
	if (w->kind == CU_W_D16 && rows <= AWQ_CU_DECODE_ROWS) {
		struct awq_cu_xnorm xn = {0};
		const int reads_xn = awq_cu_xn_reader(c, in_v, rows, &xn);
		CK(awq_cu_w16_gemv_x(c->stream, w->data, w->is_bf16, w->bias[0], (int)w->src[0]->n, (int)w->src[0]->k,
				     act(c, in_v), rows, out, reads_xn ? &xn : NULL),
		   "16-bit GEMV");
		return 0;
	}
	return blas_gemm(c, w, 0, in_v, rows, out, err, errlen);
}

static const float *vec_of(struct cu_ctx *c, int w)
{
	return w >= 0 ? c->wts[w].data : NULL;
}

static int attention(struct cu_ctx *c, const struct awq_node *n, const struct cu_node *cn, int rows, char *err,
		     size_t errlen)
{
	const struct awq_graph *g = c->g;
	uint16_t *kc = c->kcache + (size_t)n->p.attn.layer * c->kv_slot;
	uint16_t *vc = c->vcache + (size_t)n->p.attn.layer * c->kv_slot;
	/* q's and k's folded per-head norms and RoPE, and the KV-cache write, in one launch. */
	int q_folded = cn->rope_q >= 0 || cn->norm_q >= 0;
	struct awq_cu_prep p = {
		.q = act(c, cn->q_raw), .k = act(c, cn->k_raw), .v = act(c, n->in[2]),
		.q_norm = vec_of(c, cn->wq_norm), .k_norm = vec_of(c, cn->wk_norm),
		.q_freq = cn->rope_q >= 0 ? c->nodes[cn->rope_q].inv_freq : NULL,
		.k_freq = cn->rope_k >= 0 ? c->nodes[cn->rope_k].inv_freq : NULL,
		.q_eps = cn->norm_q >= 0 ? g->nodes[cn->norm_q].p.norm.eps : 0.f,
		.k_eps = cn->norm_k >= 0 ? g->nodes[cn->norm_k].p.norm.eps : 0.f,
		.q_out = q_folded ? act(c, n->in[0]) : NULL, .kc = kc, .vc = vc, .d_pos = c->d_pos, .rows = rows,
		.n_heads = n->p.attn.n_heads, .n_kv_heads = n->p.attn.n_kv_heads, .head_dim = n->p.attn.head_dim,
		.pdl = pdl_for(c, rows), .perm = cn->qkv_by >= 0,
	};
	/* a decode step's prep is done by its q/k/v projection's epilogue (rope_kv_of) */
	if (cn->qkv_by < 0 || rows > AWQ_CU_DECODE_ROWS)
		CK(awq_cu_attn_prep(c->stream, &p), "attention inputs (norm, RoPE, KV cache)");
	struct awq_cu_attn a = {
		.k = kc, .v = vc, .d_pos = c->d_pos, .n_heads = n->p.attn.n_heads, .n_kv_heads = n->p.attn.n_kv_heads,
		.head_dim = n->p.attn.head_dim, .max_ctx = c->attn_span, .scale = n->p.attn.scale, .part = c->attn_part,
		.ticket = c->attn_ticket, .pdl = pdl_for(c, rows), .min_grid = attn_min_grid(c, rows),
		.ring = c->attn_ring, .mma = c->attn_mma, .mma_chunk = c->attn_mma_chunk,
	};
	size_t qc = (size_t)n->p.attn.n_heads * n->p.attn.head_dim;
	if (rows > AWQ_CU_DECODE_ROWS && awq_cu_attn_prefill_ok(a.head_dim, c->cc_major)) {
		a.q = act(c, n->in[0]);
		a.out = act(c, n->out);
		a.rows = rows;
		a.out16 = x16_claim(c, n->out, rows, &a.out16_bf16);
		CK(awq_cu_attn_prefill(c->stream, &a), "flash attention");
		return 0;
	}
	uint16_t *o16 = x16_claim(c, n->out, rows, &a.out16_bf16); /* (the o projection's XH input) */
	for (int r0 = 0; r0 < rows; r0 += AWQ_CU_DECODE_ROWS) {
		a.row0 = r0;
		a.rows = rows - r0 < AWQ_CU_DECODE_ROWS ? rows - r0 : AWQ_CU_DECODE_ROWS;
		a.q = act(c, n->in[0]) + r0 * qc;
		a.out = act(c, n->out) + r0 * qc;
		a.out16 = o16 ? o16 + r0 * qc : NULL;
		CK(awq_cu_attn_decode(c->stream, &a), "decode attention");
	}
	return 0;
}

/* The KV cache and RoPE tables of attention node a, for the q/k/v projection's decode epilogue
 * that does its prep (cu_node.rope_attn, AWQ_CU_EPI_ROPE_KV). */
static struct awq_cu_rope_kv rope_kv_of(const struct cu_ctx *c, int a)
{
	const struct awq_node *n = &c->g->nodes[a];
	const struct cu_node *cn = &c->nodes[a];
	const size_t slot = (size_t)n->p.attn.layer * c->kv_slot;
	return (struct awq_cu_rope_kv){
		.q_freq = c->nodes[cn->rope_q].inv_freq, .k_freq = c->nodes[cn->rope_k].inv_freq,
		.kc = c->kcache + slot, .vc = c->vcache + slot, .d_pos = c->d_pos, .hd = n->p.attn.head_dim,
	};
}

int awq_cu_run_node(struct cu_ctx *c, int i, const struct awq_step *step, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *n = &g->nodes[i];
	const struct cu_node *cn = &c->nodes[i];
	const struct cu_weight *w = cn->w >= 0 ? &c->wts[cn->w] : NULL;
	int rows = awq_value_rows(g, n->out, step), cols = g->values[n->out].cols;
	size_t count = (size_t)rows * cols;
	float *out = act(c, n->out);
	int outs[3] = {n->out, -1, -1}, pdl = pdl_for(c, rows);
	if (cn->exec == CU_X_GATE_UP) {
		outs[1] = n->in[0];
		outs[2] = n->in[1];
		return matmul(c, w, cn->in_fused, rows, outs, AWQ_CU_EPI_SILU_MUL, NULL, err, errlen);
	}
	if (cn->exec == CU_X_QKV) {
		for (int j = 0; j < 3; j++)
			outs[j] = g->nodes[cn->mm[j]].out;
		if (cn->rope_attn >= 0 && rows <= AWQ_CU_DECODE_ROWS) { /* q with RoPE, k and v to the cache */
			const struct awq_cu_rope_kv rk = rope_kv_of(c, cn->rope_attn);
			outs[0] = g->nodes[cn->rope_attn].in[0];
			return matmul(c, w, n->in[0], rows, outs, AWQ_CU_EPI_ROPE_KV, &rk, err, errlen);
		}
		return matmul(c, w, n->in[0], rows, outs, AWQ_CU_EPI_STORE, NULL, err, errlen);
	}
	if (cn->epi_norm >= 0 && rows == 1 && n->op == AWQ_OP_MATMUL)
		return matmul_add_norm(c, i, n, cn, w, err, errlen);
	if (cn->epi_by >= 0 && n->op == AWQ_OP_ADD && rows == 1)
		return 0; /* formed by the MATMUL before it */
	switch (n->op) {
	case AWQ_OP_EMBED:
		CK(awq_cu_embed(c->stream, awq_cu_value(c, n->in[0]), rows, w->data, (int)awq_dtype_size(w->src[0]->dtype),
				w->is_bf16, cols, (int)w->src[0]->n, out, pdl),
		   "embedding");
		return 0;
	case AWQ_OP_RMSNORM:
	{
		int bf;
		uint16_t *o16 = x16_claim(c, n->out, rows, &bf);
		CK(awq_cu_rmsnorm(c->stream, act(c, n->in[0]), w->data, out, rows, cols, n->p.norm.group, n->p.norm.eps,
				  pdl, o16, bf),
		   "RMSNorm");
		return 0;
	}
	case AWQ_OP_MATMUL:
		return matmul(c, w, n->in[0], rows, outs, AWQ_CU_EPI_STORE, NULL, err, errlen);
	case AWQ_OP_ROPE:
		CK(awq_cu_rope(c->stream, act(c, n->in[0]), out, rows, n->p.rope.n_heads, n->p.rope.head_dim, cn->inv_freq,
			       c->d_pos),
		   "RoPE");
		return 0;
	case AWQ_OP_ATTENTION:
		return attention(c, n, cn, rows, err, errlen);
	case AWQ_OP_SILU_MUL:
	{
		int bf;
		uint16_t *o16 = x16_claim(c, n->out, rows, &bf);
		CK(awq_cu_silu_mul(c->stream, act(c, n->in[0]), act(c, n->in[1]), out, count, pdl, o16, bf), "SiLU-mul");
		return 0;
	}
	case AWQ_OP_SIGMOID_MUL:
		CK(awq_cu_sigmoid_mul(c->stream, act(c, n->in[0]), act(c, n->in[1]), out, rows, cols, pdl),
		   "sigmoid-mul");
		return 0;
	case AWQ_OP_ADD:
		if (cn->exec == CU_X_ADD_NORM) {
			const struct awq_node *m = &g->nodes[cn->norm_node];
			int bf;
			uint16_t *y16 = x16_claim(c, m->out, rows, &bf);
			CK(awq_cu_add_rmsnorm(c->stream, act(c, n->in[0]), act(c, n->in[1]), out, w->data, act(c, m->out), rows,
					      cols, m->p.norm.eps, pdl, y16, bf),
			   "add + RMSNorm");
			return 0;
		}
		CK(awq_cu_add(c->stream, act(c, n->in[0]), act(c, n->in[1]), out, count, pdl), "add");
		return 0;
	case AWQ_OP_LAST_ROWS: {
		int in_rows = awq_value_rows(g, n->in[0], step);
		const float *src = act(c, n->in[0]) + (size_t)(in_rows - rows) * cols;
		CK(cudaMemcpyAsync(out, src, count * 4, cudaMemcpyDeviceToDevice, c->stream), "last-rows copy");
		return 0;
	}
	case AWQ_OP_ARGMAX: {
		/* one-token steps feed the greedy chain (awq_cu_chain); outside a chain the host writes
		 * the token and the position again before the next step */
		const int fed = step->n_tokens == 1 && c->d_ring && n->out == g->argmax_out && g->tokens_in >= 0;
		struct awq_cu_feed feed = {0};
		if (fed)
			feed = (struct awq_cu_feed){(int32_t *)awq_cu_value(c, g->tokens_in), c->d_pos, c->d_ring, CU_RING - 1};
		CK(awq_cu_argmax(c->stream, act(c, n->in[0]), rows, g->values[n->in[0]].cols, (int32_t *)out, pdl,
				 fed ? &feed : NULL, c->amax_split ? &c->amax_scr : NULL),
		   "argmax");
		return 0;
	}
	case AWQ_OP_MOE_ROUTE:
	case AWQ_OP_MOE_EXPERTS:
		return awq_cu_moe_run(c, i, rows, err, errlen);
	default:
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "cuda: op %s is not supported", awq_op_name(n->op));
	}
}

static int run_nodes(struct cu_ctx *c, const struct awq_step *step, char *err, size_t errlen)
{
	c->x16_val[0] = c->x16_val[1] = -1;
	for (int i = 0; i < c->g->n_nodes; i++) {
		if (c->nodes[i].exec == CU_X_SKIP || awq_knockout(c->g, i, step->n_tokens))
			continue;
		int rc = awq_cu_run_node(c, i, step, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static int capture(struct cu_ctx *c, const struct awq_step *step, cudaGraphExec_t *exec, char *err, size_t errlen)
{
	cudaGraph_t graph;
	CK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
	int rc = run_nodes(c, step, err, errlen);
	cudaError_t e = cudaStreamEndCapture(c->stream, &graph);
	if (rc) {
		if (e == cudaSuccess)
			cudaGraphDestroy(graph);
		return rc;
	}
	if (e != cudaSuccess)
		return awq_cu_fail(err, errlen, e, "cudaStreamEndCapture");
	e = cudaGraphInstantiate(exec, graph, 0);
	cudaGraphDestroy(graph);
	if (e != cudaSuccess) {
		*exec = NULL;
		return awq_cu_fail(err, errlen, e, "cudaGraphInstantiate");
	}
	return 0;
}

int awq_cu_run(struct cu_ctx *c, const struct awq_step *step, char *err, size_t errlen)
{
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: run before prepare");
	if (step->n_tokens < 1 || step->n_tokens > c->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: step of %d tokens, prepared for 1..%d", step->n_tokens,
			       c->max_tokens);
	if (step->pos < 0 || step->pos + step->n_tokens > c->max_ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG, "cuda: positions %d..%d exceed the KV cache of %d", step->pos,
			       step->pos + step->n_tokens - 1, c->max_ctx);
	/* Pageable source: staged by the driver before the call returns, so the stack variable may go. */
	int pos = step->pos;
	CK(cudaMemcpyAsync(c->d_pos, &pos, sizeof(pos), cudaMemcpyHostToDevice, c->stream), "position upload");
	int span = c->max_ctx, k = 0;
	if (c->span_on)
		k = awq_cu_span(c->max_ctx, step->pos + step->n_tokens, &span);
	c->attn_span = span;
	if (step->n_tokens == 1 && c->prof)
		return awq_cu_run_profiled(c, step, err, errlen);
	if (step->n_tokens != 1 || !c->use_graph)
		return run_nodes(c, step, err, errlen);
	if (!c->graphs[k]) {
		/* every span's step at once (capture only records: a few ms per span, 7 spans at a
		 * max_ctx of 4096), so that no later step pays for a capture inside a timed run */
		int last = c->span_on ? awq_cu_span(c->max_ctx, c->max_ctx, &(int){0}) : 0;
		for (int j = 0; j <= last; j++) {
			if (c->graphs[j])
				continue;
			const long sj = 64L << j;
			c->attn_span = c->span_on && sj < c->max_ctx ? (int)sj : c->max_ctx;
			int rc = capture(c, step, &c->graphs[j], err, errlen);
			if (rc)
				return rc;
		}
		c->attn_span = span;
	}
	CK(cudaGraphLaunch(c->graphs[k], c->stream), "cudaGraphLaunch");
	return 0;
}

/* The sampled chain's draw after a step's graph (awq_cu_sample, feed: the chain's); nothing when
 * greedy (cs NULL: the graph's argmax fed the next step). */
static cudaError_t chain_draw(struct cu_ctx *c, const struct awq_chain_sample *cs, int cols,
			      const struct awq_cu_feed *feed)
{
	if (!cs)
		return cudaSuccess;
	return awq_cu_sample(c->stream, act(c, c->g->logits_out), cols, c->topk_part, c->topk_ticket, c->d_samp,
			     cs->top_k, feed);
}

int awq_cu_chain(struct cu_ctx *c, struct awq_chain *ch, char *err, size_t errlen)
{
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: run before prepare");
	if (!c->use_graph || c->prof || !c->ring || c->max_tokens < 1)
		return AWQ_EUNSUPPORTED;
	ch->steps = 0;
	/* sampled: after each step's graph, the draw (awq_cu_sample) overwrites the argmax the graph fed
	 * to the next step, from the sampler state uploaded here */
	const struct awq_chain_sample *cs = ch->sample;
	const struct awq_graph *g = c->g;
	struct awq_cu_feed feed = {0};
	int cols = 0;
	if (cs) {
		if (g->logits_out < 0 || g->tokens_in < 0)
			return AWQ_EUNSUPPORTED;
		cols = g->values[g->logits_out].cols;
		if (cs->top_k < 1 || cs->top_k > AWQ_CU_TOPK_MAX || cs->top_k >= cols)
			return awq_err(err, errlen, AWQ_EINVAL, "cuda: sampled chain with top-k %d over %d columns", cs->top_k,
				       cols);
		int rc = awq_cu_topk_scratch(c, cols, cs->top_k, err, errlen);
		if (rc)
			return rc;
		struct awq_cu_sampling sp = {cs->inv_t, cs->top_p, cs->min_p, cs->top_k, {0}};
		memcpy(sp.rng, cs->rng, sizeof(sp.rng));
		/* pageable source: staged before the call returns */
		CK(cudaMemcpyAsync(c->d_samp, &sp, sizeof(sp), cudaMemcpyHostToDevice, c->stream), "sampler upload");
		feed = (struct awq_cu_feed){(int32_t *)awq_cu_value(c, g->tokens_in), c->d_pos, c->d_ring, CU_RING - 1};
	}
	/* step 0 as any step (the position upload, the graphs' capture); the token is written */
	struct awq_step st = {.n_tokens = 1, .pos = ch->pos};
	int rc = awq_cu_run(c, &st, err, errlen);
	if (rc)
		return rc;
	CK(chain_draw(c, cs, cols, &feed), "sampling");
	CK(cudaEventRecord(c->chain_ev[0], c->stream), "cudaEventRecord");
	for (int i = 1;; i++) {
		/* step i goes in before the host waits for step i - 1: the stream always holds a step */
		const int more = i < ch->n;
		if (more) {
			int span, k = c->span_on ? awq_cu_span(c->max_ctx, ch->pos + i + 1, &span) : 0;
			if (!c->graphs[k])
				return awq_err(err, errlen, AWQ_EINVAL, "cuda: no captured step for position %d", ch->pos + i);
			CK(cudaGraphLaunch(c->graphs[k], c->stream), "cudaGraphLaunch");
			CK(chain_draw(c, cs, cols, &feed), "sampling");
			CK(cudaEventRecord(c->chain_ev[i & 1], c->stream), "cudaEventRecord");
		}
		CK(cudaEventSynchronize(c->chain_ev[(i - 1) & 1]), "waiting for a decode step");
		const int32_t id = ((volatile int32_t *)c->ring)[(ch->pos + i - 1) & (CU_RING - 1)];
		ch->steps = i;
		if ((ch->on_token && ch->on_token(ch->user, id)) || !more)
			return 0;
	}
}

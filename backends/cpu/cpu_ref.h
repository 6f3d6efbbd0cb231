/* Scalar reference kernels for every op of the graph: plain, obviously-correct C in f32 (f64 where a
 * sum is long). They are the ground truth every other kernel and backend is tested against, so they
 * favour clarity over speed. Activations are row-major f32 [rows, cols]. */
#ifndef AWQ_CPU_REF_H
#define AWQ_CPU_REF_H

#include <stdint.h>

#include "graph.h"

/* out[r][:] = embedding row tokens[r] of w (dense [vocab, hidden]). Returns -1 on an id out of range. */
int awq_ref_embed(const struct awq_weight *w, const int32_t *tokens, int rows, float *out);

/* RMSNorm over groups of `group` columns; weight w has `group` elements. */
void awq_ref_rmsnorm(const float *x, int rows, int cols, int group, float eps, const struct awq_weight *w,
		     float *out);

/* out[r][n] = sum_k x[r][k] * W[n][k] + bias[n], any weight format (AWQ4 dequantized on the fly). */
void awq_ref_matmul(const float *x, int rows, const struct awq_weight *w, float *out);
/* Columns [n0, n1) only (out keeps row stride w->n): what a thread of the scalar backend runs. */
void awq_ref_matmul_cols(const float *x, int rows, const struct awq_weight *w, int64_t n0, int64_t n1,
			 float *out);

/* inv_freq[i], i < head_dim/2, with llama3/linear scaling applied; the position multiplier is
 * returned in *pos_scale (1/factor for linear scaling, 1 otherwise). */
void awq_rope_inv_freq(const struct awq_rope *r, int head_dim, float *inv_freq, float *pos_scale);

/* rotate_half RoPE on n_heads heads of head_dim; row r has position pos + r. */
void awq_ref_rope(const float *x, int rows, int n_heads, int head_dim, const struct awq_rope *rope, int pos,
		  float *out);

/* Append k,v rows to the cache (kc/vc: [max_ctx, n_kv*head_dim]) at positions pos.., then causal
 * attention for each q row over positions 0..pos+r. */
void awq_ref_attention(const float *q, const float *k, const float *v, int rows, int pos, int n_heads,
		       int n_kv_heads, int head_dim, float scale, float *kc, float *vc, float *out);

void awq_ref_silu_mul(const float *a, const float *b, int n, float *out);
void awq_ref_add(const float *a, const float *b, int n, float *out);
/* out[r][c] = sigmoid(g[r]) * x[r][c] (g: one value per row) */
void awq_ref_sigmoid_mul(const float *g, const float *x, int rows, int cols, float *out);
void awq_ref_argmax(const float *x, int rows, int cols, int32_t *out);

#endif

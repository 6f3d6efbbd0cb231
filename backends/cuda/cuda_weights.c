/* Weights on the device: dense tensors uploaded in their stored layout (norm vectors and biases as
 * f32), AWQ tensors repacked on the device into the mma fragment layout, staying 4-bit. Fused
 * matmuls get one combined weight (see cuda_fuse.c). */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"
#include "error.h"

#define MIB (1024.0 * 1024.0)

/* Tied weights are distinct structs over the same storage: upload them once. */
static int same_weight(const struct awq_weight *x, const struct awq_weight *y)
{
	if (x == y)
		return 1;
	return x && y && x->fmt == AWQ_WFMT_DENSE && y->fmt == AWQ_WFMT_DENSE && x->data && x->data == y->data &&
	       x->n == y->n && x->k == y->k && x->dtype == y->dtype && x->bias == y->bias;
}

static int find_weight(struct cu_ctx *c, const struct awq_weight *const *src, int nsrc, int interleave)
{
	for (int i = 0; i < c->n_wts; i++) {
		struct cu_weight *w = &c->wts[i];
		int same = w->nsrc == nsrc && w->interleave == interleave;
		for (int j = 0; j < nsrc && same; j++)
			same = same_weight(w->src[j], src[j]);
		if (same)
			return i;
	}
	struct cu_weight *w = &c->wts[c->n_wts];
	for (int j = 0; j < nsrc; j++)
		w->src[j] = src[j];
	w->nsrc = nsrc;
	w->interleave = interleave;
	return c->n_wts++;
}

static void q4_geometry(struct cu_weight *w)
{
	int tiles = 0;
	for (int j = 0; j < w->nsrc; j++) {
		w->seg_tiles[j] = (int)((w->src[j]->n + 15) / 16);
		tiles += w->seg_tiles[j];
	}
	awq_cu_q4_geom(&w->q4, tiles, (int)w->src[0]->k, w->src[0]->group_size);
}

uint64_t awq_cu_weight_bytes(struct cu_weight *w)
{
	uint64_t b = 0;
	for (int j = 0; j < w->nsrc; j++)
		b += w->src[j]->bias ? (uint64_t)w->src[j]->n * 4 : 0;
	const struct awq_weight *s = w->src[0];
	switch (w->kind) {
	case CU_W_Q4:
		q4_geometry(w);
		return b + (uint64_t)w->q4.tiles * w->q4.chunks * 512 + (uint64_t)w->q4.tiles * w->q4.groups * 40;
	case CU_W_VEC:
		return (uint64_t)s->n * s->k * 4;
	default:
		for (int j = 0; j < w->nsrc; j++)
			b += (uint64_t)w->src[j]->n * w->src[j]->k * awq_dtype_size(w->src[j]->dtype);
		return b;
	}
}

static int dalloc(struct cu_weight *w, int slot, size_t bytes, void **p, char *err, size_t errlen)
{
	cudaError_t e = cudaMalloc(p, bytes ? bytes : 4);
	if (e != cudaSuccess)
		return awq_err(err, errlen, AWQ_ETOOBIG, "cuda: cudaMalloc of %.1f MiB for %s failed: %s", bytes / MIB,
			       w->src[0]->name, cudaGetErrorString(e));
	w->mem[slot] = *p;
	return 0;
}

/* Uploads go through the backend's (non-blocking) stream so that the repack kernels that follow
 * are ordered after them; pageable sources are staged by the driver before the call returns. */
static cudaError_t h2d(struct cu_ctx *c, void *dst, const void *src, size_t bytes)
{
	return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream);
}

/* perm_hd > 0: element i of the copy is element awq_rope_perm_src(i, perm_hd) of src (the bias of
 * a q or k weight repacked in that order; count is a multiple of perm_hd). */
static int upload_f32_perm(struct cu_ctx *c, const void *src, enum awq_dtype dt, size_t count, int perm_hd, float **out,
			   char *err, size_t errlen)
{
	float *h = malloc(count * sizeof(float));
	if (!h)
		return awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory converting a vector");
	for (size_t i = 0; i < count; i++)
		h[i] = awq_load_float(src, dt, perm_hd ? (size_t)awq_rope_perm_src((int)i, perm_hd) : i);
	cudaError_t e = cudaMalloc((void **)out, count * 4);
	if (e == cudaSuccess)
		e = h2d(c, *out, h, count * 4);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	free(h);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "uploading a vector");
}

int awq_cu_upload_f32(struct cu_ctx *c, const void *src, enum awq_dtype dt, size_t count, float **out, char *err,
		      size_t errlen)
{
	return upload_f32_perm(c, src, dt, count, 0, out, err, errlen);
}

struct staging {
	void *p;
	size_t cap;
};

static int stage(struct staging *st, size_t bytes, char *err, size_t errlen)
{
	if (bytes <= st->cap)
		return 0;
	cudaFree(st->p);
	st->p = NULL;
	st->cap = 0;
	cudaError_t e = cudaMalloc(&st->p, bytes);
	if (e != cudaSuccess)
		return awq_err(err, errlen, AWQ_ETOOBIG, "cuda: no room for a %.1f MiB staging buffer: %s", bytes / MIB,
			       cudaGetErrorString(e));
	st->cap = bytes;
	return 0;
}

static size_t up256(size_t x)
{
	return (x + 255) & ~(size_t)255;
}

/* Raw tensors of source j to the staging buffer, then repacked into their tiles of the weight. */
static int repack_one(struct cu_ctx *c, struct cu_weight *w, int j, struct staging *st, char *err, size_t errlen)
{
	const struct awq_weight *s = w->src[j];
	size_t qb = (size_t)s->k * s->n / 2, zb = s->qzeros ? (size_t)(s->k / s->group_size) * s->n / 2 : 0;
	size_t sb = (size_t)(s->k / s->group_size) * s->n * 2;
	int rc = stage(st, up256(qb) + up256(zb) + sb, err, errlen);
	if (rc)
		return rc;
	char *p = st->p;
	struct awq_cu_q4_src src = {.n = (int)s->n, .k = (int)s->k, .group_size = s->group_size, .sym_zero = s->sym_zero,
				    .rope_hd = j < 2 ? w->rope_hd : 0};
	src.qweight = (const uint32_t *)p;
	src.qzeros = s->qzeros ? (const uint32_t *)(p + up256(qb)) : NULL;
	src.scales = (const uint16_t *)(p + up256(qb) + up256(zb));
	cudaError_t e = h2d(c, (void *)src.qweight, s->qweight, qb);
	if (e == cudaSuccess && zb)
		e = h2d(c, (void *)src.qzeros, s->qzeros, zb);
	if (e == cudaSuccess)
		e = h2d(c, (void *)src.scales, s->scales, sb);
	if (e == cudaSuccess)
		e = awq_cu_q4_repack(c->stream, &src, &w->q4, w->interleave ? 2 : 1, awq_cu_seg_base(w, j));
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "repacking an AWQ weight");
}

static int upload_weight(struct cu_ctx *c, struct cu_weight *w, struct staging *st, char *err, size_t errlen)
{
	const struct awq_weight *s = w->src[0];
	int rc = 0;
	void *p;
	if (w->kind == CU_W_VEC) {
		rc = awq_cu_upload_f32(c, s->data, s->dtype, (size_t)(s->n * s->k), (float **)&p, err, errlen);
		w->mem[0] = rc ? NULL : p;
		w->data = w->mem[0];
		return rc;
	}
	for (int j = 0; j < w->nsrc && !rc; j++) {
		if (!w->src[j]->bias)
			continue;
		rc = upload_f32_perm(c, w->src[j]->bias, w->src[j]->bias_dtype, (size_t)w->src[j]->n,
				     j < 2 ? w->rope_hd : 0, &w->bias[j], err, errlen);
		w->mem[4 + j] = w->bias[j];
	}
	if (rc)
		return rc;
	if (w->kind != CU_W_Q4) { /* dense: each source in its own buffer (fused q/k/v, gate/up: 2-3) */
		for (int j = 0; j < w->nsrc; j++) {
			const struct awq_weight *sj = w->src[j];
			size_t bytes = (size_t)sj->n * sj->k * awq_dtype_size(sj->dtype);
			if ((rc = dalloc(w, j, bytes, &p, err, errlen)))
				return rc;
			w->seg_data[j] = p;
			cudaError_t e = h2d(c, p, sj->data, bytes);
			if (e != cudaSuccess)
				return awq_cu_fail(err, errlen, e, "uploading a weight");
		}
		w->data = w->seg_data[0];
		w->is_bf16 = s->dtype == AWQ_DT_BF16;
		return 0;
	}
	struct awq_cu_q4 *q = &w->q4;
	if ((rc = dalloc(w, 0, (size_t)q->tiles * q->chunks * 512, &p, err, errlen)))
		return rc;
	q->q = p;
	if ((rc = dalloc(w, 1, (size_t)q->tiles * q->groups * 32, &p, err, errlen)))
		return rc;
	q->scales = p;
	if ((rc = dalloc(w, 2, (size_t)q->tiles * q->groups * 8, &p, err, errlen)))
		return rc;
	q->zeros = p;
	for (int j = 0; j < w->nsrc && !rc; j++)
		rc = repack_one(c, w, j, st, err, errlen);
	return rc;
}

int awq_cu_upload_weights(struct cu_ctx *c, char *err, size_t errlen)
{
	struct staging st = {0};
	int rc = 0;
	for (int i = 0; i < c->n_wts && !rc; i++)
		rc = upload_weight(c, &c->wts[i], &st, err, errlen);
	if (!rc) {
		cudaError_t e = cudaStreamSynchronize(c->stream);
		if (e != cudaSuccess)
			rc = awq_cu_fail(err, errlen, e, "uploading weights");
	}
	cudaFree(st.p);
	return rc;
}

static enum cu_wkind kind_of(const struct awq_node *n)
{
	if (n->op == AWQ_OP_RMSNORM)
		return CU_W_VEC;
	if (n->w->fmt == AWQ_WFMT_AWQ4)
		return CU_W_Q4;
	return n->w->dtype == AWQ_DT_F32 ? CU_W_D32 : CU_W_D16;
}

int awq_cu_collect_weights(struct cu_ctx *c)
{
	const struct awq_graph *g = c->g;
	c->wts = calloc((size_t)g->n_nodes + 1, sizeof(*c->wts));
	if (!c->wts)
		return -1;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		struct cu_node *cn = &c->nodes[i];
		const struct awq_weight *src[3] = {n->w, NULL, NULL};
		int nsrc = 1, interleave = 0;
		cn->w = -1;
		if (cn->exec == CU_X_SKIP)
			continue;
		if (cn->exec == CU_X_GATE_UP) {
			src[0] = g->nodes[awq_graph_producer(g, n->in[0])].w;
			src[1] = g->nodes[awq_graph_producer(g, n->in[1])].w;
			nsrc = 2;
			interleave = 1;
		} else if (cn->exec == CU_X_QKV) {
			for (int j = 0; j < 3; j++)
				src[j] = g->nodes[cn->mm[j]].w;
			nsrc = 3;
		} else if (cn->exec == CU_X_ADD_NORM) {
			n = &g->nodes[cn->norm_node];
			src[0] = n->w;
		}
		if (n->op == AWQ_OP_ATTENTION) {
			/* per-head norms folded into the attention prep kernel */
			int folded[2] = {cn->norm_q, cn->norm_k}, *slot[2] = {&cn->wq_norm, &cn->wk_norm};
			for (int j = 0; j < 2; j++) {
				if (folded[j] < 0)
					continue;
				const struct awq_weight *nw = g->nodes[folded[j]].w;
				*slot[j] = find_weight(c, &nw, 1, 0);
				c->wts[*slot[j]].kind = CU_W_VEC;
			}
		}
		if (!src[0])
			continue;
		cn->w = find_weight(c, src, nsrc, interleave);
		c->wts[cn->w].kind = nsrc == 1 ? kind_of(n) : src[0]->fmt == AWQ_WFMT_AWQ4 ? CU_W_Q4 : CU_W_D16;
		if (cn->exec == CU_X_QKV && cn->rope_attn >= 0 && c->wts[cn->w].kind == CU_W_Q4)
			c->wts[cn->w].rope_hd = g->nodes[cn->rope_attn].p.attn.head_dim;
		if (n->op == AWQ_OP_EMBED)
			c->vocab = (int)n->w->n;
	}
	return 0;
}

void awq_cu_free_weights(struct cu_ctx *c)
{
	for (int i = 0; i < c->n_wts; i++)
		for (int j = 0; j < 8; j++)
			cudaFree(c->wts[i].mem[j]);
	free(c->wts);
	c->wts = NULL;
	c->n_wts = 0;
}

/* MOE_ROUTE and MOE_EXPERTS on the CUDA backend, host side: which nodes run here, the experts of
 * each layer uploaded once into one contiguous device buffer per matrix (AWQ repacked on the device
 * into the fragment layout, gate and up interleaved tile by tile; 16-bit copied as stored), the
 * scratch of the expert kernels, and the launches (cu_moe.h). Nothing here reads a routed id on the
 * host: decode steps replay inside the captured CUDA graph. */
#include <stdlib.h>
#include <string.h>

#include "cu_moe.h"
#include "cuda_internal.h"
#include "error.h"

#define MIB (1024.0 * 1024.0)
#define STAGING_BYTES ((size_t)256 << 20)

struct cu_moe_set {
	const struct awq_experts *x;
	struct awq_cu_moe_w w;
	void *mem[6];
	uint64_t bytes;
};

struct cu_moe_state {
	struct cu_moe_set *sets;
	int n_sets;
	int *set_of_node; /* MOE_EXPERTS node -> set, -1 */
	size_t scratch_sizes[6], logits_bytes;
	struct awq_cu_moe_scratch sc;
	void *scratch_mem[6];
	float *logits;
	unsigned *ticket; /* inside the logits allocation (its last 256 bytes) */
	uint64_t weight_bytes, scratch_bytes;
};

static int q4_ok(const struct awq_weight *w)
{
	return w->fmt == AWQ_WFMT_AWQ4 && w->group_size >= 16 && w->group_size % 16 == 0 && w->k % w->group_size == 0 &&
	       w->n % 8 == 0 && w->n < (1 << 30) && w->k < (1 << 30) && !w->bias;
}

int awq_cu_moe_supported(const struct awq_graph *g, const struct awq_node *n)
{
	if (n->p.moe.n_experts < 1 || n->p.moe.n_experts > 1024 || n->p.moe.top_k < 1 ||
	    n->p.moe.top_k > n->p.moe.n_experts)
		return 0;
	if (n->op == AWQ_OP_MOE_ROUTE) {
		const struct awq_weight *w = n->w;
		return w && w->fmt == AWQ_WFMT_DENSE && !w->bias &&
		       (w->dtype == AWQ_DT_F32 || w->dtype == AWQ_DT_F16 || w->dtype == AWQ_DT_BF16) &&
		       w->n == n->p.moe.n_experts;
	}
	if (n->op != AWQ_OP_MOE_EXPERTS)
		return 0;
	const struct awq_experts *x = n->experts;
	if (!x || x->n != n->p.moe.n_experts || !x->gate || !x->up || !x->down)
		return 0;
	const struct awq_weight *g0 = &x->gate[0], *d0 = &x->down[0];
	int H = g ? g->values[n->in[0]].cols : (int)g0->k;
	if (g0->k != H || d0->n != H || d0->k != g0->n || g0->n > (1 << 24) || H > (1 << 24))
		return 0;
	for (int e = 0; e < x->n; e++) {
		const struct awq_weight *ws[3] = {&x->gate[e], &x->up[e], &x->down[e]};
		for (int i = 0; i < 3; i++) {
			const struct awq_weight *w = ws[i], *ref = i == 2 ? d0 : g0;
			if (w->fmt != ref->fmt || w->n != ref->n || w->k != ref->k || w->bias)
				return 0;
			if (w->fmt == AWQ_WFMT_AWQ4) {
				if (!q4_ok(w) || w->group_size != g0->group_size)
					return 0;
			} else if (w->fmt != AWQ_WFMT_DENSE || (w->dtype != AWQ_DT_F16 && w->dtype != AWQ_DT_BF16) ||
				   w->dtype != g0->dtype || w->n % 16 || w->k % 16) {
				/* 16-bit experts: whole 16-column lane slices (f32 experts: no kernel) */
				return 0;
			}
		}
	}
	return 1;
}

/* Bytes of one q4 matrix of one expert: fragments, scales, zeros. */
static void q4_bytes(const struct awq_cu_q4 *q, size_t b[3])
{
	b[0] = (size_t)q->tiles * q->chunks * 512;
	b[1] = (size_t)q->tiles * q->groups * 32;
	b[2] = (size_t)q->tiles * q->groups * 8;
}

static void set_geometry(struct cu_moe_set *s)
{
	struct awq_cu_moe_w *w = &s->w;
	awq_cu_moe_geometry(s->x, w);
	if (w->q4) {
		size_t a[3], b[3];
		q4_bytes(&w->gu, a);
		q4_bytes(&w->down, b);
		s->bytes = (uint64_t)s->x->n * (a[0] + a[1] + a[2] + b[0] + b[1] + b[2]);
	} else {
		s->bytes = (uint64_t)s->x->n * 3 * (uint64_t)w->hidden * w->inter * 2;
	}
}

static void free_state(struct cu_moe_state *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->n_sets; i++)
		for (int j = 0; j < 6; j++)
			cudaFree(m->sets[i].mem[j]);
	for (int j = 0; j < 6; j++)
		cudaFree(m->scratch_mem[j]);
	cudaFree(m->logits);
	free(m->sets);
	free(m->set_of_node);
	free(m);
}

void awq_cu_moe_free(struct cu_ctx *c)
{
	free_state(c->moe);
	c->moe = NULL;
}

int awq_cu_moe_plan(struct cu_ctx *c, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	int n_sets = 0, max_k = 0, max_e = 0, max_h = 0, max_i = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		if (n->op != AWQ_OP_MOE_ROUTE && n->op != AWQ_OP_MOE_EXPERTS)
			continue;
		max_k = n->p.moe.top_k > max_k ? n->p.moe.top_k : max_k;
		max_e = n->p.moe.n_experts > max_e ? n->p.moe.n_experts : max_e;
		if (n->op == AWQ_OP_MOE_EXPERTS) {
			n_sets++;
			max_h = (int)n->experts->gate[0].k > max_h ? (int)n->experts->gate[0].k : max_h;
			max_i = (int)n->experts->gate[0].n > max_i ? (int)n->experts->gate[0].n : max_i;
		}
	}
	if (!max_k)
		return 0;
	struct cu_moe_state *m = calloc(1, sizeof(*m));
	if (!m)
		return awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
	c->moe = m;
	m->set_of_node = malloc((size_t)g->n_nodes * sizeof(int));
	m->sets = calloc((size_t)n_sets + 1, sizeof(*m->sets));
	if (!m->set_of_node || !m->sets)
		return awq_err(err, errlen, AWQ_ENOMEM, "cuda: out of host memory");
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		m->set_of_node[i] = -1;
		if (n->op != AWQ_OP_MOE_EXPERTS)
			continue;
		/* a layer's experts are one set even if the graph names them twice */
		for (int s = 0; s < m->n_sets && m->set_of_node[i] < 0; s++)
			if (m->sets[s].x == n->experts)
				m->set_of_node[i] = s;
		if (m->set_of_node[i] >= 0)
			continue;
		struct cu_moe_set *s = &m->sets[m->n_sets];
		s->x = n->experts;
		for (int e = 0; e < s->x->n; e++) {
			const struct awq_weight *ws[3] = {&s->x->gate[e], &s->x->up[e], &s->x->down[e]};
			for (int j = 0; j < 3; j++)
				if (!ws[j]->data && !ws[j]->qweight)
					return awq_err(err, errlen, AWQ_EINVAL,
						       "cuda: weight %s has no data (a shape-only model cannot run)", ws[j]->name);
		}
		set_geometry(s);
		m->weight_bytes += s->bytes;
		m->set_of_node[i] = m->n_sets++;
	}
	awq_cu_moe_scratch_size(c->max_tokens, max_k, max_e, max_h, max_i, m->scratch_sizes);
	/* the router's logits, then (256-byte aligned) its grid ticket of the one-launch decode path */
	m->logits_bytes = ((size_t)c->max_tokens * max_e * 4 + 255) / 256 * 256 + 256;
	m->scratch_bytes = m->logits_bytes;
	for (int j = 0; j < 6; j++)
		m->scratch_bytes += m->scratch_sizes[j];
	m->sc.max_blocks = (int)(m->scratch_sizes[4] / sizeof(int4));
	return 0;
}

uint64_t awq_cu_moe_weight_bytes(const struct cu_ctx *c)
{
	return c->moe ? c->moe->weight_bytes : 0;
}

uint64_t awq_cu_moe_scratch_bytes(const struct cu_ctx *c)
{
	return c->moe ? c->moe->scratch_bytes : 0;
}

static int dmalloc(void **p, size_t bytes, const char *what, char *err, size_t errlen)
{
	cudaError_t e = cudaMalloc(p, bytes ? bytes : 16);
	if (e != cudaSuccess) {
		*p = NULL;
		return awq_err(err, errlen, AWQ_ETOOBIG, "cuda: cudaMalloc of %.1f MiB for %s failed: %s", bytes / MIB, what,
			       cudaGetErrorString(e));
	}
	return 0;
}

static size_t up256(size_t x)
{
	return (x + 255) & ~(size_t)255;
}

/* Raw AutoAWQ tensors of one weight: bytes in the staging buffer. */
static size_t raw_bytes(const struct awq_weight *s)
{
	size_t qb = (size_t)s->k * s->n / 2, zb = s->qzeros ? (size_t)(s->k / s->group_size) * s->n / 2 : 0;
	size_t sb = (size_t)(s->k / s->group_size) * s->n * 2;
	return up256(qb) + up256(zb) + up256(sb);
}

/* Copy one weight's raw tensors to the staging area at p and repack them into dst; *what names
 * the step that failed. */
static cudaError_t stage_repack(struct cu_ctx *c, const struct awq_weight *s, char *p, const struct awq_cu_q4 *dst,
				int stride, int base, const char **what)
{
	size_t qb = (size_t)s->k * s->n / 2, zb = s->qzeros ? (size_t)(s->k / s->group_size) * s->n / 2 : 0;
	size_t sb = (size_t)(s->k / s->group_size) * s->n * 2;
	struct awq_cu_q4_src src = {.n = (int)s->n, .k = (int)s->k, .group_size = s->group_size, .sym_zero = s->sym_zero};
	src.qweight = (const uint32_t *)p;
	src.qzeros = s->qzeros ? (const uint32_t *)(p + up256(qb)) : NULL;
	src.scales = (const uint16_t *)(p + up256(qb) + up256(zb));
	*what = "copying qweight";
	cudaError_t e = cudaMemcpyAsync((void *)src.qweight, s->qweight, qb, cudaMemcpyHostToDevice, c->stream);
	if (e == cudaSuccess && zb) {
		*what = "copying qzeros";
		e = cudaMemcpyAsync((void *)src.qzeros, s->qzeros, zb, cudaMemcpyHostToDevice, c->stream);
	}
	if (e == cudaSuccess) {
		*what = "copying scales";
		e = cudaMemcpyAsync((void *)src.scales, s->scales, sb, cudaMemcpyHostToDevice, c->stream);
	}
	if (e != cudaSuccess)
		return e;
	/* The repack launcher checks its launches with cudaGetLastError, which also returns an error an
	 * earlier, unchecked runtime call left behind (seen once on the device, origin not found):
	 * take that one first so that only this launch's own error is reported. */
	(void)cudaGetLastError();
	struct awq_cu_q4 d = *dst;
	*what = "launching the repack kernels";
	return awq_cu_q4_repack(c->stream, &src, &d, stride, base);
}

static struct awq_cu_q4 q4_at(const struct awq_cu_q4 *q, int e)
{
	struct awq_cu_q4 r = *q;
	size_t t = (size_t)q->tiles * e;
	r.q = q->q + t * q->chunks * 32;
	r.scales = q->scales + t * q->groups * 8;
	r.zeros = q->zeros + t * q->groups;
	return r;
}

static int upload_q4(struct cu_ctx *c, struct cu_moe_set *s, char *err, size_t errlen)
{
	struct awq_cu_moe_w *w = &s->w;
	const struct awq_experts *x = s->x;
	size_t a[3], b[3];
	q4_bytes(&w->gu, a);
	q4_bytes(&w->down, b);
	void *p[6];
	size_t sz[6] = {a[0] * x->n, a[1] * x->n, a[2] * x->n, b[0] * x->n, b[1] * x->n, b[2] * x->n};
	for (int j = 0; j < 6; j++) {
		int rc = dmalloc(&p[j], sz[j], x->gate[0].name, err, errlen);
		if (rc)
			return rc;
		s->mem[j] = p[j];
	}
	w->gu.q = p[0];
	w->gu.scales = p[1];
	w->gu.zeros = p[2];
	w->down.q = p[3];
	w->down.scales = p[4];
	w->down.zeros = p[5];
	size_t per = raw_bytes(&x->gate[0]) + raw_bytes(&x->up[0]) + raw_bytes(&x->down[0]);
	int batch = (int)(STAGING_BYTES / per);
	batch = batch < 1 ? 1 : batch > x->n ? x->n : batch;
	char *st;
	int rc = dmalloc((void **)&st, per * batch, "staging the experts", err, errlen);
	if (rc)
		return rc;
	cudaError_t e = cudaSuccess;
	const char *what = "";
	const struct awq_weight *at = &x->gate[0];
	for (int e0 = 0; e0 < x->n && e == cudaSuccess; e0 += batch) {
		for (int i = 0; i < batch && e0 + i < x->n && e == cudaSuccess; i++) {
			int ex = e0 + i;
			char *q = st + (size_t)i * per;
			struct awq_cu_q4 gu = q4_at(&w->gu, ex), dn = q4_at(&w->down, ex);
			at = &x->gate[ex];
			e = stage_repack(c, at, q, &gu, 2, 0, &what);
			q += raw_bytes(&x->gate[ex]);
			if (e == cudaSuccess) {
				at = &x->up[ex];
				e = stage_repack(c, at, q, &gu, 2, 1, &what);
			}
			q += raw_bytes(&x->up[ex]);
			if (e == cudaSuccess) {
				at = &x->down[ex];
				e = stage_repack(c, at, q, &dn, 1, 0, &what);
			}
		}
		if (e == cudaSuccess) {
			what = "waiting for the repack";
			e = cudaStreamSynchronize(c->stream);
		}
	}
	cudaFree(st);
	if (e == cudaSuccess)
		return 0;
	return awq_err(err, errlen, AWQ_EDEVICE, "cuda: uploading the AWQ experts (%s): %s failed: %s", at->name, what,
		       cudaGetErrorString(e));
}

static int upload_w16(struct cu_ctx *c, struct cu_moe_set *s, char *err, size_t errlen)
{
	struct awq_cu_moe_w *w = &s->w;
	const struct awq_experts *x = s->x;
	size_t one = (size_t)w->hidden * w->inter * 2;
	const struct awq_weight *src[3] = {x->gate, x->up, x->down};
	void *p[3];
	for (int j = 0; j < 3; j++) {
		int rc = dmalloc(&p[j], one * x->n, x->gate[0].name, err, errlen);
		if (rc)
			return rc;
		s->mem[j] = p[j];
	}
	w->gate = p[0];
	w->up = p[1];
	w->dn = p[2];
	cudaError_t e = cudaSuccess;
	for (int ex = 0; ex < x->n && e == cudaSuccess; ex++)
		for (int j = 0; j < 3 && e == cudaSuccess; j++)
			e = cudaMemcpyAsync((char *)p[j] + one * ex, src[j][ex].data, one, cudaMemcpyHostToDevice, c->stream);
	if (e == cudaSuccess)
		e = cudaStreamSynchronize(c->stream);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "uploading 16-bit experts");
}

int awq_cu_moe_upload(struct cu_ctx *c, char *err, size_t errlen)
{
	struct cu_moe_state *m = c->moe;
	if (!m)
		return 0;
	for (int j = 0; j < 6; j++) {
		if (!m->scratch_sizes[j])
			continue;
		int rc = dmalloc(&m->scratch_mem[j], m->scratch_sizes[j], "MoE scratch", err, errlen);
		if (rc)
			return rc;
	}
	m->sc.h = m->scratch_mem[0];
	m->sc.y = m->scratch_mem[1];
	m->sc.slot_pair = m->scratch_mem[2];
	m->sc.pair_slot = m->scratch_mem[3];
	m->sc.blocks = m->scratch_mem[4];
	m->sc.n_blocks = m->scratch_mem[5];
	int rc = dmalloc((void **)&m->logits, m->logits_bytes, "router logits", err, errlen);
	if (!rc) {
		m->ticket = (unsigned *)((char *)m->logits + m->logits_bytes - 256);
		cudaError_t e = cudaMemset(m->ticket, 0, sizeof(unsigned));
		if (e != cudaSuccess)
			rc = awq_cu_fail(err, errlen, e, "router ticket");
	}
	for (int i = 0; i < m->n_sets && !rc; i++)
		rc = m->sets[i].w.q4 ? upload_q4(c, &m->sets[i], err, errlen) : upload_w16(c, &m->sets[i], err, errlen);
	return rc;
}

int awq_cu_moe_run(struct cu_ctx *c, int node, int rows, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *n = &g->nodes[node];
	struct cu_moe_state *m = c->moe;
	float *out = (float *)awq_cu_value(c, n->out);
	const float *x = (const float *)awq_cu_value(c, n->in[0]);
	cudaError_t e;
	if (!m)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: MoE node %s was not prepared", g->values[n->out].name);
	if (n->op == AWQ_OP_MOE_ROUTE) {
		const struct cu_weight *w = c->nodes[node].w >= 0 ? &c->wts[c->nodes[node].w] : NULL;
		if (!w || !w->data)
			return awq_err(err, errlen, AWQ_EINVAL, "cuda: router of %s not uploaded", g->values[n->out].name);
		struct awq_cu_xnorm xr = {0}; /* x may be a producer-epilogue norm's xn (cuda_fuse.c) */
		awq_cu_xn_reader(c, n->in[0], rows, &xr);
		e = awq_cu_moe_route(c->stream, w->data, w->kind == CU_W_D32 ? 4 : 2, w->is_bf16, n->p.moe.n_experts,
				     g->values[n->in[0]].cols, x, rows, n->p.moe.top_k, n->p.moe.norm_topk, m->logits,
				     out, m->ticket, awq_cu_pdl_default(c->cc_major), c->moe_cluster && c->cc_major >= 9,
				     xr.xn_sumsq, xr.xn_eps);
		return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "MoE router");
	}
	int s = m->set_of_node[node];
	if (s < 0)
		return awq_err(err, errlen, AWQ_EINVAL, "cuda: MoE node %s was not prepared", g->values[n->out].name);
	const float *route = (const float *)awq_cu_value(c, n->in[1]);
	/* the producer-epilogue norm of the ADD + RMSNORM after it (one-token steps; cuda_fuse.c): the
	 * sum goes to the ADD's output; and x may be the xn of the one before (the reader side) */
	struct awq_cu_xnorm nrm = {0};
	const int fold = c->nodes[node].epi_norm >= 0 && rows == 1;
	if (fold) {
		nrm = awq_cu_epi_nrm(c, node);
		out = (float *)awq_cu_value(c, g->nodes[c->nodes[node].epi_norm].out);
	}
	const int reads = awq_cu_xn_reader(c, n->in[0], rows, &nrm);
	e = awq_cu_moe_experts(c->stream, &m->sets[s].w, x, route, rows, n->p.moe.top_k, &m->sc, out,
			       awq_cu_pdl_default(c->cc_major), fold || reads ? &nrm : NULL);
	return e == cudaSuccess ? 0 : awq_cu_fail(err, errlen, e, "MoE experts");
}

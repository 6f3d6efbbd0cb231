/* prepare(): plan and allocate activations, KV cache and step buffer, upload every weight once
 * (AWQ repacked on the device by repack_q4.comp), and write the descriptor sets of every node, so
 * that recording a step only binds and dispatches. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ref.h"
#include "awqrun.h" /* AWQ_TOPK_MAX: the top-k levels' size */
#include "vk_internal.h"

struct vk_range vk_value(struct vk_ctx *c, int v)
{
	struct vk_range r = {c->arena.buf, c->offsets[v],
			     (VkDeviceSize)c->max_tokens * (VkDeviceSize)c->g->values[v].cols * 4};
	return r;
}

/* Key splits of an attention dispatch: about 512 workgroups, at most 32 and at most one per 32
 * cached positions; AWQ_VK_ATTN_SPLITS=N (1-32) caps them lower, for measuring the choice. A short
 * context leaves each of 16 splits a few keys, yet running fewer of them loses: on the H200 (session
 * 18, docs/perf.md) letting only splits of at least 64 keys run took llama2-7b AWQ decode from 256.6
 * to 228.3 tok/s at 16-144 positions (16 keys: 252.5, 128: 205.7): each workgroup is a chain of
 * dependent loads, and more of them in parallel shortens the chain. More than 512 workgroups
 * (32 and 64 splits) measured within 1% of 16. Read by prepare (the partials' size) and record
 * alike. The 32 is also attn_merge.glsl's MERGE_MAXS (its shared arrays). */
int vk_attn_splits(const struct vk_ctx *c, int rows, int n_heads)
{
	int work = rows * n_heads, s = (512 + work - 1) / work;
	int most = c->max_ctx / 32 > 1 ? c->max_ctx / 32 : 1;
	s = s > 32 ? 32 : s;
	if (c->attn_splits_cap > 0 && s > c->attn_splits_cap)
		s = c->attn_splits_cap;
	return s > most ? most : s < 1 ? 1 : s;
}

/* Whether decode attention over head_dim D takes attention.comp's HD variants (16-byte cache loads;
 * subgroup shuffles, subgroups of 4 or more) */
int vk_attn_hd(const struct vk_ctx *c, uint32_t D)
{
	return c->attn_fast && c->sg_shuffle && c->min_subgroup >= 4 && (D == 64 || D == 128 || D == 256);
}

/* q heads per workgroup of the HD attention variants (attention.comp's GQ): 4 or 2 of a kv head's
 * group, so that they take each key and value from the same SM's L1 (one head per workgroup, the
 * group's heads run on different SMs and each reads the cache through L2); where the device takes
 * 128 x GQ invocations and the shared memory (per head: q, scores, value sums and merge factors;
 * attention.comp's arrays). Used in the long span only (vk_attn_span). On the H200: with 4 heads a
 * workgroup slower (session 33: qwen3-8b after 4096 positions 218.2 -> 190.4 tok/s, qwen3-30b-a3b
 * 169.8 -> 147.2); with 2, faster after 4096 positions (session 34: qwen3-8b 216.4 -> 223.0,
 * qwen3-0.6b 553.4 -> 578.6, qwen3-30b-a3b 167.1 -> 170.3) and 0.2-0.8% slower at 16-80. */
uint32_t vk_attn_group(const struct vk_ctx *c, uint32_t H, uint32_t HKV, uint32_t D)
{
	const VkPhysicalDeviceLimits *l = &c->props.limits;
	if (c->attn_group < 2 || HKV == 0 || H % HKV || 128u % c->min_subgroup)
		return 1u;
	/* (reduce.glsl's 64 subgroup sums: 128 x GQ / the smallest subgroup at most) */
	const uint32_t grp = H / HKV, fblk = D == 256u ? 64u : 128u;
	for (uint32_t g = (uint32_t)c->attn_group; g >= 2u; g /= 2u) {
		const uint32_t shared = g * (4u * D + 4u * fblk + 4u * 1024u + 3u * 4u * 33u) + 8u * 128u + 4u * 64u + 4u;
		if (grp % g == 0 && 128u * g <= l->maxComputeWorkGroupInvocations && 128u * g <= l->maxComputeWorkGroupSize[0] &&
		    128u * g <= 64u * c->min_subgroup && shared <= l->maxComputeSharedMemorySize)
			return g;
	}
	return 1u;
}

/* The span of a step of `rows` rows whose keys run to `keys` (its last position + 1): 1 where its
 * decode attention groups q heads (from c->attn_group_from keys on, where some attention node of the
 * graph can), else 0. Steps are recorded per span (vk_run.c: step_cmd, the chain's command buffers). */
int vk_attn_span(const struct vk_ctx *c, int rows, int keys)
{
	return c->attn_spans && rows <= VK_MATVEC_ROWS && keys >= c->attn_group_from;
}

/* The kernel description's words for grouped decode attention (ctests match them): from how many
 * keys on, or at every position. */
void vk_attn_group_words(const struct vk_ctx *c, char *buf, size_t n)
{
	if (c->attn_group_from)
		snprintf(buf, n, "attention workgroups over a kv head's q heads from %d keys; ", c->attn_group_from);
	else
		snprintf(buf, n, "attention workgroups over a kv head's q heads at every position; ");
}

static int dtype_ok(enum awq_dtype t)
{
	return t == AWQ_DT_F32 || t == AWQ_DT_F16 || t == AWQ_DT_BF16;
}

int vk_dt_code(enum awq_dtype t)
{
	return t == AWQ_DT_F32 ? 0 : t == AWQ_DT_F16 ? 1 : 2;
}

int vk_range_ok(struct vk_ctx *c, const char *what, VkDeviceSize bytes, char *err, size_t errlen)
{
	if (bytes <= c->max_range)
		return 0;
	return awq_err(err, errlen, AWQ_ETOOBIG,
		       "%s needs %.1f MiB in one storage binding; %s allows %.1f MiB (maxStorageBufferRange)", what,
		       bytes / 1048576.0, c->device, c->max_range / 1048576.0);
}

/* max_mag: NULL, or for 16-bit data the bits of its largest magnitude (vk_upload16). */
static int upload_new(struct vk_ctx *c, struct vk_buf *b, const void *src, size_t bytes, const char *what,
		      struct vk_staging *st, uint16_t *max_mag, char *err, size_t errlen)
{
	int rc = vk_range_ok(c, what, bytes, err, errlen);
	if (!rc)
		rc = vk_buf_create(c, b, bytes, 0, what, err, errlen);
	if (!rc)
		rc = max_mag ? vk_upload16(c, b, 0, src, bytes, &st->stage, max_mag, err, errlen)
			     : vk_upload(c, b, 0, src, bytes, &st->stage, err, errlen);
	if (!rc)
		c->weight_bytes += b->size;
	return rc;
}

static int raw_buf(struct vk_ctx *c, struct vk_staging *st, int i, size_t bytes, const void *src, char *err,
		   size_t errlen)
{
	if (st->raw[i].size < bytes) {
		vk_buf_destroy(c, &st->raw[i]);
		int rc = vk_buf_create(c, &st->raw[i], bytes, 0, "AWQ repack input", err, errlen);
		if (rc)
			return rc;
	}
	return vk_upload(c, &st->raw[i], 0, src, bytes, &st->stage, err, errlen);
}

static int awq_shape_ok(const struct awq_weight *w, char *err, size_t errlen)
{
	if (w->k % 8 || w->n % 8 || w->group_size <= 0 || w->k % w->group_size)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s: AWQ shape %lldx%lld with group %d is not supported", w->name,
			       (long long)w->n, (long long)w->k, w->group_size);
	if (!w->qweight || !w->scales)
		return awq_err(err, errlen, AWQ_EINVAL, "weight %s has no data (a shape-only model cannot run)", w->name);
	return 0;
}

int vk_repack_awq(struct vk_ctx *c, const struct awq_weight *w, struct vk_staging *st, struct vk_buf *data,
		  struct vk_buf *sz, char *err, size_t errlen)
{
	int rc = awq_shape_ok(w, err, errlen);
	if (rc)
		return rc;
	const uint32_t K = (uint32_t)w->k, N = (uint32_t)w->n, G = (uint32_t)w->group_size;
	size_t qbytes = (size_t)K * N / 2, zbytes = (size_t)(K / G) * (N / 8) * 4, sbytes = (size_t)(K / G) * N * 2;
	rc = raw_buf(c, st, 0, qbytes, w->qweight, err, errlen);
	if (!rc && w->qzeros)
		rc = raw_buf(c, st, 1, zbytes, w->qzeros, err, errlen);
	if (!rc)
		rc = raw_buf(c, st, 2, sbytes, w->scales, err, errlen);
	VkPipeline p0, p1;
	VkCommandBuffer cb;
	if (!rc)
		rc = vk_pipe_get(c, "repack_q4", 0, 0, 0, &p0, err, errlen);
	if (!rc)
		rc = vk_pipe_get(c, "repack_q4", 1, 0, 0, &p1, err, errlen);
	for (int i = 0; i < 2 && !rc; i++)
		if (!st->repack[i])
			rc = vk_set_alloc(c, &st->repack[i], err, errlen);
	if (rc)
		return rc;
	VkDescriptorSet s0 = st->repack[0], s1 = st->repack[1];
	struct vk_range r[4] = {vk_whole(&st->raw[0]), w->qzeros ? vk_whole(&st->raw[1]) : vk_whole(&c->dummy),
				vk_whole(data), vk_whole(&st->raw[2])};
	vk_set_write(c, s0, r, 4);
	r[2] = vk_whole(sz);
	vk_set_write(c, s1, r, 4);
	struct vk_push pc = {.u = {K, N, G, w->qzeros != NULL, (uint32_t)w->sym_zero}};
	rc = vk_begin_once(c, &cb, err, errlen);
	if (rc)
		return rc;
	uint32_t n0 = (N * (K / 8) + 255) / 256, n1 = (N * (K / G) + 255) / 256;
	vk_dispatch(cb, c, p0, s0, &pc, n0 < 65535 ? n0 : 65535, (n0 + 65534) / 65535, 1);
	vk_dispatch(cb, c, p1, s1, &pc, n1 < 65535 ? n1 : 65535, (n1 + 65534) / 65535, 1);
	/* the sets are rewritten for the next weight only after this wait */
	return vk_submit_wait(c, cb, err, errlen);
}

/* Upload an AWQ weight as stored, then repack it on the device (repack_q4.comp). */
static int upload_awq(struct vk_ctx *c, struct vk_weight *vw, struct vk_staging *st, char *err, size_t errlen)
{
	const struct awq_weight *w = vw->w;
	int rc = awq_shape_ok(w, err, errlen);
	if (rc)
		return rc;
	const size_t qbytes = (size_t)w->k * (size_t)w->n / 2, zbytes = (size_t)w->n * (size_t)(w->k / w->group_size) * 4;
	rc = vk_range_ok(c, w->name, qbytes, err, errlen);
	if (!rc)
		rc = vk_buf_create(c, &vw->data, qbytes, 0, w->name, err, errlen);
	if (!rc)
		rc = vk_buf_create(c, &vw->sz, zbytes, 0, w->name, err, errlen);
	if (rc)
		return rc;
	c->weight_bytes += vw->data.size + vw->sz.size;
	return vk_repack_awq(c, w, st, &vw->data, &vw->sz, err, errlen);
}

static int upload_weight(struct vk_ctx *c, struct vk_weight *vw, struct vk_staging *st, char *err, size_t errlen)
{
	const struct awq_weight *w = vw->w;
	int rc;
	if (w->fmt == AWQ_WFMT_AWQ4) {
		rc = upload_awq(c, vw, st, err, errlen);
	} else {
		if (!w->data)
			return awq_err(err, errlen, AWQ_EINVAL, "weight %s has no data (a shape-only model cannot run)", w->name);
		if (!dtype_ok(w->dtype))
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s: dtype %s is not supported by the Vulkan backend",
				       w->name, awq_dtype_name(w->dtype));
		/* BF16: the largest magnitude decides whether the fp16 cooperative-matrix prefill may take it */
		uint16_t mag = 0;
		rc = upload_new(c, &vw->data, w->data, (size_t)(w->n * w->k) * awq_dtype_size(w->dtype), w->name, st,
				w->dtype == AWQ_DT_BF16 ? &mag : NULL, err, errlen);
		vw->bf16_in_f16 = w->dtype == AWQ_DT_BF16 && vk_bf16_fits_f16(mag);
	}
	if (!rc && w->bias) {
		if (!dtype_ok(w->bias_dtype))
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s: bias dtype %s is not supported", w->name,
				       awq_dtype_name(w->bias_dtype));
		rc = upload_new(c, &vw->bias, w->bias, (size_t)w->n * awq_dtype_size(w->bias_dtype), w->name, st, NULL, err,
				errlen);
	}
	return rc;
}

static struct vk_weight *weight_of(struct vk_ctx *c, const struct awq_weight *w)
{
	/* tied weights are distinct structs over the same storage, uploaded once (awq_graph_weights) */
	for (int i = 0; i < c->n_weights; i++) {
		const struct awq_weight *u = c->weights[i].w;
		if (u == w || (w->fmt == AWQ_WFMT_DENSE && u->fmt == AWQ_WFMT_DENSE && w->data && u->data == w->data &&
			       u->n == w->n && u->k == w->k && u->dtype == w->dtype && u->bias == w->bias))
			return &c->weights[i];
	}
	return NULL;
}

static int upload_weights(struct vk_ctx *c, char *err, size_t errlen)
{
	const struct awq_weight **ws = NULL;
	int n = awq_graph_weights(c->g, &ws);
	if (n < 0)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	struct vk_staging st = {0};
	c->weights = calloc((size_t)n + 1, sizeof(*c->weights));
	int rc = c->weights ? 0 : awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	VkDeviceSize stage = 64u << 20;
	if (!rc)
		rc = vk_buf_create(c, &st.stage, stage < c->max_alloc ? stage : c->max_alloc, 1, "staging", err, errlen);
	for (int i = 0; i < n && !rc; i++) {
		if (vk_moe_is_expert(c->g, ws[i]))
			continue; /* packed per experts set by vk_moe_upload */
		c->weights[c->n_weights].w = ws[i];
		rc = upload_weight(c, &c->weights[c->n_weights++], &st, err, errlen);
	}
	if (!rc)
		rc = vk_moe_upload(c, &st, err, errlen);
	vk_buf_destroy(c, &st.stage);
	for (int i = 0; i < 3; i++)
		vk_buf_destroy(c, &st.raw[i]);
	free(ws);
	return rc;
}

static int rope_slots(struct vk_ctx *c, uint32_t *table_floats, char *err, size_t errlen)
{
	*table_floats = 0;
	for (int i = 0; i < c->g->n_nodes; i++) {
		const struct awq_node *n = &c->g->nodes[i];
		if (n->op != AWQ_OP_ROPE)
			continue;
		int d = n->p.rope.head_dim, s;
		if (d < 2 || d % 2 || d > 256)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "RoPE head_dim %d is not supported (even, <= 256)", d);
		for (s = 0; s < c->n_ropes; s++)
			if (c->ropes[s].head_dim == d && !memcmp(&c->ropes[s].rope, &n->p.rope.rope, sizeof(struct awq_rope)))
				break;
		if (s == c->n_ropes) {
			if (s == VK_MAX_ROPES)
				return awq_err(err, errlen, AWQ_EUNSUPPORTED, "more than %d RoPE variants in one graph", VK_MAX_ROPES);
			struct vk_rope_slot *r = &c->ropes[c->n_ropes++];
			r->rope = n->p.rope.rope;
			r->head_dim = d;
			awq_rope_inv_freq(&r->rope, d, r->inv_freq, &r->pos_scale);
			r->cos_off = *table_floats;
			r->sin_off = r->cos_off + (uint32_t)(c->max_tokens * d / 2);
			*table_floats = r->sin_off + (uint32_t)(c->max_tokens * d / 2);
		}
		c->nodes[i].rope_slot = s;
	}
	return 0;
}

/* awq_graph_head_producer, with the per-head norm's weight dense (attn_prep reads it as such). */
static int foldable(const struct awq_graph *g, const int *uses, int v, enum awq_op op, int heads, int hd)
{
	int p = awq_graph_head_producer(g, uses, v, op, heads, hd);
	if (p >= 0 && op == AWQ_OP_RMSNORM && !(g->nodes[p].w && g->nodes[p].w->fmt == AWQ_WFMT_DENSE))
		return -1;
	return p;
}

/* ATTENTION node i: fold q's and k's ROPE and the per-head RMSNORM before it into attn_prep. The
 * two RoPEs must share their table (one rope slot) and the two norms their dtype and eps. */
static void plan_prep(struct vk_ctx *c, const int *uses, int i, int *live_to)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *n = &g->nodes[i];
	struct vk_node *vn = &c->nodes[i];
	const int hd = n->p.attn.head_dim;
	/* the whole layer cache (K, then V at kv_voff) in one binding */
	const VkDeviceSize kv_all = c->kv_voff + c->kv_layer_bytes;
	vn->rope_q = vn->rope_k = vn->norm_q = vn->norm_k = -1;
	vn->q_raw = n->in[0];
	vn->k_raw = n->in[1];
	if (hd % 2 || hd > 256 || kv_all > c->max_range)
		return;
	int rq = foldable(g, uses, n->in[0], AWQ_OP_ROPE, n->p.attn.n_heads, hd);
	int rk = foldable(g, uses, n->in[1], AWQ_OP_ROPE, n->p.attn.n_kv_heads, hd);
	if (rq < 0 || rk < 0 || memcmp(&g->nodes[rq].p.rope.rope, &g->nodes[rk].p.rope.rope, sizeof(struct awq_rope)))
		rq = rk = -1; /* both or neither: one table */
	int q_in = rq >= 0 ? g->nodes[rq].in[0] : n->in[0], k_in = rk >= 0 ? g->nodes[rk].in[0] : n->in[1];
	int nq = foldable(g, uses, q_in, AWQ_OP_RMSNORM, n->p.attn.n_heads, hd);
	int nk = foldable(g, uses, k_in, AWQ_OP_RMSNORM, n->p.attn.n_kv_heads, hd);
	if (nq >= 0 && nk >= 0 &&
	    (g->nodes[nq].w->dtype != g->nodes[nk].w->dtype || g->nodes[nq].p.norm.eps != g->nodes[nk].p.norm.eps))
		nq = nk = -1;
	vn->prep = 1;
	vn->rope_q = rq, vn->rope_k = rk, vn->norm_q = nq, vn->norm_k = nk;
	vn->q_raw = nq >= 0 ? g->nodes[nq].in[0] : q_in;
	vn->k_raw = nk >= 0 ? g->nodes[nk].in[0] : k_in;
	int folded[4] = {rq, rk, nq, nk};
	for (int j = 0; j < 4; j++)
		if (folded[j] >= 0)
			c->nodes[folded[j]].skip = 1;
	/* the raw q and k are read at the attention node, later than their graph readers */
	if (live_to[vn->q_raw] < i)
		live_to[vn->q_raw] = i;
	if (live_to[vn->k_raw] < i)
		live_to[vn->k_raw] = i;
}

/* SILU_MUL node i: run its gate and up projections inside it in decode steps when both are mat-vecs
 * the fused shader has a fast path for, with no bias (matvec.comp, SILU). */
static void plan_silu(struct vk_ctx *c, const int *uses, int i, int *live_to)
{
	const struct awq_graph *g = c->g;
	int pr[2];
	if (!awq_graph_gate_up_pair(g, uses, i, &pr[0], &pr[1]))
		return;
	const struct awq_node *a = &g->nodes[pr[0]];
	const struct awq_weight *wa = a->w, *wb = g->nodes[pr[1]].w;
	if (wa->fmt != wb->fmt || wa->n != wb->n || wa->k != wb->k || wa->bias || wb->bias)
		return;
	if (wa->fmt == AWQ_WFMT_AWQ4) {
		if (wa->group_size != wb->group_size || wa->k % 32 || wa->group_size % 32)
			return;
	} else if (wa->dtype != wb->dtype || wa->k % 8 ||
		   !(wa->dtype == AWQ_DT_BF16 || (wa->dtype == AWQ_DT_F16 && !c->has_f16))) {
		return; /* the fused shader has the unfused kernel's f32 arithmetic only */
	}
	c->nodes[i].silu_gate = pr[0];
	c->nodes[i].silu_up = pr[1];
	c->nodes[pr[0]].decode_skip = c->nodes[pr[1]].decode_skip = 1;
	if (live_to[a->in[0]] < i)
		live_to[a->in[0]] = i;
}

/* The node whose one-row dispatch would read x as a NORM2 mat-vec (epinorm.glsl), for MATMUL j, or
 * -1: a MATMUL of 4-bit weights on the K-split kernel's default form, or, for the gate or up of a
 * fused SILU_MUL, that SILU_MUL on matvec.comp's default 4-bit form. */
static int norm2_reader(const struct vk_ctx *c, int j, int x)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *n = &g->nodes[j];
	if (n->op != AWQ_OP_MATMUL || n->in[0] != x || n->in[1] == x || n->in[2] == x || !n->w ||
	    n->w->fmt != AWQ_WFMT_AWQ4 || vk_q4_q8(c) || c->nodes[j].epi >= 0)
		return -1;
	if (!c->nodes[j].decode_skip)
		return vk_q4k(c, n->w) && c->mv_ku == 1 ? j : -1;
	for (int s = j + 1; s < g->n_nodes; s++)
		if (c->nodes[s].silu_gate == j || c->nodes[s].silu_up == j)
			return vk_mv_plain(c) ? s : -1;
	return -1;
}

/* ADD node i with its whole-row RMSNORM folded in (c->nodes[i].norm), AWQ_VK_EPINORM=1: in one-row
 * steps, when the node before it is a K-split MATMUL whose output only the ADD reads, and every
 * reader of the norm is a NORM2 mat-vec, that MATMUL writes the sum, x' and the partial sums in
 * its epilogue (so both are live from it on) and the readers take the norm's scale from them. */
static void plan_epi(struct vk_ctx *c, const int *uses, int i, int *slots, int *live_from)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *a = &g->nodes[i], *m = &g->nodes[c->nodes[i].norm];
	const int x = m->out, cols = g->values[x].cols, p = i - 1;
	if (!c->epinorm || p < 0 || cols % 32 || x == g->logits_out || a->out == g->logits_out)
		return;
	const struct awq_node *pn = &g->nodes[p];
	if (pn->op != AWQ_OP_MATMUL || (pn->out != a->in[0] && pn->out != a->in[1]) || a->in[0] == a->in[1] ||
	    uses[pn->out] != 1 || !pn->w || pn->w->fmt != AWQ_WFMT_AWQ4 || pn->w->n != cols || !vk_q4k(c, pn->w) ||
	    c->mv_ku != 1 || vk_q4_q8(c) || c->nodes[p].decode_skip || c->nodes[p].pre_add >= 0 || c->nodes[p].skip)
		return;
	int readers[8], n = 0;
	for (int j = c->nodes[i].norm + 1; j < g->n_nodes; j++) {
		const struct awq_node *b = &g->nodes[j];
		if (b->in[0] != x && b->in[1] != x && b->in[2] != x)
			continue;
		int r = norm2_reader(c, j, x);
		if (r < 0)
			return;
		if (n > 0 && readers[n - 1] == r)
			continue; /* gate and up of one SILU_MUL */
		if (n == 8)
			return;
		readers[n++] = r;
	}
	if (n == 0)
		return;
	c->nodes[p].epi = i;
	c->nodes[i].epi_add = 1;
	c->nodes[i].epi_slot = (*slots)++ % 2; /* alternate: a norm's readers finish before the next EPI */
	for (int k = 0; k < n; k++)
		c->nodes[readers[k]].pre_add = i;
	if (live_from[a->out] < 0 || live_from[a->out] > p)
		live_from[a->out] = p;
	if (live_from[x] < 0 || live_from[x] > p)
		live_from[x] = p;
}

/* ADD node i with its whole-row RMSNORM folded in, AWQ_VK_MOE_FOLD=1: when the node before it is a
 * MOE_EXPERTS whose output only the ADD reads, decode steps form that output (the combine of the
 * slots' down projections) inside the add_rmsnorm dispatch; the route is then read there. */
static void plan_comb(struct vk_ctx *c, const int *uses, int i, int *live_to)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *a = &g->nodes[i], *e = i > 0 ? &g->nodes[i - 1] : NULL;
	if (!c->moe_fold || !e || e->op != AWQ_OP_MOE_EXPERTS || (e->out != a->in[0] && e->out != a->in[1]) ||
	    a->in[0] == a->in[1] || uses[e->out] != 1 || c->nodes[i].epi_add)
		return;
	c->nodes[i].comb = i - 1;
	c->nodes[i - 1].comb_skip = 1;
	if (live_to[e->in[1]] < i)
		live_to[e->in[1]] = i;
}

/* An ADD whose sum goes (among others) into a whole-row RMSNORM right after it runs both in one
 * dispatch (add_rmsnorm): the norm's output is then written at the ADD, one node earlier than the
 * planner would assume, which live_from tells it. Attention nodes take their q/k norms, RoPEs and
 * cache write in one dispatch (plan_prep). */
static int plan_fusions(struct vk_ctx *c, int *live_from, int *live_to)
{
	const struct awq_graph *g = c->g;
	for (int v = 0; v < g->n_values; v++)
		live_from[v] = live_to[v] = -1;
	for (int i = 0; i < g->n_nodes; i++) {
		c->nodes[i].norm = c->nodes[i].rope_q = c->nodes[i].rope_k = c->nodes[i].norm_q = c->nodes[i].norm_k = -1;
		c->nodes[i].q_raw = c->nodes[i].k_raw = c->nodes[i].silu_gate = c->nodes[i].silu_up = -1;
		c->nodes[i].epi = c->nodes[i].pre_add = c->nodes[i].comb = -1;
	}
	if (c->no_fuse)
		return 0;
	int *uses = awq_graph_count_uses(g);
	if (!uses)
		return -1;
	for (int i = 0; i < g->n_nodes; i++) {
		if (g->nodes[i].op == AWQ_OP_ATTENTION)
			plan_prep(c, uses, i, live_to);
		if (g->nodes[i].op == AWQ_OP_SILU_MUL)
			plan_silu(c, uses, i, live_to);
	}
	int slots = 0;
	for (int i = 0; i + 1 < g->n_nodes; i++) {
		const struct awq_node *a = &g->nodes[i], *m = &g->nodes[i + 1];
		if (a->op != AWQ_OP_ADD || m->op != AWQ_OP_RMSNORM || m->in[0] != a->out ||
		    m->p.norm.group != g->values[a->out].cols || c->nodes[i].skip)
			continue;
		c->nodes[i].norm = i + 1;
		c->nodes[i + 1].skip = 1;
		live_from[m->out] = i;
		plan_epi(c, uses, i, &slots, live_from);
		plan_comb(c, uses, i, live_to);
	}
	free(uses);
	return 0;
}

/* chain.comp's table: every position's RoPE rows of every slot, by vk_rope_row as write_step's (so a
 * chained step sees the same values), after a header of (cos_off, sin_off, half, first
 * float) per slot. Host-visible: a chained step reads one row per slot. The chain is an optimisation:
 * where the table cannot be had (longer than one binding may be, or the host-visible allocation
 * fails) there is none, and greedy decoding runs its steps one by one. */
static void rope_table(struct vk_ctx *c)
{
	size_t floats = 0;
	char why[AWQ_ERRLEN];
	for (int i = 0; i < c->n_ropes; i++)
		floats += (size_t)c->max_ctx * (size_t)c->ropes[i].head_dim;
	const VkDeviceSize bytes = 64 + (VkDeviceSize)floats * 4;
	if (bytes > c->max_range ||
	    vk_buf_create(c, &c->rope_all, bytes, 1, "RoPE table of every position", why, sizeof(why))) {
		if (!c->opts.quiet)
			fprintf(stderr, "awqrun: vulkan: no decode chain (a RoPE table of %.1f MiB for %d positions: %s)\n",
				bytes / 1048576.0, c->max_ctx, bytes > c->max_range ? "longer than one binding" : why);
		vk_buf_destroy(c, &c->rope_all); /* what a failed create left, if anything */
		return;
	}
	uint32_t *hdr = c->rope_all.map;
	float *rt = (float *)(hdr + 16);
	memset(hdr, 0, 64);
	size_t base = 0;
	for (int i = 0; i < c->n_ropes; i++) {
		const struct vk_rope_slot *r = &c->ropes[i];
		const int half = r->head_dim / 2;
		hdr[4 * i] = r->cos_off;
		hdr[4 * i + 1] = r->sin_off;
		hdr[4 * i + 2] = (uint32_t)half;
		hdr[4 * i + 3] = (uint32_t)base;
		for (int pos = 0; pos < c->max_ctx; pos++, base += 2 * (size_t)half)
			vk_rope_row(r, pos, rt + base, rt + base + half);
	}
	vk_flush(c, &c->rope_all);
	c->act_bytes += c->rope_all.size;
}

static int alloc_state(struct vk_ctx *c, const struct awq_prepare_opts *o, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	size_t arena = 0;
	uint32_t tab = 0;
	const VkDeviceSize kvd = (VkDeviceSize)g->kv_heads * g->head_dim;
	c->kv_layer_bytes = (VkDeviceSize)o->max_ctx * kvd * 2; /* fp16 pairs */
	c->kv_voff = (c->kv_layer_bytes + 255) & ~(VkDeviceSize)255;
	int *live = malloc((size_t)g->n_values * 2 * sizeof(int));
	if (!live || plan_fusions(c, live, live + g->n_values)) {
		free(live);
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	}
	int rc = awq_graph_plan_live(g, o->max_tokens, 4, live, live + g->n_values, c->offsets, &arena, err, errlen);
	free(live);
	if (!rc)
		rc = rope_slots(c, &tab, err, errlen);
	if (rc)
		return rc;
	VkDeviceSize align = c->props.limits.minStorageBufferOffsetAlignment;
	for (int v = 0; v < g->n_values; v++) {
		if (c->offsets[v] % align)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s needs %llu-byte aligned bindings; the plan has 64",
				       c->device, (unsigned long long)align);
		rc = vk_range_ok(c, g->values[v].name, (VkDeviceSize)o->max_tokens * g->values[v].cols * 4, err, errlen);
		if (rc)
			return rc;
	}
	rc = vk_buf_create(c, &c->arena, arena, 0, "activations", err, errlen);
	if (!rc)
		rc = vk_buf_create(c, &c->step, 16 + (VkDeviceSize)tab * 4, 1, "step buffer", err, errlen);
	if (!rc)
		rc = vk_buf_create(c, &c->dummy, 256, 0, "dummy binding", err, errlen);
	if (rc)
		return rc;
	c->act_bytes = c->arena.size;
	if (g->n_kv_layers > 0) {
		rc = vk_range_ok(c, "one layer's K cache", c->kv_layer_bytes, err, errlen);
		c->kv = calloc((size_t)g->n_kv_layers, sizeof(*c->kv));
		if (!rc && !c->kv)
			rc = awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
		for (int l = 0; l < g->n_kv_layers && !rc; l++) {
			rc = vk_buf_create(c, &c->kv[l], c->kv_voff + c->kv_layer_bytes, 0, "KV cache", err, errlen);
			c->kv_bytes += 2 * c->kv_layer_bytes; /* the cache proper: not the <= 255-byte pad before V */
		}
	}
	/* attention split partials: the most any step size needs; one ticket word per (row, head) */
	VkDeviceSize part = 16, tickets = 16;
	c->attn_spans = 0;
	for (int i = 0; i < g->n_nodes && !rc; i++) {
		const struct awq_node *n = &g->nodes[i];
		if (n->op != AWQ_OP_ATTENTION)
			continue;
		if (n->p.attn.head_dim > 256 || n->p.attn.head_dim % 4 || n->p.attn.n_kv_heads < 1 ||
		    n->p.attn.n_heads % n->p.attn.n_kv_heads ||
		    n->p.attn.layer < 0 || n->p.attn.layer >= g->n_kv_layers ||
		    (VkDeviceSize)n->p.attn.n_kv_heads * n->p.attn.head_dim != kvd)
			return awq_err(err, errlen, AWQ_EUNSUPPORTED,
				       "%s: attention shape not supported (head_dim a multiple of 4, <= 256)",
				       g->values[n->out].name);
		for (int r = 1; r <= o->max_tokens; r++) {
			/* (+ 1: the HD attention variants' split of a decode step's own keys) */
			VkDeviceSize b = (VkDeviceSize)r * n->p.attn.n_heads * (vk_attn_splits(c, r, n->p.attn.n_heads) + 1) *
					 (n->p.attn.head_dim + 2) * 4;
			part = b > part ? b : part;
		}
		const uint32_t ah = (uint32_t)n->p.attn.n_heads, akv = (uint32_t)n->p.attn.n_kv_heads,
			       ad = (uint32_t)n->p.attn.head_dim;
		if (vk_attn_hd(c, ad) && vk_attn_group(c, ah, akv, ad) > 1u)
			c->attn_spans = 1;
		if ((VkDeviceSize)o->max_tokens * n->p.attn.n_heads * 4 > tickets)
			tickets = (VkDeviceSize)o->max_tokens * n->p.attn.n_heads * 4;
	}
	if (!rc)
		rc = vk_range_ok(c, "attention partials", part, err, errlen);
	if (!rc)
		rc = vk_buf_create(c, &c->attn_part, part, 0, "attention partials", err, errlen);
	c->act_bytes += c->attn_part.size;
	if (!rc)
		rc = vk_buf_create(c, &c->attn_ticket, tickets, 0, "attention tickets", err, errlen);
	if (!rc) { /* the tickets start at 0; each merge puts its own back */
		VkCommandBuffer cb;
		rc = vk_begin_once(c, &cb, err, errlen);
		if (!rc) {
			vkCmdFillBuffer(cb, c->attn_ticket.buf, 0, VK_WHOLE_SIZE, 0);
			vk_barrier(cb);
			rc = vk_submit_wait(c, cb, err, errlen);
		}
	}
	c->act_bytes += c->attn_ticket.size;
	/* argmax.comp's per-slice results over one long row (8 bytes a slice; at least one, so that the
	 * argmax nodes' binding 4 is always a buffer) */
	VkDeviceSize amax = 8;
	for (int i = 0; i < g->n_nodes; i++)
		if (g->nodes[i].op == AWQ_OP_ARGMAX) {
			const VkDeviceSize b = (VkDeviceSize)vk_argmax_slices(1, g->values[g->nodes[i].in[0]].cols) * 8;
			amax = b > amax ? b : amax;
		}
	if (!rc)
		rc = vk_buf_create(c, &c->amax_part, amax, 0, "argmax slices", err, errlen);
	c->act_bytes += c->amax_part.size;
	/* EPI partial sums (one float per producer workgroup), two halves: the most any fused norm needs */
	VkDeviceSize half = 0;
	for (int i = 0; i < g->n_nodes; i++)
		if (c->nodes[i].epi >= 0) {
			const VkDeviceSize b = (VkDeviceSize)((g->nodes[i].w->n + VK_Q4K_ROWS - 1) / VK_Q4K_ROWS) * 4;
			half = b > half ? b : half;
		}
	if (half && !rc) {
		const VkDeviceSize al = c->props.limits.minStorageBufferOffsetAlignment;
		c->norm_part_half = (half + al - 1) / al * al;
		rc = vk_buf_create(c, &c->norm_part, 2 * c->norm_part_half, 0, "norm partial sums", err, errlen);
		c->act_bytes += c->norm_part.size;
	}
	/* readback of logits and greedy ids after every step */
	const struct awq_value *lv = g->logits_out >= 0 ? &g->values[g->logits_out] : NULL;
	c->rb_logits_off = 0;
	c->rb_argmax_off = lv ? ((VkDeviceSize)o->max_tokens * lv->cols * 4 + 255) & ~(VkDeviceSize)255 : 0;
	/* ... and the greedy chain's token ring after them */
	c->rb_ring_off = (c->rb_argmax_off + (VkDeviceSize)o->max_tokens * 4 + 255) & ~(VkDeviceSize)255;
	if (!rc)
		rc = vk_buf_create(c, &c->readback, c->rb_ring_off + VK_RING * 4, 2, "readback", err, errlen);
	if (!rc && g->argmax_out >= 0)
		rope_table(c);
	return rc;
}

/* Descriptor sets node i takes (MoE nodes: vk_moe_sets_needed): attention's three or four; a fused
 * SILU_MUL's second (decode) and third (NORM2); a MATMUL's second (EPI or NORM2). */
static int sets_of(const struct vk_ctx *c, int i)
{
	const struct awq_node *n = &c->g->nodes[i];
	const struct vk_node *vn = &c->nodes[i];
	if (n->op == AWQ_OP_ATTENTION)
		return vn->prep ? 4 : 3;
	if (n->op == AWQ_OP_LAST_ROWS || n->op == AWQ_OP_MOE_ROUTE || n->op == AWQ_OP_MOE_EXPERTS)
		return 0;
	return 1 + (vn->silu_gate >= 0) + (vn->epi >= 0 || vn->pre_add >= 0) + (vn->comb >= 0);
}

/* The partial sums of ADD node i's norm (EPI writes them, NORM2 reads them): its half of norm_part. */
static struct vk_range epi_part(const struct vk_ctx *c, int i)
{
	struct vk_range r = {c->norm_part.buf, (VkDeviceSize)c->nodes[i].epi_slot * c->norm_part_half,
			     c->norm_part_half};
	return r;
}

static int node_sets(struct vk_ctx *c, int i, char *err, size_t errlen)
{
	const struct awq_node *n = &c->g->nodes[i];
	struct vk_node *vn = &c->nodes[i];
	struct vk_range r[VK_NBIND - 1] = {{0}};
	const int moe = n->op == AWQ_OP_MOE_ROUTE || n->op == AWQ_OP_MOE_EXPERTS;
	int rc = 0, sets = sets_of(c, i);
	for (int s = 0; s < sets && !rc; s++)
		rc = vk_set_alloc(c, &vn->set[s], err, errlen);
	if (rc || (!sets && !moe))
		return rc;
	struct vk_range out = vk_value(c, n->out);
	struct vk_range in0 = n->in[0] >= 0 ? vk_value(c, n->in[0]) : vk_whole(&c->dummy);
	struct vk_range in1 = n->in[1] >= 0 ? vk_value(c, n->in[1]) : vk_whole(&c->dummy);
	vn->wt = n->w ? weight_of(c, n->w) : NULL;
	if (n->w && !vn->wt)
		return awq_err(err, errlen, AWQ_EINVAL, "weight %s of %s was not uploaded", n->w->name,
			       c->g->values[n->out].name);
	if (moe)
		return vk_moe_node_sets(c, i, err, errlen);
	switch (n->op) {
	case AWQ_OP_MATMUL:
		r[0] = r[5] = in0;
		r[1] = r[3] = vk_whole(&vn->wt->data);
		r[2] = out;
		if (vn->wt->sz.buf)
			r[4] = vk_whole(&vn->wt->sz);
		if (vn->wt->bias.buf)
			r[6] = vk_whole(&vn->wt->bias);
		if (vn->epi >= 0 || vn->pre_add >= 0) { /* set 1: the EPI or NORM2 form of one-row steps */
			struct vk_range f[VK_NBIND - 1];
			memcpy(f, r, sizeof(f));
			const int ai = vn->epi >= 0 ? vn->epi : vn->pre_add;
			if (vn->epi >= 0) { /* the sum at 3, h_prev at 8, norm weight 9, x' 10, partials 11 */
				const struct awq_node *a = &c->g->nodes[ai], *m = &c->g->nodes[c->nodes[ai].norm];
				struct vk_weight *nw = weight_of(c, m->w);
				if (!nw)
					return awq_err(err, errlen, AWQ_EINVAL, "weight %s of %s was not uploaded", m->w->name,
						       c->g->values[m->out].name);
				f[2] = vk_value(c, a->out);
				f[7] = vk_value(c, a->in[0] == n->out ? a->in[1] : a->in[0]);
				f[8] = vk_whole(&nw->data);
				f[9] = vk_value(c, m->out);
				f[10] = epi_part(c, ai);
			} else { /* the partials at 8 */
				f[7] = epi_part(c, ai);
			}
			vk_set_write(c, vn->set[1], f, VK_NBIND - 1);
		}
		break;
	case AWQ_OP_EMBED:
	case AWQ_OP_RMSNORM:
		r[0] = in0;
		r[1] = vk_whole(&vn->wt->data);
		r[2] = out;
		break;
	case AWQ_OP_ATTENTION: {
		struct vk_buf *kv = &c->kv[n->p.attn.layer];
		struct vk_range kc = {kv->buf, 0, c->kv_layer_bytes}, vc = {kv->buf, c->kv_voff, c->kv_layer_bytes};
		if (vn->prep) { /* attn_prep: q, k, v, q out, the whole layer cache, q norm, k norm */
			struct vk_weight *wq = vn->norm_q >= 0 ? weight_of(c, c->g->nodes[vn->norm_q].w) : NULL;
			struct vk_weight *wk = vn->norm_k >= 0 ? weight_of(c, c->g->nodes[vn->norm_k].w) : NULL;
			int q_prep = vn->rope_q >= 0 || vn->norm_q >= 0;
			struct vk_range pr[7] = {vk_value(c, vn->q_raw), vk_value(c, vn->k_raw), vk_value(c, n->in[2]),
						 q_prep ? in0 : vk_whole(&c->dummy), vk_whole(kv),
						 wq ? vk_whole(&wq->data) : vk_whole(&c->dummy),
						 wk ? vk_whole(&wk->data) : vk_whole(&c->dummy)};
			vk_set_write(c, vn->set[0], pr, 7);
		} else {
			struct vk_range st[4] = {in1, vk_value(c, n->in[2]), kc, vc};
			vk_set_write(c, vn->set[0], st, 4);
		}
		struct vk_range at[6] = {in0, kc, vk_whole(&c->attn_part), vc, out, vk_whole(&c->attn_ticket)};
		vk_set_write(c, vn->set[1], at, 6);
		if (vn->prep) { /* set 3, decode: attention.comp with the prep folded in (raw q, k, v, norms) */
			struct vk_weight *wq = vn->norm_q >= 0 ? weight_of(c, c->g->nodes[vn->norm_q].w) : NULL;
			struct vk_weight *wk = vn->norm_k >= 0 ? weight_of(c, c->g->nodes[vn->norm_k].w) : NULL;
			struct vk_range fo[10] = {vk_value(c, vn->q_raw), kc, vk_whole(&c->attn_part), vc, out,
						  vk_whole(&c->attn_ticket), vk_value(c, vn->k_raw), vk_value(c, n->in[2]),
						  wq ? vk_whole(&wq->data) : vk_whole(&c->dummy),
						  wk ? vk_whole(&wk->data) : vk_whole(&c->dummy)};
			vk_set_write(c, vn->set[3], fo, 10);
		}
		struct vk_range cb[3] = {vk_whole(&c->attn_part), {0}, out};
		vk_set_write(c, vn->set[2], cb, 3);
		return 0;
	}
	case AWQ_OP_ARGMAX: /* the logits as floats and as vec4, the slices' results */
		r[0] = r[1] = in0;
		r[2] = out;
		r[3] = vk_whole(&c->amax_part);
		break;
	case AWQ_OP_SILU_MUL:
		if (vn->silu_gate >= 0) { /* set 1, decode: x, gate, out, up, gate scales/zeros, up's */
			const struct awq_node *ga = &c->g->nodes[vn->silu_gate], *up = &c->g->nodes[vn->silu_up];
			struct vk_weight *wg = weight_of(c, ga->w), *wu = weight_of(c, up->w);
			if (!wg || !wu)
				return awq_err(err, errlen, AWQ_EINVAL, "gate/up weights of %s were not uploaded",
					       c->g->values[n->out].name);
			struct vk_range f[VK_NBIND - 1] = {vk_value(c, ga->in[0]), vk_whole(&wg->data), out, vk_whole(&wu->data),
							   wg->sz.buf ? vk_whole(&wg->sz) : vk_whole(&c->dummy),
							   wu->sz.buf ? vk_whole(&wu->sz) : vk_whole(&c->dummy),
							   vk_whole(&c->dummy)};
			vk_set_write(c, vn->set[1], f, 7);
			if (vn->pre_add >= 0) { /* set 2: NORM2, the partials at 8 */
				f[7] = epi_part(c, vn->pre_add);
				vk_set_write(c, vn->set[2], f, 8);
			}
		}
		r[0] = in0;
		r[1] = in1;
		r[2] = out;
		break;
	case AWQ_OP_ADD:
		if (vn->norm >= 0) { /* add_rmsnorm: a, norm weight, norm output, b, sum */
			const struct awq_node *m = &c->g->nodes[vn->norm];
			struct vk_weight *nw = weight_of(c, m->w);
			if (!nw)
				return awq_err(err, errlen, AWQ_EINVAL, "weight %s of %s was not uploaded", m->w->name,
					       c->g->values[m->out].name);
			r[0] = in0;
			r[1] = vk_whole(&nw->data);
			r[2] = vk_value(c, m->out);
			r[3] = in1;
			r[4] = out;
			if (vn->comb >= 0) { /* set 1, decode: the residual, norm weight, norm out, slots, sum, route */
				const struct awq_node *e = &c->g->nodes[vn->comb];
				struct vk_range f[6] = {vk_value(c, n->in[0] == e->out ? n->in[1] : n->in[0]), r[1], r[2],
							vk_whole(&c->moe_tmp.y), out, vk_value(c, e->in[1])};
				vk_set_write(c, vn->set[1], f, 6);
			}
			break;
		}
		/* fall through */
	default: /* ROPE, ADD, SIGMOID_MUL */
		r[0] = in0;
		r[1] = in1;
		r[2] = out;
		break;
	}
	vk_set_write(c, vn->set[0], r, VK_NBIND - 1);
	return 0;
}

static int check_node(struct vk_ctx *c, const struct awq_node *n, char *err, size_t errlen)
{
	const struct awq_weight *w = n->w;
	if ((n->op == AWQ_OP_EMBED || n->op == AWQ_OP_RMSNORM) && (!w || w->fmt != AWQ_WFMT_DENSE))
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "%s: %s needs a dense weight", c->g->values[n->out].name,
			       awq_op_name(n->op));
	if (n->op == AWQ_OP_RMSNORM && c->g->values[n->out].cols % n->p.norm.group)
		return awq_err(err, errlen, AWQ_EINVAL, "%s: norm group does not divide the columns",
			       c->g->values[n->out].name);
	if (n->op == AWQ_OP_MOE_ROUTE || n->op == AWQ_OP_MOE_EXPERTS)
		return vk_moe_check(n, err, errlen);
	if (n->op >= AWQ_OP_COUNT)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "the Vulkan backend does not run %s", awq_op_name(n->op));
	return 0;
}

static void describe(struct vk_ctx *c)
{
	int q4 = 0, dense = 0;
	for (int i = 0; i < c->n_weights; i++) {
		q4 |= c->weights[i].w->fmt == AWQ_WFMT_AWQ4;
		dense |= c->weights[i].w->fmt == AWQ_WFMT_DENSE && c->weights[i].w->k > 1;
	}
	char q4d[128];
	snprintf(q4d, sizeof(q4d), "W4A16 %s%s (AWQ repacked at load) ", vk_q4_f16(c) ? "fp16-math" : "f32-math",
		 !vk_q4_q8(c) ? "" : c->idot_fast ? " + int8-dot decode" : " + int8-dot decode, dots not accelerated here");
	int n_epi = 0, n_comb = 0; /* ADD + RMSNORMs in the mat-vecs around them; MoE combines in them */
	for (int i = 0; i < c->g->n_nodes; i++) {
		n_epi += c->nodes[i].epi_add;
		n_comb += c->nodes[i].comb >= 0;
	}
	char epi[320] = "";
	if (c->epinorm)
		snprintf(epi, sizeof(epi), "add+RMSNorm in the mat-vecs around it (x%d); ", n_epi);
	if (c->moe_fold)
		snprintf(epi + strlen(epi), sizeof(epi) - strlen(epi), "MoE combine in the add+RMSNorm (x%d); ", n_comb);
	if (c->attn_splits_cap)
		snprintf(epi + strlen(epi), sizeof(epi) - strlen(epi), "attention splits <= %d; ", c->attn_splits_cap);
	if (c->attn_spans)
		vk_attn_group_words(c, epi + strlen(epi), sizeof(epi) - strlen(epi));
	if (!c->moe_bf16_cm && c->n_moe)
		snprintf(epi + strlen(epi), sizeof(epi) - strlen(epi), "MoE BF16 experts on the f32 tile shader; ");
	char tune[96] = ""; /* the mat-vec tuning knobs that are not at their defaults */
	if (c->mv_wg != VK_MV_WG || c->mv_u4 || c->mv_nr != 4 || !c->mv_ksplit || c->mv_ku != 1 || c->mv_xs)
		snprintf(tune, sizeof(tune), " [workgroup %d, %d rows x %d chunks per subgroup%s%s]", c->mv_wg, c->mv_nr,
			 c->mv_u4 ? 4 : 2, c->mv_ku == 2 ? ", k-split 2 chunks" : "", c->mv_xs ? ", x via shared" : "");
	snprintf(c->kernels, sizeof(c->kernels),
		 "vulkan subgroup %u: %s%s%smatvec (<= %d rows)%s + tiled f32 matmul; %s%s; %s%s%s%s%s%sKV f16%s",
		 c->subgroup_size,
		 q4 ? q4d : "",
		 q4 && vk_q4k_on(c) ? "k-split " : "", dense ? (c->has_f16 ? "F16 fp16-math/BF16 " : "16-bit f32-math ") : "",
		 VK_MATVEC_ROWS, tune, c->n_moe ? "MoE top-k expert matvec / grouped indirect matmul; " : "", c->coopmat_why,
		 c->attn_merge ? "" : "attention combine as a second dispatch; ",
		 c->attn_fold ? "" : "attention prep as its own dispatch in decode; ",
		 c->attn_ilp ? "attention keys four per subgroup; " : "",
		 c->n_moe && c->moe_silu ? "MoE gate/up/SiLU in one dispatch; " : "", epi,
		 c->validate ? "validation on; " : "",
		 c->profile ? "; profiling" : "");
}

int vk_prepare(void *ctx, const struct awq_graph *g, const struct awq_prepare_opts *o, char *err, size_t errlen)
{
	struct vk_ctx *c = ctx;
	int rc = awq_graph_check(g, err, errlen);
	if (rc)
		return rc;
	if (c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "prepare called twice on one Vulkan context");
	if (o->max_tokens < 1 || o->max_ctx < o->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "invalid sizes: %d tokens per step, %d context", o->max_tokens,
			       o->max_ctx);
	for (int i = 0; i < g->n_nodes; i++) {
		rc = check_node(&(struct vk_ctx){.g = g}, &g->nodes[i], err, errlen);
		if (rc)
			return rc;
	}
	c->g = g;
	c->max_tokens = o->max_tokens;
	c->max_ctx = o->max_ctx;
	c->offsets = calloc((size_t)g->n_values, sizeof(size_t));
	c->nodes = calloc((size_t)g->n_nodes + 1, sizeof(*c->nodes));
	c->uploads = calloc((size_t)g->n_values, sizeof(*c->uploads));
	if (!c->offsets || !c->nodes || !c->uploads)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	rc = alloc_state(c, o, err, errlen);
	if (rc)
		return rc;
	/* node sets (MoE nodes and the two of the AWQ repack: vk_moe_sets_needed), the bandwidth probe's */
	VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 0};
	uint32_t n_sets = 5 + (uint32_t)vk_moe_sets_needed(g); /* 5: and the chain's */
	for (int i = 0; i < g->n_nodes; i++)
		n_sets += (uint32_t)sets_of(c, i);
	ps.descriptorCount = n_sets * VK_NBIND;
	VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = n_sets,
					 .poolSizeCount = 1, .pPoolSizes = &ps};
	rc = vk_check(c, vkCreateDescriptorPool(c->dev, &pi, NULL, &c->dpool), "vkCreateDescriptorPool", err, errlen);
	if (!rc)
		rc = upload_weights(c, err, errlen);
	for (int i = 0; i < g->n_nodes && !rc; i++)
		rc = node_sets(c, i, err, errlen);
	if (!rc && c->rope_all.buf && g->tokens_in >= 0) { /* chain.comp's bindings */
		rc = vk_set_alloc(c, &c->chain_set, err, errlen);
		struct vk_range r[4] = {{c->arena.buf, c->offsets[g->tokens_in], 4}, vk_whole(&c->rope_all),
					{c->readback.buf, c->rb_ring_off, VK_RING * 4},
					{c->arena.buf, c->offsets[g->argmax_out], 4}};
		if (!rc)
			vk_set_write(c, c->chain_set, r, 4);
		/* chain_sample's: the logits' first row and the sampler's state (32 bytes of it in use) */
		if (!rc && c->sample_chain && c->has_f64i64 && g->logits_out >= 0) {
			/* and the top-k levels' keys (topk_part.comp) */
			const int cols = g->values[g->logits_out].cols;
			uint32_t gr[8], in_n[8], out[8], total = 0;
			vk_topk_levels(cols, cols > AWQ_TOPK_MAX ? AWQ_TOPK_MAX : cols, gr, in_n, out, &total);
			if (!vk_buf_create(c, &c->samp, 64, 1, "sampler state", err, errlen) &&
			    !vk_buf_create(c, &c->topk, (VkDeviceSize)total * 8, 0, "top-k levels", err, errlen)) {
				struct vk_range rs[7] = {{0}, {0}, {0}, {0}, {c->arena.buf, c->offsets[g->logits_out],
									 (VkDeviceSize)cols * 4},
							 vk_whole(&c->samp), vk_whole(&c->topk)};
				vk_set_write(c, c->chain_set, rs, 7);
			} else {
				vk_buf_destroy(c, &c->samp); /* without both, sampled chains are the core's steps */
				if (errlen)
					err[0] = 0;
			}
		}
	}
	if (!rc)
		rc = vk_validation_status(c, err, errlen);
	describe(c);
	return rc;
}

void vk_release_graph(struct vk_ctx *c)
{
	for (int i = 0; i < c->n_weights; i++) {
		vk_buf_destroy(c, &c->weights[i].data);
		vk_buf_destroy(c, &c->weights[i].sz);
		vk_buf_destroy(c, &c->weights[i].bias);
	}
	free(c->weights);
	vk_moe_release(c);
	for (int l = 0; c->kv && c->g && l < c->g->n_kv_layers; l++)
		vk_buf_destroy(c, &c->kv[l]);
	free(c->kv);
	for (int v = 0; c->uploads && c->g && v < c->g->n_values; v++)
		vk_buf_destroy(c, &c->uploads[v].stage);
	free(c->uploads);
	vk_buf_destroy(c, &c->arena);
	vk_buf_destroy(c, &c->step);
	vk_buf_destroy(c, &c->readback);
	vk_buf_destroy(c, &c->rope_all);
	vk_buf_destroy(c, &c->samp);
	vk_buf_destroy(c, &c->topk);
	vk_buf_destroy(c, &c->amax_part);
	c->chain_k = 0;
	for (int k = 0; k < 2; k++) {
		if (c->chain_fence[k])
			vkDestroyFence(c->dev, c->chain_fence[k], NULL);
		c->chain_fence[k] = VK_NULL_HANDLE;
		for (int s = 0; s < 2; s++) /* freed with the command pool */
			c->chain_cb[0][s][k] = c->chain_cb[1][s][k] = VK_NULL_HANDLE;
	}
	c->chain_set = VK_NULL_HANDLE;
	vk_buf_destroy(c, &c->dummy);
	vk_buf_destroy(c, &c->attn_part);
	vk_buf_destroy(c, &c->attn_ticket);
	vk_buf_destroy(c, &c->norm_part);
	free(c->offsets);
	free(c->nodes);
	free(c->node_dec_ms);
	c->node_dec_ms = NULL;
}

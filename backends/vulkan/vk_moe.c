/* MOE_ROUTE and MOE_EXPERTS (core/graph.h) on the Vulkan backend, recorded into the step's command
 * buffer with no host round trip.
 *   MOE_ROUTE: the router matmul with the f32-exact matvec / tiled shaders into a logits scratch,
 *     then moe_topk.comp (softmax, top-k, renormalise) writes [ids as floats, weights].
 *   MOE_EXPERTS, steps of up to VK_MATVEC_ROWS rows (decode): one matvec per (token, choice) slot
 *     that reads the expert id from the route on the device and indexes a buffer holding all
 *     experts of the projection packed one after another; silu(gate) * up (gate, up and the SiLU-mul
 *     in one dispatch where matvec.comp's SILU form has a fast path for the experts, gate_up_fused);
 *     down; moe_combine.comp sums the slots weighted by the router.
 *   MOE_EXPERTS, longer steps (prefill): moe_group.comp counts, prefix-sums and permutes the slots by
 *     expert and writes the 64-row tile list and indirect dispatch sizes; the grouped tiled matmuls
 *     run through vkCmdDispatchIndirect over those tiles (gate/up gather their tokens' rows), and
 *     moe_combine.comp scatters back through the permutation.
 * Only the selected experts' weights are read; all experts stay resident (weight_bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_internal.h"

#define MOE_MAX_EXPERTS 1024 /* moe_group.comp MAXE */
#define MOE_MAX_TOPK 32      /* moe_topk.comp MAXK */
#define MOE_TILE 64          /* rows and columns of a matmul_tile.comp tile */

enum { S_ROUTER, S_TOPK };                                                          /* MOE_ROUTE sets */
enum { S_GROUP, S_GATE, S_UP, S_DOWN, S_GATE_P, S_UP_P, S_DOWN_P, S_SILU, S_COMBINE, S_GATEUP }; /* MOE_EXPERTS */
#define EXPERT_SETS 10
_Static_assert(EXPERT_SETS <= VK_NODE_SETS, "vk_node holds the sets of a MOE_EXPERTS node");

static int dense_ok(const struct awq_weight *w)
{
	return w->fmt == AWQ_WFMT_DENSE &&
	       (w->dtype == AWQ_DT_F32 || w->dtype == AWQ_DT_F16 || w->dtype == AWQ_DT_BF16);
}

/* The expert shaders read no bias. */
static int mat_ok(const struct awq_weight *w)
{
	if (w->bias)
		return 0;
	if (w->fmt == AWQ_WFMT_AWQ4)
		return w->k % 8 == 0 && w->n % 8 == 0 && w->group_size > 0 && w->k % w->group_size == 0;
	return dense_ok(w);
}

int vk_moe_check(const struct awq_node *n, char *err, size_t errlen)
{
	const int E = n->p.moe.n_experts, K = n->p.moe.top_k;
	if (E < 1 || E > MOE_MAX_EXPERTS || K < 1 || K > MOE_MAX_TOPK || K > E)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED,
			       "%s with %d experts, top-%d: the Vulkan backend runs up to %d experts and top-%d",
			       awq_op_name(n->op), E, K, MOE_MAX_EXPERTS, MOE_MAX_TOPK);
	if (n->op == AWQ_OP_MOE_ROUTE) {
		if (!n->w || !dense_ok(n->w))
			return awq_err(err, errlen, AWQ_EUNSUPPORTED, "MOE_ROUTE needs a dense f32/f16/bf16 router weight");
		return 0;
	}
	const struct awq_experts *x = n->experts;
	if (!x || x->n != E || !x->gate || !x->up || !x->down)
		return awq_err(err, errlen, AWQ_EINVAL, "MOE_EXPERTS node has no experts or not %d of them", E);
	int ok = 1;
	for (int e = 0; e < E && ok; e++)
		ok = mat_ok(&x->gate[e]) && mat_ok(&x->up[e]) && mat_ok(&x->down[e]);
	if (!ok)
		return awq_err(err, errlen, AWQ_EUNSUPPORTED,
			       "experts %s: the Vulkan backend runs AWQ experts with k and n multiples of 8, or f32/f16/bf16 "
			       "ones without bias",
			       x->gate[0].name);
	return 0;
}

static int in_array(const struct awq_weight *w, const struct awq_weight *a, int n)
{
	uintptr_t p = (uintptr_t)w, b = (uintptr_t)a;
	return p >= b && p < b + (uintptr_t)n * sizeof(*a);
}

int vk_moe_is_expert(const struct awq_graph *g, const struct awq_weight *w)
{
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_experts *x = g->nodes[i].experts;
		if (g->nodes[i].op == AWQ_OP_MOE_EXPERTS && x &&
		    (in_array(w, x->gate, x->n) || in_array(w, x->up, x->n) || in_array(w, x->down, x->n)))
			return 1;
	}
	return 0;
}

uint32_t vk_moe_sets_needed(const struct awq_graph *g)
{
	uint32_t n = 2; /* the AWQ repack's (vk_repack_awq), for dense weights too */
	for (int i = 0; i < g->n_nodes; i++)
		n += g->nodes[i].op == AWQ_OP_MOE_EXPERTS ? EXPERT_SETS : g->nodes[i].op == AWQ_OP_MOE_ROUTE ? 2 : 0;
	return n;
}

/* Device bytes of one expert's matrix: the data as the shaders read it, and AWQ scale|zero words. */
static VkDeviceSize data_bytes(const struct awq_weight *w)
{
	if (w->fmt == AWQ_WFMT_AWQ4)
		return (VkDeviceSize)w->n * (VkDeviceSize)w->k / 2;
	return (VkDeviceSize)w->n * (VkDeviceSize)w->k * awq_dtype_size(w->dtype);
}

static VkDeviceSize sz_bytes(const struct awq_weight *w)
{
	return w->fmt == AWQ_WFMT_AWQ4 ? (VkDeviceSize)w->n * (VkDeviceSize)(w->k / w->group_size) * 4 : 0;
}

/* The grouping buffer's words for E experts and S slots (moe_layout.glsl). */
static VkDeviceSize grp_words(int E, int S)
{
	return 8 + (VkDeviceSize)E + 1 + 2 * (VkDeviceSize)S + 2 * ((VkDeviceSize)S / MOE_TILE + (VkDeviceSize)E + 1);
}

/* All experts of one projection into data (and sz) at one expert's size apart; AWQ is repacked
 * through tmp and copied into place, since repacked sizes need not meet binding-offset alignment. */
static int upload_mat(struct vk_ctx *c, struct vk_staging *st, const struct awq_weight *ws, int E, struct vk_buf *data,
		      struct vk_buf *sz, struct vk_buf tmp[2], int *bf16_in_f16, char *err, size_t errlen)
{
	uint16_t mag = 0; /* BF16: the largest magnitude's bits over all experts (upload_weight's scan) */
	const VkDeviceSize db = data_bytes(&ws[0]), zb = sz_bytes(&ws[0]);
	char what[160];
	snprintf(what, sizeof(what), "the %d experts of %.100s", E, ws[0].name);
	int rc = vk_range_ok(c, what, db * (VkDeviceSize)E, err, errlen);
	if (!rc)
		rc = vk_buf_create(c, data, db * (VkDeviceSize)E, 0, what, err, errlen);
	if (!rc && zb)
		rc = vk_range_ok(c, what, zb * (VkDeviceSize)E, err, errlen);
	if (!rc && zb)
		rc = vk_buf_create(c, sz, zb * (VkDeviceSize)E, 0, what, err, errlen);
	if (rc)
		return rc;
	c->weight_bytes += data->size + sz->size;
	for (int e = 0; e < E && !rc; e++) {
		const struct awq_weight *w = &ws[e];
		if (w->fmt != ws[0].fmt || w->n != ws[0].n || w->k != ws[0].k)
			return awq_err(err, errlen, AWQ_EINVAL, "expert %s differs in format or shape from %s", w->name,
				       ws[0].name);
		if (w->fmt == AWQ_WFMT_DENSE) {
			if (!w->data)
				return awq_err(err, errlen, AWQ_EINVAL, "weight %s has no data (a shape-only model cannot run)",
					       w->name);
			if (w->dtype == AWQ_DT_BF16) {
				uint16_t m = 0;
				rc = vk_upload16(c, data, (VkDeviceSize)e * db, w->data, (size_t)db, &st->stage, &m, err, errlen);
				mag = m > mag ? m : mag;
			} else {
				rc = vk_upload(c, data, (VkDeviceSize)e * db, w->data, (size_t)db, &st->stage, err, errlen);
			}
			continue;
		}
		VkCommandBuffer cb;
		rc = vk_repack_awq(c, w, st, &tmp[0], &tmp[1], err, errlen);
		if (!rc)
			rc = vk_begin_once(c, &cb, err, errlen);
		if (rc)
			return rc;
		VkBufferCopy d = {0, (VkDeviceSize)e * db, db}, z = {0, (VkDeviceSize)e * zb, zb};
		vkCmdCopyBuffer(cb, tmp[0].buf, data->buf, 1, &d);
		vkCmdCopyBuffer(cb, tmp[1].buf, sz->buf, 1, &z);
		rc = vk_submit_wait(c, cb, err, errlen);
	}
	*bf16_in_f16 = ws[0].fmt == AWQ_WFMT_DENSE && ws[0].dtype == AWQ_DT_BF16 && vk_bf16_fits_f16(mag);
	return rc;
}

static int make_scratch(struct vk_ctx *c, char *err, size_t errlen)
{
	VkDeviceSize logits = 0, slot_inter = 0, slot_hidden = 0, grp = 0;
	const VkDeviceSize R = (VkDeviceSize)c->max_tokens;
	for (int i = 0; i < c->g->n_nodes; i++) {
		const struct awq_node *n = &c->g->nodes[i];
		const VkDeviceSize E = (VkDeviceSize)n->p.moe.n_experts, S = R * (VkDeviceSize)n->p.moe.top_k;
		if (n->op == AWQ_OP_MOE_ROUTE && R * E * 4 > logits)
			logits = R * E * 4;
		if (n->op != AWQ_OP_MOE_EXPERTS)
			continue;
		const VkDeviceSize I = (VkDeviceSize)n->experts->gate[0].n, H = (VkDeviceSize)c->g->values[n->out].cols;
		slot_inter = S * I * 4 > slot_inter ? S * I * 4 : slot_inter;
		slot_hidden = S * H * 4 > slot_hidden ? S * H * 4 : slot_hidden;
		grp = grp_words((int)E, (int)S) * 4 > grp ? grp_words((int)E, (int)S) * 4 : grp;
	}
	struct vk_moe_scratch *t = &c->moe_tmp;
	struct {
		struct vk_buf *b;
		VkDeviceSize size;
		const char *what;
	} bufs[] = {{&t->logits, logits, "MoE router logits"}, {&t->gate, slot_inter, "MoE gate outputs"},
		    {&t->up, slot_inter, "MoE up outputs"},       {&t->h, slot_inter, "MoE activations"},
		    {&t->y, slot_hidden, "MoE expert outputs"},   {&t->grp, grp, "MoE token grouping"}};
	int rc = 0;
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]) && !rc; i++) {
		if (!bufs[i].size)
			continue;
		rc = vk_range_ok(c, bufs[i].what, bufs[i].size, err, errlen);
		if (!rc)
			rc = vk_buf_create(c, bufs[i].b, bufs[i].size, 0, bufs[i].what, err, errlen);
		c->act_bytes += bufs[i].b->size;
	}
	return rc;
}

int vk_moe_upload(struct vk_ctx *c, struct vk_staging *st, char *err, size_t errlen)
{
	int n = 0;
	for (int i = 0; i < c->g->n_nodes; i++)
		n += c->g->nodes[i].op == AWQ_OP_MOE_EXPERTS;
	if (!n)
		return make_scratch(c, err, errlen); /* router logits of MOE_ROUTE-only graphs */
	c->moe = calloc((size_t)n, sizeof(*c->moe));
	if (!c->moe)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	/* repack targets: the largest AWQ expert matrix */
	VkDeviceSize tb[2] = {0, 0};
	for (int i = 0; i < c->g->n_nodes; i++) {
		const struct awq_experts *x = c->g->nodes[i].experts;
		if (c->g->nodes[i].op != AWQ_OP_MOE_EXPERTS || x->gate[0].fmt != AWQ_WFMT_AWQ4)
			continue;
		const struct awq_weight *w[3] = {&x->gate[0], &x->up[0], &x->down[0]};
		for (int m = 0; m < 3; m++) {
			tb[0] = data_bytes(w[m]) > tb[0] ? data_bytes(w[m]) : tb[0];
			tb[1] = sz_bytes(w[m]) > tb[1] ? sz_bytes(w[m]) : tb[1];
		}
	}
	struct vk_buf tmp[2] = {{0}};
	int rc = 0;
	if (tb[0])
		rc = vk_buf_create(c, &tmp[0], tb[0], 0, "AWQ expert repack", err, errlen);
	if (!rc && tb[1])
		rc = vk_buf_create(c, &tmp[1], tb[1], 0, "AWQ expert repack", err, errlen);
	for (int i = 0; i < c->g->n_nodes && !rc; i++) {
		const struct awq_experts *x = c->g->nodes[i].experts;
		int s = 0;
		if (c->g->nodes[i].op != AWQ_OP_MOE_EXPERTS)
			continue;
		while (s < c->n_moe && c->moe[s].x != x)
			s++;
		c->nodes[i].moe_set = s;
		if (s < c->n_moe)
			continue;
		struct vk_moe_set *set = &c->moe[c->n_moe++];
		set->x = x;
		const struct awq_weight *arr[3] = {x->gate, x->up, x->down};
		for (int m = 0; m < 3 && !rc; m++)
			rc = upload_mat(c, st, arr[m], x->n, &set->data[m], &set->sz[m], tmp, &set->bf16_in_f16[m], err,
					errlen);
	}
	vk_buf_destroy(c, &tmp[0]);
	vk_buf_destroy(c, &tmp[1]);
	if (!rc)
		rc = make_scratch(c, err, errlen);
	return rc;
}

/* A node's set over the bindings as matvec.comp / matmul_tile.comp name them. */
static void mat_set(struct vk_ctx *c, VkDescriptorSet set, struct vk_range x, const struct vk_buf *w,
		    const struct vk_buf *sz, const struct vk_buf *out, struct vk_range b7)
{
	struct vk_range r[7] = {x, vk_whole(w), vk_whole(out), vk_whole(w), {0}, x, b7};
	if (sz && sz->buf)
		r[4] = vk_whole(sz);
	vk_set_write(c, set, r, 7);
}

int vk_moe_node_sets(struct vk_ctx *c, int i, char *err, size_t errlen)
{
	const struct awq_node *n = &c->g->nodes[i];
	struct vk_node *vn = &c->nodes[i];
	struct vk_moe_scratch *t = &c->moe_tmp;
	const int sets = n->op == AWQ_OP_MOE_ROUTE ? 2 : EXPERT_SETS;
	int rc = 0;
	for (int s = 0; s < sets && !rc; s++)
		rc = vk_set_alloc(c, &vn->set[s], err, errlen);
	if (rc)
		return rc;
	const struct vk_range in0 = vk_value(c, n->in[0]), out = vk_value(c, n->out);
	if (n->op == AWQ_OP_MOE_ROUTE) {
		if (!vn->wt)
			return awq_err(err, errlen, AWQ_EINVAL, "router %s was not uploaded", n->w->name);
		mat_set(c, vn->set[S_ROUTER], in0, &vn->wt->data, NULL, &t->logits,
			vk_whole(vn->wt->bias.buf ? &vn->wt->bias : &c->dummy));
		struct vk_range r[3] = {vk_whole(&t->logits), {0}, out};
		vk_set_write(c, vn->set[S_TOPK], r, 3);
		return 0;
	}
	const int s = vn->moe_set;
	if (s < 0 || s >= c->n_moe)
		return awq_err(err, errlen, AWQ_EINVAL, "experts of %s were not uploaded", c->g->values[n->out].name);
	const struct vk_moe_set *m = &c->moe[s];
	const struct vk_range route = vk_value(c, n->in[1]), grp = vk_whole(&t->grp);
	struct vk_range r[4] = {route, {0}, grp};
	vk_set_write(c, vn->set[S_GROUP], r, 3);
	for (int p = 0; p < 2; p++) { /* decode: binding 7 = route; prefill: the grouping */
		const struct vk_range b7 = p ? grp : route;
		mat_set(c, vn->set[p ? S_GATE_P : S_GATE], in0, &m->data[0], &m->sz[0], &t->gate, b7);
		mat_set(c, vn->set[p ? S_UP_P : S_UP], in0, &m->data[1], &m->sz[1], &t->up, b7);
		mat_set(c, vn->set[p ? S_DOWN_P : S_DOWN], vk_whole(&t->h), &m->data[2], &m->sz[2], &t->y, b7);
	}
	struct vk_range silu[3] = {vk_whole(&t->gate), vk_whole(&t->up), vk_whole(&t->h)};
	vk_set_write(c, vn->set[S_SILU], silu, 3);
	/* decode's fused gate/up + SiLU (matvec.comp SILU with MOE): x, gate, h, up, their scales, route */
	struct vk_range gu[7] = {in0,
				 vk_whole(&m->data[0]),
				 vk_whole(&t->h),
				 vk_whole(&m->data[1]),
				 m->sz[0].buf ? vk_whole(&m->sz[0]) : vk_whole(&c->dummy),
				 m->sz[1].buf ? vk_whole(&m->sz[1]) : vk_whole(&c->dummy),
				 route};
	vk_set_write(c, vn->set[S_GATEUP], gu, 7);
	struct vk_range comb[4] = {route, vk_whole(&t->y), out, grp};
	vk_set_write(c, vn->set[S_COMBINE], comb, 4);
	return 0;
}

static int rec_route(struct vk_ctx *c, VkCommandBuffer cb, const struct awq_node *n, const struct vk_node *vn,
		     int rows, char *err, size_t errlen)
{
	VkPipeline p;
	int rc = vk_rec_matmul(c, cb, vn->wt, vn->set[S_ROUTER], rows, 1, err, errlen);
	if (!rc)
		rc = vk_pipe_get(c, "moe_topk", 0, 0, 0, &p, err, errlen);
	if (rc)
		return rc;
	vk_barrier_compute(cb);
	struct vk_push pc = {.u = {(uint32_t)n->p.moe.n_experts, (uint32_t)n->p.moe.top_k, n->p.moe.norm_topk}};
	vk_dispatch(cb, c, p, vn->set[S_TOPK], &pc, (uint32_t)rows, 1, 1);
	return 0;
}

/* Decode: gate, up and the SiLU-mul in one dispatch (matvec.comp with MOE and SILU), as the dense
 * MLP's decode does; its SILU form exists for the fast paths only: 4-bit with K and the group size
 * multiples of 32, 16-bit (f32 arithmetic) with K a multiple of 8. Two dispatches and a barrier
 * fewer per MoE layer, yet slower on an H200 (3% of qwen3-30b-a3b decode): AWQ_VK_MOE_SILU=1 (c->moe_silu)
 * only. */
static int gate_up_fused(const struct vk_ctx *c, const struct awq_experts *x)
{
	const struct awq_weight *g = &x->gate[0], *u = &x->up[0];
	if (c->no_fuse || !c->moe_silu || g->fmt != u->fmt || g->k != u->k || g->n != u->n)
		return 0;
	if (g->fmt == AWQ_WFMT_AWQ4)
		return vk_mv_plain(c) && g->group_size == u->group_size && g->k % 32 == 0 && g->group_size % 32 == 0;
	return g->dtype == u->dtype && (g->dtype == AWQ_DT_F16 || g->dtype == AWQ_DT_BF16) && g->k % 8 == 0;
}

static int rec_experts(struct vk_ctx *c, VkCommandBuffer cb, const struct awq_node *n, const struct vk_node *vn,
		       int rows, char *err, size_t errlen)
{
	const struct awq_experts *x = n->experts;
	const int q4 = x->gate[0].fmt == AWQ_WFMT_AWQ4, prefill = rows > VK_MATVEC_ROWS;
	const uint32_t E = (uint32_t)x->n, K = (uint32_t)n->p.moe.top_k, H = (uint32_t)x->down[0].n;
	const uint32_t I = (uint32_t)x->gate[0].n, slots = (uint32_t)rows * K, S = (uint32_t)c->max_tokens * K;
	const uint32_t Gg = q4 ? (uint32_t)x->gate[0].group_size : 0, Gd = q4 ? (uint32_t)x->down[0].group_size : 0;
	const int gdt = q4 ? 0 : vk_dt_code(x->gate[0].dtype), ddt = q4 ? 0 : vk_dt_code(x->down[0].dtype);
	/* prefill: the cooperative-matrix shader's 64 x 64 tile where the device has it (AWQ and F16
	 * experts; BF16 ones when every expert's values fit fp16, found at upload: the shader converts
	 * them in its staging as for dense BF16 weights; else, or with AWQ_VK_MOE_BF16_CM=0, the f32
	 * tile shader) */
	const struct vk_moe_set *ms = &c->moe[vn->moe_set];
	const int bf16_cm = c->moe_bf16_cm && x->gate[0].dtype == AWQ_DT_BF16 && x->down[0].dtype == AWQ_DT_BF16 &&
			    ms->bf16_in_f16[0] && ms->bf16_in_f16[1] && ms->bf16_in_f16[2];
	const int cm = prefill && c->nv_coopmat &&
		       (q4 || (x->gate[0].dtype == AWQ_DT_F16 && x->down[0].dtype == AWQ_DT_F16) || bf16_cm);
	const char *mat = prefill ? (q4 ? (cm ? "moe_matmul_q4_nvcm" : "moe_matmul_q4")
					: (cm ? "moe_matmul_dense_nvcm" : "moe_matmul_dense"))
				  : (q4 ? (vk_q4_f16(c) ? "moe_matvec_q4_f16" : "moe_matvec_q4") : "moe_matvec_dense");
	VkPipeline pg, pd, psilu, pcomb, pgroup = VK_NULL_HANDLE;
	const int fused = !prefill && gate_up_fused(c, x);
	const char *gmat = !fused ? mat : q4 ? (vk_q4_f16(c) ? "moe_matvec_q4_silu_f16" : "moe_matvec_q4_silu")
				     : "moe_matvec_dense_silu";
	int rc = vk_pipe_get(c, gmat, gdt, prefill ? 0 : c->mv_wg, 0, &pg, err, errlen);
	if (!rc)
		rc = vk_pipe_get(c, mat, ddt, prefill ? 0 : c->mv_wg, 0, &pd, err, errlen);
	if (!rc)
		rc = vk_pipe_get(c, "eltwise", 1, 0, 0, &psilu, err, errlen);
	if (!rc)
		rc = vk_pipe_get(c, "moe_combine", prefill, 0, 0, &pcomb, err, errlen);
	if (!rc && prefill)
		rc = vk_pipe_get(c, "moe_group", 0, 0, 0, &pgroup, err, errlen);
	if (rc)
		return rc;
	uint32_t gx, gy;
	if (prefill) {
		struct vk_push pc = {.u = {(uint32_t)rows, K, E, S, (I + MOE_TILE - 1) / MOE_TILE, (H + MOE_TILE - 1) / MOE_TILE}};
		vk_dispatch(cb, c, pgroup, vn->set[S_GROUP], &pc, 1, 1, 1);
		vk_barrier_indirect(cb);
		pc = (struct vk_push){.u = {H, I, E, Gg, 0, S, 1}};
		vk_dispatch_indirect(cb, c, pg, vn->set[S_GATE_P], &pc, c->moe_tmp.grp.buf, 0);
		vk_dispatch_indirect(cb, c, pg, vn->set[S_UP_P], &pc, c->moe_tmp.grp.buf, 0);
	} else {
		struct vk_push pc = {.u = {H, I, 1, Gg, 0, K, E, 0}};
		vk_grid(vk_matvec_groups(c, I, 4), &gx, &gy);
		vk_dispatch(cb, c, pg, vn->set[fused ? S_GATEUP : S_GATE], &pc, gx, gy, slots);
		if (!fused)
			vk_dispatch(cb, c, pg, vn->set[S_UP], &pc, gx, gy, slots);
	}
	vk_barrier_compute(cb);
	if (!fused) {
		struct vk_push ps = {.u = {slots * I}};
		vk_grid((slots * I + 255) / 256, &gx, &gy);
		vk_dispatch(cb, c, psilu, vn->set[S_SILU], &ps, gx, gy, 1);
		vk_barrier_compute(cb);
	}
	if (prefill) {
		struct vk_push pc = {.u = {I, H, E, Gd, 0, S, 0}};
		vk_dispatch_indirect(cb, c, pd, vn->set[S_DOWN_P], &pc, c->moe_tmp.grp.buf, 16);
	} else {
		struct vk_push pc = {.u = {I, H, 1, Gd, 0, K, E, 1}};
		vk_grid(vk_matvec_groups(c, H, 4), &gx, &gy);
		vk_dispatch(cb, c, pd, vn->set[S_DOWN], &pc, gx, gy, slots);
		if (vn->comb_skip) /* the ADD after it combines the slots (AWQ_VK_MOE_FOLD; its barrier follows) */
			return 0;
	}
	vk_barrier_compute(cb);
	struct vk_push pc = {.u = {H, K, (uint32_t)rows * H, E, S}};
	vk_grid(((uint32_t)rows * H + 255) / 256, &gx, &gy);
	vk_dispatch(cb, c, pcomb, vn->set[S_COMBINE], &pc, gx, gy, 1);
	return 0;
}

int vk_moe_record(struct vk_ctx *c, VkCommandBuffer cb, int i, int rows, char *err, size_t errlen)
{
	const struct awq_node *n = &c->g->nodes[i];
	if (n->op == AWQ_OP_MOE_ROUTE)
		return rec_route(c, cb, n, &c->nodes[i], rows, err, errlen);
	return rec_experts(c, cb, n, &c->nodes[i], rows, err, errlen);
}

void vk_moe_release(struct vk_ctx *c)
{
	for (int s = 0; s < c->n_moe; s++)
		for (int m = 0; m < 3; m++) {
			vk_buf_destroy(c, &c->moe[s].data[m]);
			vk_buf_destroy(c, &c->moe[s].sz[m]);
		}
	free(c->moe);
	c->moe = NULL;
	c->n_moe = 0;
	struct vk_moe_scratch *t = &c->moe_tmp;
	struct vk_buf *bufs[] = {&t->logits, &t->gate, &t->up, &t->h, &t->y, &t->grp};
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		vk_buf_destroy(c, bufs[i]);
}

/* Executing steps: one command buffer recorded per step shape (rows, all_rows) and resubmitted at
 * every position (the position and RoPE tables live in the host-written step buffer), input
 * uploads submitted with it, logits and greedy ids copied to a host buffer at the end of the step,
 * and optional per-op timestamps (AWQ_VK_PROFILE=1). */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "awqrun.h" /* AWQ_TOPK_MAX: chain_sample's largest top-k (its MAXK) */
#include "vk_internal.h"

void vk_grid(uint32_t groups, uint32_t *gx, uint32_t *gy)
{
	*gx = groups < 65535 ? (groups ? groups : 1) : 65535;
	*gy = (groups + *gx - 1) / *gx;
	if (!*gy)
		*gy = 1;
}

/* Workgroups of matvec.comp for n outputs (nr outputs per subgroup of 32 lanes or more). */
uint32_t vk_matvec_groups(const struct vk_ctx *c, int64_t n, int nr)
{
	return (uint32_t)((n + nr * (c->mv_wg / 32) - 1) / (nr * (c->mv_wg / 32)));
}

/* The 4-bit mat-vec of a decode step of `rows` rows for weight w, and its workgroups in *groups: the
 * K-split kernel (matvec_q4k.comp, VK_Q4K_ROWS rows per workgroup) where it applies (not the fused
 * gate/up with silu, which matvec.comp runs faster), else matvec.comp in the variant of the tuning
 * knobs (AWQ_VK_MATVEC_NR, AWQ_VK_MATVEC_U4; the 16-bit mat-vec keeps 4 rows per subgroup). The
 * arithmetic: int8 activations with vk_q4_q8, else packed fp16 on a device with shaderFloat16 and no
 * knob set, f32 where exact is asked. One-row steps of the K-split kernel read x through shared
 * memory with AWQ_VK_MATVEC_XS=1. form: the EPI or NORM2 form of epinorm.glsl (one-row steps, the
 * planner took only weights of the default forms), else Q4_PLAIN. */
enum q4_form { Q4_PLAIN, Q4_EPI, Q4_NORM2 };
static const char *q4_matvec(const struct vk_ctx *c, int silu, int exact, const struct awq_weight *w, int rows,
			     enum q4_form form, uint32_t *groups)
{
	const int q8 = vk_q4_q8(c) && !exact, f16 = vk_q4_f16(c) && !exact;
	if (!silu && vk_q4k(c, w)) {
		*groups = (uint32_t)((w->n + VK_Q4K_ROWS - 1) / VK_Q4K_ROWS);
		if (form != Q4_PLAIN)
			return form == Q4_EPI ? (f16 ? "matvec_q4k_epi_f16" : "matvec_q4k_epi")
					      : (f16 ? "matvec_q4k_norm2_f16" : "matvec_q4k_norm2");
		if (rows == 1 && c->mv_xs && c->mv_wg <= 64 && c->mv_ku == 1 && !vk_q4_q8(c))
			return f16 ? "matvec_q4k_xs_f16" : "matvec_q4k_xs";
		static const char *const k[2][2] = {{"matvec_q4k", "matvec_q4k_f16"}, {"matvec_q4k_ku2", "matvec_q4k_ku2_f16"}};
		return q8 ? "matvec_q4k_q8" : k[c->mv_ku == 2][f16];
	}
	*groups = vk_matvec_groups(c, w->n, c->mv_nr);
	if (silu && form == Q4_NORM2)
		return f16 ? "matvec_q4_silu_norm2_f16" : "matvec_q4_silu_norm2";
	if (q8 && silu) /* plan_silu fused only weights of matvec.comp's fast path, which has the form */
		return "matvec_q4_silu_q8";
	if (f16)
		return silu ? "matvec_q4_silu_f16" : "matvec_q4_f16";
	static const char *const names[2][2][2] = {
		{{"matvec_q4", "matvec_q4_u4"}, {"matvec_q4_nr2", "matvec_q4_nr2_u4"}},
		{{"matvec_q4_silu", "matvec_q4_silu_u4"}, {"matvec_q4_silu_nr2", "matvec_q4_silu_nr2_u4"}}};
	return names[silu != 0][c->mv_nr == 2][c->mv_u4 != 0];
}

/* NORM2: the partial sums its producer wrote for a row of k (one per K-split workgroup of k rows). */
static uint32_t norm2_partials(int64_t k)
{
	return (uint32_t)((k + VK_Q4K_ROWS - 1) / VK_Q4K_ROWS);
}

int vk_rec_matmul(struct vk_ctx *c, VkCommandBuffer cb, const struct vk_weight *wt, VkDescriptorSet set, int rows,
		  int exact, char *err, size_t errlen)
{
	const struct awq_weight *w = wt->w;
	int q4 = w->fmt == AWQ_WFMT_AWQ4, dt = q4 ? 0 : vk_dt_code(w->dtype), bdt = w->bias ? vk_dt_code(w->bias_dtype) : 0;
	struct vk_push pc = {.u = {(uint32_t)w->k, (uint32_t)w->n, (uint32_t)rows, q4 ? (uint32_t)w->group_size : 0,
				   w->bias != NULL}};
	VkPipeline p;
	uint32_t gx, gy;
	int rc;
	/* Steps of 5-8 rows with 4-bit weights the K-split kernel takes: two of its dispatches (rows
	 * 0-3, then the rest, u6 = the first row), independent of each other. On the cooperative-matrix
	 * tiles such a step left most of each 64-row tile empty: on an H200 an 8-token llama2-7b prompt
	 * took 30 ms, a 4-token one 9.7 (session 20). */
	const int split = q4 && rows > VK_MATVEC_ROWS && rows <= 2 * VK_MATVEC_ROWS && vk_q4k(c, w);
	if (rows <= VK_MATVEC_ROWS || split) {
		const int r1 = split ? VK_MATVEC_ROWS : rows;
		uint32_t groups = vk_matvec_groups(c, w->n, 4);
		const char *name = q4 ? q4_matvec(c, 0, exact, w, r1, Q4_PLAIN, &groups)
				   : c->has_f16 && w->dtype == AWQ_DT_F16 && !exact ? "matvec_dense_f16"
										     : "matvec_dense";
		rc = vk_pipe_get(c, name, dt, c->mv_wg, bdt, &p, err, errlen);
		if (rc)
			return rc;
		vk_grid(groups, &gx, &gy);
		pc.u[2] = (uint32_t)r1;
		vk_dispatch(cb, c, p, set, &pc, gx, gy, 1);
		if (split) {
			pc.u[2] = (uint32_t)(rows - r1);
			pc.u[6] = (uint32_t)r1;
			vk_dispatch(cb, c, p, set, &pc, gx, gy, 1);
		}
		return 0;
	}
	const char *name = q4 ? "matmul_q4" : "matmul_dense";
	uint32_t tile = 64;
	/* matmul_coopmat.comp takes 4-bit, F16 and BF16 weights (BF16 converted to fp16 in its staging,
	 * exact but for subnormals), a BF16 one only where no value is 65536 or more in magnitude, inf or
	 * NaN (fp16 would overflow; checked at upload, vk_weight.bf16_in_f16): such a matrix keeps the
	 * f32 tiled shader. */
	if (c->nv_coopmat && !exact && (q4 || w->dtype == AWQ_DT_F16 || (w->dtype == AWQ_DT_BF16 && wt->bf16_in_f16))) {
		/* matmul_coopmat.comp: 128 x 128 tiles where there are enough of them to fill a large GPU
		 * (100: about an H100's or H200's SMs), else 64 x 64. On the H200 a 128-row step of
		 * 4096 x 4096 took 188 us in 32 large tiles (awq-vk-bench --rows 128), 4 times the time
		 * of the same tiles without barriers between dispatches */
		const int64_t n_large = (w->n + 127) / 128 * (((int64_t)rows + 127) / 128);
		int large = c->nv_coopmat_large && rows > 64 && n_large >= 100;
		const int w16 = large && c->nv_coopmat_w16;
		name = q4 ? (w16 ? "matmul_q4_nvcm_x" : large ? "matmul_q4_nvcm_l" : "matmul_q4_nvcm")
			  : (w16 ? "matmul_dense_nvcm_x" : large ? "matmul_dense_nvcm_l" : "matmul_dense_nvcm");
		tile = large ? 128 : 64;
	}
	rc = vk_pipe_get(c, name, dt, 0, bdt, &p, err, errlen);
	if (!rc)
		vk_dispatch(cb, c, p, set, &pc, (uint32_t)((w->n + tile - 1) / tile), (uint32_t)((rows + tile - 1) / tile), 1);
	return rc;
}

/* Workgroup size of rmsnorm.comp for groups of n: a power of two from VK_WG, doubled while an
 * invocation would have more than 4 elements, up to 1024 and to what the device allows and the 64
 * subgroups reduce.glsl sums over cover (counted with the smallest subgroup size). A norm is latency-bound:
 * one workgroup per row in decode, so a wider one puts more of the row's loads in flight at once
 * (4096 columns: 1024 invocations where subgroups are 32 wide, 512 on lavapipe's 8). */
static int32_t norm_wg(const struct vk_ctx *c, int n)
{
	const VkPhysicalDeviceLimits *l = &c->props.limits;
	uint32_t hi = c->min_subgroup * 64u;
	if (l->maxComputeWorkGroupInvocations < hi)
		hi = l->maxComputeWorkGroupInvocations;
	if (l->maxComputeWorkGroupSize[0] < hi)
		hi = l->maxComputeWorkGroupSize[0];
	uint32_t wg = VK_WG;
	while (wg * 2u <= hi && wg * 2u <= 1024u && (int64_t)wg * 4 < n)
		wg *= 2u;
	return (int32_t)wg;
}

static int rec_attention(struct vk_ctx *c, VkCommandBuffer cb, const struct awq_node *n, const struct vk_node *vn,
			 int rows, char *err, size_t errlen)
{
	const uint32_t H = (uint32_t)n->p.attn.n_heads, HKV = (uint32_t)n->p.attn.n_kv_heads, D = (uint32_t)n->p.attn.head_dim;
	const uint32_t S = (uint32_t)vk_attn_splits(c, rows, (int)H), kvd = HKV * D;
	VkPipeline ps = VK_NULL_HANDLE, pa, pm = VK_NULL_HANDLE;
	uint32_t gx, gy;
	const struct awq_graph *g = c->g;
	int q_prep = vn->prep && (vn->rope_q >= 0 || vn->norm_q >= 0);
	int nn = vn->norm_q >= 0 ? vn->norm_q : vn->norm_k;
	int dt = nn >= 0 ? vk_dt_code(g->nodes[nn].w->dtype) : 0;
	/* decode: the prep inside the attention dispatch (attention.comp's FOLD), set 3 */
	const int fold = vn->prep && c->attn_fold && rows <= VK_MATVEC_ROWS;
	int rc = fold	  ? 0
		 : vn->prep ? vk_pipe_get(c, "attn_prep", dt, 0, 0, &ps, err, errlen)
			    : vk_pipe_get(c, "kv_store", 0, 0, 0, &ps, err, errlen);
	/* prefill: attn_prefill.comp, query rows in tiles, where the head size and subgroups allow (its
	 * D / 32 lanes per row within the smallest subgroup) */
	const int tiled = c->attn_prefill && rows > VK_MATVEC_ROWS && c->sg_shuffle &&
			  (D == 32 || D == 64 || D == 128 || D == 256) && D / 32 <= c->min_subgroup;
	/* attention.comp's HD variants: four lanes of a subgroup per key (shuffles); with FOLD one split
	 * more, for the step's own keys */
	const int hd = vk_attn_hd(c, D);
	const char *an = !hd ? "attention" : D == 64 ? "attention_d64" : D == 128 ? "attention_d128" : "attention_d256";
	const uint32_t SD = S + (hd && fold ? 1u : 0u);
	/* the HD variants' workgroup: 128 invocations per q head, gq of a kv head's q heads at once (in
	 * the long span's steps: vk_attn_span) */
	const uint32_t gq = hd && c->rec_span ? vk_attn_group(c, H, HKV, D) : 1u;
	if (!rc)
		rc = vk_pipe_get(c, tiled ? "attn_prefill" : an, fold ? dt : 0, 0, hd && !tiled ? (int32_t)(128u * gq) : 0,
				 &pa, err, errlen);
	if (!rc && !c->attn_merge && !tiled)
		rc = vk_pipe_get(c, "attn_combine", 0, 0, 0, &pm, err, errlen);
	if (rc)
		return rc;
	const int rs = vn->rope_q >= 0 ? c->nodes[vn->rope_q].rope_slot : 0;
	const uint32_t flags = (vn->norm_q >= 0 ? 1u : 0u) | (vn->norm_k >= 0 ? 2u : 0u) | (vn->rope_q >= 0 ? 4u : 0u) |
			       (vn->rope_k >= 0 ? 8u : 0u);
	const float eps = nn >= 0 ? g->nodes[nn].p.norm.eps : 0.f;
	if (vn->prep && !fold) {
		struct vk_push pp = {.u = {q_prep ? H : 0, HKV, D, c->ropes[rs].cos_off, c->ropes[rs].sin_off,
					   (uint32_t)(c->kv_voff / 4), flags},
				     .f0 = eps};
		vk_dispatch(cb, c, ps, vn->set[0], &pp, (q_prep ? H : 0) + HKV, (uint32_t)rows, 1);
		vk_barrier_compute(cb);
	} else if (!vn->prep) {
		struct vk_push st = {.u = {(uint32_t)rows * kvd / 2, kvd}}; /* fp16 pairs */
		vk_grid(((uint32_t)rows * kvd / 2 + 255) / 256, &gx, &gy);
		vk_dispatch(cb, c, ps, vn->set[0], &st, gx, gy, 1);
		vk_barrier_compute(cb);
	}
	if (tiled) {
		struct vk_push ap = {.u = {H, HKV, D, (uint32_t)rows}, .f0 = n->p.attn.scale};
		const uint32_t rpw = 128u / (D / 32u);
		vk_dispatch(cb, c, pa, vn->set[1], &ap, ((uint32_t)rows + rpw - 1) / rpw, H, 1);
		return 0;
	}
	struct vk_push at = {.u = {H, HKV, D, SD, (uint32_t)c->attn_merge}, .f0 = n->p.attn.scale};
	if (fold) { /* attention.comp's FOLD: the prep's flags, RoPE table and eps */
		at.u[5] = flags | 16u;
		at.u[6] = c->ropes[rs].cos_off;
		at.u[7] = c->ropes[rs].sin_off;
		at.f1 = eps;
	}
	at.u[5] |= c->attn_ilp ? 32u : 0u; /* attention.comp's ILP */
	vk_dispatch(cb, c, pa, vn->set[fold ? 3 : 1], &at, SD, H / gq, (uint32_t)rows);
	if (c->attn_merge) /* the splits were merged by each (row, head)'s last workgroup */
		return 0;
	vk_barrier_compute(cb);
	vk_dispatch(cb, c, pm, vn->set[2], &at, H, (uint32_t)rows, 1);
	return 0;
}

static int rec_node(struct vk_ctx *c, VkCommandBuffer cb, int i, const struct awq_step *s, char *err, size_t errlen)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *n = &g->nodes[i];
	const struct vk_node *vn = &c->nodes[i];
	const int rows = awq_value_rows(g, n->out, s), cols = g->values[n->out].cols;
	struct vk_push pc;
	memset(&pc, 0, sizeof(pc));
	VkPipeline p;
	uint32_t gx, gy;
	int rc = 0;
	switch (n->op) {
	case AWQ_OP_MATMUL:
		if ((vn->epi >= 0 || vn->pre_add >= 0) && rows == 1) { /* epinorm.glsl: EPI or NORM2, set 1 */
			const struct awq_weight *w = n->w;
			const int ai = vn->epi >= 0 ? vn->epi : vn->pre_add;
			const struct awq_node *m = &g->nodes[c->nodes[ai].norm];
			struct vk_push mv = {.u = {(uint32_t)w->k, (uint32_t)w->n, 1, (uint32_t)w->group_size, w->bias != NULL,
						   vn->epi >= 0 ? 0 : norm2_partials(w->k)},
					     .f0 = m->p.norm.eps};
			uint32_t groups;
			const char *name = q4_matvec(c, 0, 0, w, 1, vn->epi >= 0 ? Q4_EPI : Q4_NORM2, &groups);
			rc = vk_pipe_get(c, name, vk_dt_code(m->w->dtype), c->mv_wg, w->bias ? vk_dt_code(w->bias_dtype) : 0, &p,
					 err, errlen);
			vk_grid(groups, &gx, &gy);
			if (!rc)
				vk_dispatch(cb, c, p, vn->set[1], &mv, gx, gy, 1);
			return rc;
		}
		return vk_rec_matmul(c, cb, vn->wt, vn->set[0], rows, 0, err, errlen);
	case AWQ_OP_MOE_ROUTE:
	case AWQ_OP_MOE_EXPERTS:
		return vk_moe_record(c, cb, i, rows, err, errlen);
	case AWQ_OP_ATTENTION:
		return rec_attention(c, cb, n, vn, rows, err, errlen);
	case AWQ_OP_EMBED:
		pc.u[0] = (uint32_t)cols;
		pc.u[1] = (uint32_t)n->w->n;
		rc = vk_pipe_get(c, "embed", vk_dt_code(n->w->dtype), 0, 0, &p, err, errlen);
		if (!rc)
			vk_dispatch(cb, c, p, vn->set[0], &pc, (uint32_t)(cols + 255) / 256, (uint32_t)rows, 1);
		return rc;
	case AWQ_OP_RMSNORM: {
		uint32_t groups = (uint32_t)rows * (uint32_t)(cols / n->p.norm.group);
		pc.u[0] = (uint32_t)cols;
		pc.u[1] = (uint32_t)n->p.norm.group;
		pc.u[2] = groups;
		pc.f0 = n->p.norm.eps;
		rc = vk_pipe_get(c, "rmsnorm", vk_dt_code(n->w->dtype), norm_wg(c, n->p.norm.group), 0, &p, err,
				 errlen);
		vk_grid(groups, &gx, &gy);
		if (!rc)
			vk_dispatch(cb, c, p, vn->set[0], &pc, gx, gy, 1);
		return rc;
	}
	case AWQ_OP_ROPE: {
		const struct vk_rope_slot *r = &c->ropes[vn->rope_slot];
		pc.u[0] = (uint32_t)n->p.rope.n_heads;
		pc.u[1] = (uint32_t)n->p.rope.head_dim;
		pc.u[2] = r->cos_off;
		pc.u[3] = r->sin_off;
		rc = vk_pipe_get(c, "rope", 0, 0, 0, &p, err, errlen);
		if (!rc)
			vk_dispatch(cb, c, p, vn->set[0], &pc, (uint32_t)(n->p.rope.head_dim / 2 + 63) / 64,
				    (uint32_t)n->p.rope.n_heads, (uint32_t)rows);
		return rc;
	}
	case AWQ_OP_ADD:
		if (vn->norm >= 0) { /* with the whole-row RMSNORM after it: one workgroup per row */
			const struct awq_node *m = &g->nodes[vn->norm];
			const int comb = vn->comb >= 0 && rows <= VK_MATVEC_ROWS; /* and the MoE combine (decode) */
			pc.u[0] = pc.u[1] = (uint32_t)cols;
			pc.u[2] = (uint32_t)rows;
			pc.u[3] = comb ? (uint32_t)g->nodes[vn->comb].p.moe.top_k : 0;
			pc.f0 = m->p.norm.eps;
			rc = vk_pipe_get(c, comb ? "add_rmsnorm_moe" : "add_rmsnorm", vk_dt_code(m->w->dtype), norm_wg(c, cols),
					 0, &p, err, errlen);
			vk_grid((uint32_t)rows, &gx, &gy);
			if (!rc)
				vk_dispatch(cb, c, p, vn->set[comb ? 1 : 0], &pc, gx, gy, 1);
			return rc;
		}
		/* fall through */
	case AWQ_OP_SILU_MUL:
		if (n->op == AWQ_OP_SILU_MUL && vn->silu_gate >= 0 && rows <= VK_MATVEC_ROWS) {
			/* decode: gate and up mat-vecs and the SiLU-mul in one dispatch */
			const struct awq_weight *w = g->nodes[vn->silu_gate].w;
			int q4 = w->fmt == AWQ_WFMT_AWQ4;
			struct vk_push mv = {.u = {(uint32_t)w->k, (uint32_t)w->n, (uint32_t)rows,
						   q4 ? (uint32_t)w->group_size : 0, 0}};
			uint32_t groups = vk_matvec_groups(c, w->n, 4);
			const int norm2 = vn->pre_add >= 0 && rows == 1; /* x' and the norm's partials (epinorm.glsl) */
			if (norm2) {
				mv.u[5] = norm2_partials(w->k);
				mv.f0 = g->nodes[c->nodes[vn->pre_add].norm].p.norm.eps;
			}
			rc = vk_pipe_get(c, q4 ? q4_matvec(c, 1, 0, w, rows, norm2 ? Q4_NORM2 : Q4_PLAIN, &groups) : "matvec_dense_silu",
					 q4 ? 0 : vk_dt_code(w->dtype), c->mv_wg, 0, &p, err, errlen);
			vk_grid(groups, &gx, &gy);
			if (!rc)
				vk_dispatch(cb, c, p, vn->set[norm2 ? 2 : 1], &mv, gx, gy, 1);
			return rc;
		}
		/* fall through */
	case AWQ_OP_SIGMOID_MUL: /* eltwise.comp: 0 add, 1 SiLU-mul, 2 sigmoid(gate column) * x */
		pc.u[0] = (uint32_t)rows * (uint32_t)cols;
		pc.u[1] = (uint32_t)cols;
		rc = vk_pipe_get(c, "eltwise", n->op == AWQ_OP_ADD ? 0 : n->op == AWQ_OP_SILU_MUL ? 1 : 2, 0, 0, &p, err,
				 errlen);
		vk_grid((pc.u[0] + 255) / 256, &gx, &gy);
		if (!rc)
			vk_dispatch(cb, c, p, vn->set[0], &pc, gx, gy, 1);
		return rc;
	case AWQ_OP_ARGMAX: {
		const uint32_t nc = (uint32_t)g->values[n->in[0]].cols, slices = vk_argmax_slices(rows, (int)nc);
		pc.u[0] = nc;
		rc = vk_pipe_get(c, "argmax", 0, 0, 0, &p, err, errlen);
		if (rc)
			return rc;
		if (slices && (VkDeviceSize)slices * 8 <= c->amax_part.size) { /* one long row: split, then merged */
			pc.u[1] = 1;
			vk_dispatch(cb, c, p, vn->set[0], &pc, slices, 1, 1);
			vk_barrier_compute(cb);
			pc.u[1] = 2;
			pc.u[2] = slices;
			vk_dispatch(cb, c, p, vn->set[0], &pc, 1, 1, 1);
		} else {
			vk_dispatch(cb, c, p, vn->set[0], &pc, (uint32_t)rows, 1, 1);
		}
		return rc;
	}
	case AWQ_OP_LAST_ROWS: {
		VkDeviceSize row = (VkDeviceSize)cols * 4;
		VkBufferCopy bc = {c->offsets[n->in[0]] + (s->all_rows ? 0 : (VkDeviceSize)(s->n_tokens - 1) * row),
				   c->offsets[n->out], (VkDeviceSize)rows * row};
		vkCmdCopyBuffer(cb, c->arena.buf, c->arena.buf, 1, &bc);
		return 0;
	}
	default:
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "the Vulkan backend does not run %s", awq_op_name(n->op));
	}
}

static void rec_readback(struct vk_ctx *c, VkCommandBuffer cb, const struct awq_step *s)
{
	const struct awq_graph *g = c->g;
	VkBufferCopy bc[2];
	uint32_t n = 0;
	if (g->logits_out >= 0)
		bc[n++] = (VkBufferCopy){c->offsets[g->logits_out], c->rb_logits_off,
					 (VkDeviceSize)awq_value_rows(g, g->logits_out, s) * g->values[g->logits_out].cols * 4};
	if (g->argmax_out >= 0)
		bc[n++] = (VkBufferCopy){c->offsets[g->argmax_out], c->rb_argmax_off,
					 (VkDeviceSize)awq_value_rows(g, g->argmax_out, s) * 4};
	if (n)
		vkCmdCopyBuffer(cb, c->arena.buf, c->readback.buf, n, bc);
	VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
			      .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
	vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
}



static int runs_in(const struct vk_ctx *c, const struct awq_step *s, int i)
{
	const struct vk_node *vn = &c->nodes[i];
	const int rows = awq_value_rows(c->g, c->g->nodes[i].out, s);
	return !awq_knockout(c->g, i, rows) && !vn->skip && !(vn->decode_skip && rows <= VK_MATVEC_ROWS) &&
	       !(vn->epi_add && rows == 1);
}

/* runs_in, and in the sampled chain (chain 2) no argmax: it draws from its own top-k (chain_sample
 * does not read the argmax), 11 us per step on a 152k row (session 31). */
static int runs_chained(const struct vk_ctx *c, const struct awq_step *s, int i, int chain)
{
	return runs_in(c, s, i) && !(chain == 2 && c->g->nodes[i].op == AWQ_OP_ARGMAX);
}

/* Whether the arena ranges of values a and b (as planned: max_tokens rows) overlap. */
static int overlap(const struct vk_ctx *c, int a, int b)
{
	const size_t ea = c->offsets[a] + (size_t)c->max_tokens * (size_t)c->g->values[a].cols * 4;
	const size_t eb = c->offsets[b] + (size_t)c->max_tokens * (size_t)c->g->values[b].cols * 4;
	return c->offsets[a] < eb && c->offsets[b] < ea;
}

/* The barrier between node i and the next node that runs, j (-1: the readback copy follows).
 * Every node waits for the one before (a compute-to-compute barrier), except that MATMULs of one
 * input in a row (q, k, v; prefill's gate and up) run without one between them, so that their
 * grids overlap instead of each draining the GPU: a MATMUL reads only its input and weights and
 * writes only its output, so j may skip the barrier when its output is apart from its input and
 * from every output written since the last barrier (outs[0..*n_outs)). Transfers (LAST_ROWS, the
 * readback) get the full barrier of vk_barrier. AWQ_VK_BARRIERS=full: vk_barrier after every node. */
enum vk_bar { BAR_NONE, BAR_COMPUTE, BAR_FULL };
static enum vk_bar barrier_after(const struct vk_ctx *c, int i, int j, int *outs, int *n_outs)
{
	const struct awq_node *a = &c->g->nodes[i], *b = j >= 0 ? &c->g->nodes[j] : NULL;
	if (c->full_barriers || !b || a->op == AWQ_OP_LAST_ROWS || b->op == AWQ_OP_LAST_ROWS)
		return BAR_FULL;
	if (a->op == AWQ_OP_MATMUL && b->op == AWQ_OP_MATMUL && a->in[0] == b->in[0] && *n_outs < 8 &&
	    !overlap(c, b->out, b->in[0])) {
		int clash = 0;
		for (int k = 0; k < *n_outs; k++)
			clash |= overlap(c, b->out, outs[k]) || overlap(c, outs[k], b->in[0]);
		if (!clash) {
			outs[(*n_outs)++] = b->out;
			return BAR_NONE;
		}
	}
	return BAR_COMPUTE;
}

uint32_t vk_argmax_slices(int rows, int cols)
{
	return rows == 1 && cols >= 2 * VK_ARGMAX_SLICE ? (uint32_t)((cols + VK_ARGMAX_SLICE - 1) / VK_ARGMAX_SLICE) : 0;
}

int vk_topk_levels(int cols, int k, uint32_t *groups, uint32_t *in_n, uint32_t *out, uint32_t *total)
{
	uint32_t n = (uint32_t)cols, at = 0;
	int l = 0;
	do {
		groups[l] = (n + VK_TOPK_PER_GROUP - 1) / VK_TOPK_PER_GROUP;
		in_n[l] = n;
		out[l] = at;
		n = groups[l] * (uint32_t)k;
		at += n;
	} while (groups[l++] > 1 && l < 8);
	*total = at;
	return l;
}

/* The sampled chain's top-k (topk_part.comp): each level's workgroups take the k best of 4096
 * entries each, from the logits' first row, then from the level before, until one workgroup is
 * left; returns where its ranked k start in the topk buffer, or -1 (an error in err). */
static long rec_topk(struct vk_ctx *c, VkCommandBuffer cb, int k, char *err, size_t errlen)
{
	uint32_t gr[8], in_n[8], out[8], total;
	const int n = vk_topk_levels(c->g->values[c->g->logits_out].cols, k, gr, in_n, out, &total);
	VkPipeline p;
	if (gr[n - 1] != 1 || (VkDeviceSize)total * 8 > c->topk.size) {
		awq_err(err, errlen, AWQ_EINVAL, "the top-%d levels over %d columns do not fit their buffer", k,
			c->g->values[c->g->logits_out].cols);
		return -1;
	}
	if (vk_pipe_get(c, "topk_part", 0, 0, 0, &p, err, errlen))
		return -1;
	for (int l = 0; l < n; l++) {
		struct vk_push pc = {.u = {in_n[l], (uint32_t)k, l ? out[l - 1] : 0xffffffffu, out[l]}};
		vk_dispatch(cb, c, p, c->chain_set, &pc, gr[l], 1, 1);
		vk_barrier_compute(cb);
	}
	return out[n - 1];
}

/* chain.comp after a chained one-token step (vk_chain): its argmax to the next step's token input and
 * the host's ring, the position and RoPE rows advanced; then made visible to the host. Sampled
 * (chain_sample): the top-k levels first, at the top-k the chain was recorded for (chain_k). */
static int rec_chain_tail(struct vk_ctx *c, VkCommandBuffer cb, int sampled, char *err, size_t errlen)
{
	VkPipeline p;
	long at = 0;
	if (sampled && (at = rec_topk(c, cb, c->chain_k, err, errlen)) < 0)
		return AWQ_EINVAL;
	struct vk_push pc = {.u = {(uint32_t)c->n_ropes, (uint32_t)c->max_ctx, (uint32_t)at}};
	int rc = vk_pipe_get(c, sampled ? "chain_sample" : "chain", 0, 0, 0, &p, err, errlen);
	if (rc)
		return rc;
	vk_dispatch(cb, c, p, c->chain_set, &pc, 1, 1, 1);
	VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
			      .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
	vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0,
			     NULL);
	return 0;
}

/* chain: a one-token step of the greedy chain (1; 2: the sampled chain), which starts after everything
 * before it in the queue (the step before wrote its token and position) and ends in chain.comp
 * (chain_sample) instead of the readback copy */
static int record(struct vk_ctx *c, struct vk_cmd *m, const struct awq_step *s, int chain, char *err, size_t errlen)
{
	VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
	int rc = vk_check(c, vkBeginCommandBuffer(m->cb, &bi), "vkBeginCommandBuffer", err, errlen);
	if (rc)
		return rc;
	if (chain)
		vk_barrier(m->cb);
	const int n_nodes = c->g->n_nodes;
	if (c->profile) {
		vkCmdResetQueryPool(m->cb, c->qpool, 0, (uint32_t)n_nodes + 1);
		vkCmdWriteTimestamp(m->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, c->qpool, 0);
	}
	int outs[8], n_outs = 0;
	const long d0 = c->rec_dispatch;
	m->n_barrier = 0;
	for (int i = 0; i < n_nodes && !rc; i++) {
		if (runs_chained(c, s, i, chain)) {
			rc = rec_node(c, m->cb, i, s, err, errlen);
			int j = i + 1;
			while (j < n_nodes && !runs_chained(c, s, j, chain))
				j++;
			if (n_outs == 0)
				outs[n_outs++] = c->g->nodes[i].out;
			enum vk_bar b = barrier_after(c, i, j < n_nodes ? j : -1, outs, &n_outs);
			if (b != BAR_NONE) {
				if (b == BAR_FULL)
					vk_barrier(m->cb);
				else
					vk_barrier_compute(m->cb);
				n_outs = 0;
				m->n_barrier++;
			}
		}
		if (c->profile)
			vkCmdWriteTimestamp(m->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, (uint32_t)i + 1);
	}
	if (!chain)
		rec_readback(c, m->cb, s);
	else if (!rc)
		rc = rec_chain_tail(c, m->cb, chain == 2, err, errlen);
	m->n_dispatch = (int)(c->rec_dispatch - d0);
	int rc2 = vk_check(c, vkEndCommandBuffer(m->cb), "vkEndCommandBuffer", err, errlen);
	return rc ? rc : rc2;
}

/* The command buffer of this step shape: cached, else recorded into a free or the oldest slot. */
static int step_cmd(struct vk_ctx *c, const struct awq_step *s, VkCommandBuffer *out, char *err, size_t errlen)
{
	struct vk_cmd *m = NULL;
	const int span = vk_attn_span(c, s->n_tokens, s->pos + s->n_tokens);
	for (int i = 0; i < VK_MAX_CMDS; i++) {
		struct vk_cmd *x = &c->cmds[i];
		if (x->n_tokens == s->n_tokens && x->all_rows == (int)s->all_rows && x->span == span) {
			m = x;
			goto found;
		}
		if (!m || (m->n_tokens && (!x->n_tokens || x->last_use < m->last_use)))
			m = x;
	}
	if (!m->cb) {
		VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
						  .commandPool = c->cpool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
						  .commandBufferCount = 1};
		int rc = vk_check(c, vkAllocateCommandBuffers(c->dev, &ai, &m->cb), "vkAllocateCommandBuffers", err, errlen);
		if (rc)
			return rc;
	} else {
		vkResetCommandBuffer(m->cb, 0);
	}
	m->n_tokens = 0;
	c->rec_span = span;
	int rc = record(c, m, s, 0, err, errlen);
	if (rc)
		return rc;
	m->n_tokens = s->n_tokens;
	m->all_rows = s->all_rows;
	m->span = span;
found:
	m->last_use = ++c->cmd_clock;
	*out = m->cb;
	if (s->n_tokens == 1)
		c->dec_dispatch = m->n_dispatch, c->dec_barrier = m->n_barrier;
	return 0;
}

static void profile_collect(struct vk_ctx *c)
{
	uint64_t t[4096];
	const int n = c->prof_nodes;
	if (!c->prof_pending || n + 1 > (int)(sizeof(t) / sizeof(t[0])))
		return;
	c->prof_pending = 0;
	if (vkGetQueryPoolResults(c->dev, c->qpool, 0, (uint32_t)n + 1, sizeof(t), t, sizeof(uint64_t),
				  VK_QUERY_RESULT_64_BIT) != VK_SUCCESS)
		return;
	if (c->prof_single && !c->node_dec_ms)
		c->node_dec_ms = calloc((size_t)c->g->n_nodes, sizeof(double));
	for (int i = 0; i < n; i++) {
		enum awq_op op = c->g->nodes[i].op;
		double ms = (double)(t[i + 1] - t[i]) * c->props.limits.timestampPeriod * 1e-6;
		c->op_ms[op] += ms;
		c->op_count[op]++;
		if (c->prof_single) {
			c->dec_ms[op] += ms;
			if (c->node_dec_ms)
				c->node_dec_ms[i] += ms;
		}
	}
	c->dec_steps += c->prof_single;
}

static int settle(struct vk_ctx *c, char *err, size_t errlen)
{
	int rc = vk_wait(c, err, errlen);
	if (!rc && c->profile)
		profile_collect(c);
	return rc;
}

/* The decode steps' mat-vecs by weight shape: time per call and the weight bytes it read per second
 * (a fused gate/up SILU_MUL counts both weights), to set against the device's read bandwidth. */
static void profile_matvecs(const struct vk_ctx *c)
{
	struct shape {
		const struct awq_weight *w; /* the first of its shape */
		int nw;                     /* weights per call (2: fused gate/up) */
		long calls;
		double ms;
	} sh[32];
	int ns = 0;
	if (!c->node_dec_ms)
		return;
	for (int i = 0; i < c->g->n_nodes; i++) {
		const struct awq_node *n = &c->g->nodes[i];
		const struct vk_node *vn = &c->nodes[i];
		const struct awq_weight *w = n->op == AWQ_OP_MATMUL && !vn->decode_skip ? n->w
					     : n->op == AWQ_OP_SILU_MUL && vn->silu_gate >= 0 ? c->g->nodes[vn->silu_gate].w
											      : NULL;
		if (!w || c->node_dec_ms[i] <= 0)
			continue;
		int nw = n->op == AWQ_OP_SILU_MUL ? 2 : 1, j = 0;
		while (j < ns && !(sh[j].nw == nw && sh[j].w->n == w->n && sh[j].w->k == w->k && sh[j].w->fmt == w->fmt &&
				   sh[j].w->dtype == w->dtype))
			j++;
		if (j == ns) {
			if (ns == (int)(sizeof(sh) / sizeof(sh[0])))
				continue;
			sh[ns++] = (struct shape){.w = w, .nw = nw};
		}
		sh[j].calls++;
		sh[j].ms += c->node_dec_ms[i];
	}
	if (ns)
		fprintf(stderr, "awqrun vulkan profile: decode mat-vecs by weight shape (n x k):\n");
	for (int j = 0; j < ns; j++) {
		double us = 1e3 * sh[j].ms / (double)c->dec_steps / (double)sh[j].calls;
		double bytes = (double)sh[j].nw * (double)awq_weight_bytes(sh[j].w);
		fprintf(stderr, "  %-9s %s %6lld x %-6lld %3ld per step %8.1f us per call %8.1f GB/s\n",
			sh[j].nw == 2 ? "gate+up" : "matmul", sh[j].w->fmt == AWQ_WFMT_AWQ4 ? "awq4" : awq_dtype_name(sh[j].w->dtype),
			(long long)sh[j].w->n, (long long)sh[j].w->k, sh[j].calls, us, bytes / (us * 1e3));
	}
}

void vk_profile_report(struct vk_ctx *c)
{
	double total = 0;
	for (int i = 0; i < AWQ_OP_COUNT; i++)
		total += c->op_ms[i];
	if (!c->profile || total <= 0)
		return;
	fprintf(stderr, "awqrun vulkan profile (GPU time per op, all steps):\n");
	for (int i = 0; i < AWQ_OP_COUNT; i++)
		if (c->op_count[i])
			fprintf(stderr, "  %-10s %10.3f ms %6.1f%%  %ld dispatches\n", awq_op_name((enum awq_op)i), c->op_ms[i],
				100 * c->op_ms[i] / total, c->op_count[i]);
	/* The decode steps alone, per step: compare with the step's wall time (1 / tok/s) to split the
	 * GPU's work (timestamps between nodes, barriers included) from the host and submit cost. */
	double dec = 0;
	for (int i = 0; i < AWQ_OP_COUNT; i++)
		dec += c->dec_ms[i];
	if (c->dec_steps <= 0 || dec <= 0)
		return;
	fprintf(stderr, "awqrun vulkan profile: %ld single-token steps, %.3f ms of GPU time per step, %d dispatches and %d barriers (nodes' and rows' barriers, not the inner ones of MoE or attention) per step:\n",
		c->dec_steps, dec / (double)c->dec_steps, c->dec_dispatch, c->dec_barrier);
	for (int i = 0; i < AWQ_OP_COUNT; i++)
		if (c->dec_ms[i] > 0)
			fprintf(stderr, "  %-10s %10.1f us per step %6.1f%%\n", awq_op_name((enum awq_op)i),
				1e3 * c->dec_ms[i] / (double)c->dec_steps, 100 * c->dec_ms[i] / dec);
	profile_matvecs(c);
}

/* A RoPE slot's cos and sin rows (head_dim / 2 each) for position pos: write_step's per step, and
 * chain.comp's table of every position (vk_prepare.c), so that both hold the same values. */
void vk_rope_row(const struct vk_rope_slot *r, int pos, float *cos_row, float *sin_row)
{
	for (int k = 0; k < r->head_dim / 2; k++) {
		float ang = (float)pos * r->pos_scale * r->inv_freq[k];
		cos_row[k] = cosf(ang);
		sin_row[k] = sinf(ang);
	}
}

/* The pending input uploads' command buffers into cbs (at most max), marked submitted. */
static uint32_t take_uploads(struct vk_ctx *c, VkCommandBuffer *cbs, uint32_t max)
{
	uint32_t n = 0;
	for (int v = 0; v < c->g->n_values; v++)
		if (c->uploads[v].pending && n < max) {
			cbs[n++] = c->uploads[v].cb;
			c->uploads[v].pending = 0;
		}
	return n;
}

static void write_step(struct vk_ctx *c, const struct awq_step *s)
{
	int32_t *h = c->step.map;
	float *tab = (float *)(h + 4);
	h[0] = s->pos;
	h[1] = s->n_tokens;
	h[2] = s->all_rows;
	h[3] = 0;
	for (int i = 0; i < c->n_ropes; i++) {
		const struct vk_rope_slot *r = &c->ropes[i];
		const int half = r->head_dim / 2;
		for (int row = 0; row < s->n_tokens; row++)
			vk_rope_row(r, s->pos + row, tab + r->cos_off + row * half, tab + r->sin_off + row * half);
	}
	vk_flush(c, &c->step);
}

int vk_run(void *ctx, const struct awq_step *s, char *err, size_t errlen)
{
	struct vk_ctx *c = ctx;
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "run before prepare");
	if (s->n_tokens < 1 || s->n_tokens > c->max_tokens || s->pos < 0 || s->pos + s->n_tokens > c->max_ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG, "step of %d tokens at position %d exceeds %d tokens / %d context",
			       s->n_tokens, s->pos, c->max_tokens, c->max_ctx);
	int rc = settle(c, err, errlen);
	VkCommandBuffer cbs[64], cb;
	uint32_t n = 0;
	if (!rc)
		rc = step_cmd(c, s, &cb, err, errlen);
	if (rc)
		return rc;
	write_step(c, s);
	n = take_uploads(c, cbs, 63);
	cbs[n++] = cb;
	VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = n, .pCommandBuffers = cbs};
	rc = vk_check(c, vkQueueSubmit(c->queue, 1, &si, c->fence), "vkQueueSubmit", err, errlen);
	if (rc)
		return rc;
	c->inflight = 1;
	c->prof_pending = c->profile;
	c->prof_nodes = c->g->n_nodes;
	c->prof_single = s->n_tokens == 1;
	c->rb_rows = awq_value_rows(c->g, c->g->logits_out >= 0 ? c->g->logits_out : 0, s);
	return 0;
}

static void invalidate(struct vk_ctx *c, struct vk_buf *b);

static int chain_setup(struct vk_ctx *c, int sampled, int span, char *err, size_t errlen);

/* Submit the chain's recorded step k for a step at position pos (sampled: the sampled chain's; the
 * command buffers of pos's span, recorded now if not yet; with the pending input uploads when uploads
 * is set). */
static int chain_submit(struct vk_ctx *c, int sampled, int k, int pos, int uploads, char *err, size_t errlen)
{
	VkCommandBuffer cbs[64];
	const int span = vk_attn_span(c, 1, pos + 1);
	if (!c->chain_cb[sampled][span][1]) {
		int rc = chain_setup(c, sampled, span, err, errlen);
		if (rc)
			return rc;
	}
	uint32_t n = uploads ? take_uploads(c, cbs, 63) : 0;
	cbs[n++] = c->chain_cb[sampled][span][k];
	VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = n, .pCommandBuffers = cbs};
	int rc = vk_check(c, vkQueueSubmit(c->queue, 1, &si, c->chain_fence[k]), "vkQueueSubmit", err, errlen);
	if (!rc)
		c->chain_inflight[k] = 1;
	return rc;
}

/* The chain's two command buffers of a kind (sampled or greedy) and span (one may be pending while
 * the other is submitted) and the fences all of them use. */
static int chain_setup(struct vk_ctx *c, int sampled, int span, char *err, size_t errlen)
{
	const struct awq_step s = {.n_tokens = 1};
	for (int k = 0; k < 2; k++) {
		VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
						  .commandPool = c->cpool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
						  .commandBufferCount = 1};
		VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
		struct vk_cmd m = {0};
		int rc = vk_check(c, vkAllocateCommandBuffers(c->dev, &ai, &m.cb), "vkAllocateCommandBuffers", err, errlen);
		if (!rc && !c->chain_fence[k])
			rc = vk_check(c, vkCreateFence(c->dev, &fi, NULL, &c->chain_fence[k]), "vkCreateFence", err, errlen);
		c->rec_span = span;
		if (!rc)
			rc = record(c, &m, &s, sampled ? 2 : 1, err, errlen);
		if (rc) {
			if (m.cb)
				vkFreeCommandBuffers(c->dev, c->cpool, 1, &m.cb);
			return rc;
		}
		c->chain_cb[sampled][span][k] = m.cb;
	}
	return 0;
}

/* The backend's decode_chain: step i's command buffer (chain_cb[i & 1]) goes in before the host waits
 * for step i - 1, whose token it then reads from the ring; each step takes its token and position from
 * the one before on the device (chain.comp). */
int vk_chain(void *ctx, struct awq_chain *ch, char *err, size_t errlen)
{
	struct vk_ctx *c = ctx;
	if (!c->g)
		return awq_err(err, errlen, AWQ_EINVAL, "run before prepare");
	const int sampled = ch->sample != NULL;
	if (!c->chain_set || c->profile || c->max_tokens < 1 || (sampled && (!c->samp.buf || !c->topk.buf)))
		return AWQ_EUNSUPPORTED; /* a sampled chain without the device's draw: the core's steps */
	if (ch->pos < 0 || ch->n < 1 || ch->pos + ch->n > c->max_ctx)
		return awq_err(err, errlen, AWQ_ETOOBIG, "a chain of %d steps at position %d exceeds the context of %d",
			       ch->n, ch->pos, c->max_ctx);
	ch->steps = 0;
	if (sampled && (ch->sample->top_k < 1 || ch->sample->top_k > AWQ_TOPK_MAX ||
			ch->sample->top_k >= c->g->values[c->g->logits_out].cols))
		return awq_err(err, errlen, AWQ_EINVAL, "a sampled chain with top-k %d", ch->sample->top_k);
	int rc = settle(c, err, errlen);
	if (!rc && sampled && c->chain_k != ch->sample->top_k) {
		/* recorded for another top-k (its levels' sizes): recorded again (settle waited for them) */
		for (int span = 0; span < 2; span++) {
			vkFreeCommandBuffers(c->dev, c->cpool, 2, c->chain_cb[1][span]); /* (null handles are skipped) */
			c->chain_cb[1][span][0] = c->chain_cb[1][span][1] = VK_NULL_HANDLE;
		}
		c->chain_k = ch->sample->top_k;
	}
	if (rc)
		return rc;
	if (sampled) { /* the sampler's state for chain_sample, which advances its stream on the device */
		const struct awq_chain_sample *cs = ch->sample;
		uint32_t st[12];
		memcpy(&st[0], &cs->inv_t, 4);
		memcpy(&st[1], &cs->top_p, 4);
		memcpy(&st[2], &cs->min_p, 4);
		st[3] = (uint32_t)cs->top_k;
		for (int i = 0; i < 4; i++) {
			st[4 + 2 * i] = (uint32_t)cs->rng[i];
			st[5 + 2 * i] = (uint32_t)(cs->rng[i] >> 32);
		}
		memcpy(c->samp.map, st, sizeof(st));
		vk_flush(c, &c->samp);
	}
	const struct awq_step s0 = {.n_tokens = 1, .pos = ch->pos};
	write_step(c, &s0);
	c->rb_rows = 0; /* the readback holds no step's logits now: reads copy from the arena */
	rc = chain_submit(c, sampled, 0, ch->pos, 1, err, errlen);
	const volatile int32_t *ring = (const int32_t *)((const uint8_t *)c->readback.map + c->rb_ring_off);
	for (int i = 1; !rc; i++) {
		const int more = i < ch->n, k = (i - 1) & 1;
		if (more && (rc = chain_submit(c, sampled, i & 1, ch->pos + i, 0, err, errlen)))
			break;
		if ((rc = vk_chain_wait(c, k, err, errlen)))
			break;
		invalidate(c, &c->readback);
		const int32_t id = ring[(ch->pos + i - 1) & (VK_RING - 1)];
		ch->steps = i;
		if ((ch->on_token && ch->on_token(ch->user, id)) || !more)
			break;
	}
	return rc ? rc : vk_validation_status(c, err, errlen);
}

static int value_ok(struct vk_ctx *c, int v, int rows, const char *what, char *err, size_t errlen)
{
	if (!c->g || v < 0 || v >= c->g->n_values || rows < 1 || rows > c->max_tokens)
		return awq_err(err, errlen, AWQ_EINVAL, "%s of value %d with %d rows is out of range", what, v, rows);
	return 0;
}

int vk_write_value(void *ctx, int v, const void *src, int rows, char *err, size_t errlen)
{
	struct vk_ctx *c = ctx;
	int rc = value_ok(c, v, rows, "write", err, errlen);
	if (!rc)
		rc = settle(c, err, errlen);
	if (rc)
		return rc;
	struct vk_upload *u = &c->uploads[v];
	const VkDeviceSize row = (VkDeviceSize)c->g->values[v].cols * 4;
	if (!u->stage.buf) {
		rc = vk_buf_create(c, &u->stage, (VkDeviceSize)c->max_tokens * row, 1, "input staging", err, errlen);
		VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
						  .commandPool = c->cpool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
						  .commandBufferCount = 1};
		if (!rc)
			rc = vk_check(c, vkAllocateCommandBuffers(c->dev, &ai, &u->cb), "vkAllocateCommandBuffers", err, errlen);
		if (rc)
			return rc;
		u->rows = 0;
	}
	memcpy(u->stage.map, src, (size_t)(rows * row));
	vk_flush(c, &u->stage);
	if (u->rows != rows) {
		VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
		vkResetCommandBuffer(u->cb, 0);
		rc = vk_check(c, vkBeginCommandBuffer(u->cb, &bi), "vkBeginCommandBuffer", err, errlen);
		if (rc)
			return rc;
		VkBufferCopy bc = {0, c->offsets[v], (VkDeviceSize)rows * row};
		vkCmdCopyBuffer(u->cb, u->stage.buf, c->arena.buf, 1, &bc);
		vk_barrier(u->cb);
		rc = vk_check(c, vkEndCommandBuffer(u->cb), "vkEndCommandBuffer", err, errlen);
		if (rc)
			return rc;
		u->rows = rows;
	}
	u->pending = 1;
	return 0;
}

static void invalidate(struct vk_ctx *c, struct vk_buf *b)
{
	if (b->coherent)
		return;
	VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->mem, .size = VK_WHOLE_SIZE};
	vkInvalidateMappedMemoryRanges(c->dev, 1, &mr);
}

int vk_read_value(void *ctx, int v, void *dst, int rows, char *err, size_t errlen)
{
	struct vk_ctx *c = ctx;
	int rc = value_ok(c, v, rows, "read", err, errlen);
	if (!rc)
		rc = settle(c, err, errlen);
	if (rc)
		return rc;
	const size_t row = (size_t)c->g->values[v].cols * 4;
	if ((v == c->g->logits_out || v == c->g->argmax_out) && rows <= c->rb_rows) {
		invalidate(c, &c->readback);
		const uint8_t *src = (const uint8_t *)c->readback.map +
				     (v == c->g->logits_out ? c->rb_logits_off : c->rb_argmax_off);
		memcpy(dst, src, (size_t)rows * row);
		return 0;
	}
	struct vk_buf tmp;
	VkCommandBuffer cb;
	rc = vk_buf_create(c, &tmp, (VkDeviceSize)rows * row, 2, "readback", err, errlen);
	if (!rc)
		rc = vk_begin_once(c, &cb, err, errlen);
	if (!rc) {
		VkBufferCopy bc = {c->offsets[v], 0, (VkDeviceSize)rows * row};
		vkCmdCopyBuffer(cb, c->arena.buf, tmp.buf, 1, &bc);
		VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
				      .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
		vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0,
				     NULL);
		rc = vk_submit_wait(c, cb, err, errlen);
	}
	if (!rc) {
		invalidate(c, &tmp);
		memcpy(dst, tmp.map, (size_t)rows * row);
	}
	vk_buf_destroy(c, &tmp);
	return rc;
}

int vk_sync(void *ctx, char *err, size_t errlen)
{
	return settle(ctx, err, errlen);
}

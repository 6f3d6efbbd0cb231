/* The CPU executor: one node at a time on the planned f32 arena. Matmuls split their output columns
 * over the thread pool (and, in prefill, row blocks too), attention splits (row, head) pairs, the
 * element-wise ops split rows. With cpu_scalar every op runs the reference of cpu_ref.h. */
#include <math.h>
#include <string.h>

#include "cpu_backend.h"
#include "cpu_ref.h"
#include "error.h"

#define ROW_BLOCK 16 /* prefill rows per matmul work item: a weight tile is reused this often */

static float *val(struct cpu_ctx *c, int v)
{
	return (float *)(c->arena + c->offsets[v]);
}

/* Tied weights are distinct structs over one storage. */
static int same_storage(const struct awq_weight *a, const struct awq_weight *b)
{
	if (a == b)
		return 1;
	if (a->fmt != b->fmt || a->n != b->n || a->k != b->k)
		return 0;
	return a->fmt == AWQ_WFMT_DENSE ? a->data == b->data && a->dtype == b->dtype && a->bias == b->bias
					: a->qweight == b->qweight && a->bias == b->bias;
}

const struct cpu_weight *awq_cpu_find_weight(const struct cpu_ctx *c, const struct awq_weight *w)
{
	for (int i = 0; i < c->n_weights; i++)
		if (same_storage(c->weights[i].w, w))
			return &c->weights[i];
	return NULL;
}

/* --- matmul ---------------------------------------------------------------------------------- */

enum mm_kind { MM_REF, MM_Q4, MM_Q4_F32, MM_DENSE };

struct mm_job {
	struct cpu_ctx *c;
	enum mm_kind kind;
	const struct awq_weight *w;
	const struct awq_cpu_q4 *q4;
	const float *x;
	float *out;
	int rows, n_rb;
	int unit; /* output columns per work item */
};

static void mm_cols(struct mm_job *j, int r0, int r1, int64_t u0, int64_t u1)
{
	const struct awq_cpu_kernels *k = j->c->k;
	int64_t n0 = u0 * j->unit, n1 = u1 * j->unit < j->w->n ? u1 * j->unit : j->w->n;
	switch (j->kind) {
	case MM_Q4: k->q4(j->q4, &j->c->qa, r0, r1, u0, u1, j->out); break;
	case MM_Q4_F32: k->q4_f32(j->q4, j->x, r0, r1, u0, u1, j->out); break;
	case MM_DENSE: k->dense(j->w, j->x, j->c->xp, r0, r1, n0, n1, j->out); break;
	case MM_REF:
		awq_ref_matmul_cols(j->x + (size_t)r0 * (size_t)j->w->k, r1 - r0, j->w, n0, n1,
				    j->out + (size_t)r0 * (size_t)j->w->n);
		break;
	}
}

/* Items are (column unit, row block) pairs, column-major, so a thread's contiguous range covers all
 * row blocks of its columns and reads each weight once. */
static void mm_part(void *ctx, int b, int e, int t)
{
	struct mm_job *j = ctx;
	(void)t;
	if (j->n_rb == 1) {
		mm_cols(j, 0, j->rows, b, e);
		return;
	}
	for (int it = b; it < e; it++) {
		int u = it / j->n_rb, r0 = it % j->n_rb * ROW_BLOCK;
		mm_cols(j, r0, r0 + ROW_BLOCK < j->rows ? r0 + ROW_BLOCK : j->rows, u, u + 1);
	}
}

struct prep_job {
	struct cpu_ctx *c;
	const float *x;
	int k;
};

static void quant_part(void *ctx, int b, int e, int t)
{
	struct prep_job *j = ctx;
	(void)t;
	j->c->k->quantize(j->x, b, e, &j->c->qa);
}

static void permute_part(void *ctx, int b, int e, int t)
{
	struct prep_job *j = ctx;
	(void)t;
	awq_cpu_permute_bf16(j->x, b, e, j->k, j->c->k->bf16_block, j->c->xp);
}

static int prepared(struct cpu_prepared *p, int vid, int rows, int group)
{
	if (p->vid == vid && p->rows == rows && p->group == group)
		return 1;
	p->vid = vid;
	p->rows = rows;
	p->group = group;
	return 0;
}

/* Small inputs are cheaper to prepare on the calling thread than to hand to the pool. */
static void prep_rows(struct cpu_ctx *c, awq_pool_fn fn, struct prep_job *j, int rows)
{
	if ((size_t)rows * (size_t)j->k <= 16384)
		fn(j, 0, rows, 0);
	else
		awq_pool_run(c->pool, fn, j, rows, 1);
}

static void matmul(struct cpu_ctx *c, const struct awq_node *n, const float *x, int rows, float *out)
{
	const struct cpu_weight *cw = awq_cpu_find_weight(c, n->w);
	struct mm_job j = {.c = c, .kind = MM_REF, .w = n->w, .x = x, .out = out, .rows = rows, .unit = 8};
	struct prep_job pj = {c, x, (int)n->w->k};
	if (c->k && cw && cw->q4.q) {
		j.q4 = &cw->q4;
		j.unit = AWQ_CPU_TILE;
		j.kind = c->exact ? MM_Q4_F32 : MM_Q4;
		if (j.kind == MM_Q4 && !prepared(&c->qa_of, n->in[0], rows, awq_cpu_qblock(n->w))) {
			c->qa.rows = rows;
			c->qa.k = (int)n->w->k;
			c->qa.group = awq_cpu_qblock(n->w);
			prep_rows(c, quant_part, &pj, rows);
		}
	} else if (c->k && n->w->fmt == AWQ_WFMT_DENSE) {
		j.kind = MM_DENSE;
		if (cw && cw->copy.data)
			j.w = &cw->copy;
		j.unit = 4;
		if (n->w->dtype == AWQ_DT_BF16 && !prepared(&c->xp_of, n->in[0], rows, 0))
			prep_rows(c, permute_part, &pj, rows);
	}
	int units = (int)((n->w->n + j.unit - 1) / j.unit);
	j.n_rb = rows > ROW_BLOCK ? (rows + ROW_BLOCK - 1) / ROW_BLOCK : 1;
	awq_pool_run(c->pool, mm_part, &j, units * j.n_rb, j.n_rb);
}

/* --- attention ------------------------------------------------------------------------------- */

struct attn_job {
	struct cpu_ctx *c;
	const struct awq_node *n;
	const float *q, *kc, *vc;
	float *out;
	int pos, sub; /* sub: parts of a KV head's group of query heads, one unit each */
};

static void attn_part(void *ctx, int b, int e, int t)
{
	struct attn_job *j = ctx;
	const int hq = j->n->p.attn.n_heads, hk = j->n->p.attn.n_kv_heads, d = j->n->p.attn.head_dim;
	const int group = hq / hk;
	const int64_t q_dim = (int64_t)hq * d, head = (int64_t)j->c->max_ctx * d; /* a KV head's rows */
	float *p = j->c->attn_p + (size_t)t * AWQ_CPU_ATTN_G * (size_t)j->c->max_ctx;
	for (int it = b; it < e; it++) {
		const int r = it / (hk * j->sub), kh = it / j->sub % hk, part = it % j->sub;
		const int h0 = kh * group + part * group / j->sub, h1 = kh * group + (part + 1) * group / j->sub;
		j->c->k->attn_group(j->q + r * q_dim + h0 * d, j->kc + kh * head, j->vc + kh * head, d, j->pos + r + 1, d,
				    h1 - h0, j->n->p.attn.scale, p, j->out + r * q_dim + h0 * d);
	}
}

static void attention(struct cpu_ctx *c, const struct awq_node *n, const struct awq_step *s, int rows, float *out)
{
	const int64_t kv_dim = (int64_t)c->g->kv_heads * c->g->head_dim;
	float *kc = c->kv + (size_t)n->p.attn.layer * 2 * (size_t)c->max_ctx * (size_t)kv_dim;
	float *vc = kc + (size_t)c->max_ctx * (size_t)kv_dim;
	const float *q = val(c, n->in[0]), *k = val(c, n->in[1]), *v = val(c, n->in[2]);
	if (!c->k) {
		awq_ref_attention(q, k, v, rows, s->pos, n->p.attn.n_heads, n->p.attn.n_kv_heads, n->p.attn.head_dim,
				  n->p.attn.scale, kc, vc, out);
		return;
	}
	/* The kernels' cache is head-major (each KV head's rows side by side, max_ctx of them): a
	 * head's walk over its positions is one stream. Position-major, a head's rows were 4 KiB
	 * apart at 8 heads of 128 (qwen3-0.6b/8b): a new page per row for K and for V, where the
	 * hardware prefetchers stop and the TLB misses. (The reference path above keeps its own
	 * position-major layout.) */
	const int hk = n->p.attn.n_kv_heads, d = n->p.attn.head_dim;
	for (int r = 0; r < rows; r++)
		for (int h = 0; h < hk; h++) {
			const size_t dst = ((size_t)h * (size_t)c->max_ctx + (size_t)s->pos + (size_t)r) * (size_t)d;
			memcpy(kc + dst, k + (size_t)r * (size_t)kv_dim + (size_t)h * d, (size_t)d * sizeof(float));
			memcpy(vc + dst, v + (size_t)r * (size_t)kv_dim + (size_t)h * d, (size_t)d * sizeof(float));
		}
	/* A unit is one row's KV head with its query heads (each K/V row read once for them), split
	 * in parts of at most AWQ_CPU_ATTN_G heads, and in more parts (to one head each) while the
	 * units are fewer than twice the threads: a decode step of qwen3-8b has 8 KV heads. */
	const int group = n->p.attn.n_heads / hk;
	int sub = (group + AWQ_CPU_ATTN_G - 1) / AWQ_CPU_ATTN_G;
	while (sub < group && rows * hk * sub < 2 * c->threads)
		sub++;
	struct attn_job j = {c, n, q, kc, vc, out, s->pos, sub};
	awq_pool_run(c->pool, attn_part, &j, rows * hk * sub, 1);
}

/* --- RoPE and row-wise ops ------------------------------------------------------------------- */

static void rope_tables(struct cpu_ctx *c, const struct awq_node *n, int rows, int pos)
{
	const int d = n->p.rope.head_dim, half = d / 2;
	if (c->rope_of.rows == rows && c->rope_of.pos == pos && c->rope_of.dim == d &&
	    memcmp(&c->rope_of.cfg, &n->p.rope.rope, sizeof(c->rope_of.cfg)) == 0)
		return;
	float ps, *inv = c->rope_sin + (size_t)rows * (size_t)half; /* the table has a spare row */
	awq_rope_inv_freq(&n->p.rope.rope, d, inv, &ps);
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < half; i++) {
			float ang = (float)(pos + r) * ps * inv[i];
			c->rope_cos[(size_t)r * half + i] = cosf(ang);
			c->rope_sin[(size_t)r * half + i] = sinf(ang);
		}
	c->rope_of.rows = rows;
	c->rope_of.pos = pos;
	c->rope_of.dim = d;
	c->rope_of.cfg = n->p.rope.rope;
}

struct rows_job {
	struct cpu_ctx *c;
	const struct awq_node *n;
	const float *a, *b;
	float *out;
	int cols;
};

static void rows_part(void *ctx, int r0, int r1, int t)
{
	struct rows_job *j = ctx;
	const size_t off = (size_t)r0 * (size_t)j->cols, cnt = (size_t)(r1 - r0) * (size_t)j->cols;
	(void)t;
	switch (j->n->op) {
	case AWQ_OP_RMSNORM:
		awq_ref_rmsnorm(j->a + off, r1 - r0, j->cols, j->n->p.norm.group, j->n->p.norm.eps, j->n->w, j->out + off);
		break;
	case AWQ_OP_SILU_MUL: awq_ref_silu_mul(j->a + off, j->b + off, (int)cnt, j->out + off); break;
	case AWQ_OP_ADD: awq_ref_add(j->a + off, j->b + off, (int)cnt, j->out + off); break;
	case AWQ_OP_SIGMOID_MUL: /* a: one gate value per row */
		awq_ref_sigmoid_mul(j->a + r0, j->b + off, r1 - r0, j->cols, j->out + off);
		break;
	case AWQ_OP_ROPE: {
		const int d = j->n->p.rope.head_dim, half = d / 2;
		for (int r = r0; r < r1; r++)
			for (int h = 0; h < j->n->p.rope.n_heads; h++) {
				const float *x = j->a + (size_t)r * j->cols + (size_t)h * d;
				float *o = j->out + (size_t)r * j->cols + (size_t)h * d;
				const float *cs = j->c->rope_cos + (size_t)r * half, *sn = j->c->rope_sin + (size_t)r * half;
				for (int i = 0; i < half; i++) {
					float x1 = x[i], x2 = x[i + half];
					o[i] = x1 * cs[i] - x2 * sn[i];
					o[i + half] = x2 * cs[i] + x1 * sn[i];
				}
			}
		break;
	}
	default: break;
	}
}

/* A decode row is too little work to be worth waking the pool for. */
static void rows_op(struct cpu_ctx *c, const struct awq_node *n, int rows, int cols, float *out)
{
	struct rows_job j = {c, n, val(c, n->in[0]), n->in[1] >= 0 ? val(c, n->in[1]) : NULL, out, cols};
	if (rows == 1 || !c->k)
		rows_part(&j, 0, rows, 0);
	else
		awq_pool_run(c->pool, rows_part, &j, rows, 1);
}

int awq_cpu_run_node(struct cpu_ctx *c, const struct awq_node *n, const struct awq_step *s, char *err,
		     size_t errlen)
{
	const struct awq_graph *g = c->g;
	const int rows = awq_value_rows(g, n->out, s), cols = g->values[n->out].cols;
	float *out = val(c, n->out);
	const float *a = n->in[0] >= 0 ? val(c, n->in[0]) : NULL;

	switch (n->op) {
	case AWQ_OP_EMBED:
		if (awq_ref_embed(n->w, (const int32_t *)a, rows, out))
			return awq_err(err, errlen, AWQ_EINVAL, "a token id is outside the embedding table %s (%lld rows)",
				       n->w->name, (long long)n->w->n);
		break;
	case AWQ_OP_MATMUL: matmul(c, n, a, rows, out); break;
	case AWQ_OP_ROPE:
		if (c->k) {
			rope_tables(c, n, rows, s->pos);
			rows_op(c, n, rows, cols, out);
		} else {
			awq_ref_rope(a, rows, n->p.rope.n_heads, n->p.rope.head_dim, &n->p.rope.rope, s->pos, out);
		}
		break;
	case AWQ_OP_ATTENTION: attention(c, n, s, rows, out); break;
	case AWQ_OP_RMSNORM:
	case AWQ_OP_SILU_MUL:
	case AWQ_OP_SIGMOID_MUL:
	case AWQ_OP_ADD: rows_op(c, n, rows, cols, out); break;
	case AWQ_OP_LAST_ROWS:
		memcpy(out, a + (size_t)(s->all_rows ? 0 : s->n_tokens - 1) * cols, (size_t)rows * cols * sizeof(float));
		break;
	case AWQ_OP_MOE_ROUTE: awq_cpu_moe_route(&c->moe, n, a, rows, out); break;
	case AWQ_OP_MOE_EXPERTS:
		return awq_cpu_moe_experts(&c->moe, g, n, a, val(c, n->in[1]), rows, out, err, errlen);
	case AWQ_OP_ARGMAX: awq_ref_argmax(a, rows, g->values[n->in[0]].cols, (int32_t *)out); break;
	default:
		return awq_err(err, errlen, AWQ_EUNSUPPORTED, "the CPU backend does not run %s nodes",
			       awq_op_name(n->op));
	}
	return 0;
}

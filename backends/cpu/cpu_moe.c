/* MOE_ROUTE and MOE_EXPERTS on the CPU (cpu_moe.h). The per-expert matmuls are the backend's own
 * kernels (cpu_kernels.h): AWQ experts repacked once at prepare for the int8 dot-product kernel,
 * 16-bit experts read in place by the dense kernel. Work is split over (expert, block of output
 * columns) tasks of about equal cost, so in decode the eight or so selected experts still keep
 * every thread busy and each thread streams a disjoint slice of the weights. */
#include "cpu_moe.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ref.h"
#include "error.h"

enum set_path {
	PATH_Q4,     /* repacked AWQ, int8 activations */
	PATH_Q4_F32, /* repacked AWQ, f32 activations (AWQ_CPU_EXACT) */
	PATH_DENSE,  /* 16-bit / f32 weights in place */
	PATH_REF,    /* no SIMD kernel for these weights: the reference, column slice by slice */
};

struct awq_cpu_moe_set {
	const struct awq_experts *x;
	enum set_path path;
	int bf16;                /* PATH_DENSE on bf16: the kernel reads permuted activations */
	struct awq_cpu_q4 *q4;   /* gate, up, down of expert e at 3e, 3e + 1, 3e + 2 (repacked) */
};

struct awq_cpu_moe_task {
	int expert, n0, n1;
};

#define SERIAL_WORK 65536         /* below this many elements a phase runs on the calling thread */
#define TASK_COLS AWQ_CPU_TILE    /* column blocks are whole repacked tiles */

static const struct awq_weight *expert_w(const struct awq_experts *x, int e, int which)
{
	return which == 0 ? &x->gate[e] : which == 1 ? &x->up[e] : &x->down[e];
}

static void repack_part(void *ctx, int b, int e, int t)
{
	struct awq_cpu_moe_set *s = ctx;
	(void)t;
	for (int ex = b; ex < e; ex++)
		for (int i = 0; i < 3; i++) {
			struct awq_cpu_q4 *q = &s->q4[3 * ex + i];
			awq_cpu_q4_repack(expert_w(s->x, ex, i), q, 0, q->tiles);
		}
}

static int repack_set(struct awq_cpu_moe *m, struct awq_cpu_moe_set *s, char *err, size_t errlen)
{
	const struct awq_experts *x = s->x;
	s->q4 = calloc((size_t)x->n * 3, sizeof(*s->q4));
	if (!s->q4)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory repacking the experts of %s", x->gate[0].name);
	for (int e = 0; e < x->n; e++)
		for (int i = 0; i < 3; i++) {
			const struct awq_weight *w = expert_w(x, e, i);
			if (awq_cpu_q4_alloc(w, &s->q4[3 * e + i]))
				return awq_err(err, errlen, AWQ_ENOMEM, "out of memory repacking %s", w->name);
			m->weight_bytes += awq_cpu_q4_bytes(w);
		}
	awq_pool_run(m->pool, repack_part, s, x->n, 1);
	return 0;
}

static int init_set(struct awq_cpu_moe *m, struct awq_cpu_moe_set *s, const struct awq_experts *x, char *err,
		    size_t errlen)
{
	const struct awq_weight *g0 = &x->gate[0], *d0 = &x->down[0];
	s->x = x;
	for (int e = 0; e < x->n; e++)
		for (int i = 0; i < 3; i++) {
			const struct awq_weight *w = expert_w(x, e, i);
			if (!w->data && !w->qweight)
				return awq_err(err, errlen, AWQ_EINVAL,
					       "weight %s has no data (a shape-only model cannot run)", w->name);
		}
	s->path = PATH_REF;
	if (m->k && g0->fmt == AWQ_WFMT_DENSE) {
		s->path = PATH_DENSE;
		s->bf16 = g0->dtype == AWQ_DT_BF16;
	} else if (m->k && awq_cpu_q4_supported(g0) && awq_cpu_q4_supported(d0)) {
		s->path = m->exact ? PATH_Q4_F32 : PATH_Q4;
		return repack_set(m, s, err, errlen);
	}
	for (int e = 0; e < x->n; e++)
		for (int i = 0; i < 3; i++)
			m->weight_bytes += awq_weight_bytes(expert_w(x, e, i));
	return 0;
}

/* Address ranges: relational operators on pointers into different arrays are undefined in C. */
static int within(const struct awq_weight *w, const struct awq_weight *base, int n)
{
	uintptr_t p = (uintptr_t)w, b = (uintptr_t)base;
	return p >= b && p < b + (uintptr_t)n * sizeof(*base);
}

int awq_cpu_moe_owns(const struct awq_cpu_moe *m, const struct awq_weight *w)
{
	for (int i = 0; i < m->n_sets; i++) {
		const struct awq_experts *x = m->sets[i].x;
		if (x && (within(w, x->gate, x->n) || within(w, x->up, x->n) || within(w, x->down, x->n)))
			return 1;
	}
	return 0;
}

static void *scratch(struct awq_cpu_moe *m, size_t bytes, int *fail)
{
	size_t size = (bytes + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, size ? size : 64);
	*fail |= !p;
	m->scratch_bytes += size;
	return p;
}

/* per-group arrays sized for the smallest group the kernels take (8) */
static void qact_alloc(struct awq_cpu_moe *m, struct awq_cpu_qact *a, int rows, int k, int *fail)
{
	a->q = scratch(m, (size_t)rows * (size_t)k, fail);
	a->scale = scratch(m, (size_t)rows * (size_t)(k / 8) * sizeof(float), fail);
	a->sum = scratch(m, (size_t)rows * (size_t)(k / 8) * sizeof(int32_t), fail);
}

static int alloc_scratch(struct awq_cpu_moe *m, int need_q4, int need_bf16, char *err, size_t errlen)
{
	const size_t S = (size_t)m->max_slots, H = (size_t)m->max_hidden, I = (size_t)m->max_inter;
	int fail = 0;
	m->logits = scratch(m, (size_t)m->max_rows * (size_t)m->max_experts * sizeof(float), &fail);
	if (!m->k) {
		/* the per-token reference: one expert's gate, up and output at a time */
		m->gate = scratch(m, (2 * I + H) * sizeof(float), &fail);
		return fail ? awq_err(err, errlen, AWQ_ENOMEM, "out of memory for MoE scratch") : 0;
	}
	m->count = scratch(m, (size_t)m->max_experts * sizeof(int), &fail);
	m->cursor = scratch(m, (size_t)m->max_experts * sizeof(int), &fail);
	m->start = scratch(m, ((size_t)m->max_experts + 1) * sizeof(int), &fail);
	m->slot_token = scratch(m, S * sizeof(int), &fail);
	m->token_slot = scratch(m, S * sizeof(int), &fail);
	m->xp = scratch(m, S * H * sizeof(float), &fail);
	m->gate = scratch(m, S * I * sizeof(float), &fail);
	m->up = scratch(m, S * I * sizeof(float), &fail);
	m->y = scratch(m, S * H * sizeof(float), &fail);
	m->max_tasks = m->max_experts * (int)((H > I ? H : I) / TASK_COLS + 1);
	m->tasks = scratch(m, (size_t)m->max_tasks * sizeof(*m->tasks), &fail);
	if (need_bf16) {
		m->xpp = scratch(m, S * H * sizeof(float), &fail);
		m->hp = scratch(m, S * I * sizeof(float), &fail);
	}
	if (need_q4) {
		qact_alloc(m, &m->qx, m->max_rows, (int)H, &fail);
		qact_alloc(m, &m->qxp, (int)S, (int)H, &fail);
		qact_alloc(m, &m->qh, (int)S, (int)I, &fail);
	}
	return fail ? awq_err(err, errlen, AWQ_ENOMEM, "out of memory for MoE scratch (%d tokens x %d experts)",
			      m->max_rows, m->max_slots / m->max_rows)
		    : 0;
}

static void note_sizes(struct awq_cpu_moe *m, const struct awq_graph *g, const struct awq_node *n, int *top_k)
{
	int H = g->values[n->in[0]].cols;
	m->max_hidden = H > m->max_hidden ? H : m->max_hidden;
	m->max_experts = n->p.moe.n_experts > m->max_experts ? n->p.moe.n_experts : m->max_experts;
	*top_k = n->p.moe.top_k > *top_k ? n->p.moe.top_k : *top_k;
	if (n->op == AWQ_OP_MOE_EXPERTS && n->experts->gate[0].n > m->max_inter)
		m->max_inter = (int)n->experts->gate[0].n;
}

int awq_cpu_moe_prepare(struct awq_cpu_moe *m, const struct awq_graph *g, int max_rows,
			const struct awq_cpu_kernels *k, int exact, struct awq_pool *pool, char *err,
			size_t errlen)
{
	int top_k = 0, need_q4 = 0, need_bf16 = 0, rc;
	memset(m, 0, sizeof(*m));
	m->k = k;
	m->exact = exact;
	m->pool = pool;
	m->max_rows = max_rows;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		if (n->op == AWQ_OP_MOE_ROUTE || n->op == AWQ_OP_MOE_EXPERTS)
			note_sizes(m, g, n, &top_k);
		if (n->op == AWQ_OP_MOE_ROUTE && n->w->fmt == AWQ_WFMT_DENSE && n->w->dtype == AWQ_DT_BF16)
			need_bf16 = k != NULL; /* the router's input, permuted for the bf16 kernel */
		m->n_sets += n->op == AWQ_OP_MOE_EXPERTS;
	}
	if (!top_k)
		return 0;
	m->max_slots = max_rows * top_k;
	m->set_of_node = malloc((size_t)g->n_nodes * sizeof(int));
	m->sets = calloc((size_t)m->n_sets + 1, sizeof(*m->sets));
	if (!m->set_of_node || !m->sets)
		return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
	for (int i = 0, s = 0; i < g->n_nodes; i++) {
		m->set_of_node[i] = -1;
		if (g->nodes[i].op != AWQ_OP_MOE_EXPERTS)
			continue;
		m->set_of_node[i] = s;
		if ((rc = init_set(m, &m->sets[s], g->nodes[i].experts, err, errlen)))
			return rc;
		need_q4 |= m->sets[s].path == PATH_Q4;
		need_bf16 |= m->sets[s].bf16;
		s++;
	}
	return alloc_scratch(m, need_q4, need_bf16, err, errlen);
}

void awq_cpu_moe_release(struct awq_cpu_moe *m)
{
	for (int i = 0; m->sets && i < m->n_sets; i++) {
		for (int j = 0; m->sets[i].q4 && j < 3 * m->sets[i].x->n; j++)
			awq_cpu_q4_free(&m->sets[i].q4[j]);
		free(m->sets[i].q4);
	}
	free(m->sets);
	free(m->set_of_node);
	free(m->logits);
	free(m->count);
	free(m->cursor);
	free(m->start);
	free(m->slot_token);
	free(m->token_slot);
	free(m->xp);
	free(m->xpp);
	free(m->hp);
	free(m->gate);
	free(m->up);
	free(m->y);
	free(m->tasks);
	struct awq_cpu_qact *qa[3] = {&m->qx, &m->qxp, &m->qh};
	for (int i = 0; i < 3; i++) {
		free(qa[i]->q);
		free(qa[i]->scale);
		free(qa[i]->sum);
	}
	memset(m, 0, sizeof(*m));
}

/* --- routing -------------------------------------------------------------------------------- */

void awq_moe_topk(const float *logits, int rows, int n_experts, int top_k, bool norm, float *route)
{
	for (int r = 0; r < rows; r++) {
		const float *l = logits + (size_t)r * n_experts;
		float *ids = route + (size_t)r * 2 * top_k, *wts = ids + top_k;
		float mx = l[0], sum = 0;
		for (int e = 1; e < n_experts; e++)
			mx = l[e] > mx ? l[e] : mx;
		for (int e = 0; e < n_experts; e++)
			sum += expf(l[e] - mx);
		/* a NaN logit leaves the first ids in place with NaN weights: the output says so */
		for (int j = 0; j < top_k; j++) {
			ids[j] = (float)j;
			wts[j] = -INFINITY;
		}
		for (int e = 0; e < n_experts; e++) {
			float p = expf(l[e] - mx) / sum;
			int pos = top_k;
			/* strict comparison: an equal, earlier (lower) id stays ahead */
			while (pos > 0 && p > wts[pos - 1])
				pos--;
			if (pos == top_k)
				continue;
			memmove(ids + pos + 1, ids + pos, (size_t)(top_k - pos - 1) * sizeof(float));
			memmove(wts + pos + 1, wts + pos, (size_t)(top_k - pos - 1) * sizeof(float));
			ids[pos] = (float)e;
			wts[pos] = p;
		}
		float ksum = 0;
		for (int j = 0; j < top_k; j++)
			ksum += wts[j];
		for (int j = 0; norm && j < top_k; j++)
			wts[j] /= ksum;
	}
}

struct route_job {
	const struct awq_cpu_moe *m;
	const struct awq_weight *w;
	const float *x;
	int rows;
};

static void route_part(void *ctx, int b, int e, int t)
{
	struct route_job *j = ctx;
	(void)t;
	j->m->k->dense(j->w, j->x, j->m->xpp, 0, j->rows, b, e, j->m->logits);
}

void awq_cpu_moe_route(struct awq_cpu_moe *m, const struct awq_node *n, const float *x, int rows,
		       float *route)
{
	const struct awq_weight *w = n->w;
	struct route_job j = {m, w, x, rows};
	if (!m->k) {
		awq_ref_matmul(x, rows, w, m->logits);
	} else {
		if (w->dtype == AWQ_DT_BF16)
			awq_cpu_permute_bf16(x, 0, rows, (int)w->k, m->k->bf16_block, m->xpp);
		if ((size_t)rows * (size_t)w->n * (size_t)w->k <= SERIAL_WORK)
			route_part(&j, 0, (int)w->n, 0);
		else
			awq_pool_run(m->pool, route_part, &j, (int)w->n, 4);
	}
	awq_moe_topk(m->logits, rows, n->p.moe.n_experts, n->p.moe.top_k, n->p.moe.norm_topk, route);
}

/* --- experts -------------------------------------------------------------------------------- */

static int expert_id(float v, int n_experts)
{
	return v >= 0 && v < (float)n_experts && v == (float)(int)v ? (int)v : -1;
}

int awq_ref_moe_experts(const struct awq_experts *x, const float *in, const float *route, int rows,
			int hidden, int top_k, float *scratch, float *out)
{
	const int I = (int)x->gate[0].n;
	float *g = scratch, *u = g + I, *y = u + I;
	for (int t = 0; t < rows; t++) {
		const float *rt = route + (size_t)t * 2 * top_k, *xt = in + (size_t)t * hidden;
		float *o = out + (size_t)t * hidden;
		for (int i = 0; i < hidden; i++)
			o[i] = 0;
		for (int j = 0; j < top_k; j++) {
			int e = expert_id(rt[j], x->n);
			if (e < 0)
				return -1;
			awq_ref_matmul(xt, 1, &x->gate[e], g);
			awq_ref_matmul(xt, 1, &x->up[e], u);
			awq_ref_silu_mul(g, u, I, g);
			awq_ref_matmul(g, 1, &x->down[e], y);
			for (int i = 0; i < hidden; i++)
				o[i] += rt[top_k + j] * y[i];
		}
	}
	return 0;
}

/* count, prefix sum, permute: slot_token lists each expert's rows contiguously, in token order */
static int group_rows(struct awq_cpu_moe *m, const float *route, int rows, int top_k, int n_experts)
{
	memset(m->count, 0, (size_t)n_experts * sizeof(int));
	for (int t = 0; t < rows; t++)
		for (int j = 0; j < top_k; j++) {
			int e = expert_id(route[(size_t)t * 2 * top_k + j], n_experts);
			if (e < 0)
				return -1;
			m->count[e]++;
		}
	m->start[0] = 0;
	for (int e = 0; e < n_experts; e++) {
		m->start[e + 1] = m->start[e] + m->count[e];
		m->cursor[e] = m->start[e];
	}
	for (int t = 0; t < rows; t++)
		for (int j = 0; j < top_k; j++) {
			int e = (int)route[(size_t)t * 2 * top_k + j], p = m->cursor[e]++;
			m->slot_token[p] = t;
			m->token_slot[t * top_k + j] = p;
		}
	return 0;
}

/* Tasks of about equal cost (columns x (rows + a weight-read term)) over the selected experts. */
static int make_tasks(struct awq_cpu_moe *m, int n_experts, int cols)
{
	long long total = 0;
	int n = 0, threads = awq_pool_threads(m->pool);
	for (int e = 0; e < n_experts; e++)
		total += m->count[e] ? (long long)cols * (m->count[e] + 3) : 0;
	long long target = total / (4LL * threads) + 1;
	for (int e = 0; e < n_experts; e++) {
		if (!m->count[e])
			continue;
		long long chunk = (target / (m->count[e] + 3) + TASK_COLS - 1) / TASK_COLS * TASK_COLS;
		chunk = chunk < TASK_COLS ? TASK_COLS : chunk > cols ? cols : chunk;
		for (int n0 = 0; n0 < cols; n0 += (int)chunk) {
			m->tasks[n].expert = e;
			m->tasks[n].n0 = n0;
			m->tasks[n++].n1 = n0 + chunk < cols ? n0 + (int)chunk : cols;
		}
	}
	return n;
}

enum row_phase { QUANT_X, GATHER, PREP_H, SCATTER };

struct exp_job {
	struct awq_cpu_moe *m;
	const struct awq_cpu_moe_set *s;
	const float *x, *route;
	float *out;
	int rows, top_k, hidden, inter;
	enum row_phase phase;
};

/* Rows of expert e (contiguous after grouping) of one matrix (which: 0 gate, 1 up, 2 down),
 * columns [n0, n1). Inputs and outputs are whole buffers: the kernels index rows themselves. */
static void expert_mm(const struct exp_job *j, int e, int which, int n0, int n1)
{
	const struct awq_cpu_moe *m = j->m;
	const struct awq_weight *w = expert_w(j->s->x, e, which);
	const struct awq_cpu_q4 *q4 = j->s->q4 ? &j->s->q4[3 * e + which] : NULL;
	const int r0 = m->start[e], r1 = m->start[e + 1];
	const float *x = which < 2 ? m->xp : m->gate, *xp = which < 2 ? m->xpp : m->hp;
	float *out = which == 0 ? m->gate : which == 1 ? m->up : m->y;
	const int64_t t0 = n0 / AWQ_CPU_TILE, t1 = (n1 + AWQ_CPU_TILE - 1) / AWQ_CPU_TILE;
	switch (j->s->path) {
	case PATH_Q4: m->k->q4(q4, which < 2 ? &m->qxp : &m->qh, r0, r1, t0, t1, out); break;
	case PATH_Q4_F32: m->k->q4_f32(q4, x, r0, r1, t0, t1, out); break;
	case PATH_DENSE: m->k->dense(w, x, xp, r0, r1, n0, n1, out); break;
	case PATH_REF:
		awq_ref_matmul_cols(x + (size_t)r0 * w->k, r1 - r0, w, n0, n1, out + (size_t)r0 * w->n);
		break;
	}
}

static void gate_up_part(void *ctx, int b, int e, int t)
{
	struct exp_job *j = ctx;
	(void)t;
	for (int i = b; i < e; i++) {
		const struct awq_cpu_moe_task *k = &j->m->tasks[i];
		expert_mm(j, k->expert, 0, k->n0, k->n1);
		expert_mm(j, k->expert, 1, k->n0, k->n1);
		for (int r = j->m->start[k->expert]; r < j->m->start[k->expert + 1]; r++) {
			float *g = j->m->gate + (size_t)r * j->inter + k->n0;
			awq_ref_silu_mul(g, j->m->up + (size_t)r * j->inter + k->n0, k->n1 - k->n0, g);
		}
	}
}

static void down_part(void *ctx, int b, int e, int t)
{
	struct exp_job *j = ctx;
	(void)t;
	for (int i = b; i < e; i++)
		expert_mm(j, j->m->tasks[i].expert, 2, j->m->tasks[i].n0, j->m->tasks[i].n1);
}

static void copy_qrow(const struct awq_cpu_qact *src, int rs, struct awq_cpu_qact *dst, int rd)
{
	const size_t k = (size_t)src->k, ng = k / (size_t)src->group;
	memcpy(dst->q + rd * k, src->q + rs * k, k);
	memcpy(dst->scale + rd * ng, src->scale + rs * ng, ng * sizeof(float));
	memcpy(dst->sum + rd * ng, src->sum + rs * ng, ng * sizeof(int32_t));
}

static void scatter_row(const struct exp_job *j, int r)
{
	/* weighted sum in the router's order, so every step sums alike */
	const int H = j->hidden, K = j->top_k;
	const float *rt = j->route + (size_t)r * 2 * K;
	const float *y0 = j->m->y + (size_t)j->m->token_slot[r * K] * H;
	float *o = j->out + (size_t)r * H;
	for (int i = 0; i < H; i++)
		o[i] = rt[K] * y0[i];
	for (int s = 1; s < K; s++) {
		const float *ys = j->m->y + (size_t)j->m->token_slot[r * K + s] * H;
		for (int i = 0; i < H; i++)
			o[i] += rt[K + s] * ys[i];
	}
}

static void rows_part(void *ctx, int b, int e, int t)
{
	struct exp_job *j = ctx;
	struct awq_cpu_moe *m = j->m;
	const int H = j->hidden;
	(void)t;
	switch (j->phase) {
	case QUANT_X:
		m->k->quantize(j->x, b, e, &m->qx);
		break;
	case GATHER:
		for (int r = b; r < e; r++) {
			if (j->s->path == PATH_Q4)
				copy_qrow(&m->qx, m->slot_token[r], &m->qxp, r);
			else
				memcpy(m->xp + (size_t)r * H, j->x + (size_t)m->slot_token[r] * H, (size_t)H * sizeof(float));
		}
		if (j->s->bf16)
			awq_cpu_permute_bf16(m->xp, b, e, H, m->k->bf16_block, m->xpp);
		break;
	case PREP_H:
		if (j->s->path == PATH_Q4)
			m->k->quantize(m->gate, b, e, &m->qh);
		else if (j->s->bf16)
			awq_cpu_permute_bf16(m->gate, b, e, j->inter, m->k->bf16_block, m->hp);
		break;
	case SCATTER:
		for (int r = b; r < e; r++)
			scatter_row(j, r);
		break;
	}
}

static void run_rows(struct exp_job *j, enum row_phase ph, int n, int cols)
{
	j->phase = ph;
	if ((size_t)n * (size_t)cols <= SERIAL_WORK)
		rows_part(j, 0, n, 0);
	else
		awq_pool_run(j->m->pool, rows_part, j, n, 1);
}

static void set_qact(struct awq_cpu_qact *a, int rows, int k, int group)
{
	a->rows = rows;
	a->k = k;
	a->group = group;
}

int awq_cpu_moe_experts(struct awq_cpu_moe *m, const struct awq_graph *g, const struct awq_node *n,
			const float *x, const float *route, int rows, float *out, char *err,
			size_t errlen)
{
	const struct awq_experts *ex = n->experts;
	const int K = n->p.moe.top_k, E = ex->n, H = g->values[n->in[0]].cols, I = (int)ex->gate[0].n;
	const int idx = (int)(n - g->nodes);
	if (idx < 0 || idx >= g->n_nodes || !m->set_of_node || m->set_of_node[idx] < 0 || rows > m->max_rows)
		return awq_err(err, errlen, AWQ_EINVAL, "MoE node %s was not prepared for %d rows",
			       g->values[n->out].name, rows);
	if (!m->k) {
		if (awq_ref_moe_experts(ex, x, route, rows, H, K, m->gate, out))
			goto bad_id;
		return 0;
	}
	struct exp_job j = {m, &m->sets[m->set_of_node[idx]], x, route, out, rows, K, H, I, QUANT_X};
	const int slots = rows * K, G = ex->gate[0].group_size;
	if (group_rows(m, route, rows, K, E))
		goto bad_id;
	if (j.s->path == PATH_Q4) {
		set_qact(&m->qx, rows, H, G);
		set_qact(&m->qxp, slots, H, G);
		set_qact(&m->qh, slots, I, G);
		run_rows(&j, QUANT_X, rows, H);
	}
	run_rows(&j, GATHER, slots, H);
	awq_pool_run(m->pool, gate_up_part, &j, make_tasks(m, E, I), 1);
	run_rows(&j, PREP_H, slots, I);
	awq_pool_run(m->pool, down_part, &j, make_tasks(m, E, H), 1);
	run_rows(&j, SCATTER, rows, H * K);
	return 0;
bad_id:
	return awq_err(err, errlen, AWQ_EINVAL, "%s: a routed expert id is not one of the %d experts",
		       g->values[n->out].name, E);
}

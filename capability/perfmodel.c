/* Performance model: walk the op graph of a model and, per op, take the bytes it moves and the
 * operations it does over the bandwidth and the rate of the unit its kernel uses on the device:
 * time = max(bytes / (eta_bw x bw), ops / (eta_c x peak)) + launch overhead, summed over the graph,
 * plus a fixed cost per step. Decode is one step of `batch` tokens (one per sequence, each reading
 * its own KV cache of ctx positions); prefill runs the prompt in steps of `chunk` tokens.
 * Weights are counted per weight in the format of the scheme asked for, so MoE layers read only the
 * experts their tokens are routed to. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "perfmodel.h"

#define AWQ_GROUP 128
#define FP8_BLOCK 128

struct op_cost {
	double bytes, flops;
	enum perf_kernel k;
	int launches; /* kernels the op launches before fusion (0 for free ops) */
	double fixed_s; /* latency the op adds beyond bytes, FLOPs and launches */
	double rate_eff; /* fraction of its kernel class's rate the op reaches (0: 1) */
	double rate_abs; /* FLOP/s of the op's kernel where it is not its class's (0: the class's) */
	double pre_bytes; /* bytes of a kernel run before the op's own, at the 16-bit stream rate (the
			   * dequantised copy of an AWQ weight, perf_profile.q4_deq_rows) */
};

struct phase_acc {
	double t, t_bytes, t_compute, t_overhead, bytes, flops;
};

/* Weights the scheme re-expresses: every projection of the decoder layers and the experts. The
 * embedding, lm_head, norms, MoE routers and shared-expert gates stay 16-bit, as in AWQ and FP8
 * checkpoints. */
static int quantizable(const awq_model *m, const struct awq_weight *w)
{
	if (w == &m->lm_head || w == &m->embed || w->k <= 1)
		return 0;
	if (m->lm_head.name[0] && strcmp(w->name, m->lm_head.name) == 0)
		return 0;
	for (int l = 0; l < m->cfg.n_layers; l++)
		if (m->layers && (w == &m->layers[l].router || w == &m->layers[l].shared_gate))
			return 0;
	return 1;
}

static double stored_bytes(const awq_model *m, const struct awq_weight *w)
{
	double n = (double)w->n, k = (double)w->k;
	double bias = w->bias ? n * (double)awq_dtype_size(w->bias_dtype) : 0;
	if (w->fmt != AWQ_WFMT_AWQ4)
		return n * k * (double)awq_dtype_size(w->dtype) + bias;
	double groups = ceil(k / (w->group_size > 0 ? w->group_size : AWQ_GROUP));
	/* Shape-only models carry no data pointers: zero points follow the config. */
	int zeros = w->qzeros != NULL || (!w->qweight && m->cfg.quant.zero_point);
	return n * k / 2 + groups * n * 2 + (zeros ? groups * n / 2 : 0) + bias;
}

double awq_perf_weight_bytes(const awq_model *m, const struct awq_weight *w, enum awq_scheme s)
{
	double n = (double)w->n, k = (double)w->k;
	double bias = w->bias ? n * 2.0 : 0;
	if (s == AWQ_SCHEME_STORED)
		return stored_bytes(m, w);
	if (!quantizable(m, w) || s == AWQ_SCHEME_BF16 || s == AWQ_SCHEME_FP16)
		return n * k * 2 + bias;
	if (s == AWQ_SCHEME_AWQ4) {
		double groups = ceil(k / AWQ_GROUP);
		return n * k / 2 + groups * n * 2 + groups * n / 2 + bias;
	}
	return n * k + ceil(n / FP8_BLOCK) * ceil(k / FP8_BLOCK) * 4 + bias;
}

/* Kernel class of a matmul over w in scheme s. */
static enum perf_kernel weight_kernel(const awq_model *m, const struct awq_weight *w, enum awq_scheme s)
{
	if (s == AWQ_SCHEME_STORED)
		return w->fmt == AWQ_WFMT_AWQ4 ? PK_Q4 : PK_W16;
	if (!quantizable(m, w) || s == AWQ_SCHEME_BF16 || s == AWQ_SCHEME_FP16)
		return PK_W16;
	return s == AWQ_SCHEME_AWQ4 ? PK_Q4 : PK_FP8;
}

/* Expected distinct experts that `rows` tokens select, each taking top_k of n uniformly. */
static double distinct_experts(int n, int top_k, int rows)
{
	if (n <= 0)
		return 0;
	double miss = pow(1.0 - (double)top_k / n, rows);
	return n * (1.0 - miss);
}

static double expert_bytes(const awq_model *m, const struct awq_experts *x, enum awq_scheme s)
{
	return x->n > 0 ? awq_perf_weight_bytes(m, &x->gate[0], s) + awq_perf_weight_bytes(m, &x->up[0], s) +
				  awq_perf_weight_bytes(m, &x->down[0], s)
			: 0;
}

struct walk {
	const awq_model *m;
	const struct awq_graph *g;
	enum awq_scheme s;
	const struct perf_profile *p;
	int rows;      /* rows of the step */
	double ctx_sum; /* sum over rows of the KV positions each attends to */
	int seqs;      /* sequences whose KV caches the step reads (decode batch), 1 for prefill */
	const unsigned char *folded; /* per node, the Vulkan folds' effect (vk_fold_plan); NULL: none */
};

static double act_bytes(const struct walk *w, int v, int rows)
{
	return (double)rows * w->g->values[v].cols * (w->g->values[v].kind == AWQ_V_TOKENS ? 4 : w->p->act_elem);
}

static int rows_of(const struct walk *w, int v)
{
	return w->g->values[v].last_rows ? 1 : w->rows;
}

static void matmul_cost(const struct walk *w, const struct awq_node *n, struct op_cost *c)
{
	int r = rows_of(w, n->out);
	const double wb = awq_perf_weight_bytes(w->m, n->w, w->s);
	c->k = weight_kernel(w->m, n->w, w->s);
	c->bytes = wb + act_bytes(w, n->in[0], r) + act_bytes(w, n->out, r);
	double rc = r < w->p->mma_rows ? w->p->mma_rows : r;
	if (r <= w->p->matvec_rows || (c->k == PK_Q4 && r <= w->p->q4_split_rows)) {
		/* a mat-vec on the ALUs: no matrix-unit padding */
		rc = r;
		c->rate_abs = w->p->matvec_rate;
		const int split = r > w->p->matvec_rows; /* two passes (independent dispatches), each reading the weight */
		if (split)
			c->bytes += wb;
		if (c->k == PK_Q4)
			c->bytes += w->p->matvec_row_q4 * (double)(r - 1 - split) * wb;
	}
	c->flops = 2.0 * rc * (double)n->w->n * (double)n->w->k;
	if (c->k == PK_Q4 && w->p->q4_deq_rows > 0 && r >= w->p->q4_deq_rows) {
		/* the f16 copy (read the 4-bit weight, write 2 bytes a weight), then the 16-bit GEMM reads it */
		double w16 = 2.0 * (double)n->w->n * (double)n->w->k;
		c->pre_bytes = wb + w16;
		c->bytes += w16 - wb;
		c->k = PK_W16;
		return;
	}
	if (c->k == PK_Q4)
		c->flops += w->p->q4_dequant_ops * (double)n->w->n * (double)n->w->k;
}

/* KV rows are read per sequence; prefill tiles queries by 64 rows, each tile reading the K/V rows
 * it attends to once. */
static void attention_cost(const struct walk *w, const struct awq_node *n, struct op_cost *c)
{
	double kv_row = 2.0 * n->p.attn.n_kv_heads * n->p.attn.head_dim * w->p->kv_elem;
	double reads = w->seqs > 1 || w->rows == 1 ? w->ctx_sum : w->ctx_sum / 64.0 + w->rows;
	c->k = PK_ATTN;
	c->bytes = reads * kv_row + w->rows * kv_row + act_bytes(w, n->in[0], w->rows) * 2 +
		   act_bytes(w, n->in[1], w->rows) + act_bytes(w, n->in[2], w->rows);
	c->flops = 4.0 * n->p.attn.n_heads * n->p.attn.head_dim * w->ctx_sum;
}

static void moe_cost(const struct walk *w, const struct awq_node *n, struct op_cost *c)
{
	const struct awq_experts *x = n->experts;
	int r = rows_of(w, n->out), k = n->p.moe.top_k;
	c->k = x && x->n > 0 ? weight_kernel(w->m, &x->gate[0], w->s) : PK_W16;
	if (!x || x->n <= 0)
		return;
	double inter = (double)x->gate[0].n, hidden = (double)x->gate[0].k;
	c->bytes = distinct_experts(x->n, k, r) * expert_bytes(w->m, x, w->s) + act_bytes(w, n->in[0], r) +
		   act_bytes(w, n->in[1], r) + act_bytes(w, n->out, r) + (double)r * k * 3 * inter * w->p->act_elem;
	c->flops = 2.0 * r * k * 3 * inter * hidden;
	if (c->k == PK_Q4)
		c->flops += w->p->q4_dequant_ops * distinct_experts(x->n, k, r) * 3 * inter * hidden;
	c->launches = 3;
	if (r <= w->p->mma_rows)
		c->fixed_s = c->k == PK_Q4 ? w->p->moe_decode_q4_s : w->p->moe_decode_s;
	else
		c->rate_eff = c->k == PK_Q4 ? w->p->moe_prefill_q4_eff : c->k == PK_W16 ? w->p->moe_prefill_eff : 0;
}

static void node_cost(const struct walk *w, const struct awq_node *n, struct op_cost *c)
{
	int r = rows_of(w, n->out);
	memset(c, 0, sizeof(*c));
	c->k = PK_ELEM;
	c->launches = 1;
	switch (n->op) {
	case AWQ_OP_MATMUL:
	case AWQ_OP_MOE_ROUTE:
		matmul_cost(w, n, c);
		break;
	case AWQ_OP_ATTENTION:
		attention_cost(w, n, c);
		break;
	case AWQ_OP_MOE_EXPERTS:
		moe_cost(w, n, c);
		break;
	case AWQ_OP_EMBED:
		c->bytes = (double)r * n->w->k * (double)awq_dtype_size(n->w->dtype) + act_bytes(w, n->out, r);
		break;
	default:
		for (int i = 0; i < AWQ_MAX_IN; i++)
			if (n->in[i] >= 0)
				c->bytes += act_bytes(w, n->in[i], rows_of(w, n->in[i]) < r ? rows_of(w, n->in[i]) : r);
		c->bytes += act_bytes(w, n->out, r) + (n->w ? (double)n->w->n * awq_dtype_size(n->w->dtype) : 0);
		c->flops = 4.0 * r * w->g->values[n->out].cols;
		break;
	}
}

static void add_op(const struct walk *w, const struct op_cost *c, double launch_s, struct phase_acc *a)
{
	const struct perf_profile *p = w->p;
	double bw = p->bw * p->eta_bw[c->k];
	double tb = bw > 0 ? c->bytes / bw : 0;
	double rate = c->rate_abs > 0 ? c->rate_abs : p->rate[c->k] * (c->rate_eff > 0 ? c->rate_eff : 1.0);
	double tc = rate > 0 ? c->flops / rate : 0;
	double to = launch_s * c->launches * p->launches_per_node + c->fixed_s;
	double tp = c->pre_bytes > 0 && p->bw * p->eta_bw[PK_W16] > 0 ? c->pre_bytes / (p->bw * p->eta_bw[PK_W16]) : 0;
	a->t += tp;
	a->t_bytes += tp;
	a->bytes += c->bytes + c->pre_bytes;
	a->flops += c->flops;
	a->t += (tb > tc ? tb : tc) + to;
	if (tb >= tc)
		a->t_bytes += tb;
	else
		a->t_compute += tc;
	a->t_overhead += to;
}

/* How the Vulkan backend's folds (perf_profile vk_folds) change node i's launches: VKF_NONE launches
 * nothing of its own, VKF_DECODE nothing in decode steps (gate and up inside their SILU_MUL),
 * VKF_PREP one more in prefill (an ATTENTION node that took a RoPE or per-head norm: its prep is a
 * dispatch of its own there). Planned once per prediction. */
enum { VKF_KEEP, VKF_NONE, VKF_PREP, VKF_DECODE };

static void vk_fold_plan(const struct awq_graph *g, const int *uses, unsigned char *folded)
{
	memset(folded, 0, (size_t)g->n_nodes);
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		if (n->op == AWQ_OP_ATTENTION) { /* q, k: their RoPE, then the per-head norm before it */
			const int hd = n->p.attn.head_dim;
			for (int j = 0; j < 2; j++) {
				const int heads = j ? n->p.attn.n_kv_heads : n->p.attn.n_heads;
				int v = n->in[j], r = awq_graph_head_producer(g, uses, v, AWQ_OP_ROPE, heads, hd);
				if (r >= 0) {
					folded[r] = VKF_NONE, folded[i] = VKF_PREP;
					v = g->nodes[r].in[0];
				}
				int q = awq_graph_head_producer(g, uses, v, AWQ_OP_RMSNORM, heads, hd);
				if (q >= 0)
					folded[q] = VKF_NONE, folded[i] = VKF_PREP;
			}
		}
		if (n->op == AWQ_OP_SILU_MUL) {
			int gate, up;
			if (awq_graph_gate_up_pair(g, uses, i, &gate, &up))
				folded[gate] = folded[up] = VKF_DECODE;
		}
		if (n->op == AWQ_OP_ADD && i + 1 < g->n_nodes) {
			const struct awq_node *m = &g->nodes[i + 1];
			if (m->op == AWQ_OP_RMSNORM && m->in[0] == n->out && m->p.norm.group == g->values[n->out].cols)
				folded[i + 1] = VKF_NONE;
		}
	}
}

static void run_step(struct walk *w, double launch_s, struct phase_acc *a)
{
	const int decode = w->rows <= w->p->matvec_rows;
	for (int i = 0; i < w->g->n_nodes; i++) {
		struct op_cost c;
		node_cost(w, &w->g->nodes[i], &c);
		const int f = w->folded ? w->folded[i] : VKF_KEEP;
		if (f == VKF_NONE || (f == VKF_DECODE && decode))
			c.launches = 0;
		else if (f == VKF_PREP && !decode)
			c.launches += 1; /* prefill's prep dispatch */
		add_op(w, &c, launch_s, a);
	}
	a->t += w->p->step_s;
	a->t_overhead += w->p->step_s;
}

static void finish(struct awq_perf_phase *ph, const struct phase_acc *a, double tokens)
{
	ph->seconds = a->t;
	ph->tok_s = a->t > 0 ? tokens / a->t : 0;
	ph->bytes = a->bytes;
	ph->flops = a->flops;
	ph->t_bytes = a->t_bytes;
	ph->t_compute = a->t_compute;
	ph->t_overhead = a->t_overhead;
	ph->limit = a->t_overhead >= a->t_bytes && a->t_overhead >= a->t_compute ? AWQ_LIMIT_OVERHEAD
		    : a->t_compute > a->t_bytes ? AWQ_LIMIT_COMPUTE : AWQ_LIMIT_BANDWIDTH;
}

static double layer_bytes(const awq_model *m, const struct awq_layer *L, enum awq_scheme s)
{
	const struct awq_weight *ws[] = {&L->attn_norm, &L->q, &L->k, &L->v, &L->o, &L->q_norm, &L->k_norm,
					 &L->mlp_norm};
	double b = 0;
	for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
		b += awq_perf_weight_bytes(m, ws[i], s);
	if (!L->is_moe || L->has_shared) /* dense MLP, or the shared expert of a sparse one */
		b += awq_perf_weight_bytes(m, &L->gate, s) + awq_perf_weight_bytes(m, &L->up, s) +
		     awq_perf_weight_bytes(m, &L->down, s);
	if (!L->is_moe)
		return b;
	if (L->has_shared)
		b += awq_perf_weight_bytes(m, &L->shared_gate, s);
	b += awq_perf_weight_bytes(m, &L->router, s);
	for (int e = 0; e < L->experts.n; e++)
		b += awq_perf_weight_bytes(m, &L->experts.gate[e], s) + awq_perf_weight_bytes(m, &L->experts.up[e], s) +
		     awq_perf_weight_bytes(m, &L->experts.down[e], s);
	return b;
}

/* Everything the device must hold: all weights (all experts), whatever a step reads. */
static double model_bytes(const awq_model *m, enum awq_scheme s)
{
	double b = awq_perf_weight_bytes(m, &m->embed, s) + awq_perf_weight_bytes(m, &m->final_norm, s);
	if (!m->cfg.tie_embeddings)
		b += awq_perf_weight_bytes(m, &m->lm_head, s);
	for (int l = 0; l < m->cfg.n_layers; l++)
		b += layer_bytes(m, &m->layers[l], s);
	return b;
}

/* Weight bytes a step of `rows` tokens reads; *unquant gets the share of 16-bit tensors. */
static double step_weight_bytes(const awq_model *m, const struct awq_graph *g, enum awq_scheme s, int rows,
				double *unquant)
{
	double b = 0, u = 0;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		double x = 0;
		if (n->op == AWQ_OP_EMBED)
			x = (double)rows * n->w->k * (double)awq_dtype_size(n->w->dtype);
		else if (n->op == AWQ_OP_MOE_EXPERTS && n->experts)
			x = distinct_experts(n->experts->n, n->p.moe.top_k, rows) * expert_bytes(m, n->experts, s);
		else if (n->w)
			x = awq_perf_weight_bytes(m, n->w, s);
		b += x;
		if (n->op != AWQ_OP_MOE_EXPERTS && n->w && !quantizable(m, n->w))
			u += x;
	}
	if (unquant)
		*unquant = u;
	return b;
}

double awq_perf_decode_weight_bytes(const awq_model *m, const struct awq_graph *g, enum awq_scheme s, int rows)
{
	return step_weight_bytes(m, g, s, rows, NULL);
}

/* The activation arena, roughly: a handful of values of the widest layer alive at once. */
static double activation_bytes(const awq_model *m, int rows, double elem)
{
	const struct awq_config *c = &m->cfg;
	double inter = c->n_experts > 0 ? (double)c->moe_intermediate * c->n_experts_per_tok : c->intermediate;
	double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
	return rows * (4.0 * c->hidden + 2 * inter + q + 2 * kv) * elem + (double)c->vocab * 4;
}

static void check_fit(const struct awq_device_caps *d, const awq_model *m, const struct perf_profile *p,
		      const struct awq_perf_query *q, struct awq_perf_result *r)
{
	int rows = q->chunk > q->batch ? q->chunk : q->batch;
	r->need_bytes = r->weight_bytes + r->kv_bytes + (uint64_t)activation_bytes(m, rows, p->act_elem);
	/* 5 % of a device goes to the driver, contexts and libraries. */
	double avail = d->present && d->mem_free ? (double)d->mem_free : 0.95 * (double)d->mem_total;
	if (d->mem_total && (double)r->need_bytes > avail) {
		r->limit = AWQ_LIMIT_MEMORY;
		snprintf(r->why, sizeof(r->why), "needs %.1f GB, %.1f GB available", r->need_bytes / 1e9, avail / 1e9);
	}
}

static void fill_query(const struct awq_perf_query *in, struct awq_perf_query *q)
{
	*q = *in;
	q->batch = q->batch > 0 ? q->batch : 1;
	q->ctx = q->ctx > 0 ? q->ctx : 1024;
	q->n_prompt = q->n_prompt > 0 ? q->n_prompt : 512;
	q->chunk = q->chunk > 0 ? q->chunk : 512;
}

int awq_perf_predict_graph(const struct awq_device_caps *d, const awq_model *m, const struct awq_graph *g,
			   const struct awq_perf_query *qin, struct awq_perf_result *r, char *err, size_t errlen)
{
	struct perf_profile p;
	struct awq_perf_query q;
	struct phase_acc dec = {0}, pre = {0};

	memset(r, 0, sizeof(*r));
	fill_query(qin, &q);
	if ((unsigned)q.scheme >= AWQ_SCHEME_COUNT)
		return awq_err(err, errlen, AWQ_EINVAL, "unknown weight scheme %d", (int)q.scheme);
	if (awq_perf_profile(d, q.scheme, &p, r->why, sizeof(r->why))) {
		r->limit = AWQ_LIMIT_UNKNOWN;
		return 0;
	}
	unsigned char *folded = NULL;
	if (p.vk_folds) {
		int *uses = awq_graph_count_uses(g);
		if (!uses || !(folded = malloc((size_t)g->n_nodes))) {
			free(uses);
			return awq_err(err, errlen, AWQ_ENOMEM, "out of memory");
		}
		vk_fold_plan(g, uses, folded);
		free(uses);
	}
	struct walk w = {.m = m, .g = g, .s = q.scheme, .p = &p, .rows = q.batch, .seqs = q.batch,
			 .ctx_sum = (double)q.batch * q.ctx, .folded = folded};
	run_step(&w, p.launch_decode_s, &dec);
	finish(&r->decode, &dec, q.batch);
	w.seqs = 1;
	for (int pos = 0; pos < q.n_prompt; pos += q.chunk) {
		int len = q.n_prompt - pos < q.chunk ? q.n_prompt - pos : q.chunk;
		w.rows = len;
		w.ctx_sum = (double)len * pos + (double)len * (len + 1) / 2;
		run_step(&w, p.launch_prefill_s, &pre);
	}
	free(folded);
	finish(&r->prefill, &pre, q.n_prompt);

	enum perf_kernel main_k = q.scheme == AWQ_SCHEME_AWQ4 ? PK_Q4 : q.scheme == AWQ_SCHEME_FP8 ? PK_FP8 : PK_W16;
	if (q.scheme == AWQ_SCHEME_STORED)
		main_k = m->cfg.quant.method == AWQ_QUANT_AWQ ? PK_Q4 : PK_W16;
	r->unit = p.unit[main_k];
	r->matmul_tflops = p.rate[main_k] / 1e12;
	r->bw_gbs = p.bw * p.eta_bw[main_k] / 1e9;
	r->op_overhead_us = p.launch_decode_s * p.launches_per_node * 1e6;
	r->weight_bytes = (uint64_t)model_bytes(m, q.scheme);
	r->kv_bytes = (uint64_t)(2.0 * g->n_kv_layers * g->kv_heads * g->head_dim * p.kv_elem * q.ctx * q.batch);
	double unquant;
	r->decode_weight_bytes = step_weight_bytes(m, g, q.scheme, q.batch, &unquant);
	r->unquantized_share = r->decode_weight_bytes > 0 ? unquant / r->decode_weight_bytes : 0;
	r->limit = r->decode.limit;
	if (q.scheme == AWQ_SCHEME_FP8 && !p.fp8_native) {
		r->limit = AWQ_LIMIT_UNSUPPORTED;
		snprintf(r->why, sizeof(r->why), "no FP8 tensor cores (FP8 arrives with Ada, Hopper and Blackwell)");
		return 0;
	}
	check_fit(d, m, &p, &q, r);
	return 0;
}

int awq_perf_predict(const struct awq_device_caps *d, const awq_model *m, const struct awq_perf_query *q,
		     struct awq_perf_result *r, char *err, size_t errlen)
{
	struct awq_graph g;
	int rc = awq_build_graph(m, &g, err, errlen);
	if (rc)
		return rc;
	rc = awq_perf_predict_graph(d, m, &g, q, r, err, errlen);
	awq_graph_free(&g);
	return rc;
}

const char *awq_limit_name(enum awq_limit l)
{
	static const char *const names[] = {"bandwidth", "compute", "overhead", "memory", "unsupported", "unknown"};
	return (unsigned)l < sizeof(names) / sizeof(names[0]) ? names[l] : "?";
}

const char *awq_scheme_name(enum awq_scheme s)
{
	static const char *const names[] = {"stored", "bf16", "fp16", "awq-int4", "fp8"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

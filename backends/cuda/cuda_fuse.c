/* Fusion planning: the graph is hardware-neutral, so launches are saved by recognising patterns of
 * consecutive nodes at prepare time. Fusions move a read or a write to another node than the one
 * the arena planner assumed, so each is checked against the planned offsets and undone if unsafe.
 *   q, k, v MATMULs on one input               -> one launch over the concatenated weights (AWQ)
 *                                                 or the three weights (BF16/F16 decode)
 *   gate, up MATMULs + SILU_MUL                -> one launch, AWQ tiles interleaved, SiLU-mul epilogue
 *   [RMSNORM per head ->] ROPE of q and of k     -> one prep kernel before ATTENTION that also
 *   feeding ATTENTION                              writes k and v to the KV cache
 *   that prep, without per-head norms, after an -> (decode steps; AWQ_CUDA_QKV_ROPE=0: off) in the
 *   AWQ q/k/v launch                               q/k/v GEMV's epilogue (q and k rows repacked in
 *                                                  RoPE pair order; prefill's prep reads them so)
 *   ADD followed by a whole-row RMSNORM         -> one kernel writing both
 *   AWQ MATMUL -> that ADD + RMSNORM -> AWQ       -> (one-token steps; AWQ_CUDA_EPINORM=0: off; 16-bit
 *   (or MOE_EXPERTS of AWQ g64/g128 experts)       weights too; AWQ_CUDA_EPINORM_W16=0 off) the sum and
 *   MATMULs reading only the norm                  the unnormalised norm in the MATMUL's (the expert
 *   (or a 16-bit router and q4m experts;           down kernel's) epilogue, with the sum of squares
 *   AWQ_CUDA_EPINORM_MOE=0: not those)             in an accumulator per fold; the readers complete
 *                                                  the norm (awq_cu_xnorm)
 * The arena is planned with the lifetimes the fused kernels need (awq_cu_fusion_lifetimes), so the
 * check only catches what that planning could not express. */
#include <stdlib.h>

#include "cuda_internal.h"

static int weight_uses(const struct awq_graph *g, const struct awq_weight *w)
{
	int n = 0;
	for (int i = 0; i < g->n_nodes; i++)
		n += g->nodes[i].w == w;
	return n;
}

/* Weights one fused launch can take together: AWQ of one group size, or 16-bit (BF16/F16) dense of
 * one type with rows of whole 16-byte vectors (the decode GEMV's loads). */
static int fusable(const struct awq_weight *a, const struct awq_weight *b)
{
	if (a->fmt != b->fmt || a->k != b->k)
		return 0;
	if (a->fmt == AWQ_WFMT_AWQ4)
		return a->group_size == b->group_size;
	return a->fmt == AWQ_WFMT_DENSE && a->dtype == b->dtype && (a->dtype == AWQ_DT_BF16 || a->dtype == AWQ_DT_F16) &&
	       a->k % 8 == 0;
}

static int gate_up_pair(const struct awq_graph *g, const int *uses, int k, int *pg, int *pu)
{
	if (!awq_graph_gate_up_pair(g, uses, k, pg, pu))
		return 0;
	const struct awq_weight *wa = g->nodes[*pg].w, *wb = g->nodes[*pu].w;
	return fusable(wa, wb) && wa->n == wb->n && !wa->bias && !wb->bias && weight_uses(g, wa) == 1 &&
	       weight_uses(g, wb) == 1;
}

/* Node i is the last of three AWQ MATMULs on one input with no reader of the first two before it. */
static int qkv_triple(const struct awq_graph *g, const struct cu_node *nodes, int i, int mm[3])
{
	if (i < 2 || g->nodes[i].op != AWQ_OP_MATMUL)
		return 0;
	for (int j = 0; j < 3; j++) {
		const struct awq_node *n = &g->nodes[i - 2 + j];
		mm[j] = i - 2 + j;
		if (n->op != AWQ_OP_MATMUL || nodes[i - 2 + j].exec != CU_X_PLAIN || n->in[0] != g->nodes[i].in[0] ||
		    !fusable(n->w, g->nodes[i].w) || weight_uses(g, n->w) != 1)
			return 0;
	}
	return 1;
}

/* q or k of attention node n: fold its ROPE and the per-head RMSNORM before that. */
static void fold_qk(struct cu_ctx *c, const int *uses, int v, int heads, int hd, int *rope, int *norm, int *raw)
{
	const struct awq_graph *g = c->g;
	*rope = awq_graph_head_producer(g, uses, v, AWQ_OP_ROPE, heads, hd);
	if (*rope >= 0)
		v = g->nodes[*rope].in[0];
	*norm = awq_graph_head_producer(g, uses, v, AWQ_OP_RMSNORM, heads, hd);
	if (*norm >= 0)
		v = g->nodes[*norm].in[0];
	*raw = v;
	if (*rope >= 0)
		c->nodes[*rope].exec = CU_X_SKIP;
	if (*norm >= 0)
		c->nodes[*norm].exec = CU_X_SKIP;
}

/* A MATMUL weight whose decode GEMV has the producer-epilogue norm's forms: AWQ, and BF16/F16 of
 * whole 16-byte rows (H200: +2.1% llama2-7b, +2.4% qwen3-8b BF16 decode; AWQ_CUDA_EPINORM_W16=0 off). */
static int epinorm_w16(void)
{
	const char *e = getenv("AWQ_CUDA_EPINORM_W16");
	return !(e && e[0] == '0');
}

static int fold_weight(const struct awq_weight *w)
{
	if (w->fmt == AWQ_WFMT_AWQ4)
		return 1;
	return epinorm_w16() && w->fmt == AWQ_WFMT_DENSE && (w->dtype == AWQ_DT_BF16 || w->dtype == AWQ_DT_F16) &&
	       w->k % 8 == 0;
}

/* MoE layers reading a fold's norm (the router scales its logits, the q4m gate/up kernel its sums by
 * 1 / rms): +3.4% qwen3-30b-a3b AWQ decode on the H200 (502.3 vs 485.9 / 486.8 tok/s), so on;
 * AWQ_CUDA_EPINORM_MOE=0 off. */
static int epinorm_moe(void)
{
	const char *e = getenv("AWQ_CUDA_EPINORM_MOE");
	return !(e && e[0] == '0');
}

static int moe_q4m_node(const struct awq_node *n)
{
	if (n->op != AWQ_OP_MOE_EXPERTS || !n->experts || n->experts->n < 1 || !n->experts->gate || !n->experts->down)
		return 0;
	struct awq_cu_moe_w w;
	awq_cu_moe_geometry(n->experts, &w);
	return awq_cu_moe_q4m(&w);
}

/* A node whose decode kernels can complete a producer-epilogue norm of its input x (cols wide): a
 * MATMUL of a fold weight, and (unless AWQ_CUDA_EPINORM_MOE=0) a 16-bit router on the staged kernel and
 * MOE_EXPERTS on the q4m kernels, reading x as their first input. */
static int fold_reader(const struct awq_node *m, int x, int cols)
{
	if (m->op == AWQ_OP_MATMUL)
		return fold_weight(m->w);
	if (!epinorm_moe() || m->in[0] != x || (m->op == AWQ_OP_MOE_EXPERTS && m->in[1] == x))
		return 0;
	if (m->op == AWQ_OP_MOE_ROUTE)
		return m->w && m->w->fmt == AWQ_WFMT_DENSE && (m->w->dtype == AWQ_DT_BF16 || m->w->dtype == AWQ_DT_F16) &&
		       awq_cu_moe_route_reads_xn(2, cols);
	return moe_q4m_node(m);
}

/* Every reader of value x is such a node (a MATMUL alone, or a member of a fused q/k/v or gate/up
 * launch, which takes the same weights' format), so that each one can complete a producer-epilogue
 * norm. */
static int fold_readers_only(const struct awq_graph *g, int x)
{
	int n = 0;
	for (int j = 0; j < g->n_nodes; j++) {
		const struct awq_node *m = &g->nodes[j];
		int reads = 0;
		for (int k = 0; k < AWQ_MAX_IN; k++)
			reads |= m->in[k] == x;
		if (!reads)
			continue;
		if (!fold_reader(m, x, g->values[x].cols))
			return 0;
		n++;
	}
	return n > 0 && x != g->logits_out;
}

/* A node whose decode kernel can be a fold's producer, writing cols outputs: a MATMUL of a fold
 * weight, or MOE_EXPERTS whose decode runs the q4m kernels (AWQ experts, group sizes multiples of
 * 64: the last expert kernel holds every expert's sum of its features). */
static int fold_producer(const struct awq_node *n, int cols)
{
	if (n->op == AWQ_OP_MATMUL)
		return fold_weight(n->w) && (int)n->w->n == cols;
	return moe_q4m_node(n) && n->experts->gate[0].k == cols;
}

/* The producer-epilogue norm for ADD_NORM node a (tentative; see check_epinorm): the ADD's
 * other input must be ready before the MATMUL (or MOE_EXPERTS) right before it, whose output only
 * the ADD reads. */
static void plan_epinorm(struct cu_ctx *c, const int *uses, int a)
{
	const struct awq_graph *g = c->g;
	const struct awq_node *n = &g->nodes[a];
	const int p = a - 1, cols = g->values[n->out].cols;
	if (p < 0 || c->nodes[p].exec != CU_X_PLAIN || !fold_producer(&g->nodes[p], cols) || cols % 4 ||
	    g->nodes[p].out == g->logits_out)
		return;
	/* a MATMUL producer that reads an earlier fold's norm could clear that fold's accumulator (fold j
	 * clears slot j - 1) while its own blocks still read it: not planned (no decoder here has one).
	 * MOE_EXPERTS reads its input in the gate/up kernel and clears in the down kernel after it. */
	const int ip = awq_graph_producer(g, g->nodes[p].in[0]);
	if (g->nodes[p].op == AWQ_OP_MATMUL && ip >= 0 && g->nodes[ip].op == AWQ_OP_RMSNORM && c->nodes[ip].epi_by >= 0)
		return;
	const int pv = g->nodes[p].out;
	if (uses[pv] != 1 || (n->in[0] != pv && n->in[1] != pv) || n->in[0] == n->in[1])
		return;
	const int res = n->in[0] == pv ? n->in[1] : n->in[0];
	const int rp = awq_graph_producer(g, res);
	if (rp >= p || !fold_readers_only(g, g->nodes[c->nodes[a].norm_node].out))
		return;
	c->nodes[p].epi_norm = a;
	c->nodes[a].epi_by = p;
	c->nodes[c->nodes[a].norm_node].epi_by = p;
}

/* On by default (H200, same-call A/B at 5de1939: llama2-7b +7.5%, qwen3-8b +4.0% AWQ decode);
 * AWQ_CUDA_EPINORM=0 keeps the separate add + RMSNorm launches, for comparisons. */
static int epinorm_on(void)
{
	const char *e = getenv("AWQ_CUDA_EPINORM");
	return !(e && e[0] == '0');
}

static int qkv_rope_on(void)
{
	const char *e = getenv("AWQ_CUDA_QKV_ROPE");
	return !(e && e[0] == '0');
}

/* The QKV node whose outputs are exactly attention node a's raw q, raw k and v, or -1. */
static int qkv_of(const struct cu_ctx *c, int a)
{
	const struct awq_graph *g = c->g;
	const struct cu_node *cn = &c->nodes[a];
	const int j = awq_graph_producer(g, g->nodes[a].in[2]);
	if (j < 0 || c->nodes[j].exec != CU_X_QKV || g->nodes[c->nodes[j].mm[0]].out != cn->q_raw ||
	    g->nodes[c->nodes[j].mm[1]].out != cn->k_raw)
		return -1;
	return j;
}

/* Attention node a's prep in its q/k/v projection's decode epilogue: RoPE on q and k, no per-head
 * norms (their sum spans the tiles of several blocks), AWQ weights, whole tiles per head. */
static void plan_qkv_rope(struct cu_ctx *c, int a)
{
	const struct awq_graph *g = c->g;
	struct cu_node *cn = &c->nodes[a];
	const int hd = g->nodes[a].p.attn.head_dim, j = qkv_of(c, a);
	if (j < 0 || cn->rope_q < 0 || cn->rope_k < 0 || cn->norm_q >= 0 || cn->norm_k >= 0 || hd % 16 ||
	    g->nodes[j].w->fmt != AWQ_WFMT_AWQ4)
		return;
	cn->qkv_by = j;
	c->nodes[j].rope_attn = a;
}

/* Tentative fusions; check_fusions() drops those the arena layout makes unsafe. */
void awq_cu_plan_fusions(struct cu_ctx *c, const int *uses)
{
	const struct awq_graph *g = c->g;
	for (int i = 0; i < g->n_nodes; i++) {
		struct cu_node *cn = &c->nodes[i];
		cn->rope_q = cn->rope_k = cn->norm_q = cn->norm_k = cn->norm_node = -1;
		cn->wq_norm = cn->wk_norm = -1;
		cn->epi_norm = cn->epi_by = cn->epi_slot = -1;
		cn->rope_attn = cn->qkv_by = -1;
		cn->q_raw = g->nodes[i].op == AWQ_OP_ATTENTION ? g->nodes[i].in[0] : -1;
		cn->k_raw = g->nodes[i].op == AWQ_OP_ATTENTION ? g->nodes[i].in[1] : -1;
	}
	const char *nf = getenv("AWQ_CUDA_NO_FUSE");
	if (nf && nf[0] == '1')
		return;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct awq_node *n = &g->nodes[i];
		int pg, pu, mm[3];
		if (qkv_triple(g, c->nodes, i, mm)) {
			c->nodes[mm[0]].exec = CU_X_SKIP;
			c->nodes[mm[1]].exec = CU_X_SKIP;
			c->nodes[i].exec = CU_X_QKV;
			for (int j = 0; j < 3; j++)
				c->nodes[i].mm[j] = mm[j];
		}
		if (gate_up_pair(g, uses, i, &pg, &pu)) {
			c->nodes[pg].exec = CU_X_SKIP;
			c->nodes[pu].exec = CU_X_SKIP;
			c->nodes[i].exec = CU_X_GATE_UP;
			c->nodes[i].in_fused = g->nodes[pg].in[0];
		}
		if (n->op == AWQ_OP_ATTENTION && n->p.attn.head_dim <= 256 && n->p.attn.head_dim % 2 == 0) {
			struct cu_node *cn = &c->nodes[i];
			int hd = n->p.attn.head_dim;
			fold_qk(c, uses, n->in[0], n->p.attn.n_heads, hd, &cn->rope_q, &cn->norm_q, &cn->q_raw);
			fold_qk(c, uses, n->in[1], n->p.attn.n_kv_heads, hd, &cn->rope_k, &cn->norm_k, &cn->k_raw);
			if (qkv_rope_on())
				plan_qkv_rope(c, i);
		}
		if (n->op == AWQ_OP_ADD && i + 1 < g->n_nodes && c->nodes[i].exec == CU_X_PLAIN) {
			const struct awq_node *m = &g->nodes[i + 1];
			if (m->op == AWQ_OP_RMSNORM && m->in[0] == n->out && m->p.norm.group == g->values[n->out].cols &&
			    m->p.norm.group <= 8192) {
				c->nodes[i].exec = CU_X_ADD_NORM;
				c->nodes[i].norm_node = i + 1;
				c->nodes[i + 1].exec = CU_X_SKIP;
			}
		}
	}
	/* after the loop: the readers' q/k/v and gate/up fusions are planned by then */
	if (epinorm_on())
		for (int i = 0; i < g->n_nodes; i++)
			if (c->nodes[i].exec == CU_X_ADD_NORM)
				plan_epinorm(c, uses, i);
}

/* Where the planned fusions read a value later, or write one earlier, than its graph node. */
void awq_cu_fusion_lifetimes(const struct cu_ctx *c, int *live_from, int *live_to)
{
	const struct awq_graph *g = c->g;
	for (int v = 0; v < g->n_values; v++)
		live_from[v] = live_to[v] = -1;
	for (int i = 0; i < g->n_nodes; i++) {
		const struct cu_node *cn = &c->nodes[i];
		const struct awq_node *n = &g->nodes[i];
		if (cn->exec == CU_X_GATE_UP && cn->in_fused >= 0 && live_to[cn->in_fused] < i)
			live_to[cn->in_fused] = i;
		if (cn->exec == CU_X_ADD_NORM)
			live_from[g->nodes[cn->norm_node].out] = cn->epi_by >= 0 ? cn->epi_by : i;
		if (cn->exec == CU_X_ADD_NORM && cn->epi_by >= 0) /* the sum, written by the MATMUL */
			live_from[n->out] = cn->epi_by;
		if (n->op == AWQ_OP_ATTENTION && cn->qkv_by >= 0) /* q written by the q/k/v epilogue */
			live_from[n->in[0]] = cn->qkv_by;
		if (n->op == AWQ_OP_ATTENTION) {
			if (cn->q_raw >= 0 && live_to[cn->q_raw] < i)
				live_to[cn->q_raw] = i;
			if (cn->k_raw >= 0 && live_to[cn->k_raw] < i)
				live_to[cn->k_raw] = i;
		}
	}
}

static int overlaps(const struct cu_ctx *c, int a, int b)
{
	size_t sa = (size_t)c->max_tokens * c->g->values[a].cols * 4, sb = (size_t)c->max_tokens * c->g->values[b].cols * 4;
	return c->offs[a] < c->offs[b] + sb && c->offs[b] < c->offs[a] + sa;
}

/* A fused node reading value v at node `at`, later than its last planned reader `from`: nothing
 * written in between may share v's memory. */
static int late_read_ok(const struct cu_ctx *c, int v, int from, int at)
{
	for (int j = from + 1; j <= at; j++) {
		if (c->nodes[j].exec == CU_X_SKIP)
			continue;
		if (overlaps(c, v, c->g->nodes[j].out))
			return 0;
		if (c->nodes[j].exec == CU_X_ADD_NORM && overlaps(c, v, c->g->nodes[c->nodes[j].norm_node].out))
			return 0;
		if (c->nodes[j].exec == CU_X_QKV && (overlaps(c, v, c->g->nodes[c->nodes[j].mm[0]].out) ||
						     overlaps(c, v, c->g->nodes[c->nodes[j].mm[1]].out)))
			return 0;
	}
	return 1;
}

static int fusion_ok(const struct cu_ctx *c, int i)
{
	const struct awq_graph *g = c->g;
	const struct cu_node *cn = &c->nodes[i];
	const struct awq_node *n = &g->nodes[i];
	if (cn->exec == CU_X_GATE_UP) {
		int pg = awq_graph_producer(g, n->in[0]), pu = awq_graph_producer(g, n->in[1]);
		return late_read_ok(c, cn->in_fused, pg < pu ? pg : pu, i);
	}
	if (cn->exec == CU_X_QKV)
		return 1; /* q and k are written late, at v's node, and nothing reads them before it */
	if (cn->exec == CU_X_ADD_NORM) {
		int y = g->nodes[cn->norm_node].out;
		return !overlaps(c, y, n->in[0]) && !overlaps(c, y, n->in[1]);
	}
	if (n->op == AWQ_OP_ATTENTION) {
		int fq = cn->norm_q >= 0 ? cn->norm_q : cn->rope_q, fk = cn->norm_k >= 0 ? cn->norm_k : cn->rope_k;
		if (fq >= 0 && !late_read_ok(c, cn->q_raw, fq, i))
			return 0;
		if (fk >= 0 && !late_read_ok(c, cn->k_raw, fk, i))
			return 0;
	}
	return 1;
}

static void unfuse(struct cu_ctx *c, int i)
{
	const struct awq_graph *g = c->g;
	struct cu_node *cn = &c->nodes[i];
	if (cn->exec == CU_X_GATE_UP) {
		c->nodes[awq_graph_producer(g, g->nodes[i].in[0])].exec = CU_X_PLAIN;
		c->nodes[awq_graph_producer(g, g->nodes[i].in[1])].exec = CU_X_PLAIN;
	} else if (cn->exec == CU_X_QKV) {
		c->nodes[cn->mm[0]].exec = CU_X_PLAIN;
		c->nodes[cn->mm[1]].exec = CU_X_PLAIN;
	} else if (cn->exec == CU_X_ADD_NORM) {
		c->nodes[cn->norm_node].exec = CU_X_PLAIN;
		cn->norm_node = -1;
	}
	int folded[4] = {cn->rope_q, cn->rope_k, cn->norm_q, cn->norm_k};
	for (int j = 0; j < 4; j++)
		if (folded[j] >= 0)
			c->nodes[folded[j]].exec = CU_X_PLAIN;
	cn->rope_q = cn->rope_k = cn->norm_q = cn->norm_k = -1;
	if (g->nodes[i].op == AWQ_OP_ATTENTION) {
		cn->q_raw = g->nodes[i].in[0];
		cn->k_raw = g->nodes[i].in[1];
	}
	cn->exec = CU_X_PLAIN;
}

/* The producer-epilogue norm of ADD node a, once the other fusions are settled: the MATMUL writes
 * the sum and the norm while its blocks still read its input, and reads the residual for its own
 * rows only, so neither output may share memory with the input, the residual or each other. */
static void check_epinorm(struct cu_ctx *c, int a)
{
	const struct awq_graph *g = c->g;
	struct cu_node *cn = &c->nodes[a];
	const int p = cn->epi_by;
	if (p < 0)
		return;
	const struct awq_node *n = &g->nodes[a];
	const int h = n->out, pv = g->nodes[p].out, res = n->in[0] == pv ? n->in[1] : n->in[0];
	const int x = cn->exec == CU_X_ADD_NORM ? g->nodes[cn->norm_node].out : -1, in = g->nodes[p].in[0];
	/* MOE_EXPERTS also reads its route (in[1]) in its last kernel */
	const int in2 = g->nodes[p].op == AWQ_OP_MOE_EXPERTS ? g->nodes[p].in[1] : in;
	if (x >= 0 && c->nodes[p].exec == CU_X_PLAIN && !overlaps(c, h, in) && !overlaps(c, x, in) &&
	    !overlaps(c, h, in2) && !overlaps(c, x, in2) && !overlaps(c, h, res) && !overlaps(c, x, res) &&
	    !overlaps(c, x, h))
		return;
	c->nodes[p].epi_norm = -1;
	cn->epi_by = -1;
	if (x >= 0)
		c->nodes[cn->norm_node].epi_by = -1;
}

/* Undoing one fusion makes its nodes write again, which can break another: repeat until stable. */
void awq_cu_check_fusions(struct cu_ctx *c)
{
	int changed = 1;
	while (changed) {
		changed = 0;
		for (int i = 0; i < c->g->n_nodes; i++) {
			if (c->nodes[i].exec == CU_X_SKIP || fusion_ok(c, i))
				continue;
			unfuse(c, i);
			changed = 1;
		}
	}
	/* the RoPE epilogue needs both fusions it joins to have stayed */
	for (int i = 0; i < c->g->n_nodes; i++) {
		struct cu_node *cn = &c->nodes[i];
		if (cn->qkv_by < 0)
			continue;
		if (cn->rope_q < 0 || cn->rope_k < 0 || qkv_of(c, i) != cn->qkv_by) {
			c->nodes[cn->qkv_by].rope_attn = -1;
			cn->qkv_by = -1;
		}
	}
	for (int i = 0; i < c->g->n_nodes; i++)
		if (c->g->nodes[i].op == AWQ_OP_ADD)
			check_epinorm(c, i);
	/* Accumulators: fold j adds into slot j and clears slot j - 1 (the previous fold's, whose
	 * readers have finished; fold 0 clears the last one, for the next step), so that one fold
	 * alone would clear its own: then none is used. */
	int nf = 0;
	for (int i = 0; i < c->g->n_nodes; i++)
		if (c->nodes[i].epi_norm >= 0)
			c->nodes[i].epi_slot = nf++;
	if (nf == 1)
		for (int i = 0; i < c->g->n_nodes; i++)
			if (c->nodes[i].epi_norm >= 0) {
				struct cu_node *a = &c->nodes[c->nodes[i].epi_norm];
				c->nodes[a->norm_node].epi_by = -1;
				a->epi_by = -1;
				c->nodes[i].epi_norm = -1;
				nf = 0;
			}
	c->n_folds = nf;
}


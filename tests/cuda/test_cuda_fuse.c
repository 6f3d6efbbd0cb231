#define _POSIX_C_SOURCE 200809L /* setenv */
/* The CUDA backend's fusion planning on real model graphs, without a GPU: after planning the arena
 * with the fused lifetimes and checking every fusion against it, a decoder layer must run as the
 * few launches the kernels were written for (add + RMSNorm as one, q/k norms and RoPE folded into
 * the attention prep kernel, AWQ q/k/v and gate/up as one matmul each). A fusion silently dropped
 * by the arena check costs several microseconds per layer and token, which no output test shows.
 * By default (and with AWQ_CUDA_EPINORM=1; not with =0) both add + RMSNorm of an AWQ layer also go
 * into the epilogue of the matmul before them (o, down) in one-token steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "cuda_internal.h"
#include "graph.h"
#include "model.h"

/* What layer 1 should run as, by exec kind and op. */
struct expect {
	const char *preset, *precision;
	int launches;   /* executed nodes of layer 1 */
	int add_norm;   /* ADD nodes running their RMSNORM too */
	int qkv, gate_up;
	int rope_folded, norm_folded; /* per attention node */
	int epinorm;     /* with AWQ_CUDA_EPINORM=1: ADD nodes formed in a MATMUL's epilogue */
	int epinorm_w16; /* the same with AWQ_CUDA_EPINORM_W16=1 as well */
	int qkv_rope;    /* the attention prep in the q/k/v projection's epilogue (unless AWQ_CUDA_QKV_ROPE=0) */
};

/* The backend's planning of graph g as prepare does it: fusions, their lifetimes, the arena, the
 * check of every fusion against it. Returns the failures (a plan error); free with plan_free. */
static int plan(struct cu_ctx *c, struct awq_graph *g, int max_tokens, const char *what)
{
	char err[AWQ_ERRLEN] = "";
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->max_tokens = max_tokens;
	c->nodes = calloc((size_t)g->n_nodes, sizeof(*c->nodes));
	c->offs = calloc((size_t)g->n_values, sizeof(size_t));
	int *uses = awq_graph_count_uses(g), *live = malloc((size_t)g->n_values * 2 * sizeof(int)), fails = 0;
	if (!c->nodes || !c->offs || !uses || !live) {
		printf("FAIL: out of memory\n");
		exit(1);
	}
	awq_cu_plan_fusions(c, uses);
	awq_cu_fusion_lifetimes(c, live, live + g->n_values);
	if (awq_graph_plan_live(g, max_tokens, 4, live, live + g->n_values, c->offs, &c->arena_bytes, err, sizeof(err))) {
		printf("FAIL %s: plan: %s\n", what, err);
		fails++;
	}
	awq_cu_check_fusions(c);
	free(uses);
	free(live);
	return fails;
}

static void plan_free(struct cu_ctx *c)
{
	free(c->nodes);
	free(c->offs);
}

/* epinorm: 0 off, 1 on (AWQ weights), 2 on with 16-bit weights too (AWQ_CUDA_EPINORM_W16=1) */
static int check(const struct expect *e, int max_tokens, int epinorm, int qkv_rope)
{
	setenv("AWQ_CUDA_QKV_ROPE", qkv_rope ? "1" : "0", 1);
	setenv("AWQ_CUDA_EPINORM", epinorm ? "1" : "0", 1);
	setenv("AWQ_CUDA_EPINORM_W16", epinorm == 2 ? "1" : "0", 1);
	char err[AWQ_ERRLEN] = "";
	awq_model *m = NULL;
	struct awq_graph g;
	awq_graph_init(&g);
	int fails = 0;
	if (awq_model_synthetic(e->preset, e->precision, 3, &m, err, sizeof(err)) ||
	    awq_build_graph((const struct awq_model *)m, &g, err, sizeof(err))) {
		printf("FAIL %s %s: %s\n", e->preset, e->precision, err);
		awq_model_free(m);
		return 1;
	}
	struct cu_ctx c;
	fails += plan(&c, &g, max_tokens, e->preset);
	int launches = 0, add_norm = 0, qkv = 0, gate_up = 0, rope_ok = 1, norm_ok = 1, epi = 0, epi_ok = 1, qr = 0,
	    qr_ok = 1;
	for (int i = 0; i < g.n_nodes; i++) {
		const struct cu_node *cn = &c.nodes[i];
		if (strncmp(g.values[g.nodes[i].out].name, "l1.", 3) || cn->exec == CU_X_SKIP)
			continue;
		launches++;
		add_norm += cn->exec == CU_X_ADD_NORM;
		qkv += cn->exec == CU_X_QKV;
		gate_up += cn->exec == CU_X_GATE_UP;
		if (cn->exec == CU_X_ADD_NORM && cn->epi_by >= 0) {
			epi++;
			epi_ok &= c.nodes[cn->epi_by].epi_norm == i && g.nodes[cn->epi_by].op == AWQ_OP_MATMUL;
		}
		if (g.nodes[i].op == AWQ_OP_ATTENTION) {
			rope_ok &= (cn->rope_q >= 0 && cn->rope_k >= 0) == e->rope_folded;
			norm_ok &= (cn->norm_q >= 0 && cn->norm_k >= 0) == e->norm_folded;
			if (cn->qkv_by >= 0) {
				qr++;
				qr_ok &= c.nodes[cn->qkv_by].exec == CU_X_QKV && c.nodes[cn->qkv_by].rope_attn == i &&
					 g.nodes[c.nodes[cn->qkv_by].mm[0]].out == cn->q_raw;
			}
		}
	}
	const int want_qr = qkv_rope ? e->qkv_rope : 0;
	const int want_epi = epinorm == 2 ? e->epinorm_w16 : epinorm ? e->epinorm : 0;
	int ok = launches == e->launches && add_norm == e->add_norm && qkv == e->qkv && gate_up == e->gate_up &&
		 rope_ok && norm_ok && epi == want_epi && epi_ok && qr == want_qr && qr_ok;
	printf("%s %s %s (max_tokens %d%s%s): layer 1 runs %d launches (want %d), add+norm %d/%d, qkv %d/%d, gate/up "
	       "%d/%d, rope %s, qk-norm %s, in a matmul's epilogue %d/%d%s, prep in the q/k/v epilogue %d/%d%s\n",
	       ok ? "ok  " : "FAIL", e->preset, e->precision, max_tokens,
	       epinorm == 2 ? ", AWQ_CUDA_EPINORM_W16=1" : epinorm ? ", AWQ_CUDA_EPINORM=1" : "",
	       qkv_rope ? "" : ", AWQ_CUDA_QKV_ROPE=0", launches, e->launches, add_norm, e->add_norm, qkv, e->qkv,
	       gate_up, e->gate_up, rope_ok ? "as expected" : "NOT as expected",
	       norm_ok ? "as expected" : "NOT as expected", epi, want_epi, epi_ok ? "" : " (producer not linked back)",
	       qr, want_qr, qr_ok ? "" : " (not linked both ways)");
	fails += !ok;
	plan_free(&c);
	awq_graph_free(&g);
	awq_model_free(m);
	return fails;
}

/* Two routed layers as in a Qwen3-MoE decoder (an AWQ o projection, add + RMSNorm, route, experts,
 * add + RMSNorm read by an AWQ matmul): the experts of AWQ g64 / g128 fold the add + RMSNorm after
 * them into their down kernel, g32 and BF16 experts do not (the q4m kernels are the only ones with
 * the epilogue); the o projection folds the one before them too (moe_in: AWQ_CUDA_EPINORM_MOE=1, 0,
 * or -1 unset, the default, on), whose readers are the router and the experts. Weights are
 * descriptions only. */
static int check_moe(const char *what, enum awq_wfmt fmt, int group, int epinorm, int moe_in, int want, int want_o)
{
	enum { E = 4, K = 2, H = 256, I = 128 };
	struct awq_weight ex[3 * E], router = {.fmt = AWQ_WFMT_DENSE, .dtype = AWQ_DT_BF16, .n = E, .k = H};
	struct awq_weight mm = {.fmt = AWQ_WFMT_AWQ4, .dtype = AWQ_DT_I32, .n = H, .k = H, .group_size = 128};
	struct awq_weight nw = {.fmt = AWQ_WFMT_DENSE, .dtype = AWQ_DT_BF16, .n = H, .k = 1};
	for (int i = 0; i < 3 * E; i++)
		ex[i] = (struct awq_weight){.fmt = fmt, .dtype = fmt == AWQ_WFMT_AWQ4 ? AWQ_DT_I32 : AWQ_DT_BF16,
					    .n = i < 2 * E ? I : H, .k = i < 2 * E ? H : I, .group_size = group};
	struct awq_experts x = {E, ex, ex + E, ex + 2 * E};
	struct awq_node prm = {0}, nrm = {.p.norm = {.eps = 1e-6f, .group = H}};
	prm.p.moe.n_experts = E;
	prm.p.moe.top_k = K;
	prm.experts = &x;
	struct awq_graph g;
	awq_graph_init(&g);
	int v = awq_graph_value(&g, AWQ_V_ACT, H, "x"), res = awq_graph_value(&g, AWQ_V_ACT, H, "res");
	g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	for (int l = 0; l < 2; l++) {
		int o = awq_graph_node(&g, AWQ_OP_MATMUL, H, "o", v, -1, -1, &mm, NULL);
		res = awq_graph_node(&g, AWQ_OP_ADD, H, "h_attn", o, res, -1, NULL, NULL);
		int n1 = awq_graph_node(&g, AWQ_OP_RMSNORM, H, "n_attn", res, -1, -1, &nw, &nrm);
		int r = awq_graph_node(&g, AWQ_OP_MOE_ROUTE, 2 * K, "route", n1, -1, -1, &router, &prm);
		int e = awq_graph_node(&g, AWQ_OP_MOE_EXPERTS, H, "experts", n1, r, -1, NULL, &prm);
		res = awq_graph_node(&g, AWQ_OP_ADD, H, "h", e, res, -1, NULL, NULL);
		int n = awq_graph_node(&g, AWQ_OP_RMSNORM, H, "n", res, -1, -1, &nw, &nrm);
		v = awq_graph_node(&g, AWQ_OP_MATMUL, H, "y", n, -1, -1, &mm, NULL);
	}
	g.logits_out = v;
	g.argmax_out = -1;
	setenv("AWQ_CUDA_EPINORM", epinorm ? "1" : "0", 1);
	if (moe_in < 0)
		unsetenv("AWQ_CUDA_EPINORM_MOE");
	else
		setenv("AWQ_CUDA_EPINORM_MOE", moe_in ? "1" : "0", 1);
	struct cu_ctx c;
	int fails = plan(&c, &g, 1, what);
	int folds = 0, folds_o = 0, linked = 1;
	for (int i = 0; i < g.n_nodes; i++) {
		if (c.nodes[i].epi_norm < 0)
			continue;
		folds += g.nodes[i].op == AWQ_OP_MOE_EXPERTS;
		folds_o += g.nodes[i].op == AWQ_OP_MATMUL;
		const int a = c.nodes[i].epi_norm;
		linked &= a == i + 1 && c.nodes[a].epi_by == i && c.nodes[c.nodes[a].norm_node].epi_by == i;
	}
	/* (one fold alone would clear its own accumulator: then none is planned) */
	const int total = want + want_o >= 2 ? want + want_o : 0;
	int ok = folds == (total ? want : 0) && folds_o == (total ? want_o : 0) && c.n_folds == total && linked;
	printf("%s moe %s (AWQ_CUDA_EPINORM=%d, AWQ_CUDA_EPINORM_MOE=%s): %d of 2 add + RMSNorm in the experts' "
	       "epilogue (want %d), %d of 2 in the o projection's (want %d)%s\n",
	       ok ? "ok  " : "FAIL", what, epinorm, moe_in < 0 ? "unset" : moe_in ? "1" : "0", folds, want, folds_o,
	       want_o,
	       linked ? "" : " (not linked as expected)");
	fails += !ok;
	plan_free(&c);
	awq_graph_free(&g);
	return fails;
}

/* The backend's integer settings (AWQ_CUDA_ATTN_BLOCKS_PER_SM, ...): unset gives the default, a
 * whole number in range is taken, anything else is reported and gives the default. */
static int check_env_int(void)
{
	static const struct {
		const char *v;
		int want;
	} cs[] = {{NULL, 8}, {"16", 16}, {"0", 0}, {"64", 64}, {"65", 8}, {"-1", 8}, {"abc", 8}, {"8x", 8}, {"", 8}};
	int fails = 0;
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		if (cs[i].v)
			setenv("AWQ_TEST_ENV_INT", cs[i].v, 1);
		else
			unsetenv("AWQ_TEST_ENV_INT");
		int got = awq_env_int("AWQ_TEST_ENV_INT", 8, 0, 64);
		printf("%s setting \"%s\" (default 8, 0-64): %d (want %d)\n", got == cs[i].want ? "ok  " : "FAIL",
		       cs[i].v ? cs[i].v : "unset", got, cs[i].want);
		fails += got != cs[i].want;
	}
	unsetenv("AWQ_TEST_ENV_INT");
	/* AWQ_CUDA_DEQ_ROWS (the prefill copy route, shared with the performance model): decode-sized
	 * values mean 9, bad ones the default */
	static const struct {
		const char *v;
		int want;
	} dr[] = {{NULL, AWQ_CUDA_DEQ_ROWS_DEFAULT}, {"0", 0}, {"4", 9}, {"9", 9}, {"300", 300}, {"abc", 256}, {"-5", 256}};
	for (size_t i = 0; i < sizeof(dr) / sizeof(dr[0]); i++) {
		if (dr[i].v)
			setenv("AWQ_CUDA_DEQ_ROWS", dr[i].v, 1);
		else
			unsetenv("AWQ_CUDA_DEQ_ROWS");
		int got = awq_cuda_deq_rows();
		printf("%s AWQ_CUDA_DEQ_ROWS \"%s\": %d (want %d)\n", got == dr[i].want ? "ok  " : "FAIL",
		       dr[i].v ? dr[i].v : "unset", got, dr[i].want);
		fails += got != dr[i].want;
	}
	unsetenv("AWQ_CUDA_DEQ_ROWS");
	return fails;
}

/* The RoPE pair order of the q/k/v epilogue's repack (awq_rope_perm_src, its inverse
 * awq_rope_perm_dst): a permutation within each head, rows g and g + 8 of every tile the pair
 * (d, d + hd / 2) of the rotate-half RoPE. */
static int check_rope_perm(void)
{
	int bad = 0;
	for (int hd = 16; hd <= 256; hd *= 2) {
		int seen[256] = {0};
		for (int r = 0; r < 3 * hd; r++) { /* three heads */
			const int d = awq_rope_perm_src(r, hd) - r / hd * hd;
			bad += d < 0 || d >= hd || awq_rope_perm_dst(d, hd) != r % hd;
			if (r < hd && d >= 0 && d < hd)
				seen[d]++;
			if (r % 16 < 8)
				bad += awq_rope_perm_src(r + 8, hd) != awq_rope_perm_src(r, hd) + hd / 2 || d >= hd / 2;
		}
		for (int d = 0; d < hd; d++)
			bad += seen[d] != 1;
	}
	printf("%s RoPE pair order of the q/k/v repack: a permutation per head, pairs in rows g, g + 8 (%d bad)\n",
	       bad ? "FAIL" : "ok  ", bad);
	return bad != 0;
}

/* awq_cu_span: the attention span (and its captured step's index) of a step ending before `end` */
static int check_span(void)
{
	static const int t[][4] = {/* max_ctx, end, span, index */
				   {4096, 1, 64, 0},	     {4096, 64, 64, 0},	      {4096, 65, 128, 1},
				   {4096, 100, 128, 1},	     {4096, 4096, 4096, 6},   {128, 100, 128, 1},
				   {100, 100, 100, 1},	     {100, 64, 64, 0},	      {40, 10, 40, 0},
				   {40960, 40960, 40960, 10}, {40960, 32769, 40960, 10}, {40960, 32768, 32768, 9},
				   {1 << 30, 1 << 30, 1 << 30, 24}};
	int f = 0;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int span = -1, k = awq_cu_span(t[i][0], t[i][1], &span);
		int ok = span == t[i][2] && k == t[i][3] && k < CU_SPANS;
		printf("%s attention span max_ctx %d end %d: %d (index %d)\n", ok ? "ok  " : "FAIL", t[i][0], t[i][1], span, k);
		f += !ok;
	}
	return f;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fe = check_env_int() + check_rope_perm() + check_span();
	/* Layer 1 of a dense decoder: [add+norm of the previous residual is in layer 0] q/k/v,
	 * attention (prep + kernels), o, add+norm, gate/up (+SiLU), down, and the closing ADD that fuses
	 * with the next layer's input norm. */
	static const struct expect ex[] = {
		{"qwen3-0.6b", "awq", 7, 2, 1, 1, 1, 1, 2, 2, 0},
		{"qwen3-0.6b", "bf16", 7, 2, 1, 1, 1, 1, 0, 2, 0},
		{"qwen2.5-0.5b", "awq", 7, 2, 1, 1, 1, 0, 2, 2, 1},
		{"tinyllama-1.1b", "awq", 7, 2, 1, 1, 1, 0, 2, 2, 1},
		{"tinyllama-1.1b", "bf16", 7, 2, 1, 1, 1, 0, 0, 2, 0},
	};
	int f = 0;
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++)
		for (int en = 0; en < 3; en++) {
			f += check(&ex[i], 1, en, 1);
			f += check(&ex[i], 512, en, 1);
		}
	f += check(&ex[3], 1, 1, 0);
	unsetenv("AWQ_CUDA_QKV_ROPE");
	f += check_moe("awq g128", AWQ_WFMT_AWQ4, 128, 1, 0, 2, 0);
	f += check_moe("awq g64", AWQ_WFMT_AWQ4, 64, 1, 0, 2, 0);
	f += check_moe("awq g128", AWQ_WFMT_AWQ4, 128, 0, 0, 0, 0);
	f += check_moe("awq g32", AWQ_WFMT_AWQ4, 32, 1, 0, 0, 0);
	f += check_moe("bf16", AWQ_WFMT_DENSE, 0, 1, 0, 0, 0);
	f += check_moe("awq g128", AWQ_WFMT_AWQ4, 128, 1, 1, 2, 2);
	f += check_moe("awq g128", AWQ_WFMT_AWQ4, 128, 1, -1, 2, 2);
	f += check_moe("awq g64", AWQ_WFMT_AWQ4, 64, 1, 1, 2, 2);
	f += check_moe("awq g128", AWQ_WFMT_AWQ4, 128, 0, 1, 0, 0);
	f += check_moe("awq g32", AWQ_WFMT_AWQ4, 32, 1, 1, 0, 0);
	f += check_moe("bf16", AWQ_WFMT_DENSE, 0, 1, 1, 0, 0);
	f += fe;
	printf("%s: %d failure(s)\n", f ? "FAIL" : "PASS", f);
	return f ? 1 : 0;
}

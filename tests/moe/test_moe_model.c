/* Whole MoE models: the synthetic presets' sizes against the published figures, graph checks, and
 * the property the issue is about: a step reads only the experts its tokens selected. A small
 * random Qwen3-MoE model runs a prefill and two decode steps on the CPU backend (SIMD and scalar,
 * bf16 and AWQ experts); every expert that no step selected is then filled with NaN and the same
 * steps run again on a freshly prepared backend: the logits must be finite and bit-identical. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "awqrun.h"
#include "backend.h"
#include "graph.h"
#include "moe_test.h"
#include "synthetic.h"

#define NAN_F16 0x7e00u
#define NAN_BF16 0x7fc0u
#define PROMPT 4
#define STEPS (PROMPT + 2)

static void preset_sizes(void)
{
	/* published: Qwen3-30B-A3B 30.5B parameters, Qwen3-235B-A22B 235B, Qwen1.5-MoE-A2.7B 14.3B (60
	 * experts, top-4, and a shared expert); the roofline for 30B-A3B AWQ decode is about
	 * 2.05 GB read per token, the BF16 lm_head included */
	struct {
		const char *name, *prec;
		double params, decode;
		int experts, top_k;
	} want[] = {{"qwen3-30b-a3b", "awq", 30.5e9, 2.05e9, 128, 8},
		    {"qwen3-235b-a22b", "bf16", 235e9, 0, 128, 8},
		    {"qwen1.5-moe-a2.7b", "bf16", 14.3e9, 0, 60, 4}};
	for (int i = 0; i < 3; i++) {
		char err[AWQ_ERRLEN];
		awq_model *m = NULL;
		struct awq_model_info info;
		if (awq_model_shape(want[i].name, want[i].prec, &m, err, sizeof(err))) {
			CHECK(0, "%s: %s", want[i].name, err);
			continue;
		}
		awq_model_get_info(m, &info);
		CHECK(fabs((double)info.n_params / want[i].params - 1) < 0.01, "%s: %.4g parameters, published %.4g",
		      want[i].name, (double)info.n_params, want[i].params);
		CHECK(!want[i].decode || fabs((double)info.decode_bytes / want[i].decode - 1) < 0.05,
		      "%s: %.4g bytes per decoded token, expected about %.4g", want[i].name, (double)info.decode_bytes,
		      want[i].decode);
		CHECK(info.n_experts == want[i].experts && info.n_experts_per_tok == want[i].top_k, "%s: %d experts, top-%d",
		      want[i].name, info.n_experts, info.n_experts_per_tok);
		awq_model_free(m);
	}
}

static struct awq_config tiny_config(void)
{
	struct awq_config c;
	char err[AWQ_ERRLEN];
	awq_preset_config("qwen3-30b-a3b", &c, err, sizeof(err));
	c.hidden = 128;
	c.n_layers = 3;
	c.n_heads = 4;
	c.n_kv_heads = 2;
	c.head_dim = 32;
	c.intermediate = 256;
	c.vocab = 300;
	c.max_pos = 64;
	c.n_experts = 16;
	c.n_experts_per_tok = 4;
	c.moe_intermediate = 128;
	c.n_mlp_only = 1;
	c.mlp_only_layers[0] = 1;
	return c;
}

static void graph_cases(void)
{
	struct awq_config c = tiny_config();
	char err[AWQ_ERRLEN];
	awq_model *m = NULL;
	struct awq_graph g;
	const struct awq_weight **ws;
	if (awq_model_from_config(&c, "bf16", 0, 0, &m, err, sizeof(err))) {
		CHECK(0, "tiny shape model: %s", err);
		return;
	}
	CHECK(awq_build_graph(m, &g, err, sizeof(err)) == 0, "graph: %s", err);
	int n = awq_graph_weights(&g, &ws);
	/* embed, final norm, lm_head; per layer 2 norms, q/k/v/o, q/k norms; dense layer 3 MLP
	 * weights; sparse layers a router and 3 x 16 experts */
	int want = 3 + 3 * 8 + 3 + 2 * (1 + 3 * 16);
	CHECK(n == want, "graph lists %d distinct weights, want %d", n, want);
	int experts = 0;
	for (int i = 0; i < n; i++)
		experts += strstr(ws[i]->name, ".experts.") != NULL;
	CHECK(experts == 2 * 3 * 16, "graph lists %d expert weights, want %d", experts, 2 * 3 * 16);
	free(ws);
	/* one expert of another shape is refused by the check backends run */
	m->layers[2].experts.up[5].n = 64;
	CHECK(awq_graph_check(&g, err, sizeof(err)) == AWQ_EUNSUPPORTED && strstr(err, "experts.5.up_proj"),
	      "mismatched expert accepted or badly reported: %s", err);
	awq_graph_free(&g);
	awq_model_free(m);
}

struct run {
	const struct awq_backend_ops *ops;
	int scalar;
	int32_t tokens[STEPS];
};

/* Prefill PROMPT tokens, then decode the rest one at a time; out gets value v's rows of every
 * step (all rows of the prefill). Returns the number of floats written, or -1. */
static int run_steps(const struct run *r, const struct awq_graph *g, int v, float *out)
{
	struct awq_backend_opts o = {.threads = 2, .cpu_scalar = r->scalar, .quiet = 1};
	struct awq_prepare_opts po = {.max_tokens = PROMPT, .max_ctx = STEPS};
	char err[AWQ_ERRLEN];
	void *ctx = NULL;
	int n = 0, cols = g->values[v].cols;
	int rc = r->ops->open(0, &o, &ctx, err, sizeof(err));
	rc = rc ? rc : r->ops->prepare(ctx, g, &po, err, sizeof(err));
	for (int pos = 0; !rc && pos < STEPS; pos += pos ? 1 : PROMPT) {
		struct awq_step s = {.n_tokens = pos ? 1 : PROMPT, .pos = pos, .all_rows = true};
		rc = r->ops->write_value(ctx, g->tokens_in, r->tokens + pos, s.n_tokens, err, sizeof(err));
		rc = rc ? rc : r->ops->run(ctx, &s, err, sizeof(err));
		for (int i = 0; i < s.n_tokens * cols; i++)
			out[n + i] = NAN;
		rc = rc ? rc : r->ops->read_value(ctx, v, out + n, s.n_tokens, err, sizeof(err));
		n += s.n_tokens * cols;
	}
	if (ctx)
		r->ops->close(ctx);
	CHECK(rc == 0, "CPU backend run: %s", err);
	return rc ? -1 : n;
}

static void poison(struct awq_weight *w)
{
	if (w->fmt == AWQ_WFMT_AWQ4)
		for (int64_t i = 0; i < w->k / w->group_size * w->n; i++)
			((uint16_t *)w->scales)[i] = NAN_F16;
	else
		for (int64_t i = 0; i < w->n * w->k; i++)
			((uint16_t *)w->data)[i] = w->dtype == AWQ_DT_BF16 ? NAN_BF16 : NAN_F16;
}

static void only_selected(const char *prec, int scalar)
{
	struct awq_config c = tiny_config();
	struct run r = {awq_cpu_backend(), scalar, {0}};
	char err[AWQ_ERRLEN];
	awq_model *m = NULL;
	struct awq_graph g;
	static float before[STEPS * 300], after[STEPS * 300], route[STEPS * 8];
	for (int i = 0; i < STEPS; i++)
		r.tokens[i] = (int32_t)(mt_rand() % 300);
	if (awq_model_from_config(&c, prec, 1, 7, &m, err, sizeof(err)) ||
	    awq_build_graph(m, &g, err, sizeof(err))) {
		CHECK(0, "tiny %s model: %s", prec, err);
		awq_model_free(m);
		return;
	}
	int n = run_steps(&r, &g, g.logits_out, before);
	int poisoned = 0;
	for (int i = 0; n > 0 && i < g.n_nodes; i++) {
		const struct awq_node *nd = &g.nodes[i];
		if (nd->op != AWQ_OP_MOE_EXPERTS)
			continue;
		/* the route feeding this layer, kept readable by making it the graph's output */
		struct awq_graph rg = g;
		rg.logits_out = nd->in[1];
		rg.argmax_out = -1;
		int nr = run_steps(&r, &rg, nd->in[1], route), used[16] = {0};
		for (int t = 0; t < nr / 8; t++)
			for (int j = 0; j < 4; j++)
				used[(int)route[t * 8 + j]] = 1;
		struct awq_experts *x = (struct awq_experts *)nd->experts;
		for (int e = 0; nr > 0 && e < x->n; e++) {
			if (used[e])
				continue;
			poison(&x->gate[e]), poison(&x->up[e]), poison(&x->down[e]);
			poisoned++;
		}
	}
	CHECK(poisoned > 0, "%s: every expert was selected, nothing poisoned", prec);
	int n2 = run_steps(&r, &g, g.logits_out, after);
	CHECK(n2 == n && n > 0 && memcmp(before, after, (size_t)n * sizeof(float)) == 0,
	      "%s%s: logits changed once %d unselected experts held NaN", prec, scalar ? " scalar" : "", poisoned);
	awq_graph_free(&g);
	awq_model_free(m);
}

void mt_model_cases(void)
{
	preset_sizes();
	graph_cases();
	struct awq_graph g = {0};
	struct awq_node probe = {.op = AWQ_OP_MOE_EXPERTS};
	const struct awq_backend_ops *ops = awq_cpu_backend();
	void *ctx = NULL;
	char err[AWQ_ERRLEN];
	struct awq_backend_opts o = {.threads = 1, .quiet = 1};
	int supported = ops->open(0, &o, &ctx, err, sizeof(err)) == 0 && ops->supports(ctx, &g, &probe);
	if (ctx)
		ops->close(ctx);
	CHECK(supported, "the CPU backend does not run MOE_EXPERTS");
	for (int scalar = 0; supported && scalar < 2; scalar++) {
		only_selected("bf16", scalar);
		only_selected("awq", scalar);
	}
}

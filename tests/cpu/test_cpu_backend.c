/* The CPU backend through its plugin table on a hand-built graph (embedding, projections, RoPE, GQA
 * attention over the KV cache, residual add): SIMD vs scalar, 1 vs 2 threads, one prefill vs one
 * token per step. Tolerance 1e-4 relative to the output's max (f32 summation order only). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#define D 64
#define HQ 4
#define HK 2
#define HD 16
#define V 50
#define T 9

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint16_t emb[V * D], wq[D * D], wk[HK * HD * D], wv[HK * HD * D];

static void dense(struct awq_weight *w, const char *name, int n, int k, uint16_t *data)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_DENSE;
	w->n = n;
	w->k = k;
	w->dtype = AWQ_DT_BF16;
	w->data = data;
	for (int i = 0; i < n * k; i++)
		data[i] = awq_f32_to_bf16(frand() * 0.5f);
}

/* Runs the graph with the given options; out gets T rows, prefill or step by step. */
static int run(const struct awq_graph *g, int threads, int scalar, int stepwise, const int32_t *tok, float *out)
{
	const struct awq_backend_ops *ops = awq_cpu_backend();
	struct awq_backend_opts bo = {.threads = threads, .cpu_scalar = scalar};
	struct awq_prepare_opts po = {.max_tokens = T, .max_ctx = T};
	char err[256];
	void *ctx;
	if (ops->open(0, &bo, &ctx, err, sizeof(err)) || ops->prepare(ctx, g, &po, err, sizeof(err))) {
		printf("FAIL: %s\n", err);
		return 1;
	}
	for (int i = 0; i < T * HQ * HD; i++)
		out[i] = NAN;
	int rc = 0;
	if (!stepwise) {
		struct awq_step s = {.n_tokens = T, .pos = 0};
		rc = ops->write_value(ctx, g->tokens_in, tok, T, err, sizeof(err)) || ops->run(ctx, &s, err, sizeof(err)) ||
		     ops->read_value(ctx, g->logits_out, out, T, err, sizeof(err));
	} else {
		for (int t = 0; t < T && !rc; t++) {
			struct awq_step s = {.n_tokens = 1, .pos = t};
			rc = ops->write_value(ctx, g->tokens_in, tok + t, 1, err, sizeof(err)) ||
			     ops->run(ctx, &s, err, sizeof(err)) ||
			     ops->read_value(ctx, g->logits_out, out + (size_t)t * HQ * HD, 1, err, sizeof(err));
		}
	}
	if (rc)
		printf("FAIL: %s\n", err);
	ops->close(ctx);
	return rc;
}

int main(void)
{
	struct awq_weight we, w_q, w_k, w_v;
	struct awq_graph g;
	char err[256];
	dense(&we, "emb", V, D, emb);
	dense(&w_q, "wq", D, D, wq);
	dense(&w_k, "wk", HK * HD, D, wk);
	dense(&w_v, "wv", HK * HD, D, wv);
	awq_graph_init(&g);
	g.n_kv_layers = 1;
	g.kv_heads = HK;
	g.head_dim = HD;
	g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tokens");
	int x = awq_graph_node(&g, AWQ_OP_EMBED, D, "x", g.tokens_in, -1, -1, &we, NULL);
	int q = awq_graph_node(&g, AWQ_OP_MATMUL, D, "q", x, -1, -1, &w_q, NULL);
	int k = awq_graph_node(&g, AWQ_OP_MATMUL, HK * HD, "k", x, -1, -1, &w_k, NULL);
	int v = awq_graph_node(&g, AWQ_OP_MATMUL, HK * HD, "v", x, -1, -1, &w_v, NULL);
	struct awq_node p = {0};
	p.p.rope.head_dim = HD;
	p.p.rope.rope.theta = 10000.0f;
	p.p.rope.n_heads = HQ;
	q = awq_graph_node(&g, AWQ_OP_ROPE, D, "q_rope", q, -1, -1, NULL, &p);
	p.p.rope.n_heads = HK;
	k = awq_graph_node(&g, AWQ_OP_ROPE, HK * HD, "k_rope", k, -1, -1, NULL, &p);
	struct awq_node a = {0};
	a.p.attn.layer = 0;
	a.p.attn.n_heads = HQ;
	a.p.attn.n_kv_heads = HK;
	a.p.attn.head_dim = HD;
	a.p.attn.scale = 0.25f;
	int at = awq_graph_node(&g, AWQ_OP_ATTENTION, D, "attn", q, k, v, NULL, &a);
	g.logits_out = awq_graph_node(&g, AWQ_OP_ADD, D, "out", at, x, -1, NULL, NULL);
	if (awq_graph_check(&g, err, sizeof(err))) {
		printf("FAIL: graph: %s\n", err);
		return 1;
	}
	int32_t tok[T];
	for (int t = 0; t < T; t++)
		tok[t] = (int32_t)((frand() + 1) * 0.5f * (V - 1));
	static float ref[T * D], got[T * D];
	if (run(&g, 1, 1, 0, tok, ref))
		return 1;
	const struct {
		int threads, scalar, stepwise;
	} cases[] = {{1, 1, 1}, {2, 1, 0}, {1, 0, 0}, {2, 0, 0}, {2, 0, 1}};
	int fails = 0;
	double mx = 0;
	for (int i = 0; i < T * D; i++)
		mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		if (run(&g, cases[c].threads, cases[c].scalar, cases[c].stepwise, tok, got))
			return 1;
		double e = 0;
		for (int i = 0; i < T * D; i++)
			e = isfinite(got[i]) ? fmax(e, fabs(got[i] - ref[i])) : INFINITY;
		int ok = e <= 1e-4 * mx;
		printf("threads %d %s %s: max err %.3g (tol %.3g) %s\n", cases[c].threads, cases[c].scalar ? "scalar" : "simd",
		       cases[c].stepwise ? "step-by-step" : "prefill", e, 1e-4 * mx, ok ? "ok" : "FAIL");
		fails += !ok;
	}
	awq_graph_free(&g);
	return fails ? 1 : 0;
}

#define _POSIX_C_SOURCE 200809L /* setenv */
/* The CPU backend through its plugin table. Single-node graphs of every op are compared with the
 * scalar reference functions called directly; a multi-node graph (embedding, norms, AWQ and bf16
 * projections, RoPE, GQA attention over the KV cache, SiLU-MLP, residuals, last row, argmax) is
 * compared across scalar / SIMD, 1 / 2 threads and one prefill / one token per step. Outputs are
 * poisoned with NaN before every run. Tolerances, relative to the largest reference output:
 *   scalar backend vs reference functions: exact for element-wise ops, 1e-6 otherwise;
 *   SIMD, f32 and 16-bit weights: 1e-5 (f32 summation order);
 *   SIMD, AWQ int8 path: 5e-2 (activations rounded to int8 per 32; tests/cpu/test_cpu_kernels.c
 *     measures that error precisely), AWQ f32 path (AWQ_CPU_EXACT=1): 1e-5;
 *   1 vs 2 threads: bit-identical (work is split by output column and head, never inside a sum). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_ref.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static uint32_t rnd32(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static int failures;

static void *xcalloc(size_t n)
{
	void *p = calloc(n ? n : 1, 1);
	if (!p) {
		printf("FAIL: out of memory\n");
		exit(1);
	}
	return p;
}

struct cfg {
	int threads, scalar, exact;
	const char *name;
};

static const struct cfg cfgs[] = {
	{1, 1, 0, "scalar 1 thread"}, {1, 0, 0, "simd 1 thread"}, {2, 0, 0, "simd 2 threads"},
	{2, 0, 1, "simd exact AWQ 2 threads"},
};

/* Inputs: values written each step, [total rows][cols] of data. */
struct inputs {
	int n, id[3];
	const void *data[3];
};

/* Steps of `step` rows over `total` rows; `out` gets the output's rows of every step in order.
 * Returns the number of output rows written, or -1 on a backend error. */
static int run_graph(const struct awq_graph *g, const struct cfg *c, const struct inputs *in, int total, int step,
		     int all_rows, int out_id, float *out)
{
	const struct awq_backend_ops *ops = awq_cpu_backend();
	struct awq_backend_opts bo = {.threads = c->threads, .cpu_scalar = c->scalar};
	struct awq_prepare_opts po = {.max_tokens = step, .max_ctx = total};
	char err[256] = "";
	void *ctx = NULL;
	int rc, got = 0;
	if (c->exact)
		setenv("AWQ_CPU_EXACT", "1", 1);
	else
		unsetenv("AWQ_CPU_EXACT");
	rc = ops->open(0, &bo, &ctx, err, sizeof(err));
	if (!rc)
		rc = ops->prepare(ctx, g, &po, err, sizeof(err));
	for (int pos = 0; !rc && pos < total; pos += step) {
		struct awq_step s = {.n_tokens = step, .pos = pos, .all_rows = all_rows};
		for (int i = 0; !rc && i < in->n; i++) {
			size_t row = (size_t)g->values[in->id[i]].cols * 4;
			rc = ops->write_value(ctx, in->id[i], (const uint8_t *)in->data[i] + (size_t)pos * row, step, err,
					      sizeof(err));
		}
		int rows = awq_value_rows(g, out_id, &s);
		if (!rc)
			rc = ops->run(ctx, &s, err, sizeof(err));
		if (!rc)
			rc = ops->read_value(ctx, out_id, out + (size_t)got * g->values[out_id].cols, rows, err, sizeof(err));
		got += rows;
	}
	if (rc)
		printf("FAIL %s: %s\n", c->name, err);
	if (ctx)
		ops->close(ctx);
	return rc ? -1 : got;
}

static double max_abs(const float *x, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fabs(x[i]) > m ? fabs(x[i]) : m;
	return m;
}

static void compare(const char *what, const char *cfg, const float *got, const float *want, size_t n, double tol)
{
	double scale = max_abs(want, n), e = 0;
	for (size_t i = 0; i < n; i++)
		e = isfinite(got[i]) ? fmax(e, fabs((double)got[i] - want[i])) : INFINITY;
	if (!(e <= tol * (scale > 0 ? scale : 1))) {
		printf("FAIL %s, %s: max err %.3g > %.3g x %.3g\n", what, cfg, e, tol, scale);
		failures++;
	}
}

static void fill(float *x, size_t n, float amp)
{
	for (size_t i = 0; i < n; i++)
		x[i] = frand() * amp;
}

static void dense_w(struct awq_weight *w, const char *name, int n, int k, enum awq_dtype t, float amp)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_DENSE;
	w->n = n;
	w->k = k;
	w->dtype = t;
	void *d = xcalloc((size_t)n * k * awq_dtype_size(t));
	for (size_t i = 0; i < (size_t)n * k; i++) {
		float v = frand() * amp;
		awq_store_float(d, t, i, v);
	}
	w->data = d;
}

/* A random AutoAWQ GEMM weight: 4-bit values, f16 scales, packed zeros unless symmetric. */
static void awq_w(struct awq_weight *w, const char *name, int n, int k, int group, int zero_point)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_AWQ4;
	w->n = n;
	w->k = k;
	w->group_size = group;
	w->sym_zero = 8;
	int32_t *q = xcalloc((size_t)k * n / 2), *z = xcalloc((size_t)k / group * n / 2);
	uint16_t *s = xcalloc((size_t)k / group * n * 2);
	for (size_t i = 0; i < (size_t)k * n / 8; i++)
		q[i] = (int32_t)rnd32();
	for (size_t i = 0; i < (size_t)k / group * n / 8; i++)
		z[i] = (int32_t)(rnd32() & 0x77777777u); /* zeros 0..7, so that q - z has both signs */
	for (size_t i = 0; i < (size_t)k / group * n; i++)
		s[i] = awq_f32_to_f16((0.5f + fabsf(frand())) * 0.02f);
	w->qweight = q;
	w->qzeros = zero_point ? z : NULL;
	w->scales = s;
	if (!zero_point)
		free(z);
}

static void free_w(struct awq_weight *w)
{
	free((void *)w->data);
	free((void *)w->qweight);
	free((void *)w->qzeros);
	free((void *)w->scales);
	free((void *)w->bias);
}

/* One node on ACT inputs a, b, c (cols given; 0 = unused), checked against want. */
static void single(const char *what, enum awq_op op, int out_cols, const int *in_cols, const float *const *in_data,
		   int rows, const struct awq_weight *w, const struct awq_node *p, const float *want, double simd_tol,
		   double awq_tol)
{
	struct awq_graph g;
	struct inputs in = {0};
	int ids[3] = {-1, -1, -1};
	awq_graph_init(&g);
	g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tokens");
	if (op == AWQ_OP_ATTENTION) {
		g.n_kv_layers = 1;
		g.kv_heads = p->p.attn.n_kv_heads;
		g.head_dim = p->p.attn.head_dim;
	}
	for (int i = 0; i < 3 && in_cols[i]; i++) {
		ids[i] = awq_graph_value(&g, AWQ_V_ACT, in_cols[i], "in");
		in.id[in.n] = ids[i];
		in.data[in.n++] = in_data[i];
	}
	g.logits_out = awq_graph_node(&g, op, out_cols, "out", ids[0], ids[1], ids[2], w, p);
	float *got = xcalloc((size_t)rows * out_cols * 4);
	for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
		for (int i = 0; i < rows * out_cols; i++)
			got[i] = NAN;
		if (run_graph(&g, &cfgs[c], &in, rows, rows, 0, g.logits_out, got) < 0) {
			failures++;
			continue;
		}
		double tol = cfgs[c].scalar ? 1e-6 : w && w->fmt == AWQ_WFMT_AWQ4 && !cfgs[c].exact ? awq_tol : simd_tol;
		compare(what, cfgs[c].name, got, want, (size_t)rows * out_cols, tol);
	}
	free(got);
	awq_graph_free(&g);
}

static void test_elementwise(void)
{
	const int R = 5, C = 77;
	float *a = xcalloc(R * C * 4), *b = xcalloc(R * C * 4), *want = xcalloc(R * C * 4);
	fill(a, R * C, 3), fill(b, R * C, 3);
	const float *in[3] = {a, b, NULL};
	int cols[3] = {C, C, 0};
	awq_ref_silu_mul(a, b, R * C, want);
	single("SILU_MUL", AWQ_OP_SILU_MUL, C, cols, in, R, NULL, NULL, want, 1e-6, 0);
	awq_ref_add(a, b, R * C, want);
	single("ADD", AWQ_OP_ADD, C, cols, in, R, NULL, NULL, want, 0, 0);
	/* one gate value per row (a's first R values), written out by hand: sigmoid(g) * x */
	const float *gin[3] = {a, b, NULL};
	int gcols[3] = {1, C, 0};
	for (int r = 0; r < R; r++)
		for (int c = 0; c < C; c++)
			want[r * C + c] = b[r * C + c] / (1.0f + expf(-a[r]));
	single("SIGMOID_MUL", AWQ_OP_SIGMOID_MUL, C, gcols, gin, R, NULL, NULL, want, 1e-6, 0);
	free(a), free(b), free(want);
}

static void test_rmsnorm(void)
{
	const enum awq_dtype types[3] = {AWQ_DT_F32, AWQ_DT_F16, AWQ_DT_BF16};
	const int R = 3, C = 96, groups[2] = {96, 32};
	float *x = xcalloc(R * C * 4), *want = xcalloc(R * C * 4);
	fill(x, R * C, 5);
	for (int t = 0; t < 3; t++)
		for (int gi = 0; gi < 2; gi++) {
			struct awq_weight w;
			struct awq_node p = {0};
			dense_w(&w, "norm", groups[gi], 1, types[t], 2);
			w.k = 1;
			p.p.norm.eps = 1e-6f;
			p.p.norm.group = groups[gi];
			awq_ref_rmsnorm(x, R, C, groups[gi], 1e-6f, &w, want);
			const float *in[3] = {x, NULL, NULL};
			int cols[3] = {C, 0, 0};
			char what[64];
			snprintf(what, sizeof(what), "RMSNORM %s group %d", awq_dtype_name(types[t]), groups[gi]);
			single(what, AWQ_OP_RMSNORM, C, cols, in, R, &w, &p, want, 1e-6, 0);
			free_w(&w);
		}
	free(x), free(want);
}

static void test_matmul(void)
{
	const int R = 7, K = 256;
	float *x = xcalloc(R * K * 4);
	fill(x, R * K, 1);
	for (int f = 0; f < 7; f++) {
		struct awq_weight w;
		int N = f < 3 ? 45 : 72;
		const enum awq_dtype types[3] = {AWQ_DT_F32, AWQ_DT_F16, AWQ_DT_BF16};
		char what[64];
		if (f < 3) {
			dense_w(&w, "w", N, K, types[f], 0.1f);
			snprintf(what, sizeof(what), "MATMUL %s", awq_dtype_name(types[f]));
		} else {
			int group = f == 3 ? 32 : f == 4 ? 64 : 128;
			awq_w(&w, "w", N, K, group, f != 6);
			snprintf(what, sizeof(what), "MATMUL AWQ4 g%d %s", group, f != 6 ? "zero point" : "symmetric");
		}
		if (f % 2) {
			uint16_t *bias = xcalloc((size_t)N * 2);
			for (int i = 0; i < N; i++)
				bias[i] = awq_f32_to_bf16(frand());
			w.bias = bias;
			w.bias_dtype = AWQ_DT_BF16;
		}
		float *want = xcalloc((size_t)R * N * 4);
		awq_ref_matmul(x, R, &w, want);
		const float *in[3] = {x, NULL, NULL};
		int cols[3] = {K, 0, 0};
		single(what, AWQ_OP_MATMUL, N, cols, in, R, &w, NULL, want, 1e-5, 5e-2);
		free_w(&w);
		free(want);
	}
	free(x);
}

static void test_rope(void)
{
	const int R = 4, H = 3, D = 64;
	float *x = xcalloc(R * H * D * 4), *want = xcalloc(R * H * D * 4);
	fill(x, R * H * D, 2);
	const struct awq_rope ropes[3] = {
		{.theta = 10000.0f, .type = AWQ_ROPE_DEFAULT},
		{.theta = 500000.0f, .type = AWQ_ROPE_LLAMA3, .factor = 8, .low_freq_factor = 1, .high_freq_factor = 4,
		 .original_max_pos = 64},
		{.theta = 10000.0f, .type = AWQ_ROPE_LINEAR, .factor = 4},
	};
	for (int i = 0; i < 3; i++) {
		struct awq_node p = {0};
		p.p.rope.n_heads = H;
		p.p.rope.head_dim = D;
		p.p.rope.rope = ropes[i];
		awq_ref_rope(x, R, H, D, &ropes[i], 0, want);
		const float *in[3] = {x, NULL, NULL};
		int cols[3] = {H * D, 0, 0};
		char what[32];
		snprintf(what, sizeof(what), "ROPE type %d", (int)ropes[i].type);
		single(what, AWQ_OP_ROPE, H * D, cols, in, R, NULL, &p, want, 1e-6, 0);
	}
	free(x), free(want);
}

/* GQA attention alone: one prefill of T rows vs the reference, and T steps of one row. */
static void test_attention(void)
{
	enum { T = 11, HQ = 6, HK = 2, D = 40 };
	float *q = xcalloc(T * HQ * D * 4), *k = xcalloc(T * HK * D * 4), *v = xcalloc(T * HK * D * 4);
	float *kc = xcalloc(T * HK * D * 4), *vc = xcalloc(T * HK * D * 4);
	float *want = xcalloc(T * HQ * D * 4), *got = xcalloc(T * HQ * D * 4);
	fill(q, T * HQ * D, 2), fill(k, T * HK * D, 2), fill(v, T * HK * D, 1);
	awq_ref_attention(q, k, v, T, 0, HQ, HK, D, 0.158f, kc, vc, want);
	struct awq_node p = {0};
	p.p.attn.n_heads = HQ;
	p.p.attn.n_kv_heads = HK;
	p.p.attn.head_dim = D;
	p.p.attn.scale = 0.158f;
	const float *in[3] = {q, k, v};
	int cols[3] = {HQ * D, HK * D, HK * D};
	single("ATTENTION prefill", AWQ_OP_ATTENTION, HQ * D, cols, in, T, NULL, &p, want, 1e-5, 0);
	/* step by step through the same graph */
	struct awq_graph g;
	awq_graph_init(&g);
	g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tokens");
	g.n_kv_layers = 1, g.kv_heads = HK, g.head_dim = D;
	struct inputs inp = {3, {0}, {q, k, v}};
	for (int i = 0; i < 3; i++)
		inp.id[i] = awq_graph_value(&g, AWQ_V_ACT, cols[i], "in");
	g.logits_out = awq_graph_node(&g, AWQ_OP_ATTENTION, HQ * D, "out", inp.id[0], inp.id[1], inp.id[2], NULL, &p);
	for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
		for (int i = 0; i < T * HQ * D; i++)
			got[i] = NAN;
		if (run_graph(&g, &cfgs[c], &inp, T, 1, 0, g.logits_out, got) != T)
			failures++;
		else
			compare("ATTENTION one row per step", cfgs[c].name, got, want, T * HQ * D, cfgs[c].scalar ? 1e-6 : 1e-5);
	}
	awq_graph_free(&g);
	free(q), free(k), free(v), free(kc), free(vc), free(want), free(got);
}

/* EMBED, LAST_ROWS and ARGMAX: token inputs and row selection. */
static void test_tokens(void)
{
	enum { R = 6, V = 37, C = 50 };
	const enum awq_dtype types[3] = {AWQ_DT_F32, AWQ_DT_F16, AWQ_DT_BF16};
	int32_t tok[R];
	for (int i = 0; i < R; i++)
		tok[i] = (int32_t)((frand() + 1) * 0.5f * (V - 1));
	for (int t = 0; t < 3; t++) {
		struct awq_weight e;
		struct awq_graph g;
		dense_w(&e, "embed", V, C, types[t], 1);
		awq_graph_init(&g);
		g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tokens");
		int x = awq_graph_node(&g, AWQ_OP_EMBED, C, "x", g.tokens_in, -1, -1, &e, NULL);
		int last = awq_graph_node(&g, AWQ_OP_LAST_ROWS, C, "last", x, -1, -1, NULL, NULL);
		g.logits_out = last;
		g.argmax_out = awq_graph_node(&g, AWQ_OP_ARGMAX, 1, "argmax", last, -1, -1, NULL, NULL);
		float *want = xcalloc(R * C * 4), *got = xcalloc(R * C * 4);
		int32_t want_id[R], got_id[R];
		awq_ref_embed(&e, tok, R, want);
		awq_ref_argmax(want, R, C, want_id);
		struct inputs in = {1, {g.tokens_in}, {tok}};
		for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++)
			for (int all = 0; all < 2; all++) {
				char what[64];
				snprintf(what, sizeof(what), "EMBED %s + LAST_ROWS%s", awq_dtype_name(types[t]), all ? " (all)" : "");
				for (int i = 0; i < R * C; i++)
					got[i] = NAN;
				if (run_graph(&g, &cfgs[c], &in, R, R, all, last, got) != (all ? R : 1)) {
					failures++;
					continue;
				}
				compare(what, cfgs[c].name, got, want + (all ? 0 : (R - 1) * C), (size_t)(all ? R : 1) * C, 0);
				for (int i = 0; i < R; i++)
					got_id[i] = -1;
				if (run_graph(&g, &cfgs[c], &in, R, R, all, g.argmax_out, (float *)got_id) != (all ? R : 1) ||
				    memcmp(got_id, want_id + (all ? 0 : R - 1), (size_t)(all ? R : 1) * 4)) {
					printf("FAIL ARGMAX %s, %s\n", what, cfgs[c].name);
					failures++;
				}
			}
		free(want), free(got);
		free_w(&e);
		awq_graph_free(&g);
	}
}

/* A one-layer model graph with every op and weight format in it. */
struct model {
	struct awq_weight emb, n1, qn, q, k, v, o, n2, gate, up, down, nf;
	struct awq_graph g;
	int last;
};

enum { MD = 64, MHQ = 4, MHK = 2, MHD = 16, MI = 128, MV = 50, MT = 9 };

static void build_model(struct model *m)
{
	struct awq_graph *g = &m->g;
	dense_w(&m->emb, "embed", MV, MD, AWQ_DT_BF16, 1);
	dense_w(&m->n1, "attn_norm", MD, 1, AWQ_DT_BF16, 1.5f);
	dense_w(&m->qn, "q_norm", MHD, 1, AWQ_DT_F32, 1.5f);
	awq_w(&m->q, "q_proj", MHQ * MHD, MD, 32, 1);
	dense_w(&m->k, "k_proj", MHK * MHD, MD, AWQ_DT_BF16, 0.2f);
	uint16_t *kb = xcalloc(MHK * MHD * 2);
	for (int i = 0; i < MHK * MHD; i++)
		kb[i] = awq_f32_to_bf16(frand() * 0.1f);
	m->k.bias = kb;
	m->k.bias_dtype = AWQ_DT_BF16;
	awq_w(&m->v, "v_proj", MHK * MHD, MD, 64, 0);
	dense_w(&m->o, "o_proj", MD, MHQ * MHD, AWQ_DT_F16, 0.2f);
	dense_w(&m->n2, "mlp_norm", MD, 1, AWQ_DT_F16, 1.5f);
	awq_w(&m->gate, "gate_proj", MI, MD, 64, 1);
	awq_w(&m->up, "up_proj", MI, MD, 32, 0);
	dense_w(&m->down, "down_proj", MD, MI, AWQ_DT_BF16, 0.1f);
	dense_w(&m->nf, "norm", MD, 1, AWQ_DT_BF16, 1.5f);
	awq_graph_init(g);
	g->n_kv_layers = 1, g->kv_heads = MHK, g->head_dim = MHD;
	g->tokens_in = awq_graph_value(g, AWQ_V_TOKENS, 1, "tokens");
	struct awq_node norm = {0}, qnorm = {0}, rope = {0}, attn = {0};
	norm.p.norm.eps = 1e-6f, norm.p.norm.group = MD;
	qnorm.p.norm.eps = 1e-6f, qnorm.p.norm.group = MHD;
	rope.p.rope.head_dim = MHD;
	rope.p.rope.rope = (struct awq_rope){.theta = 500000.0f, .type = AWQ_ROPE_LLAMA3, .factor = 8,
					     .low_freq_factor = 1, .high_freq_factor = 4, .original_max_pos = 8};
	attn.p.attn.n_heads = MHQ, attn.p.attn.n_kv_heads = MHK, attn.p.attn.head_dim = MHD, attn.p.attn.scale = 0.25f;
	int x = awq_graph_node(g, AWQ_OP_EMBED, MD, "x", g->tokens_in, -1, -1, &m->emb, NULL);
	int h = awq_graph_node(g, AWQ_OP_RMSNORM, MD, "h", x, -1, -1, &m->n1, &norm);
	int q = awq_graph_node(g, AWQ_OP_MATMUL, MHQ * MHD, "q", h, -1, -1, &m->q, NULL);
	int k = awq_graph_node(g, AWQ_OP_MATMUL, MHK * MHD, "k", h, -1, -1, &m->k, NULL);
	int v = awq_graph_node(g, AWQ_OP_MATMUL, MHK * MHD, "v", h, -1, -1, &m->v, NULL);
	q = awq_graph_node(g, AWQ_OP_RMSNORM, MHQ * MHD, "qn", q, -1, -1, &m->qn, &qnorm);
	rope.p.rope.n_heads = MHQ;
	q = awq_graph_node(g, AWQ_OP_ROPE, MHQ * MHD, "qr", q, -1, -1, NULL, &rope);
	rope.p.rope.n_heads = MHK;
	k = awq_graph_node(g, AWQ_OP_ROPE, MHK * MHD, "kr", k, -1, -1, NULL, &rope);
	int a = awq_graph_node(g, AWQ_OP_ATTENTION, MHQ * MHD, "attn", q, k, v, NULL, &attn);
	a = awq_graph_node(g, AWQ_OP_MATMUL, MD, "o", a, -1, -1, &m->o, NULL);
	x = awq_graph_node(g, AWQ_OP_ADD, MD, "x1", x, a, -1, NULL, NULL);
	h = awq_graph_node(g, AWQ_OP_RMSNORM, MD, "h2", x, -1, -1, &m->n2, &norm);
	int gt = awq_graph_node(g, AWQ_OP_MATMUL, MI, "gate", h, -1, -1, &m->gate, NULL);
	int up = awq_graph_node(g, AWQ_OP_MATMUL, MI, "up", h, -1, -1, &m->up, NULL);
	gt = awq_graph_node(g, AWQ_OP_SILU_MUL, MI, "act", gt, up, -1, NULL, NULL);
	a = awq_graph_node(g, AWQ_OP_MATMUL, MD, "down", gt, -1, -1, &m->down, NULL);
	x = awq_graph_node(g, AWQ_OP_ADD, MD, "x2", x, a, -1, NULL, NULL);
	m->last = awq_graph_node(g, AWQ_OP_LAST_ROWS, MD, "last", x, -1, -1, NULL, NULL);
	h = awq_graph_node(g, AWQ_OP_RMSNORM, MD, "hf", m->last, -1, -1, &m->nf, &norm);
	g->logits_out = awq_graph_node(g, AWQ_OP_MATMUL, MV, "logits", h, -1, -1, &m->emb, NULL); /* tied */
	g->argmax_out = awq_graph_node(g, AWQ_OP_ARGMAX, 1, "argmax", g->logits_out, -1, -1, NULL, NULL);
}

static void free_model(struct model *m)
{
	struct awq_weight *ws[] = {&m->emb, &m->n1, &m->qn, &m->q, &m->k, &m->v, &m->o,
				   &m->n2, &m->gate, &m->up, &m->down, &m->nf};
	for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
		free_w(ws[i]);
	awq_graph_free(&m->g);
}

static void test_model(void)
{
	struct model m;
	char err[256];
	build_model(&m);
	if (awq_graph_check(&m.g, err, sizeof(err))) {
		printf("FAIL: model graph: %s\n", err);
		failures++;
		free_model(&m);
		return;
	}
	int32_t tok[MT];
	for (int t = 0; t < MT; t++)
		tok[t] = (int32_t)((frand() + 1) * 0.5f * (MV - 1));
	struct inputs in = {1, {m.g.tokens_in}, {tok}};
	static float ref[MT * MV], got[MT * MV], simd[2][2][MT * MV];
	if (run_graph(&m.g, &cfgs[0], &in, MT, MT, 1, m.g.logits_out, ref) != MT) {
		failures++;
		free_model(&m);
		return;
	}
	for (size_t c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++)
		for (int stepwise = 0; stepwise < 2; stepwise++) {
			char what[64];
			snprintf(what, sizeof(what), "model, %s", stepwise ? "one token per step" : "one prefill");
			for (int i = 0; i < MT * MV; i++)
				got[i] = NAN;
			if (run_graph(&m.g, &cfgs[c], &in, MT, stepwise ? 1 : MT, 1, m.g.logits_out, got) != MT) {
				failures++;
				continue;
			}
			int int8 = !cfgs[c].scalar && !cfgs[c].exact;
			compare(what, cfgs[c].name, got, ref, MT * MV, cfgs[c].scalar ? 1e-5 : int8 ? 5e-2 : 1e-4);
			if (int8)
				memcpy(simd[cfgs[c].threads - 1][stepwise], got, sizeof(got));
		}
	for (int stepwise = 0; stepwise < 2; stepwise++)
		if (memcmp(simd[0][stepwise], simd[1][stepwise], sizeof(got))) {
			printf("FAIL model, %s: 1 and 2 threads differ\n", stepwise ? "one token per step" : "one prefill");
			failures++;
		}
	free_model(&m);
}

/* AWQ_KNOCKOUT (core/graph.c): the named ops, exactly, in one-token steps only. */
static void test_knockout(void)
{
	struct awq_graph g;
	awq_graph_init(&g);
	int x = awq_graph_value(&g, AWQ_V_ACT, 8, "x");
	int a = awq_graph_node(&g, AWQ_OP_ADD, 8, "a", x, x, -1, NULL, NULL);
	awq_graph_node(&g, AWQ_OP_SILU_MUL, 8, "s", a, x, -1, NULL, NULL);
	static const struct {
		const char *env;
		int add1, silu1, add2;
	} c[] = {{"", 0, 0, 0}, {"ADD", 1, 0, 0}, {"SILU_MUL,ADD", 1, 1, 0}, {"AD,ADDX,SILU", 0, 0, 0}, {"ATTENTION,ADD", 1, 0, 0}};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		setenv("AWQ_KNOCKOUT", c[i].env, 1);
		int add1 = awq_knockout(&g, 0, 1), silu1 = awq_knockout(&g, 1, 1), add2 = awq_knockout(&g, 0, 2);
		if (add1 != c[i].add1 || silu1 != c[i].silu1 || add2 != c[i].add2) {
			printf("FAIL AWQ_KNOCKOUT=\"%s\": ADD %d (rows 2: %d), SILU_MUL %d\n", c[i].env, add1, add2, silu1);
			failures++;
		}
	}
	size_t n = 0;
	const char *bad = awq_knockout_unknown("ADD,SILU,MATMUL", &n), *none = awq_knockout_unknown("ADD,ATTENTION", &n);
	if (!bad || strncmp(bad, "SILU", 4) || n != 4 || none) {
		printf("FAIL AWQ_KNOCKOUT names: the unknown one not found (%s) or a known one refused\n", bad ? bad : "none");
		failures++;
	}
	unsetenv("AWQ_KNOCKOUT");
	if (awq_knockout(&g, 0, 1)) {
		printf("FAIL AWQ_KNOCKOUT unset: ADD left out\n");
		failures++;
	}
	printf("knockout list parsing checked\n");
	awq_graph_free(&g);
}

int main(void)
{
	test_knockout();
	test_elementwise();
	test_rmsnorm();
	test_matmul();
	test_rope();
	test_attention();
	test_tokens();
	test_model();
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}

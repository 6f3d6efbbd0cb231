/* Every op of the CUDA backend against the CPU backend's scalar reference kernels: random inputs,
 * odd shapes, device outputs poisoned with NaN before each run, tolerances per data type. Exits 77
 * (skipped) when no CUDA device or driver is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_test.h"
#include "dtype.h"

static void *allocs[512];
static int n_allocs;

static void *talloc(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);
	if (!p || n_allocs == (int)(sizeof(allocs) / sizeof(allocs[0]))) {
		fprintf(stderr, "test_cuda_ops: out of memory\n");
		exit(1);
	}
	allocs[n_allocs++] = p;
	return p;
}

static void free_all(void)
{
	while (n_allocs)
		free(allocs[--n_allocs]);
}

static uint64_t seed = 0x5eed;
/* AWQ_CUDA_TEST_SMALL=1 (the compute-sanitizer runs): fewer and shorter steps, no large matrix. */
static int small;

static void *rand_floats(size_t n, enum awq_dtype dt, float lo, float hi)
{
	void *p = talloc(n * awq_dtype_size(dt));
	for (size_t i = 0; i < n; i++) {
		float f = cu_rand_f(&seed, lo, hi);
		awq_store_float(p, dt, i, f);
	}
	return p;
}

static struct awq_weight *dense(const char *name, int n, int k, enum awq_dtype dt, float amp, int bias)
{
	struct awq_weight *w = talloc(sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_DENSE;
	w->n = n;
	w->k = k;
	w->dtype = dt;
	w->data = rand_floats((size_t)n * k, dt, -amp, amp);
	if (bias) {
		w->bias = rand_floats((size_t)n, dt, -0.5f, 0.5f);
		w->bias_dtype = dt;
	}
	return w;
}

static struct awq_weight *awq4(const char *name, int n, int k, int group, int zero_point, int bias)
{
	struct awq_weight *w = talloc(sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->fmt = AWQ_WFMT_AWQ4;
	w->n = n;
	w->k = k;
	w->group_size = group;
	w->sym_zero = 8;
	int32_t *q = talloc((size_t)k * n / 8 * 4);
	for (size_t i = 0; i < (size_t)k * n / 8; i++)
		q[i] = (int32_t)cu_rand_u64(&seed);
	w->qweight = q;
	if (zero_point) {
		int32_t *z = talloc((size_t)(k / group) * n / 8 * 4);
		for (size_t i = 0; i < (size_t)(k / group) * n / 8; i++)
			z[i] = (int32_t)cu_rand_u64(&seed);
		w->qzeros = z;
	}
	uint16_t *s = talloc((size_t)(k / group) * n * 2);
	for (size_t i = 0; i < (size_t)(k / group) * n; i++)
		s[i] = awq_f32_to_f16(cu_rand_f(&seed, 0.002f, 0.02f));
	w->scales = s;
	if (bias) {
		w->bias = rand_floats((size_t)n, AWQ_DT_F16, -0.5f, 0.5f);
		w->bias_dtype = AWQ_DT_F16;
	}
	return w;
}

static int steps_rows(int (*steps)[3], const int *rows, int n)
{
	for (int i = 0; i < n; i++) {
		steps[i][0] = rows[i];
		steps[i][1] = 0;
		steps[i][2] = 0;
	}
	return n;
}

static int max_of(const int *v, int n)
{
	int m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static int test_matmul(struct cu_pair *p, const char *name, struct awq_weight *w, double tol)
{
	static const int rows[] = {1, 2, 3, 5, 8, 9, 33, 130};
	int steps[8][3];
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, (int)w->k, "x");
	int y = awq_graph_node(&g, AWQ_OP_MATMUL, (int)w->n, "y", x, -1, -1, w, NULL);
	cu_graph_io(&g, tok, y);
	struct cu_case c = {.name = name, .g = &g, .max_tokens = max_of(rows, 8), .max_ctx = max_of(rows, 8),
			    .in = {{.value = x, .lo = -1, .hi = 1}}, .n_in = 1, .check = {y}, .n_check = 1, .tol = tol};
	int f = cu_run_case(p, &c, (const int(*)[3])steps, steps_rows(steps, rows, 8), seed++);
	awq_graph_free(&g);
	return f;
}

/* dt: AWQ_DT_F32 for AWQ weights, else dense weights of that 16-bit type */
static struct awq_weight *mm_weight(const char *name, int n, int k, int group, int zero_point, int bias,
				    enum awq_dtype dt)
{
	return dt == AWQ_DT_F32 ? awq4(name, n, k, group, zero_point, bias) : dense(name, n, k, dt, 0.1f, bias);
}

static int test_gate_up(struct cu_pair *p, int n, int k, int group, enum awq_dtype dt)
{
	static const int rows[] = {1, 4, 8, 40};
	int steps[4][3];
	struct awq_graph g;
	awq_graph_init(&g);
	struct awq_weight *wg = mm_weight("gate", n, k, group, 1, 0, dt), *wu = mm_weight("up", n, k, group, 1, 0, dt);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, k, "x");
	int a = awq_graph_node(&g, AWQ_OP_MATMUL, n, "gate", x, -1, -1, wg, NULL);
	int b = awq_graph_node(&g, AWQ_OP_MATMUL, n, "up", x, -1, -1, wu, NULL);
	int h = awq_graph_node(&g, AWQ_OP_SILU_MUL, n, "h", a, b, -1, NULL, NULL);
	cu_graph_io(&g, tok, h);
	struct cu_case c = {.name = dt == AWQ_DT_F32 ? "gate_up+silu (fused)" : "gate_up+silu 16-bit (fused)", .g = &g,
			    .max_tokens = 40, .max_ctx = 40, .in = {{.value = x, .lo = -1, .hi = 1}}, .n_in = 1,
			    .check = {h}, .n_check = 1, .tol = dt == AWQ_DT_BF16 ? 1e-2 : 4e-3};
	int f = cu_run_case(p, &c, (const int(*)[3])steps, steps_rows(steps, rows, 4), seed++);
	awq_graph_free(&g);
	return f;
}

/* q, k, v projections of one input: fused into one launch over concatenated weights (segments of
 * 3 tiles, so blocks straddle segment edges); their sum is checked. */
static int test_qkv(struct cu_pair *p, int n, int k, int group, enum awq_dtype dt)
{
	static const int rows[] = {1, 3, 8, 21};
	int steps[4][3];
	struct awq_graph g;
	awq_graph_init(&g);
	struct awq_weight *wq = mm_weight("q", n, k, group, 1, 1, dt), *wk = mm_weight("k", n, k, group, 0, 0, dt);
	struct awq_weight *wv = mm_weight("v", n, k, group, 1, 1, dt);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, k, "x");
	int q = awq_graph_node(&g, AWQ_OP_MATMUL, n, "q", x, -1, -1, wq, NULL);
	int kk = awq_graph_node(&g, AWQ_OP_MATMUL, n, "k", x, -1, -1, wk, NULL);
	int v = awq_graph_node(&g, AWQ_OP_MATMUL, n, "v", x, -1, -1, wv, NULL);
	int s1 = awq_graph_node(&g, AWQ_OP_ADD, n, "q+k", q, kk, -1, NULL, NULL);
	int s2 = awq_graph_node(&g, AWQ_OP_SILU_MUL, n, "silu(q+k)*v", s1, v, -1, NULL, NULL);
	cu_graph_io(&g, tok, s2);
	struct cu_case c = {.name = dt == AWQ_DT_F32 ? "qkv (fused)" : "qkv 16-bit (fused)", .g = &g, .max_tokens = 21,
			    .max_ctx = 21, .in = {{.value = x, .lo = -1, .hi = 1}}, .n_in = 1, .check = {s2}, .n_check = 1,
			    .tol = dt == AWQ_DT_BF16 ? 1e-2 : 4e-3};
	int f = cu_run_case(p, &c, (const int(*)[3])steps, steps_rows(steps, rows, 4), seed++);
	awq_graph_free(&g);
	return f;
}

static int test_rmsnorm(struct cu_pair *p, int cols, int group, enum awq_dtype dt)
{
	static const int rows[] = {1, 6, 17};
	int steps[3][3];
	struct awq_graph g;
	awq_graph_init(&g);
	struct awq_weight *w = dense("norm", group, 1, dt, 1.5f, 0);
	struct awq_node prm = {.p.norm = {.eps = 1e-6f, .group = group}};
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, cols, "x");
	int y = awq_graph_node(&g, AWQ_OP_RMSNORM, cols, "y", x, -1, -1, w, &prm);
	cu_graph_io(&g, tok, y);
	struct cu_case c = {.name = "rmsnorm", .g = &g, .max_tokens = 17, .max_ctx = 17,
			    .in = {{.value = x, .lo = -3, .hi = 3}}, .n_in = 1, .check = {y}, .n_check = 1, .tol = 1e-5};
	int f = cu_run_case(p, &c, (const int(*)[3])steps, steps_rows(steps, rows, 3), seed++);
	awq_graph_free(&g);
	return f;
}

static int test_rope(struct cu_pair *p, int heads, int hd, enum awq_rope_type type)
{
	static const int steps[][3] = {{1, 0, 0}, {7, 1000, 0}, {20, 5000, 0}, {1, 5020, 0}};
	struct awq_graph g;
	awq_graph_init(&g);
	struct awq_node prm = {.p.rope = {.n_heads = heads, .head_dim = hd,
					  .rope = {.theta = 500000.0f, .type = type, .factor = 8.0f, .low_freq_factor = 1.0f,
						   .high_freq_factor = 4.0f, .original_max_pos = 8192}}};
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, heads * hd, "x");
	int y = awq_graph_node(&g, AWQ_OP_ROPE, heads * hd, "y", x, -1, -1, NULL, &prm);
	cu_graph_io(&g, tok, y);
	struct cu_case c = {.name = type == AWQ_ROPE_LLAMA3 ? "rope llama3" : type == AWQ_ROPE_LINEAR ? "rope linear" : "rope",
			    .g = &g, .max_tokens = 20, .max_ctx = 5100, .in = {{.value = x, .lo = -2, .hi = 2}},
			    .n_in = 1, .check = {y}, .n_check = 1, .tol = 1e-3};
	int f = cu_run_case(p, &c, steps, 4, seed++);
	awq_graph_free(&g);
	return f;
}

/* Prefill, decode steps (graph replays at moving positions), short batches, a long prefill. */
static int test_attention(struct cu_pair *p, int heads, int kv_heads, int hd, int with_rope)
{
	static const int steps[][3] = {{70, 0, 0}, {1, 70, 0}, {1, 71, 0}, {3, 72, 0}, {1, 75, 0},
				       {9, 76, 0}, {1, 85, 0}, {300, 86, 0}, {1, 386, 0}, {2, 387, 0}};
	struct awq_graph g;
	char name[96];
	awq_graph_init(&g);
	g.n_kv_layers = 2;
	g.kv_heads = kv_heads;
	g.head_dim = hd;
	struct awq_node rq = {.p.rope = {.n_heads = heads, .head_dim = hd, .rope = {.theta = 10000.0f}}};
	struct awq_node rk = {.p.rope = {.n_heads = kv_heads, .head_dim = hd, .rope = {.theta = 10000.0f}}};
	struct awq_node at = {.p.attn = {.layer = 1, .n_heads = heads, .n_kv_heads = kv_heads, .head_dim = hd,
					 .scale = 1.0f / sqrtf((float)hd)}};
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int q = awq_graph_value(&g, AWQ_V_ACT, heads * hd, "q");
	int k = awq_graph_value(&g, AWQ_V_ACT, kv_heads * hd, "k");
	int v = awq_graph_value(&g, AWQ_V_ACT, kv_heads * hd, "v");
	int qa = q, ka = k;
	if (with_rope == 2) { /* Qwen3: per-head RMSNorm of q and k before RoPE */
		struct awq_node nm = {.p.norm = {.eps = 1e-6f, .group = hd}};
		qa = awq_graph_node(&g, AWQ_OP_RMSNORM, heads * hd, "q_norm", qa, -1, -1,
				    dense("q_norm", hd, 1, AWQ_DT_BF16, 1.5f, 0), &nm);
		ka = awq_graph_node(&g, AWQ_OP_RMSNORM, kv_heads * hd, "k_norm", ka, -1, -1,
				    dense("k_norm", hd, 1, AWQ_DT_BF16, 1.5f, 0), &nm);
	}
	if (with_rope) {
		qa = awq_graph_node(&g, AWQ_OP_ROPE, heads * hd, "q_rope", qa, -1, -1, NULL, &rq);
		ka = awq_graph_node(&g, AWQ_OP_ROPE, kv_heads * hd, "k_rope", ka, -1, -1, NULL, &rk);
	}
	int o = awq_graph_node(&g, AWQ_OP_ATTENTION, heads * hd, "attn", qa, ka, v, NULL, &at);
	cu_graph_io(&g, tok, o);
	snprintf(name, sizeof(name), "attention%s h=%d kv=%d d=%d", with_rope == 2 ? "+qk_norm+rope" : with_rope ? "+rope" : "",
		 heads, kv_heads, hd);
	struct cu_case c = {.name = name, .g = &g, .max_tokens = 300, .max_ctx = 600,
			    .in = {{.value = q, .lo = -2, .hi = 2}, {.value = k, .lo = -2, .hi = 2}, {.value = v, .lo = -1, .hi = 1}},
			    .n_in = 3, .check = {o}, .n_check = 1, .tol = 5e-3};
	int f = cu_run_case(p, &c, steps, small ? 4 : 10, seed++);
	awq_graph_free(&g);
	return f;
}

/* A KV cache far larger than the device must fail in prepare with AWQ_ETOOBIG and say how much
 * was needed and how much is free, not crash or half-allocate. */
static int test_too_big(struct cu_pair *p)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_graph g;
	awq_graph_init(&g);
	g.n_kv_layers = 2;
	g.kv_heads = 2;
	g.head_dim = 128;
	struct awq_node at = {.p.attn = {.layer = 0, .n_heads = 4, .n_kv_heads = 2, .head_dim = 128, .scale = 0.1f}};
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int q = awq_graph_value(&g, AWQ_V_ACT, 512, "q");
	int k = awq_graph_value(&g, AWQ_V_ACT, 256, "k");
	int v = awq_graph_value(&g, AWQ_V_ACT, 256, "v");
	int o = awq_graph_node(&g, AWQ_OP_ATTENTION, 512, "attn", q, k, v, NULL, &at);
	cu_graph_io(&g, tok, o);
	struct awq_prepare_opts po = {.max_tokens = 4, .max_ctx = 1 << 27}; /* 256 GiB of KV cache */
	if (cu_pair_reopen(p)) {
		awq_graph_free(&g);
		return 1;
	}
	int rc = p->ops[1]->prepare(p->ctx[1], &g, &po, err, sizeof(err));
	int ok = rc == AWQ_ETOOBIG && strstr(err, "MiB") && strstr(err, "free");
	printf("%s too-big KV cache: rc=%d \"%s\"\n", ok ? "ok  " : "FAIL", rc, err);
	awq_graph_free(&g);
	return !ok;
}

/* y = a op b; a_cols 1 for SIGMOID_MUL (one gate value per row: Qwen2-MoE's shared expert) */
static int test_binary(struct cu_pair *p, enum awq_op op, int cols, int a_cols)
{
	static const int rows[] = {1, 5, 13};
	int steps[3][3];
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int a = awq_graph_value(&g, AWQ_V_ACT, a_cols, "a");
	int b = awq_graph_value(&g, AWQ_V_ACT, cols, "b");
	int y = awq_graph_node(&g, op, cols, "y", a, b, -1, NULL, NULL);
	cu_graph_io(&g, tok, y);
	struct cu_case c = {.name = awq_op_name(op), .g = &g, .max_tokens = 13, .max_ctx = 13,
			    .in = {{.value = a, .lo = -6, .hi = 6}, {.value = b, .lo = -3, .hi = 3}}, .n_in = 2,
			    .check = {y}, .n_check = 1, .tol = 1e-6};
	int f = cu_run_case(p, &c, (const int(*)[3])steps, steps_rows(steps, rows, 3), seed++);
	awq_graph_free(&g);
	return f;
}

static int test_embed(struct cu_pair *p, enum awq_dtype dt)
{
	static const int rows[] = {1, 4, 11};
	int steps[3][3];
	struct awq_graph g;
	awq_graph_init(&g);
	struct awq_weight *w = dense("embed", 1000, 72, dt, 1.0f, 0);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int y = awq_graph_node(&g, AWQ_OP_EMBED, 72, "y", tok, -1, -1, w, NULL);
	cu_graph_io(&g, tok, y);
	struct cu_case c = {.name = "embed", .g = &g, .max_tokens = 11, .max_ctx = 11,
			    .in = {{.value = tok, .vocab = 1000}}, .n_in = 1, .check = {y}, .n_check = 1, .tol = 0};
	int f = cu_run_case(p, &c, (const int(*)[3])steps, steps_rows(steps, rows, 3), seed++);
	awq_graph_free(&g);
	return f;
}

/* lo == hi: every value the same, so the lowest index (0) must win across the split blocks too */
static int test_last_argmax(struct cu_pair *p, int cols, float lo, float hi)
{
	static const int steps[][3] = {{9, 0, 0}, {9, 0, 1}, {1, 0, 0}, {4, 0, 1}};
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, cols, "x");
	int l = awq_graph_node(&g, AWQ_OP_LAST_ROWS, cols, "last", x, -1, -1, NULL, NULL);
	int a = awq_graph_node(&g, AWQ_OP_ARGMAX, 1, "argmax", l, -1, -1, NULL, NULL);
	cu_graph_io(&g, tok, l);
	g.argmax_out = a;
	struct cu_case c = {.name = "last_rows+argmax", .g = &g, .max_tokens = 9, .max_ctx = 9,
			    .in = {{.value = x, .lo = lo, .hi = hi}}, .n_in = 1, .check = {l, a}, .n_check = 2, .tol = 0};
	int f = cu_run_case(p, &c, steps, 4, seed++);
	awq_graph_free(&g);
	return f;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0); /* a crash still leaves every finished case in the log */
	struct cu_pair p;
	int rc = cu_pair_open(&p);
	if (rc)
		return rc;
	const char *sm = getenv("AWQ_CUDA_TEST_SMALL");
	small = sm && sm[0] == '1';
	int f = 0;
	if (!small)
		f += test_matmul(&p, "awq4 g128 1024x4096", awq4("w", 1024, 4096, 128, 1, 0), 3e-3);
	f += test_matmul(&p, "awq4 g32 72x96 bias", awq4("w", 72, 96, 32, 1, 1), 3e-3);
	f += test_matmul(&p, "awq4 g64 sym 200x320", awq4("w", 200, 320, 64, 0, 0), 3e-3);
	f += test_matmul(&p, "awq4 g128 520x1408", awq4("w", 520, 1408, 128, 1, 0), 3e-3);
	f += test_matmul(&p, "awq4 g16 24x48", awq4("w", 24, 48, 16, 1, 1), 3e-3);
	f += test_matmul(&p, "bf16 300x264 bias", dense("w", 300, 264, AWQ_DT_BF16, 0.1f, 1), 1e-2);
	f += test_matmul(&p, "f16 333x512", dense("w", 333, 512, AWQ_DT_F16, 0.1f, 0), 3e-3);
	f += test_matmul(&p, "bf16 77x37 (odd k)", dense("w", 77, 37, AWQ_DT_BF16, 0.1f, 0), 1e-2);
	f += test_matmul(&p, "f32 65x200 bias", dense("w", 65, 200, AWQ_DT_F32, 0.1f, 1), 1e-5);
	f += test_qkv(&p, 40, 128, 64, AWQ_DT_F32);
	f += test_qkv(&p, 40, 128, 64, AWQ_DT_BF16);
	f += test_qkv(&p, 37, 96, 0, AWQ_DT_F16); /* odd rows: a warp's two rows straddle segments */
	f += test_gate_up(&p, 344, 256, 128, AWQ_DT_F32);
	f += test_gate_up(&p, 40, 64, 32, AWQ_DT_F32);
	f += test_gate_up(&p, 333, 256, 0, AWQ_DT_BF16);
	f += test_gate_up(&p, 40, 64, 0, AWQ_DT_F16);
	f += test_rmsnorm(&p, 4096, 4096, AWQ_DT_BF16);
	f += test_rmsnorm(&p, 8 * 128, 128, AWQ_DT_F32);
	f += test_rmsnorm(&p, 100, 100, AWQ_DT_F16);
	f += test_rope(&p, 4, 128, AWQ_ROPE_DEFAULT);
	f += test_rope(&p, 3, 64, AWQ_ROPE_LLAMA3);
	f += test_rope(&p, 2, 18, AWQ_ROPE_LINEAR);
	f += test_attention(&p, 8, 2, 128, 1);
	f += test_attention(&p, 4, 4, 64, 0);
	f += test_attention(&p, 6, 2, 32, 1);
	f += test_attention(&p, 16, 1, 96, 0);
	f += test_attention(&p, 16, 8, 128, 2);
	f += test_binary(&p, AWQ_OP_ADD, 1000, 1000);
	f += test_binary(&p, AWQ_OP_SILU_MUL, 777, 777);
	f += test_binary(&p, AWQ_OP_SIGMOID_MUL, 777, 1);
	f += test_embed(&p, AWQ_DT_BF16);
	f += test_embed(&p, AWQ_DT_F16);
	f += test_embed(&p, AWQ_DT_F32);
	f += test_last_argmax(&p, 5000, -5, 5);
	/* one-row argmax over many blocks (awq_cu_argmax_blocks): a Qwen vocabulary, an odd length (the
	 * scalar loads), just past the split's threshold, and all values equal */
	f += test_last_argmax(&p, 151936, -5, 5);
	f += test_last_argmax(&p, 151937, -5, 5);
	f += test_last_argmax(&p, 8193, -5, 5);
	f += test_last_argmax(&p, 40000, 1, 1);
	f += test_too_big(&p);
	cu_pair_close(&p);
	free_all();
	printf("%s: %d failure(s)\n", f ? "FAIL" : "PASS", f);
	return f ? 1 : 0;
}

/* Every shader of the Vulkan backend against the CPU backend's scalar reference: random inputs, odd
 * shapes, both matrix paths (matvec up to 4 rows, tiled above), every weight type, the checked
 * output poisoned with NaN on the device before each run. Exit 77 (skip) without a Vulkan device.
 *   test_vulkan_ops [--quick]   (--quick: a few cases, for the validation-layer run) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "vk_test.h"

static uint64_t seed = 0x7a11c0de;

#define dense(n, k, dt, amp, bias) vt_dense(&seed, n, k, dt, amp, bias)
#define awq4(n, k, group, zp, bias) vt_awq4(&seed, n, k, group, zp, bias)

static int quick;

/* Graph: tokens (unused, required) + one op over input values. */
static int one_op(struct vt_pair *p, const char *name, enum awq_op op, int cols, const int *in_cols, int n_in,
		  const struct awq_weight *w, const struct awq_node *prm, const int (*steps)[3], int n_steps,
		  int max_ctx, double tol, float lo, float hi)
{
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok"), ids[3] = {-1, -1, -1}, max_tok = 1;
	struct vt_case c = {.name = name, .g = &g, .max_ctx = max_ctx, .tol = tol};
	for (int i = 0; i < n_in; i++) {
		ids[i] = awq_graph_value(&g, AWQ_V_ACT, in_cols[i], "in");
		c.in[c.n_in++] = (struct vt_input){.value = ids[i], .lo = lo, .hi = hi};
	}
	if (op == AWQ_OP_EMBED) {
		ids[0] = tok;
		c.in[c.n_in++] = (struct vt_input){.value = tok, .vocab = (int)w->n};
	}
	c.check = awq_graph_node(&g, op, cols, name, ids[0], ids[1], ids[2], w, prm);
	g.tokens_in = tok;
	if (op == AWQ_OP_ARGMAX)
		g.logits_out = ids[0];
	for (int i = 0; i < n_steps; i++)
		max_tok = steps[i][0] > max_tok ? steps[i][0] : max_tok;
	c.max_tokens = max_tok;
	if (c.max_ctx < max_tok)
		c.max_ctx = max_tok;
	int f = vt_run_case(p, &c, steps, n_steps, seed++);
	awq_graph_free(&g);
	return f;
}

/* steps of 5-8 rows run the K-split 4-bit mat-vec twice (rows 0-3, then the rest) */
static const int mm_steps[][3] = {{1, 0, 0}, {3, 0, 0}, {4, 0, 0}, {5, 0, 0}, {70, 0, 0}, {2, 0, 0}, {8, 0, 0}};

/* The tolerance of a matmul on this device: cooperative-matrix prefill (AWQ, F16 and BF16 weights,
 * vk_rec_matmul) takes fp16 operands, the activations (and the dequantized AWQ weight) rounded to
 * fp16 once, ~2^-12 relative each (BF16 weights convert to fp16 exactly but for subnormals). */
static double mm_tol(const struct vt_pair *p, const struct awq_weight *w, double tol)
{
	if (p->coopmat && (w->fmt == AWQ_WFMT_AWQ4 || w->dtype == AWQ_DT_F16 || w->dtype == AWQ_DT_BF16) && tol < 1e-3)
		tol = 1e-3;
	/* the fp16 4-bit mat-vec (decode steps): activations rounded to fp16 (2^-11 relative at most)
	 * and 4 products per half summed in fp16; 4-6e-4 measured on lavapipe */
	if (p->q4_f16 && w->fmt == AWQ_WFMT_AWQ4 && tol < 2e-3)
		tol = 2e-3;
	/* int8 activations (integer dot product): x rounded to 8 bits per 32 k with scale max|x|/127,
	 * 3-5e-3 relative measured on lavapipe */
	if (p->q8 && w->fmt == AWQ_WFMT_AWQ4 && tol < 1e-2)
		tol = 1e-2;
	return tol;
}

static int test_matmul(struct vt_pair *p, const char *name, const struct awq_weight *w, double tol)
{
	int k = (int)w->k;
	tol = mm_tol(p, w, tol);
	const int n_steps = quick ? 2 : (int)(sizeof(mm_steps) / sizeof(mm_steps[0]));
	return one_op(p, name, AWQ_OP_MATMUL, (int)w->n, &k, 1, w, NULL, mm_steps, n_steps, 0, tol, -1, 1);
}

static int test_matmuls(struct vt_pair *p)
{
	int f = 0;
	f += test_matmul(p, "awq g32 zp bias 64x128", awq4(64, 128, 32, 1, 1), 1e-5);
	f += test_matmul(p, "awq g64 sym 24x192", awq4(24, 192, 64, 0, 0), 1e-5);
	if (quick)
		return f;
	f += test_matmul(p, "awq g128 zp 136x256", awq4(136, 256, 128, 1, 0), 1e-5);
	/* the K-split decode kernel (matvec_q4k.comp): 3 chunks of 32 k, and
	 * invocations with several 32-k chunks (K / 32 above the workgroup size) */
	f += test_matmul(p, "awq g32 zp 56x96", awq4(56, 96, 32, 1, 0), 1e-5);
	f += test_matmul(p, "awq g128 zp bias 24x8448", awq4(24, 8448, 128, 1, 1), 1e-5);
	f += test_matmul(p, "awq g8 zp (word path) 16x40", awq4(16, 40, 8, 1, 1), 1e-5);
	f += test_matmul(p, "awq g24 zp (word path) 32x72", awq4(32, 72, 24, 1, 0), 1e-5);
	f += test_matmul(p, "bf16 odd 37x53", dense(37, 53, AWQ_DT_BF16, 0.3f, AWQ_DT_COUNT), 1e-5);
	f += test_matmul(p, "bf16 bias 50x64", dense(50, 64, AWQ_DT_BF16, 0.3f, AWQ_DT_BF16), 1e-5);
	/* F16 weights take the fp16-arithmetic path where the device has shaderFloat16: products
	 * rounded to fp16, so ~1e-3 relative */
	f += test_matmul(p, "f16 bias 33x48", dense(33, 48, AWQ_DT_F16, 0.3f, AWQ_DT_F32), 3e-3);
	f += test_matmul(p, "f16 odd 19x27", dense(19, 27, AWQ_DT_F16, 0.3f, AWQ_DT_COUNT), 1e-5);
	f += test_matmul(p, "f32 21x20", dense(21, 20, AWQ_DT_F32, 0.3f, AWQ_DT_F16), 1e-5);
	f += test_matmul(p, "f32 odd 9x13", dense(9, 13, AWQ_DT_F32, 0.3f, AWQ_DT_COUNT), 1e-5);
	return f;
}

/* Several tiles in both directions and an odd number of k slices, the last one partial (the
 * cooperative-matrix shader's two shared-memory buffers; 130 rows: two 128-row tiles). Run last, so
 * that the cases before keep the random data their tolerances were measured on. */
static int test_matmul_tiles(struct vt_pair *p)
{
	int f = 0;
	static const int big[][3] = {{130, 0, 0}, {70, 0, 0}, {9, 0, 0}};
	const struct awq_weight *wb[] = {awq4(200, 544, 32, 1, 1), awq4(136, 1024, 128, 1, 0),
					 dense(200, 548, AWQ_DT_F16, 0.3f, AWQ_DT_COUNT), dense(144, 544, AWQ_DT_F16, 0.3f, AWQ_DT_F32)};
	const char *nb[] = {"awq g32 zp bias 200x544 (tiles)", "awq g128 zp 136x1024 (tiles)", "f16 odd 200x548 (tiles)",
			    "f16 bias 144x544 (tiles)"};
	for (int i = 0; i < 4; i++) {
		int k = (int)wb[i]->k;
		double tol = mm_tol(p, wb[i], wb[i]->fmt == AWQ_WFMT_AWQ4 ? 1e-5 : 3e-3);
		f += one_op(p, nb[i], AWQ_OP_MATMUL, (int)wb[i]->n, &k, 1, wb[i], NULL, big, 3, 0, tol, -1, 1);
	}
	/* BF16 on the cooperative-matrix shader (converted to fp16 in its staging) */
	const struct awq_weight *wh = dense(200, 548, AWQ_DT_BF16, 0.3f, AWQ_DT_COUNT);
	int k = (int)wh->k;
	f += one_op(p, "bf16 odd 200x548 (tiles)", AWQ_OP_MATMUL, (int)wh->n, &k, 1, wh, NULL, big, 3, 0,
		    mm_tol(p, wh, 3e-3), -1, 1);
	/* ... but not one holding -65536, which fp16 cannot hold (bits & 0x7fff >= 0x4780, the sign
	 * ignored): it keeps the f32 tiled shader, so the f32 tolerance (an fp16 conversion would give
	 * inf, or 5e-4 off where it saturates at 65504); the value dominates its output column */
	struct awq_weight *wo = dense(136, 544, AWQ_DT_BF16, 0.3f, AWQ_DT_BF16);
	((uint16_t *)wo->data)[37 * 544 + 101] = 0xc780;
	k = (int)wo->k;
	f += one_op(p, "bf16 -65536 136x544 (f32 tiles)", AWQ_OP_MATMUL, (int)wo->n, &k, 1, wo, NULL, big, 3, 0, 1e-5, -1,
		    1);
	return f;
}

static int test_norms(struct vt_pair *p)
{
	static const int st[][3] = {{1, 0, 0}, {6, 0, 0}, {17, 0, 0}};
	struct awq_node prm = {.p.norm = {.eps = 1e-6f, .group = 96}};
	int cols = 96, f = 0;
	f += one_op(p, "rmsnorm bf16 96", AWQ_OP_RMSNORM, cols, &cols, 1, dense(96, 1, AWQ_DT_BF16, 1.5f, AWQ_DT_COUNT),
		    &prm, st, 3, 0, 1e-5, -3, 3);
	cols = 64;
	prm.p.norm.group = 16;
	f += one_op(p, "rmsnorm f32 groups of 16", AWQ_OP_RMSNORM, cols, &cols, 1,
		    dense(16, 1, AWQ_DT_F32, 1.5f, AWQ_DT_COUNT), &prm, st, 3, 0, 1e-5, -3, 3);
	cols = 300;
	prm.p.norm.group = 300;
	f += one_op(p, "rmsnorm f16 300", AWQ_OP_RMSNORM, cols, &cols, 1, dense(300, 1, AWQ_DT_F16, 1.5f, AWQ_DT_COUNT),
		    &prm, st, 2, 0, 1e-5, -3, 3);
	return f;
}

/* silu(x Wg^T) * (x Wu^T): decode steps (<= 4 rows) run it as one fused mat-vec, prefill steps as
 * two matmuls and the element-wise SiLU-mul. */
static int test_gate_up(struct vt_pair *p, const char *what, const struct awq_weight *wg, const struct awq_weight *wu,
			double tol)
{
	static const int st[][3] = {{1, 0, 0}, {3, 0, 0}, {4, 0, 0}, {5, 0, 0}, {33, 0, 0}, {2, 0, 0}};
	char name[64];
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, (int)wg->k, "x");
	int a = awq_graph_node(&g, AWQ_OP_MATMUL, (int)wg->n, "gate", x, -1, -1, wg, NULL);
	int b = awq_graph_node(&g, AWQ_OP_MATMUL, (int)wu->n, "up", x, -1, -1, wu, NULL);
	int h = awq_graph_node(&g, AWQ_OP_SILU_MUL, (int)wg->n, "h", a, b, -1, NULL, NULL);
	g.tokens_in = tok;
	snprintf(name, sizeof(name), "gate/up+silu %s", what);
	struct vt_case c = {.name = name, .g = &g, .max_tokens = 33, .max_ctx = 33, .tol = mm_tol(p, wg, tol), .check = h,
			    .in = {{.value = x, .lo = -1, .hi = 1}}, .n_in = 1};
	int f = vt_run_case(p, &c, st, quick ? 3 : 6, seed++);
	awq_graph_free(&g);
	return f;
}

/* A new graph with inputs a and b, h = a + b and y = rmsnorm(h) over whole rows of cols (a norm
 * weight of type dt): returns y. */
static int add_norm_graph(struct awq_graph *g, int cols, enum awq_dtype dt, int *a, int *b, int *h)
{
	struct awq_node prm = {.p.norm = {.eps = 1e-6f, .group = cols}};
	awq_graph_init(g);
	g->tokens_in = awq_graph_value(g, AWQ_V_TOKENS, 1, "tok");
	*a = awq_graph_value(g, AWQ_V_ACT, cols, "a");
	*b = awq_graph_value(g, AWQ_V_ACT, cols, "b");
	*h = awq_graph_node(g, AWQ_OP_ADD, cols, "h", *a, *b, -1, NULL, NULL);
	return awq_graph_node(g, AWQ_OP_RMSNORM, cols, "y", *h, -1, -1, dense(cols, 1, dt, 1.5f, AWQ_DT_COUNT), &prm);
}

/* h = a + b, y = rmsnorm(h) (whole rows: the backend runs both in one dispatch), checked through
 * z = h + y so that both of the fused dispatch's outputs count. */
static int test_add_norm(struct vt_pair *p, int cols, enum awq_dtype dt)
{
	static const int st[][3] = {{1, 0, 0}, {5, 0, 0}, {33, 0, 0}};
	char name[64];
	struct awq_graph g;
	int a, b, h, y = add_norm_graph(&g, cols, dt, &a, &b, &h);
	int z = awq_graph_node(&g, AWQ_OP_ADD, cols, "z", h, y, -1, NULL, NULL);
	snprintf(name, sizeof(name), "add+rmsnorm %s %d", awq_dtype_name(dt), cols);
	struct vt_case c = {.name = name, .g = &g, .max_tokens = 33, .max_ctx = 33, .tol = 1e-5, .check = z,
			    .in = {{.value = a, .lo = -3, .hi = 3}, {.value = b, .lo = -3, .hi = 3}}, .n_in = 2};
	int f = vt_run_case(p, &c, st, 3, seed++);
	awq_graph_free(&g);
	return f;
}

/* o = u Wo, h = a + o, y = rmsnorm(h), and 4-bit mat-vecs reading y, as a decoder layer has them
 * (the attention's o projection, the residual add and norm, the next projections; the
 * add+rmsnorm dispatch in between, or with AWQ_VK_EPINORM=1 in one-row steps the o projection's
 * epilogue and the readers' prologue, epinorm.glsl), on residual values up to amp: the packed-fp16
 * mat-vecs must not overflow however large the residual stream is.
 * mode 0: q = y Wq, k = y Wk + bias, checked through (q + k) + h; mode 1: gate and up of y with the
 * SiLU-mul, a down projection back to K, checked through down + h (through q + k or down alone
 * where amp is large: the sum would hide their error). (A fold of the add+rmsnorm into the readers
 * alone was tested here, 08d1e8e..e5828a3, and removed: slower on an H200.) */
static int test_norm_chain(struct vt_pair *p, int mode, int K, int group, int n_mid, enum awq_dtype dt, float amp)
{
	static const int st[][3] = {{1, 0, 0}, {3, 0, 0}, {1, 0, 0}, {5, 0, 0}, {1, 0, 0}};
	char name[96];
	struct awq_graph g;
	struct awq_node prm = {.p.norm = {.eps = 1e-6f, .group = K}};
	awq_graph_init(&g);
	g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	const int Ku = 96;
	int a = awq_graph_value(&g, AWQ_V_ACT, K, "a"), u = awq_graph_value(&g, AWQ_V_ACT, Ku, "u");
	int o = awq_graph_node(&g, AWQ_OP_MATMUL, K, "o", u, -1, -1, awq4(K, Ku, 32, 1, 0), NULL);
	int h = awq_graph_node(&g, AWQ_OP_ADD, K, "h", a, o, -1, NULL, NULL);
	int y = awq_graph_node(&g, AWQ_OP_RMSNORM, K, "y", h, -1, -1, dense(K, 1, dt, 1.5f, AWQ_DT_COUNT), &prm);
	const struct awq_weight *w0;
	int z;
	if (mode == 0) {
		w0 = awq4(K, K, group, 1, 0);
		int q = awq_graph_node(&g, AWQ_OP_MATMUL, K, "q", y, -1, -1, w0, NULL);
		int k = awq_graph_node(&g, AWQ_OP_MATMUL, K, "k", y, -1, -1, awq4(K, K, group, 0, 1), NULL);
		z = awq_graph_node(&g, AWQ_OP_ADD, K, "q+k", q, k, -1, NULL, NULL);
	} else {
		w0 = awq4(n_mid, K, group, 1, 0);
		int ga = awq_graph_node(&g, AWQ_OP_MATMUL, n_mid, "gate", y, -1, -1, w0, NULL);
		int up = awq_graph_node(&g, AWQ_OP_MATMUL, n_mid, "up", y, -1, -1, awq4(n_mid, K, group, 1, 0), NULL);
		int sm = awq_graph_node(&g, AWQ_OP_SILU_MUL, n_mid, "silu", ga, up, -1, NULL, NULL);
		z = awq_graph_node(&g, AWQ_OP_MATMUL, K, "down", sm, -1, -1, dense(K, n_mid, AWQ_DT_BF16, 0.1f, AWQ_DT_COUNT),
				   NULL);
	}
	int out = amp > 10 ? z : awq_graph_node(&g, AWQ_OP_ADD, K, "out", z, h, -1, NULL, NULL);
	snprintf(name, sizeof(name), "o+add+rmsnorm %s, %s, K %d g%d, |x| < %g", awq_dtype_name(dt),
		 mode == 0 ? "q/k mat-vecs" : "gate/up+silu", K, group, amp);
	/* with int8 activations gate and up each carry the rounding of x into their product: twice a
	 * mat-vec's bound */
	const double tol = mm_tol(p, w0, 1e-5) * (p->q8 && mode == 1 ? 2 : 1);
	struct vt_case c = {.name = name, .g = &g, .max_tokens = 5, .max_ctx = 5, .tol = tol, .check = out,
			    .in = {{.value = a, .lo = -amp, .hi = amp}, {.value = u, .lo = -1, .hi = 1}}, .n_in = 2};
	int f = vt_run_case(p, &c, st, 5, seed++);
	awq_graph_free(&g);
	return f;
}

static int test_ropes(struct vt_pair *p)
{
	static const int st[][3] = {{1, 0, 0}, {7, 1000, 0}, {20, 5000, 0}, {1, 5020, 0}};
	struct awq_node prm = {.p.rope = {.n_heads = 3, .head_dim = 16, .rope = {.theta = 10000.0f}}};
	int cols = 48, f = 0;
	f += one_op(p, "rope default", AWQ_OP_ROPE, cols, &cols, 1, NULL, &prm, st, 4, 6000, 1e-6, -2, 2);
	prm.p.rope.rope = (struct awq_rope){.theta = 500000.0f, .type = AWQ_ROPE_LLAMA3, .factor = 8, .low_freq_factor = 1,
					    .high_freq_factor = 4, .original_max_pos = 64};
	prm.p.rope.n_heads = 2;
	prm.p.rope.head_dim = 128;
	cols = 256;
	f += one_op(p, "rope llama3 hd128", AWQ_OP_ROPE, cols, &cols, 1, NULL, &prm, st, 4, 6000, 1e-6, -2, 2);
	prm.p.rope.rope = (struct awq_rope){.theta = 10000.0f, .type = AWQ_ROPE_LINEAR, .factor = 4};
	f += one_op(p, "rope linear hd128", AWQ_OP_ROPE, cols, &cols, 1, NULL, &prm, st, 4, 6000, 1e-6, -2, 2);
	return f;
}

/* mode 0: q, k, v straight in; 1: RoPE on q and k; 2: per-head RMSNorm then RoPE (Qwen3). Modes 1
 * and 2 are folded into the attention's prep dispatch by the backend. */
static int attention_case(struct vt_pair *p, int h, int hkv, int d, int ctx, int mode, const int (*st)[3], int n_st,
			  const char *tag);

static int test_attention(struct vt_pair *p, int h, int hkv, int d, int ctx, int mode)
{
	static const int st[][3] = {{5, 0, 0}, {1, 5, 0}, {3, 6, 0}, {1, 9, 0}, {1, 10, 0}, {30, 11, 0}, {1, 41, 0},
				    {1, 42, 0}, {64, 43, 0}, {1, 107, 0}};
	return attention_case(p, h, hkv, d, ctx, mode, st, 10, "");
}

/* Decode after 600 positions with the keys in at most `splits` splits (AWQ_VK_ATTN_SPLITS, unless the
 * environment sets it): several of the HD variants' blocks of keys per split, the last one partial,
 * then the step's own keys (FOLD) after them. */
static int test_attention_long(struct vt_pair *p, int h, int hkv, int d, int mode, int splits)
{
	static const int st[][3] = {{200, 0, 0}, {200, 200, 0}, {200, 400, 0}, {1, 600, 0},
				    {3, 601, 0}, {1, 604, 0}, {4, 605, 0}, {1, 609, 0}};
	const char *set = getenv("AWQ_VK_ATTN_SPLITS");
	char tag[32], v[8];
	if (!set) {
		snprintf(v, sizeof(v), "%d", splits);
		setenv("AWQ_VK_ATTN_SPLITS", v, 1);
	}
	snprintf(tag, sizeof(tag), " 610 pos, %s split(s)", set ? set : v);
	int f = attention_case(p, h, hkv, d, 700, mode, st, 8, tag);
	if (!set)
		unsetenv("AWQ_VK_ATTN_SPLITS");
	return f;
}

static int attention_case(struct vt_pair *p, int h, int hkv, int d, int ctx, int mode, const int (*st)[3], int n_st,
			  const char *tag)
{
	struct awq_node prm = {.p.attn = {.layer = 0, .n_heads = h, .n_kv_heads = hkv, .head_dim = d,
					  .scale = 1.0f / sqrtf((float)d)}};
	struct awq_graph g;
	char name[64];
	awq_graph_init(&g);
	g.n_kv_layers = 1;
	g.kv_heads = hkv;
	g.head_dim = d;
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int q = awq_graph_value(&g, AWQ_V_ACT, h * d, "q"), k = awq_graph_value(&g, AWQ_V_ACT, hkv * d, "k");
	int v = awq_graph_value(&g, AWQ_V_ACT, hkv * d, "v");
	snprintf(name, sizeof(name), "attention H%d/%d D%d%s%s", h, hkv, d,
		 mode == 2 ? " +qk-norm+rope" : mode == 1 ? " +rope" : "", tag);
	int qa = q, ka = k;
	if (mode == 2) {
		struct awq_node nm = {.p.norm = {.eps = 1e-6f, .group = d}};
		qa = awq_graph_node(&g, AWQ_OP_RMSNORM, h * d, "q_norm", qa, -1, -1, dense(d, 1, AWQ_DT_BF16, 1.5f, AWQ_DT_COUNT),
				    &nm);
		ka = awq_graph_node(&g, AWQ_OP_RMSNORM, hkv * d, "k_norm", ka, -1, -1,
				    dense(d, 1, AWQ_DT_BF16, 1.5f, AWQ_DT_COUNT), &nm);
	}
	if (mode >= 1) {
		struct awq_node rq = {.p.rope = {.n_heads = h, .head_dim = d, .rope = {.theta = 10000.0f}}};
		struct awq_node rk = {.p.rope = {.n_heads = hkv, .head_dim = d, .rope = {.theta = 10000.0f}}};
		qa = awq_graph_node(&g, AWQ_OP_ROPE, h * d, "q_rope", qa, -1, -1, NULL, &rq);
		ka = awq_graph_node(&g, AWQ_OP_ROPE, hkv * d, "k_rope", ka, -1, -1, NULL, &rk);
	}
	int o = awq_graph_node(&g, AWQ_OP_ATTENTION, h * d, name, qa, ka, v, NULL, &prm);
	g.tokens_in = tok;
	/* the KV cache holds fp16 (as the CUDA backend's): keys and values rounded to 2^-11 relative,
	 * 1.5-2.4e-4 measured on lavapipe, against the CPU's f32 cache */
	struct vt_case c = {.name = name, .g = &g, .max_tokens = 64, .max_ctx = ctx, .n_in = 3, .check = o, .tol = 1e-3,
			    .in = {{.value = q, .lo = -1, .hi = 1}, {.value = k, .lo = -1, .hi = 1}, {.value = v, .lo = -1, .hi = 1}}};
	int n = 0;
	while (n < n_st && st[n][1] + st[n][0] <= ctx) {
		c.max_tokens = n == 0 || st[n][0] > c.max_tokens ? st[n][0] : c.max_tokens;
		n++;
	}
	int f = vt_run_case(p, &c, st, quick ? 3 : n, seed++);
	awq_graph_free(&g);
	return f;
}

/* An attention head the fp16 cache's pair layout cannot hold (head_dim 18, not a multiple of 4):
 * prepare refuses it with a message, as any unsupported shape. */
static int test_bad_attention(struct vt_pair *p)
{
	struct awq_node prm = {.p.attn = {.layer = 0, .n_heads = 2, .n_kv_heads = 1, .head_dim = 18, .scale = 0.25f}};
	struct awq_graph g;
	awq_graph_init(&g);
	g.n_kv_layers = 1;
	g.kv_heads = 1;
	g.head_dim = 18;
	g.tokens_in = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int q = awq_graph_value(&g, AWQ_V_ACT, 36, "q"), k = awq_graph_value(&g, AWQ_V_ACT, 18, "k");
	int v = awq_graph_value(&g, AWQ_V_ACT, 18, "v");
	g.logits_out = awq_graph_node(&g, AWQ_OP_ATTENTION, 36, "attn", q, k, v, NULL, &prm);
	struct awq_backend_opts o = {.quiet = 1};
	struct awq_prepare_opts po = {.max_tokens = 4, .max_ctx = 16};
	char err[AWQ_ERRLEN] = "";
	void *ctx = NULL;
	int rc = p->ops[1]->open(0, &o, &ctx, err, sizeof(err));
	if (!rc)
		rc = p->ops[1]->prepare(ctx, &g, &po, err, sizeof(err));
	const int ok = rc == AWQ_EUNSUPPORTED && strstr(err, "head_dim a multiple of 4");
	printf("  %-34s %s: %s\n", "attention head_dim 18 refused", ok ? "ok" : "FAIL", err);
	if (ctx)
		p->ops[1]->close(ctx);
	awq_graph_free(&g);
	return !ok;
}

static int test_misc(struct vt_pair *p)
{
	static const int st[][3] = {{1, 0, 0}, {9, 0, 0}, {3, 0, 0}};
	int cols[2] = {37, 37}, f = 0;
	f += one_op(p, "silu_mul 37", AWQ_OP_SILU_MUL, 37, cols, 2, NULL, NULL, st, 3, 0, 1e-6, -6, 6);
	f += one_op(p, "add 37", AWQ_OP_ADD, 37, cols, 2, NULL, NULL, st, 3, 0, 1e-7, -6, 6);
	int gcols[2] = {1, 37};
	f += one_op(p, "sigmoid_mul 37", AWQ_OP_SIGMOID_MUL, 37, gcols, 2, NULL, NULL, st, 3, 0, 1e-6, -6, 6);
	f += one_op(p, "embed bf16 50x24", AWQ_OP_EMBED, 24, NULL, 0, dense(50, 24, AWQ_DT_BF16, 1, AWQ_DT_COUNT), NULL, st,
		    3, 0, 0, 0, 0);
	f += one_op(p, "embed f32 77x33", AWQ_OP_EMBED, 33, NULL, 0, dense(77, 33, AWQ_DT_F32, 1, AWQ_DT_COUNT), NULL, st,
		    3, 0, 0, 0, 0);
	int ac = 1000;
	f += one_op(p, "argmax 1000", AWQ_OP_ARGMAX, 1, &ac, 1, NULL, NULL, st, 3, 0, 0, -4, 4);
	ac = 1001; /* not a multiple of 4: the scalar loop */
	f += one_op(p, "argmax 1001", AWQ_OP_ARGMAX, 1, &ac, 1, NULL, NULL, st, 3, 0, 0, -4, 4);
	/* one long row (the 1-row steps) split over workgroups of 4096 columns, then merged; the 9- and
	 * 3-row steps a workgroup per row */
	ac = 151936;
	f += one_op(p, "argmax 151936", AWQ_OP_ARGMAX, 1, &ac, 1, NULL, NULL, st, 3, 0, 0, -4, 4);
	ac = 8193; /* three slices, the last of one column, the scalar loop */
	f += one_op(p, "argmax 8193", AWQ_OP_ARGMAX, 1, &ac, 1, NULL, NULL, st, 3, 0, 0, -4, 4);
	return f;
}

/* LAST_ROWS (and what follows it) with and without all_rows. */
static int test_last_rows(struct vt_pair *p)
{
	static const int st[][3] = {{1, 0, 0}, {6, 0, 0}, {6, 0, 1}, {2, 0, 1}, {5, 0, 0}};
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok"), x = awq_graph_value(&g, AWQ_V_ACT, 40, "x");
	int y = awq_graph_value(&g, AWQ_V_ACT, 40, "y");
	int a = awq_graph_node(&g, AWQ_OP_ADD, 40, "a", x, y, -1, NULL, NULL);
	int l = awq_graph_node(&g, AWQ_OP_LAST_ROWS, 40, "last", a, -1, -1, NULL, NULL);
	int o = awq_graph_node(&g, AWQ_OP_SILU_MUL, 40, "out", l, l, -1, NULL, NULL);
	g.tokens_in = tok;
	struct vt_case c = {.name = "add+last_rows+silu_mul", .g = &g, .max_tokens = 6, .max_ctx = 6, .n_in = 2,
			    .check = o, .tol = 1e-6,
			    .in = {{.value = x, .lo = -2, .hi = 2}, {.value = y, .lo = -2, .hi = 2}}};
	int f = vt_run_case(p, &c, st, 5, seed++);
	awq_graph_free(&g);
	return f;
}

int main(int argc, char **argv)
{
	struct vt_pair p;
	quick = argc > 1 && !strcmp(argv[1], "--quick");
	int rc = vt_load(&p);
	if (rc)
		return rc;
	int f = test_matmuls(&p);
	f += test_attention(&p, 4, 2, 16, 200, 0);
	if (!quick) {
		f += test_norms(&p);
		f += test_add_norm(&p, 1000, AWQ_DT_BF16);
		f += test_gate_up(&p, "awq g64 136x256", awq4(136, 256, 64, 1, 0), awq4(136, 256, 64, 1, 0), 1e-5);
		f += test_gate_up(&p, "awq g32 sym 40x96", awq4(40, 96, 32, 0, 0), awq4(40, 96, 32, 0, 0), 1e-5);
		f += test_gate_up(&p, "awq g128 zp 40x8448", awq4(40, 8448, 128, 1, 0), awq4(40, 8448, 128, 1, 0),
				  1e-5);
		f += test_gate_up(&p, "bf16 77x64", dense(77, 64, AWQ_DT_BF16, 0.1f, AWQ_DT_COUNT),
				  dense(77, 64, AWQ_DT_BF16, 0.1f, AWQ_DT_COUNT), 1e-5);
		f += test_add_norm(&p, 96, AWQ_DT_F32);
		f += test_norm_chain(&p, 0, 96, 32, 0, AWQ_DT_BF16, 3);
		f += test_norm_chain(&p, 0, 4352, 128, 0, AWQ_DT_F16, 3000);
		f += test_norm_chain(&p, 1, 4608, 128, 24, AWQ_DT_BF16, 3000);
		f += test_norm_chain(&p, 1, 96, 32, 40, AWQ_DT_F32, 3);
		f += test_ropes(&p);
		f += test_attention(&p, 2, 1, 128, 120, 0);
		f += test_attention(&p, 3, 3, 80, 48, 0);
		f += test_attention(&p, 2, 2, 256, 40, 0);
		f += test_attention(&p, 4, 2, 64, 120, 1);
		f += test_attention(&p, 4, 2, 128, 120, 2);
		f += test_attention(&p, 2, 2, 256, 48, 2);
		f += test_attention_long(&p, 4, 2, 128, 2, 2);
		f += test_attention_long(&p, 2, 2, 128, 0, 1);
		f += test_attention_long(&p, 4, 1, 64, 1, 3);
		f += test_attention_long(&p, 2, 1, 256, 2, 2);
		f += test_attention_long(&p, 3, 3, 80, 0, 2);
		f += test_attention_long(&p, 8, 1, 128, 2, 2); /* 8 q heads on one kv head */
		f += test_attention_long(&p, 6, 2, 64, 0, 3);
		f += test_misc(&p);
		f += test_bad_attention(&p);
		f += test_last_rows(&p);
		f += test_matmul_tiles(&p);
	}
	vt_free_all();
	vt_unload(&p);
	printf("%s: %d failure(s)\n", f ? "FAIL" : "ok", f);
	return f ? 1 : 0;
}

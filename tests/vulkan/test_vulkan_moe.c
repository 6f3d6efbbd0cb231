/* MOE_ROUTE and MOE_EXPERTS on the Vulkan backend against the CPU reference functions
 * awq_moe_topk (after an f32 router matmul) and awq_ref_moe_experts: random inputs and routes,
 * odd shapes, every expert weight format, steps of 1..4 rows (top-k matvec) and longer ones
 * (grouped indirect matmul, experts with several 64-row tiles), the output poisoned with NaN on
 * the device before each run. Exit 77 (skip) without a Vulkan device.
 *   test_vulkan_moe [--quick]   (--quick: a few cases, for the validation-layer run) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_moe.h"
#include "cpu_ref.h"
#include "dtype.h"
#include "error.h"
#include "vk_test.h"

static uint64_t seed = 0x3e7a0f11;
static int quick;

static const int steps[][3] = {{1, 0, 0}, {70, 0, 0}, {3, 0, 0}, {4, 0, 0}, {5, 0, 0}, {150, 0, 0}, {2, 0, 0}, {1, 0, 0}};
#define N_STEPS (quick ? 2 : (int)(sizeof(steps) / sizeof(steps[0])))
#define MAX_ROWS 150

/* One MoE node on the Vulkan backend, its output value pinned, over steps of random inputs. */
struct moe_run {
	struct vt_pair *p;
	struct awq_graph g;
	int x, route, out; /* value ids; route is an input of MOE_EXPERTS cases */
	void *ctx;
	char err[AWQ_ERRLEN];
};

static int run_open(struct moe_run *r)
{
	struct awq_backend_opts o = {.quiet = 1};
	struct awq_prepare_opts po = {.max_tokens = MAX_ROWS, .max_ctx = MAX_ROWS};
	r->g.logits_out = r->out; /* pinned: the planner never lets another value overlap it */
	int rc = r->p->ops[1]->open(0, &o, &r->ctx, r->err, sizeof(r->err));
	if (!rc)
		rc = r->p->ops[1]->prepare(r->ctx, &r->g, &po, r->err, sizeof(r->err));
	return rc;
}

static void run_close(struct moe_run *r)
{
	if (r->ctx)
		r->p->ops[1]->close(r->ctx);
	r->ctx = NULL;
	awq_graph_free(&r->g);
}

/* Write x (and the route when given), poison the output, run rows tokens, read the output. */
static int run_step(struct moe_run *r, int rows, const float *x, const float *route, float *out)
{
	const struct awq_backend_ops *ops = r->p->ops[1];
	const int cols = r->g.values[r->out].cols;
	float *nan = malloc((size_t)rows * cols * sizeof(float));
	if (!nan)
		return awq_err(r->err, sizeof(r->err), AWQ_ENOMEM, "out of memory");
	for (int i = 0; i < rows * cols; i++)
		nan[i] = NAN;
	const struct awq_step s = {.n_tokens = rows, .pos = 0};
	int rc = ops->write_value(r->ctx, r->out, nan, rows, r->err, sizeof(r->err));
	if (!rc)
		rc = ops->write_value(r->ctx, r->x, x, rows, r->err, sizeof(r->err));
	if (!rc && route)
		rc = ops->write_value(r->ctx, r->route, route, rows, r->err, sizeof(r->err));
	if (!rc)
		rc = ops->run(r->ctx, &s, r->err, sizeof(r->err));
	if (!rc)
		rc = ops->read_value(r->ctx, r->out, out, rows, r->err, sizeof(r->err));
	free(nan);
	return rc;
}

static double rel_l2(const float *a, const float *ref, size_t n, int *bad)
{
	double num = 0, den = 0;
	*bad = 0;
	for (size_t i = 0; i < n; i++) {
		*bad += !isfinite(a[i]);
		num += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
		den += (double)ref[i] * ref[i];
	}
	return sqrt(num / (den > 0 ? den : 1));
}

static void rand_fill(float *f, size_t n, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		f[i] = vt_rand(&seed, lo, hi);
}

/* MOE_ROUTE: ids must match exactly, weights within tol. */
static int test_route(struct vt_pair *p, const char *name, const struct awq_weight *w, int top_k, int norm)
{
	const int E = (int)w->n, H = (int)w->k, K = top_k;
	struct moe_run r = {.p = p};
	struct awq_node prm = {.p.moe = {.n_experts = E, .top_k = K, .norm_topk = norm}};
	awq_graph_init(&r.g);
	r.g.tokens_in = awq_graph_value(&r.g, AWQ_V_TOKENS, 1, "tok");
	r.x = awq_graph_value(&r.g, AWQ_V_ACT, H, "x");
	r.out = awq_graph_node(&r.g, AWQ_OP_MOE_ROUTE, 2 * K, name, r.x, -1, -1, w, &prm);
	float *x = malloc(sizeof(float) * MAX_ROWS * H), *lg = malloc(sizeof(float) * MAX_ROWS * E);
	float *ref = malloc(sizeof(float) * MAX_ROWS * 2 * K), *out = malloc(sizeof(float) * MAX_ROWS * 2 * K);
	int rc = x && lg && ref && out ? run_open(&r) : awq_err(r.err, sizeof(r.err), AWQ_ENOMEM, "out of memory");
	int fails = 0;
	for (int i = 0; i < N_STEPS && !rc; i++) {
		const int rows = steps[i][0];
		rand_fill(x, (size_t)rows * H, -1, 1);
		rc = run_step(&r, rows, x, NULL, out);
		if (rc)
			break;
		awq_ref_matmul(x, rows, w, lg);
		awq_moe_topk(lg, rows, E, K, norm, ref);
		int id_diff = 0, bad = 0, ties = 0;
		double e = 0, num = 0, den = 0;
		for (int t = 0; t < rows; t++)
			for (int j = 0; j < K; j++) {
				const float *a = out + (size_t)t * 2 * K, *b = ref + (size_t)t * 2 * K;
				id_diff += a[j] != b[j];
				ties += j > 0 && b[K + j] == b[K + j - 1];
				bad += !isfinite(a[K + j]);
				num += ((double)a[K + j] - b[K + j]) * ((double)a[K + j] - b[K + j]);
				den += (double)b[K + j] * b[K + j];
			}
		e = sqrt(num / (den > 0 ? den : 1));

		const int fail = id_diff || bad || !(e <= 1e-5);
		printf("  %-40s %3d rows: ids %s (%d ties), weights rel err %.2e (tol 1e-05)%s %s\n", name, rows,
		       id_diff ? "DIFFER" : "match", ties, e, bad ? ", non-finite/unwritten" : "", fail ? "FAIL" : "ok");
		fails += fail;
	}
	if (rc)
		printf("  %-40s FAIL: %s\n", name, r.err);
	run_close(&r);
	free(x);
	free(lg);
	free(ref);
	free(out);
	return rc ? 1 : fails;
}

/* top_k distinct experts per token, weights in (0.05, 1); hot: choice 0 is always the last expert,
 * so that expert gets every row of a long step (several tiles). */
static void rand_route(float *route, int rows, int E, int K, int hot)
{
	int ids[1024];
	for (int t = 0; t < rows; t++) {
		for (int e = 0; e < E; e++)
			ids[e] = e;
		for (int j = 0; j < K; j++) {
			int pick = j + (int)(vt_rand_u64(&seed) % (uint64_t)(E - j));
			if (hot && j == 0)
				pick = E - 1;
			int tmp = ids[j];
			ids[j] = ids[pick];
			ids[pick] = tmp;
			route[(size_t)t * 2 * K + j] = (float)ids[j];
			route[(size_t)t * 2 * K + K + j] = vt_rand(&seed, 0.05f, 1.0f);
		}
	}
}

static size_t expert_bytes(const struct awq_weight *w)
{
	if (w->fmt == AWQ_WFMT_AWQ4)
		return (size_t)(w->n * w->k / 2 + w->n * (w->k / w->group_size) * 4);
	return (size_t)(w->n * w->k) * awq_dtype_size(w->dtype);
}

/* MOE_EXPERTS with routes written as inputs. fold: followed by the residual add and a whole-row
 * RMSNorm, h = res + experts, checked through h + rmsnorm(h) (AWQ_VK_MOE_FOLD=1 forms the combine
 * inside the add_rmsnorm dispatch of decode steps). */
#define X_FOLD 1 /* the residual add + RMSNorm after the experts */
#define X_BIG 2  /* BF16 down weights: the last expert holds -65536, which fp16 cannot (prefill keeps the
		  * f32 tile shader: the f32 bound; an fp16 conversion would give inf) */
static int test_experts_fold(struct vt_pair *p, const char *name, int E, int K, int H, int I, const struct vt_wspec *gu,
			     const struct vt_wspec *dn, int hot, int flags)
{
	const int fold = flags & X_FOLD, big = (flags & X_BIG) && dn->dtype == AWQ_DT_BF16;
	struct awq_experts ex = {.n = E};
	ex.gate = vt_weights(&seed, E, I, H, gu);
	ex.up = vt_weights(&seed, E, I, H, gu);
	ex.down = vt_weights(&seed, E, H, I, dn);
	if (big)
		((uint16_t *)ex.down[E - 1].data)[(size_t)(H / 2) * I + I / 3] = 0xc780;
	struct moe_run r = {.p = p};
	struct awq_node prm = {.experts = &ex, .p.moe = {.n_experts = E, .top_k = K, .norm_topk = 1}};
	awq_graph_init(&r.g);
	r.g.tokens_in = awq_graph_value(&r.g, AWQ_V_TOKENS, 1, "tok");
	r.x = awq_graph_value(&r.g, AWQ_V_ACT, H, "x");
	r.route = awq_graph_value(&r.g, AWQ_V_ACT, 2 * K, "route");
	r.out = awq_graph_node(&r.g, AWQ_OP_MOE_EXPERTS, H, name, r.x, r.route, -1, NULL, &prm);
	int res = -1;
	const struct awq_weight *nw = NULL;
	if (fold) {
		struct awq_node nprm = {.p.norm = {.eps = 1e-6f, .group = H}};
		nw = vt_dense(&seed, H, 1, AWQ_DT_BF16, 1.5f, AWQ_DT_COUNT);
		res = awq_graph_value(&r.g, AWQ_V_ACT, H, "res");
		int h = awq_graph_node(&r.g, AWQ_OP_ADD, H, "h", res, r.out, -1, NULL, NULL);
		int y = awq_graph_node(&r.g, AWQ_OP_RMSNORM, H, "y", h, -1, -1, nw, &nprm);
		r.out = awq_graph_node(&r.g, AWQ_OP_ADD, H, "h+y", h, y, -1, NULL, NULL);
	}
	float *x = malloc(sizeof(float) * MAX_ROWS * H), *route = malloc(sizeof(float) * MAX_ROWS * 2 * K);
	float *resv = malloc(sizeof(float) * MAX_ROWS * H);
	float *ref = malloc(sizeof(float) * MAX_ROWS * H), *out = malloc(sizeof(float) * MAX_ROWS * H);
	float *scratch = malloc(sizeof(float) * (size_t)(2 * I + H));
	int rc = x && route && ref && out && scratch && resv ? run_open(&r)
						     : awq_err(r.err, sizeof(r.err), AWQ_ENOMEM, "out of memory");
	int fails = 0;
	if (!rc) { /* every expert resident, whatever a step selects */
		struct awq_backend_info info;
		size_t want = (size_t)E * (2 * expert_bytes(&ex.gate[0]) + expert_bytes(&ex.down[0]));
		p->ops[1]->info(r.ctx, &info);
		if (info.weight_bytes < want) {
			printf("  %-40s FAIL: weight bytes %llu < %zu of all experts\n", name,
			       (unsigned long long)info.weight_bytes, want);
			fails++;
		}
	}
	for (int i = 0; i < N_STEPS && !rc; i++) {
		const int rows = steps[i][0];
		rand_fill(x, (size_t)rows * H, -1, 1);
		rand_route(route, rows, E, K, hot);
		if (fold) {
			rand_fill(resv, (size_t)rows * H, -3, 3);
			rc = p->ops[1]->write_value(r.ctx, res, resv, rows, r.err, sizeof(r.err));
		}
		if (!rc)
			rc = run_step(&r, rows, x, route, out);
		if (rc)
			break;
		if (awq_ref_moe_experts(&ex, x, route, rows, H, K, scratch, ref)) {
			rc = awq_err(r.err, sizeof(r.err), AWQ_EINVAL, "the reference rejected the route");
			break;
		}
		for (int t = 0; fold && t < rows; t++) { /* h = res + experts; out = h + rmsnorm(h) */
			float *o = ref + (size_t)t * H;
			double ss = 0;
			for (int c = 0; c < H; c++) {
				o[c] = resv[(size_t)t * H + c] + o[c];
				ss += (double)o[c] * o[c];
			}
			const float inv = 1.0f / sqrtf((float)(ss / H) + 1e-6f);
			for (int c = 0; c < H; c++)
				o[c] = o[c] + o[c] * inv * awq_bf16_to_f32(((const uint16_t *)nw->data)[c]);
		}
		int bad;
		double e = rel_l2(out, ref, (size_t)rows * H, &bad);
		/* 4-bit decode steps take the fp16 mat-vec where the device has it: activations rounded
		 * to fp16, 4 products per half summed in fp16 (0.6-1.1e-3 on lavapipe) */
		const int f16 = gu->awq && (gu->group % 32 == 0 || dn->group % 32 == 0) && p->q4_f16 && rows <= 4;
		/* prefill steps of AWQ or F16 experts take the cooperative-matrix shader where the device
		 * has it (vk_moe.c): x and the dequantised weights rounded to fp16, in both matmuls; BF16
		 * experts too unless AWQ_VK_MOE_BF16_CM=0 (where their values fit fp16; the bound holds
		 * either way) */
		const char *bcm = getenv("AWQ_VK_MOE_BF16_CM");
		const int bf16_cm =
			!(bcm && !strcmp(bcm, "0")) && gu->dtype == AWQ_DT_BF16 && dn->dtype == AWQ_DT_BF16 && !big;
		const int cm = p->coopmat && rows > 4 &&
			       (gu->awq || (gu->dtype == AWQ_DT_F16 && dn->dtype == AWQ_DT_F16) || bf16_cm);
		const double tol = f16 || cm ? 3e-3 : 1e-5;
		const int fail = bad || !(e <= tol);
		printf("  %-40s %3d rows: rel err %.2e (tol %.0e)%s %s\n", name, rows, e, tol,
		       bad ? ", non-finite/unwritten" : "", fail ? "FAIL" : "ok");
		fails += fail;
	}
	if (rc)
		printf("  %-40s FAIL: %s\n", name, r.err);
	run_close(&r);
	free(x);
	free(route);
	free(ref);
	free(out);
	free(scratch);
	free(resv);
	return rc ? 1 : fails;
}

static int test_experts(struct vt_pair *p, const char *name, int E, int K, int H, int I, const struct vt_wspec *gu,
			const struct vt_wspec *dn, int hot)
{
	return test_experts_fold(p, name, E, K, H, I, gu, dn, hot, 0);
}

static int test_routes(struct vt_pair *p)
{
	int f = 0;
	f += test_route(p, "route bf16 E8 top2 H64 norm", vt_dense(&seed, 8, 64, AWQ_DT_BF16, 0.5f, AWQ_DT_COUNT), 2, 1);
	if (quick)
		return f;
	f += test_route(p, "route bf16 E5 top3 H37 norm", vt_dense(&seed, 5, 37, AWQ_DT_BF16, 0.5f, AWQ_DT_COUNT), 3, 1);
	f += test_route(p, "route f16 E130 top7 H64", vt_dense(&seed, 130, 64, AWQ_DT_F16, 0.5f, AWQ_DT_COUNT), 7, 0);
	f += test_route(p, "route f32 E1 top1 H20", vt_dense(&seed, 1, 20, AWQ_DT_F32, 0.5f, AWQ_DT_COUNT), 1, 1);
	f += test_route(p, "route bf16 E16 top16 H24 norm", vt_dense(&seed, 16, 24, AWQ_DT_BF16, 0.5f, AWQ_DT_COUNT), 16,
			1);
	/* ties: experts 3, 9 and 12 share a router row larger than the others, so about half of the
	 * tokens have three equal probabilities at the top; the lower id comes first */
	struct awq_weight *w = vt_dense(&seed, 16, 32, AWQ_DT_BF16, 0.05f, AWQ_DT_COUNT);
	uint16_t *d = (uint16_t *)w->data;
	for (int k = 0; k < 32; k++)
		d[9 * 32 + k] = d[12 * 32 + k] = d[3 * 32 + k] = awq_f32_to_bf16(vt_rand(&seed, -0.5f, 0.5f));
	f += test_route(p, "route ties E16 top4 H32 norm", w, 4, 1);
	return f;
}

static int test_experts_all(struct vt_pair *p)
{
	const struct vt_wspec awq32 = {.awq = 1, .group = 32, .zero_point = 1}, awq8 = {.awq = 1, .group = 8};
	const struct vt_wspec awq128 = {.awq = 1, .group = 128, .zero_point = 1}, awq64 = {.awq = 1, .group = 64, .zero_point = 1};
	const struct vt_wspec bf16 = {.dtype = AWQ_DT_BF16, .amp = 0.2f}, f16 = {.dtype = AWQ_DT_F16, .amp = 0.2f};
	const struct vt_wspec f32 = {.dtype = AWQ_DT_F32, .amp = 0.2f};
	int f = 0;
	f += test_experts(p, "experts awq g32 E8 top2 H128 I96", 8, 2, 128, 96, &awq32, &awq32, 0);
	f += test_experts(p, "experts bf16 odd E4 top2 H37 I23 hot", 4, 2, 37, 23, &bf16, &bf16, 1);
	if (quick)
		return f;
	f += test_experts(p, "experts awq g8 sym E5 top3 H72 I40 hot", 5, 3, 72, 40, &awq8, &awq8, 1);
	f += test_experts(p, "experts f16 E6 top4 H64 I48", 6, 4, 64, 48, &f16, &f16, 0);
	f += test_experts(p, "experts f32 E3 top1 H20 I12 hot", 3, 1, 20, 12, &f32, &f32, 1);
	f += test_experts(p, "experts awq g128/g64 E64 top8 H128 I64", 64, 8, 128, 64, &awq128, &awq64, 0);
	f += test_experts(p, "experts E1 top1 bf16 H16 I8", 1, 1, 16, 8, &bf16, &bf16, 0);
	f += test_experts_fold(p, "experts awq g32 E8 top2 H128 I96 +add+norm", 8, 2, 128, 96, &awq32, &awq32, 0, X_FOLD);
	f += test_experts_fold(p, "experts bf16 E6 top3 H72 I40 hot +add+norm", 6, 3, 72, 40, &bf16, &bf16, 1, X_FOLD);
	f += test_experts_fold(p, "experts bf16 -65536 E4 top2 H64 I48 hot", 4, 2, 64, 48, &bf16, &bf16, 1, X_BIG);
	return f;
}

/* supports() says yes only within what the shaders implement. */
static int test_supports(struct vt_pair *p)
{
	struct awq_graph g;
	awq_graph_init(&g);
	struct awq_weight *w = vt_dense(&seed, 8, 16, AWQ_DT_BF16, 0.5f, AWQ_DT_COUNT);
	struct awq_node n = {.op = AWQ_OP_MOE_ROUTE, .w = w, .p.moe = {.n_experts = 8, .top_k = 2}};
	int f = 0, ok = p->ops[1]->supports(NULL, &g, &n) == 1;
	n.p.moe.top_k = 33;
	ok &= p->ops[1]->supports(NULL, &g, &n) == 0;
	n.p.moe.n_experts = 2000;
	n.p.moe.top_k = 2;
	ok &= p->ops[1]->supports(NULL, &g, &n) == 0;
	struct awq_weight *q = vt_awq4(&seed, 12, 16, 8, 0, 0); /* n % 8 != 0 */
	struct awq_experts ex = {.n = 1, .gate = q, .up = q, .down = q};
	n = (struct awq_node){.op = AWQ_OP_MOE_EXPERTS, .experts = &ex, .p.moe = {.n_experts = 1, .top_k = 1}};
	ok &= p->ops[1]->supports(NULL, &g, &n) == 0;
	struct awq_weight *b = vt_dense(&seed, 8, 16, AWQ_DT_BF16, 0.5f, AWQ_DT_COUNT);
	ex = (struct awq_experts){.n = 1, .gate = b, .up = b, .down = b};
	ok &= p->ops[1]->supports(NULL, &g, &n) == 1;
	f += !ok;
	printf("  %-40s %s\n", "supports() limits", ok ? "ok" : "FAIL");
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
	int f = test_supports(&p);
	f += test_routes(&p);
	f += test_experts_all(&p);
	vt_free_all();
	vt_unload(&p);
	printf("%s: %d failure(s)\n", f ? "FAIL" : "ok", f);
	return f ? 1 : 0;
}

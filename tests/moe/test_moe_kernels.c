/* MOE_ROUTE and MOE_EXPERTS kernels of the CPU backend against references, on random inputs with
 * NaN-poisoned outputs:
 *  - top-k routing against a direct sort-based reference in double: ties (equal logits pick the
 *    lower expert id), the k-th/(k+1)-th boundary tie, renormalisation on and off, k == E, and a
 *    NaN logit (ids must stay valid);
 *  - the grouped SIMD experts path against the per-token scalar reference for AWQ (int8 path,
 *    exact f32 path, group sizes the repacked layout cannot hold), bf16, f16: exact paths within
 *    1e-4 of the output's max (f32 summation order); the int8 path within 5e-3 of the output RMS
 *    of the reference run on activations rounded the same way (measured ~1e-6: summation order;
 *    the bound leaves room for an element of h rounding to the other side of a step on another
 *    CPU), and within 0.1 of the plain f32 reference (activations rounded to int8 twice, before
 *    gate/up and before down; with every fifth input 4x larger the worst element measures
 *    2-7e-2 of the RMS here);
 *  - one grouped call over many tokens against the same tokens one call each (1e-5);
 *  - unselected experts poisoned with NaN: results stay finite and bit-identical. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "cpu_moe.h"
#include "cpu_ref.h"
#include "awq_test_weights.h"
#include "moe_test.h"


struct fmt {
	const char *name;
	enum awq_wfmt fmt;
	enum awq_dtype dt;
	int group, zero_point, exact;
	int hidden, inter;
};

static void make_weight(struct awq_weight *w, const struct fmt *f, int64_t n, int64_t k, const char *name)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->n = n;
	w->k = k;
	w->fmt = f->fmt;
	if (f->fmt == AWQ_WFMT_DENSE) {
		size_t es = awq_dtype_size(f->dt);
		uint8_t *d = malloc((size_t)(n * k) * es);
		for (int64_t i = 0; i < n * k; i++) {
			float v = 0.2f * mt_frand();
			awq_store_float(d, f->dt, i, v);
		}
		w->dtype = f->dt;
		w->data = d;
		return;
	}
	int64_t ng = k / f->group;
	int32_t *q = malloc((size_t)(k * n / 8) * 4), *z = malloc((size_t)(ng * n / 8) * 4);
	uint16_t *s = malloc((size_t)(ng * n) * 2);
	for (int64_t i = 0; i < k * n / 8; i++)
		q[i] = (int32_t)(mt_rand() ^ (mt_rand() << 16));
	for (int64_t i = 0; i < ng * n / 8; i++)
		z[i] = (int32_t)(mt_rand() ^ (mt_rand() << 16));
	for (int64_t i = 0; i < ng * n; i++)
		s[i] = awq_f32_to_f16(0.01f + 0.02f * fabsf(mt_frand()));
	w->dtype = AWQ_DT_I32;
	w->group_size = f->group;
	w->qweight = q;
	w->scales = s;
	if (f->zero_point) {
		w->qzeros = z;
	} else {
		free(z);
		w->sym_zero = 8;
	}
}


/* --- routing ---------------------------------------------------------------------------------- */

static void ref_topk(const float *l, int E, int K, int norm, float *out)
{
	double mx = -INFINITY, sum = 0, p[64], ksum = 0;
	int used[64] = {0};
	for (int e = 0; e < E; e++)
		mx = fmax(mx, l[e]);
	for (int e = 0; e < E; e++)
		sum += p[e] = exp((double)l[e] - mx);
	for (int j = 0; j < K; j++) {
		int best = -1;
		for (int e = 0; e < E; e++)
			if (!used[e] && (best < 0 || p[e] > p[best]))
				best = e;
		used[best] = 1;
		out[j] = (float)best;
		out[K + j] = (float)(p[best] / sum);
		ksum += p[best] / sum;
	}
	for (int j = 0; norm && j < K; j++)
		out[K + j] = (float)(out[K + j] / ksum);
}

static void check_topk(int E, int K, int norm)
{
	enum { ROWS = 40 };
	float l[ROWS * 64], got[ROWS * 128], want[128];
	for (int i = 0; i < ROWS * E; i++)
		l[i] = 3.0f * mt_frand();
	for (int e = 0; e < E; e++)
		l[e] = 0.5f; /* row 0: all tied: ids 0..K-1 */
	l[E + 7 % E] = l[E + 2] = 9.0f; /* row 1: two tied maxima */
	/* row 2: a tie exactly at the k-th place: the lower id must win */
	for (int e = 0; e < E; e++)
		l[2 * E + e] = -1.0f - 0.01f * (float)e;
	for (int j = 0; j < K - 1; j++)
		l[2 * E + E - 1 - j] = 5.0f + (float)j;
	l[2 * E + 1] = l[2 * E + 3] = 2.0f;
	for (int i = 0; i < ROWS * 2 * K; i++)
		got[i] = NAN;
	awq_moe_topk(l, ROWS, E, K, norm, got);
	for (int r = 0; r < ROWS; r++) {
		ref_topk(l + r * E, E, K, norm, want);
		for (int j = 0; j < K; j++) {
			CHECK(got[r * 2 * K + j] == want[j], "E=%d K=%d norm=%d row %d slot %d: expert %g, want %g", E, K,
			      norm, r, j, got[r * 2 * K + j], want[j]);
			CHECK(fabsf(got[r * 2 * K + K + j] - want[K + j]) <= 1e-5f * want[K + j] + 1e-7f,
			      "E=%d K=%d row %d slot %d: weight %g, want %g", E, K, r, j, got[r * 2 * K + K + j],
			      want[K + j]);
		}
	}
	CHECK(E < K + 3 || got[4 * K + K - 1] == 1.0f, "row 2: the boundary tie picked expert %g, want 1",
	      got[4 * K + K - 1]);
}

static void check_topk_nan(void)
{
	float l[8] = {0.1f, NAN, 0.3f, 0.2f, -1.0f, 0.0f, 2.0f, 1.0f}, out[6];
	awq_moe_topk(l, 1, 8, 3, true, out);
	for (int j = 0; j < 3; j++)
		CHECK(out[j] >= 0 && out[j] < 8 && out[j] == floorf(out[j]), "NaN logit: slot %d holds id %g", j, out[j]);
}

/* --- experts ---------------------------------------------------------------------------------- */

struct layer {
	int E, K, H, I;
	struct awq_weight router;
	struct awq_weight *w; /* 3E: gate, up, down */
	struct awq_experts x;
	struct awq_graph g;
};

static void layer_init(struct layer *L, const struct fmt *f, int E, int K)
{
	const struct fmt rf = {"router", AWQ_WFMT_DENSE, AWQ_DT_BF16, 0, 0, 0, 0, 0};
	char name[64];
	L->E = E, L->K = K, L->H = f->hidden, L->I = f->inter;
	L->w = calloc((size_t)E * 3, sizeof(*L->w));
	for (int e = 0; e < E; e++) {
		snprintf(name, sizeof(name), "experts.%d.gate", e);
		make_weight(&L->w[e], f, L->I, L->H, name);
		snprintf(name, sizeof(name), "experts.%d.up", e);
		make_weight(&L->w[E + e], f, L->I, L->H, name);
		snprintf(name, sizeof(name), "experts.%d.down", e);
		make_weight(&L->w[2 * E + e], f, L->H, L->I, name);
	}
	L->x = (struct awq_experts){E, L->w, L->w + E, L->w + 2 * E};
	make_weight(&L->router, &rf, E, L->H, "router");
	struct awq_node p = {0};
	p.p.moe.n_experts = E;
	p.p.moe.top_k = K;
	p.p.moe.norm_topk = true;
	awq_graph_init(&L->g);
	int x = awq_graph_value(&L->g, AWQ_V_ACT, L->H, "x");
	int r = awq_graph_node(&L->g, AWQ_OP_MOE_ROUTE, 2 * K, "route", x, -1, -1, &L->router, &p);
	p.experts = &L->x;
	awq_graph_node(&L->g, AWQ_OP_MOE_EXPERTS, L->H, "out", x, r, -1, NULL, &p);
}

static void layer_free(struct layer *L)
{
	for (int i = 0; i < 3 * L->E; i++)
		awq_test_free_weight(&L->w[i]);
	free(L->w);
	awq_test_free_weight(&L->router);
	awq_graph_free(&L->g);
}

/* x rounded as the int8 path rounds activations: per group, to multiples of max|x| / 127. */
static void round_int8(const float *x, int k, int group, float *out)
{
	int8_t q[1024];
	float scale[128];
	int32_t sum[128];
	struct awq_cpu_qact a = {1, k, group, q, scale, sum};
	awq_cpu_quantize_ref(x, 0, 1, &a);
	for (int i = 0; i < k; i++)
		out[i] = (float)q[i] * scale[i / group];
}

/* The reference on activations rounded like the int8 path's: what that path computes up to
 * summation order. */
static void ref_int8(const struct layer *L, const float *x, const float *route, int rows, float *out)
{
	const int H = L->H, I = L->I, K = L->K, G = L->x.gate[0].group_size;
	float xq[1024], g[1024], u[1024], y[1024];
	for (int t = 0; t < rows; t++) {
		float *o = out + (size_t)t * H;
		memset(o, 0, (size_t)H * sizeof(float));
		round_int8(x + (size_t)t * H, H, G, xq);
		for (int j = 0; j < K; j++) {
			int e = (int)route[t * 2 * K + j];
			awq_ref_matmul(xq, 1, &L->x.gate[e], g);
			awq_ref_matmul(xq, 1, &L->x.up[e], u);
			awq_ref_silu_mul(g, u, I, g);
			round_int8(g, I, G, u);
			awq_ref_matmul(u, 1, &L->x.down[e], y);
			for (int i = 0; i < H; i++)
				o[i] += route[t * 2 * K + K + j] * y[i];
		}
	}
}

/* SIMD route + experts on rows of x, outputs poisoned first. */
static int run_simd(struct awq_cpu_moe *m, struct layer *L, const float *x, int rows, float *route, float *out)
{
	char err[AWQ_ERRLEN];
	for (int i = 0; i < rows * L->H; i++)
		out[i] = NAN;
	awq_cpu_moe_route(m, &L->g.nodes[0], x, rows, route);
	int rc = awq_cpu_moe_experts(m, &L->g, &L->g.nodes[1], x, route, rows, out, err, sizeof(err));
	CHECK(rc == 0, "experts: %s", err);
	return rc;
}

static void check_experts(const struct fmt *f, const struct awq_cpu_kernels *k, struct awq_pool *pool)
{
	enum { ROWS = 33 };
	const int E = 8, K = 3;
	struct layer L;
	struct awq_cpu_moe m, m2;
	char err[AWQ_ERRLEN];
	layer_init(&L, f, E, K);
	const int H = L.H;
	float *x = malloc((size_t)ROWS * H * 4), *route = malloc((size_t)ROWS * 2 * K * 4);
	float *out = malloc((size_t)ROWS * H * 4), *ref = malloc((size_t)ROWS * H * 4);
	float *one = malloc((size_t)ROWS * H * 4), *scratch = malloc((size_t)(2 * L.I + H) * 4);
	for (int i = 0; i < ROWS * H; i++)
		x[i] = mt_frand() * (i % 5 == 0 ? 4.0f : 1.0f);
	int rc = awq_cpu_moe_prepare(&m, &L.g, ROWS, k, f->exact, pool, err, sizeof(err));
	CHECK(rc == 0, "%s prepare: %s", f->name, err);
	const double tol = f->fmt == AWQ_WFMT_AWQ4 && !f->exact && k && f->group % 8 == 0 ? 0.1 : 1e-4;
	for (int rows = 1; !rc && rows <= ROWS; rows += 16) {
		if (run_simd(&m, &L, x, rows, route, out))
			break;
		for (int i = 0; i < rows * H; i++)
			ref[i] = NAN;
		CHECK(awq_ref_moe_experts(&L.x, x, route, rows, H, K, scratch, ref) == 0, "reference failed");
		double e = mt_err(out, ref, (size_t)rows * H, tol > 1e-3);
		CHECK(e <= tol, "%s rows=%d: grouped vs reference error %.3g > %.3g", f->name, rows, e, tol);
		if (tol > 1e-3 && f->group % 8 == 0) {
			ref_int8(&L, x, route, rows, ref);
			e = mt_err(out, ref, (size_t)rows * H, 1);
			CHECK(e <= 5e-3, "%s rows=%d: int8 path vs reference on int8-rounded activations %.3g", f->name,
			      rows, e);
		}
	}
	/* the same tokens one step each: grouping must not change the result */
	float *route1 = malloc((size_t)ROWS * 2 * K * 4), *route2 = malloc((size_t)2 * 2 * K * 4);
	for (int r = 0; !rc && r < ROWS; r++)
		run_simd(&m, &L, x + (size_t)r * H, 1, route1 + (size_t)r * 2 * K, one + (size_t)r * H);
	run_simd(&m, &L, x, ROWS, route, out);
	double e = mt_err(one, out, (size_t)ROWS * H, 0);
	CHECK(e <= 1e-5, "%s: %d tokens in one call vs one call each differ by %.3g", f->name, ROWS, e);

	/* poison every expert the first two tokens did not pick: nothing may change */
	float *two = malloc((size_t)2 * H * 4), *pois = malloc((size_t)2 * H * 4), *rpois = malloc((size_t)2 * 2 * K * 4);
	run_simd(&m, &L, x, 2, route2, two);
	int used[8] = {0}, n_used = 0;
	for (int r = 0; r < 2; r++)
		for (int j = 0; j < K; j++)
			used[(int)route2[r * 2 * K + j]] = 1;
	for (int ex = 0; ex < E; ex++) {
		n_used += used[ex];
		for (int i = 0; !used[ex] && i < 3; i++)
			awq_test_poison_weight(&L.w[i * E + ex]);
	}
	CHECK(n_used < E, "%s: the first two tokens use every expert, nothing to poison", f->name);
	awq_cpu_moe_release(&m);
	rc = awq_cpu_moe_prepare(&m2, &L.g, ROWS, k, f->exact, pool, err, sizeof(err));
	CHECK(rc == 0, "%s prepare (poisoned): %s", f->name, err);
	for (int rows = 1; !rc && rows <= 2; rows++) {
		run_simd(&m2, &L, x, rows, rpois, pois);
		CHECK(memcmp(rpois, rows == 1 ? route1 : route2, (size_t)rows * 2 * K * 4) == 0, "%s: routing changed",
		      f->name);
		CHECK(memcmp(pois, rows == 1 ? one : two, (size_t)rows * H * 4) == 0,
		      "%s rows=%d: output changed (or went NaN) once unselected experts were poisoned", f->name, rows);
	}
	awq_cpu_moe_release(&m2);
	free(two), free(pois), free(rpois), free(route1), free(route2);
	free(x), free(route), free(out), free(ref), free(one), free(scratch);
	layer_free(&L);
}

void mt_kernel_cases(void)
{
	const struct fmt fmts[] = {
		{"awq g64", AWQ_WFMT_AWQ4, AWQ_DT_I32, 64, 1, 0, 128, 128},
		{"awq g32 symmetric", AWQ_WFMT_AWQ4, AWQ_DT_I32, 32, 0, 0, 96, 64},
		{"awq g8 n%16=8", AWQ_WFMT_AWQ4, AWQ_DT_I32, 8, 1, 0, 64, 72},
		{"awq g64 exact", AWQ_WFMT_AWQ4, AWQ_DT_I32, 64, 1, 1, 128, 64},
		{"awq g4 (reference path)", AWQ_WFMT_AWQ4, AWQ_DT_I32, 4, 1, 0, 64, 32},
		{"bf16", AWQ_WFMT_DENSE, AWQ_DT_BF16, 0, 0, 0, 80, 48},
		{"f16", AWQ_WFMT_DENSE, AWQ_DT_F16, 0, 0, 0, 64, 40},
	};
	char err[AWQ_ERRLEN];
	struct awq_pool *pool;
	check_topk(16, 4, 0);
	check_topk(16, 4, 1);
	check_topk(8, 8, 1);
	check_topk(5, 1, 0);
	check_topk_nan();
	if (awq_pool_create(2, &pool, err, sizeof(err))) {
		CHECK(0, "thread pool: %s", err);
		return;
	}
	const struct awq_cpu_kernels *k = awq_cpu_kernels_select();
	if (!k)
		printf("no SIMD kernels on this CPU: checking the scalar path only\n");
	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		check_experts(&fmts[i], k, pool);
		if (k)
			check_experts(&fmts[i], NULL, pool); /* scalar mode: the reference itself */
	}
	awq_pool_destroy(pool);
}

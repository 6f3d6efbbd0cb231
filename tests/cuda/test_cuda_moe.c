/* MOE_ROUTE and MOE_EXPERTS on the CUDA backend against the CPU backend's scalar reference
 * (awq_moe_topk, awq_ref_moe_experts): random inputs, odd shapes (partial 64-column chunks), outputs
 * poisoned with NaN before each run, decode rows (1..8, single-token steps replayed from the
 * captured CUDA graph with new routes each time) and prefill rows (grouped path), AWQ (zero point
 * and symmetric, several group sizes), BF16 and F16 experts. Also: experts no route selects hold
 * NaN weights (never read, so results stay finite), a row routed to an id that is no expert comes
 * back as NaN, a repeated prefill run is bit-identical, router ties pick the lower id, and a layer
 * too large for the device fails in prepare with a clear message. Exits 77 without a device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_test.h"
#include "dtype.h"
#include "awq_test_weights.h"
#include "model.h"


static uint64_t seed = 0x30e5eedull;
static int small;

static void *xalloc(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);
	if (!p) {
		fprintf(stderr, "test_cuda_moe: out of memory\n");
		exit(1);
	}
	return p;
}

struct fmt {
	const char *name;
	enum awq_wfmt fmt;
	enum awq_dtype dt;
	int group, zero_point;
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
		uint8_t *d = xalloc((size_t)(n * k) * es);
		for (int64_t i = 0; i < n * k; i++) {
			float v = cu_rand_f(&seed, -0.12f, 0.12f);
			awq_store_float(d, f->dt, i, v);
		}
		w->dtype = f->dt;
		w->data = d;
		return;
	}
	int64_t ng = k / f->group;
	int32_t *q = xalloc((size_t)(k * n / 8) * 4);
	uint16_t *s = xalloc((size_t)(ng * n) * 2);
	for (int64_t i = 0; i < k * n / 8; i++)
		q[i] = (int32_t)cu_rand_u64(&seed);
	for (int64_t i = 0; i < ng * n; i++)
		s[i] = awq_f32_to_f16(cu_rand_f(&seed, 0.004f, 0.02f));
	w->dtype = AWQ_DT_I32;
	w->group_size = f->group;
	w->qweight = q;
	w->scales = s;
	if (f->zero_point) {
		int32_t *z = xalloc((size_t)(ng * n / 8) * 4);
		for (int64_t i = 0; i < ng * n / 8; i++)
			z[i] = (int32_t)cu_rand_u64(&seed);
		w->qzeros = z;
	} else {
		w->sym_zero = 8;
	}
}


struct layer {
	int E, K, H, I;
	struct awq_weight *w; /* 3E: gate, up, down */
	struct awq_experts x;
	struct awq_weight router;
};

static void layer_init(struct layer *L, const struct fmt *f, int E, int K, int H, int I)
{
	char name[64];
	L->E = E, L->K = K, L->H = H, L->I = I;
	L->w = xalloc((size_t)E * 3 * sizeof(*L->w));
	for (int e = 0; e < E; e++) {
		snprintf(name, sizeof(name), "experts.%d.gate", e);
		make_weight(&L->w[e], f, I, H, name);
		snprintf(name, sizeof(name), "experts.%d.up", e);
		make_weight(&L->w[E + e], f, I, H, name);
		snprintf(name, sizeof(name), "experts.%d.down", e);
		make_weight(&L->w[2 * E + e], f, H, I, name);
	}
	L->x = (struct awq_experts){E, L->w, L->w + E, L->w + 2 * E};
	const struct fmt rf = {"router", AWQ_WFMT_DENSE, AWQ_DT_BF16, 0, 0};
	make_weight(&L->router, &rf, E, H, "router");
}

static void layer_free(struct layer *L)
{
	for (int i = 0; i < 3 * L->E; i++)
		awq_test_free_weight(&L->w[i]);
	free(L->w);
	awq_test_free_weight(&L->router);
}

static double rel_l2(const float *ref, const float *got, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i]))
			return INFINITY;
		num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
		den += (double)ref[i] * ref[i];
	}
	return sqrt(num / (den > 0 ? den : 1e-30));
}

/* Routes of `rows` tokens: k distinct ids below `pick` (the experts above are poisoned), weights
 * in (0.05, 1]. */
static void make_route(float *route, int rows, int K, int pick)
{
	for (int r = 0; r < rows; r++) {
		float *ids = route + (size_t)r * 2 * K;
		for (int j = 0; j < K; j++) {
			int e, dup;
			do {
				e = (int)(cu_rand_u64(&seed) % (uint64_t)pick);
				dup = 0;
				for (int i = 0; i < j; i++)
					dup |= ids[i] == (float)e;
			} while (dup);
			ids[j] = (float)e;
			ids[K + j] = cu_rand_f(&seed, 0.05f, 1.0f);
		}
	}
}

struct expert_graph {
	struct awq_graph g;
	int x, route, out;
};

static void expert_graph(struct expert_graph *eg, struct layer *L)
{
	struct awq_node p = {0};
	p.p.moe.n_experts = L->E;
	p.p.moe.top_k = L->K;
	p.p.moe.norm_topk = true;
	p.experts = &L->x;
	awq_graph_init(&eg->g);
	int tok = awq_graph_value(&eg->g, AWQ_V_TOKENS, 1, "tok");
	eg->x = awq_graph_value(&eg->g, AWQ_V_ACT, L->H, "x");
	eg->route = awq_graph_value(&eg->g, AWQ_V_ACT, 2 * L->K, "route");
	eg->out = awq_graph_node(&eg->g, AWQ_OP_MOE_EXPERTS, L->H, "experts", eg->x, eg->route, -1, NULL, &p);
	cu_graph_io(&eg->g, tok, eg->out);
}

static int prepare(struct cu_pair *p, struct awq_graph *g, int max_tokens, int both, const char *name)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_prepare_opts po = {.max_tokens = max_tokens, .max_ctx = max_tokens + 16};
	if (cu_pair_reopen(p))
		return 1;
	for (int b = both ? 0 : 1; b < 2; b++)
		if (p->ops[b]->prepare(p->ctx[b], g, &po, err, sizeof(err))) {
			printf("FAIL %s: %s prepare: %s\n", name, p->ops[b]->name, err);
			return 1;
		}
	return 0;
}

static int write_both(struct cu_pair *p, int v, const void *src, int rows, int both)
{
	char err[AWQ_ERRLEN] = "";
	for (int b = both ? 0 : 1; b < 2; b++)
		if (p->ops[b]->write_value(p->ctx[b], v, src, rows, err, sizeof(err))) {
			printf("FAIL write_value: %s\n", err);
			return 1;
		}
	return 0;
}

static int run_one(struct cu_pair *p, int b, int rows, int v, float *dst)
{
	char err[AWQ_ERRLEN] = "";
	struct awq_step st = {.n_tokens = rows, .pos = 0};
	if (p->ops[b]->run(p->ctx[b], &st, err, sizeof(err)) || p->ops[b]->read_value(p->ctx[b], v, dst, rows, err, sizeof(err))) {
		printf("FAIL %s run: %s\n", p->ops[b]->name, err);
		return 1;
	}
	return 0;
}

/* MOE_EXPERTS with the route as an input: every step's rows get fresh ids and weights; the last
 * two experts hold NaN weights and are never picked. */
static int test_experts(struct cu_pair *p, const char *name, const struct fmt *f, int E, int K, int H, int I,
			const int *rows, int n_rows, double tol)
{
	struct layer L;
	struct expert_graph eg;
	int max_rows = 1, fails = 0;
	for (int i = 0; i < n_rows; i++)
		max_rows = rows[i] > max_rows ? rows[i] : max_rows;
	layer_init(&L, f, E, K, H, I);
	for (int e = E - 2; e < E; e++)
		for (int m = 0; m < 3; m++)
			awq_test_poison_weight(&L.w[m * E + e]);
	expert_graph(&eg, &L);
	float *x = xalloc((size_t)max_rows * H * 4), *route = xalloc((size_t)max_rows * 2 * K * 4);
	float *ref = xalloc((size_t)max_rows * H * 4), *got = xalloc((size_t)max_rows * H * 4);
	float *again = xalloc((size_t)max_rows * H * 4), *nan = xalloc((size_t)max_rows * H * 4);
	for (size_t i = 0; i < (size_t)max_rows * H; i++)
		nan[i] = NAN;
	if (prepare(p, &eg.g, max_rows, 1, name)) {
		fails = 1;
		goto out;
	}
	for (int s = 0; s < n_rows && !fails; s++) {
		int n = rows[s];
		cu_fill(x, (size_t)n * H, &seed, -1.0f, 1.0f);
		make_route(route, n, K, E - 2);
		if (write_both(p, eg.x, x, n, 1) || write_both(p, eg.route, route, n, 1) || write_both(p, eg.out, nan, n, 0) ||
		    run_one(p, 0, n, eg.out, ref) || run_one(p, 1, n, eg.out, got)) {
			fails++;
			break;
		}
		double e = rel_l2(ref, got, (size_t)n * H);
		int ok = e <= tol;
		printf("%s %s: rows=%d rel_err=%.3g (tol %.1g)\n", ok ? "ok  " : "FAIL", name, n, e, tol);
		fails += !ok;
		/* the same inputs again: bit-identical (no atomics in the sums) */
		if (write_both(p, eg.out, nan, n, 0) || run_one(p, 1, n, eg.out, again)) {
			fails++;
			break;
		}
		if (memcmp(got, again, (size_t)n * H * 4)) {
			printf("FAIL %s: rows=%d: a second run differs\n", name, n);
			fails++;
		}
	}
	/* an id that is no expert's: that row is NaN, the others are not */
	for (int pass = 0; pass < 2 && !fails; pass++) {
		int n = pass ? (max_rows > 12 ? 12 : max_rows) : 1, bad = n - 1;
		cu_fill(x, (size_t)n * H, &seed, -1.0f, 1.0f);
		make_route(route, n, K, E - 2);
		route[(size_t)bad * 2 * K + K - 1] = (float)E;
		if (write_both(p, eg.x, x, n, 0) || write_both(p, eg.route, route, n, 0) || run_one(p, 1, n, eg.out, got)) {
			fails++;
			break;
		}
		int ok = 1;
		for (int r = 0; r < n; r++)
			for (int i = 0; i < H; i++)
				ok &= r == bad ? isnan(got[(size_t)r * H + i]) : isfinite(got[(size_t)r * H + i]);
		printf("%s %s: rows=%d with a bad expert id -> NaN row\n", ok ? "ok  " : "FAIL", name, n);
		fails += !ok;
	}
out:
	free(x);
	free(route);
	free(ref);
	free(got);
	free(again);
	free(nan);
	awq_graph_free(&eg.g);
	layer_free(&L);
	return fails;
}

/* MOE_ROUTE alone (ids exact, weights within float rounding) or routed experts end to end, through
 * the common case runner: single-token steps replay the captured graph. Router rows 1 and 3 are
 * equal, so their probabilities tie exactly and the lower id must come first. */
static int test_route(struct cu_pair *p, const char *name, const struct fmt *f, enum awq_dtype router_dt, int E, int K,
		      int H, int I, int norm, int with_experts, double tol)
{
	static const int steps[][3] = {{1, 0, 0}, {1, 1, 0}, {3, 2, 0}, {1, 5, 0}, {8, 6, 0},
				       {9, 14, 0}, {1, 23, 0}, {40, 24, 0}, {1, 64, 0}};
	struct layer L;
	layer_init(&L, f, E, K, H, I);
	awq_test_free_weight(&L.router);
	const struct fmt rf = {"router", AWQ_WFMT_DENSE, router_dt, 0, 0};
	make_weight(&L.router, &rf, E, H, "router");
	size_t es = awq_dtype_size(router_dt);
	memcpy((uint8_t *)L.router.data + 3 * H * es, (const uint8_t *)L.router.data + 1 * H * es, (size_t)H * es);
	struct awq_node prm = {0};
	prm.p.moe.n_experts = E;
	prm.p.moe.top_k = K;
	prm.p.moe.norm_topk = norm;
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, H, "x");
	int r = awq_graph_node(&g, AWQ_OP_MOE_ROUTE, 2 * K, "route", x, -1, -1, &L.router, &prm);
	int out = r;
	if (with_experts) {
		prm.experts = &L.x;
		out = awq_graph_node(&g, AWQ_OP_MOE_EXPERTS, H, "experts", x, r, -1, NULL, &prm);
	}
	cu_graph_io(&g, tok, out);
	struct cu_case c = {.name = name, .g = &g, .max_tokens = 40, .max_ctx = 80,
			    .in = {{.value = x, .lo = -1, .hi = 1}}, .n_in = 1, .check = {out}, .n_check = 1, .tol = tol};
	int fails = cu_run_case(p, &c, steps, small ? 4 : 9, seed++);
	awq_graph_free(&g);
	layer_free(&L);
	return fails;
}

/* The residual add + RMSNorm after the experts in the expert down kernel's epilogue (the
 * producer-epilogue norm, cuda_fuse.c), as in a Qwen3-MoE decoder: two routed layers, each
 * followed by an add + RMSNorm whose norm only an AWQ matmul reads, so that one-token steps fold
 * both (the second clears the first's accumulator, the first the second's on the next step); the
 * second layer's input is the add + RMSNorm after a second matmul (as an o projection after q/k/v:
 * it reads no norm), which with moe_in (AWQ_CUDA_EPINORM_MOE=1) that matmul folds too, the router
 * and experts completing the norm. The
 * second residual sum h2 (written by the second expert kernel in those steps) and the output are
 * compared: h1's memory is reused once h2 is formed (the CPU's arena does), and the norms' values
 * are not comparable (a fold leaves them unnormalised for their readers). shared: both layers use
 * the same experts (else each its own). */
static int test_fold(struct cu_pair *p, const char *name, const struct fmt *f, int E, int K, int H, int I, double tol,
		     int shared, int moe_in)
{
	static const int steps[][3] = {{1, 0, 0}, {1, 1, 0}, {3, 2, 0}, {1, 5, 0}, {1, 6, 0},
				       {2, 7, 0}, {1, 9, 0}, {1, 10, 0}};
	struct layer L, L2;
	layer_init(&L, f, E, K, H, I);
	if (!shared)
		layer_init(&L2, f, E, K, H, I);
	const struct fmt mf = {"awq g128", AWQ_WFMT_AWQ4, AWQ_DT_I32, 128, 1};
	struct awq_weight wa, wb, wc, n1w, n2w, nbw;
	make_weight(&wa, &mf, H, H, "a");
	make_weight(&wb, &mf, H, H, "b");
	make_weight(&wc, &mf, H, H, "c");
	const struct fmt nf = {"norm", AWQ_WFMT_DENSE, AWQ_DT_BF16, 0, 0};
	make_weight(&n1w, &nf, H, 1, "n1");
	make_weight(&n2w, &nf, H, 1, "n2");
	make_weight(&nbw, &nf, H, 1, "nb");
	struct awq_node prm = {0}, nrm = {.p.norm = {.eps = 1e-6f, .group = H}};
	prm.p.moe.n_experts = E;
	prm.p.moe.top_k = K;
	prm.p.moe.norm_topk = true;
	prm.experts = &L.x;
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int x = awq_graph_value(&g, AWQ_V_ACT, H, "x");
	int res = awq_graph_value(&g, AWQ_V_ACT, H, "res");
	int r1 = awq_graph_node(&g, AWQ_OP_MOE_ROUTE, 2 * K, "route1", x, -1, -1, &L.router, &prm);
	int e1 = awq_graph_node(&g, AWQ_OP_MOE_EXPERTS, H, "experts1", x, r1, -1, NULL, &prm);
	int h1 = awq_graph_node(&g, AWQ_OP_ADD, H, "h1", e1, res, -1, NULL, NULL);
	int n1 = awq_graph_node(&g, AWQ_OP_RMSNORM, H, "n1", h1, -1, -1, &n1w, &nrm);
	int y = awq_graph_node(&g, AWQ_OP_MATMUL, H, "y", n1, -1, -1, &wa, NULL);
	struct layer *l2 = shared ? &L : &L2;
	struct awq_node prm2 = prm;
	prm2.experts = &l2->x;
	int yo = awq_graph_node(&g, AWQ_OP_MATMUL, H, "yo", y, -1, -1, &wc, NULL);
	int hb = awq_graph_node(&g, AWQ_OP_ADD, H, "hb", yo, h1, -1, NULL, NULL);
	int nb = awq_graph_node(&g, AWQ_OP_RMSNORM, H, "nb", hb, -1, -1, &nbw, &nrm);
	int r2 = awq_graph_node(&g, AWQ_OP_MOE_ROUTE, 2 * K, "route2", nb, -1, -1, &l2->router, &prm2);
	int e2 = awq_graph_node(&g, AWQ_OP_MOE_EXPERTS, H, "experts2", nb, r2, -1, NULL, &prm2);
	int h2 = awq_graph_node(&g, AWQ_OP_ADD, H, "h2", e2, hb, -1, NULL, NULL);
	int n2 = awq_graph_node(&g, AWQ_OP_RMSNORM, H, "n2", h2, -1, -1, &n2w, &nrm);
	int z = awq_graph_node(&g, AWQ_OP_MATMUL, H, "z", n2, -1, -1, &wb, NULL);
	cu_graph_io(&g, tok, z);
	/* a residual far larger than the experts' sums, as deep in a model */
	struct cu_case c = {.name = name, .g = &g, .max_tokens = 3, .max_ctx = 16,
			    .in = {{.value = x, .lo = -1, .hi = 1}, {.value = res, .lo = -40, .hi = 40}}, .n_in = 2,
			    .check = {h2, z}, .n_check = 2, .tol = tol};
	setenv("AWQ_CUDA_EPINORM_MOE", moe_in ? "1" : "0", 1);
	int fails = cu_run_case(p, &c, steps, 8, seed++);
	unsetenv("AWQ_CUDA_EPINORM_MOE");
	awq_graph_free(&g);
	awq_test_free_weight(&nbw);
	awq_test_free_weight(&wc);
	awq_test_free_weight(&wa);
	awq_test_free_weight(&wb);
	awq_test_free_weight(&n1w);
	awq_test_free_weight(&n2w);
	layer_free(&L);
	if (!shared)
		layer_free(&L2);
	return fails;
}

/* Experts far larger than the device: prepare fails with AWQ_ETOOBIG and says how much is needed
 * and free, before allocating anything large. All experts share one host buffer. */
static int test_too_big(struct cu_pair *p)
{
	char err[AWQ_ERRLEN] = "";
	const int E = 1024, H = 4096, I = 16384; /* 3 x 128 MiB per expert: 384 GiB */
	struct awq_weight *w = xalloc((size_t)3 * E * sizeof(*w));
	uint16_t *data = calloc((size_t)H * I, 2);
	struct awq_weight router = {.fmt = AWQ_WFMT_DENSE, .n = E, .k = H, .dtype = AWQ_DT_BF16};
	if (!data) {
		printf("ok   too-big experts: skipped (no host memory for the shared buffer)\n");
		free(w);
		return 0;
	}
	for (int i = 0; i < 3 * E; i++) {
		snprintf(w[i].name, sizeof(w[i].name), "experts.%d.%s", i % E, i < E ? "gate" : i < 2 * E ? "up" : "down");
		w[i].fmt = AWQ_WFMT_DENSE;
		w[i].dtype = AWQ_DT_BF16;
		w[i].n = i < 2 * E ? I : H;
		w[i].k = i < 2 * E ? H : I;
		w[i].data = data;
	}
	struct awq_experts x = {E, w, w + E, w + 2 * E};
	router.data = data;
	struct awq_node prm = {0};
	prm.p.moe.n_experts = E;
	prm.p.moe.top_k = 8;
	prm.p.moe.norm_topk = true;
	struct awq_graph g;
	awq_graph_init(&g);
	int tok = awq_graph_value(&g, AWQ_V_TOKENS, 1, "tok");
	int xv = awq_graph_value(&g, AWQ_V_ACT, H, "x");
	int r = awq_graph_node(&g, AWQ_OP_MOE_ROUTE, 16, "route", xv, -1, -1, &router, &prm);
	prm.experts = &x;
	int o = awq_graph_node(&g, AWQ_OP_MOE_EXPERTS, H, "experts", xv, r, -1, NULL, &prm);
	cu_graph_io(&g, tok, o);
	struct awq_prepare_opts po = {.max_tokens = 16, .max_ctx = 64};
	int ok = 0;
	if (!cu_pair_reopen(p)) {
		int rc = p->ops[1]->prepare(p->ctx[1], &g, &po, err, sizeof(err));
		ok = rc == AWQ_ETOOBIG && strstr(err, "MiB") && strstr(err, "free");
		printf("%s too-big experts: rc=%d \"%s\"\n", ok ? "ok  " : "FAIL", rc, err);
	}
	awq_graph_free(&g);
	free(data);
	free(w);
	return !ok;
}

int main(void)
{
	struct cu_pair p;
	int rc = cu_pair_open(&p);
	if (rc)
		return rc;
	const char *sm = getenv("AWQ_CUDA_TEST_SMALL");
	small = sm && sm[0] == '1';
	static const int rows[] = {1, 3, 1, 8, 9, 1, 33, 130, 2, 300};
	/* 300 rows: 64-slot token blocks where experts are few; the larger layers skip it (the scalar
	 * reference is slow) */
	static const int rows_mid[] = {1, 3, 1, 8, 9, 1, 33, 2, 70};
	static const int rows_big[] = {1, 4, 1, 40};
	int nr = small ? 5 : 10, nm = small ? 5 : 9;
	const struct fmt awq32 = {"awq g32", AWQ_WFMT_AWQ4, AWQ_DT_I32, 32, 1};
	const struct fmt awq64s = {"awq g64 sym", AWQ_WFMT_AWQ4, AWQ_DT_I32, 64, 0};
	const struct fmt awq128 = {"awq g128", AWQ_WFMT_AWQ4, AWQ_DT_I32, 128, 1};
	const struct fmt awq16 = {"awq g16", AWQ_WFMT_AWQ4, AWQ_DT_I32, 16, 1};
	const struct fmt bf16 = {"bf16", AWQ_WFMT_DENSE, AWQ_DT_BF16, 0, 0};
	const struct fmt f16 = {"f16", AWQ_WFMT_DENSE, AWQ_DT_F16, 0, 0};
	int f = 0;
	f += test_experts(&p, "experts awq g32 E8 k2 224x96", &awq32, 8, 2, 224, 96, rows, nr, 5e-3);
	f += test_experts(&p, "experts awq g64 sym E10 k3 320x192", &awq64s, 10, 3, 320, 192, rows, nr, 5e-3);
	f += test_experts(&p, "experts awq g128 E32 k8 512x256", &awq128, 32, 8, 512, 256, rows_mid, nm, 5e-3);
	f += test_experts(&p, "experts awq g16 E12 k9 144x48", &awq16, 12, 9, 144, 48, rows, nr, 5e-3);
	f += test_experts(&p, "experts bf16 E16 k4 272x144", &bf16, 16, 4, 272, 144, rows, nr, 5e-3);
	f += test_experts(&p, "experts f16 E8 k2 128x80", &f16, 8, 2, 128, 80, rows, nr, 5e-3);
	if (!small)
		f += test_experts(&p, "experts awq g128 E64 k8 1024x512", &awq128, 64, 8, 1024, 512, rows_big, 4, 5e-3);
	/* decode kernels for group sizes that are multiples of 64 (q4m): qwen3-30b-a3b's layer; a second
	 * batch of chunks per warp in gate/up (k2, 4096 columns) and in down (16 chunks per slot); more
	 * slots than warps (k10: a warp restages for its second slot) */
	static const int rows_dec[] = {1, 2, 8};
	f += test_experts(&p, "experts awq g128 E128 k8 2048x768", &awq128, 128, 8, 2048, 768, rows_dec, 3, 5e-3);
	f += test_experts(&p, "experts awq g64 sym E8 k2 4096x1792", &awq64s, 8, 2, 4096, 1792, rows_dec, 2, 5e-3);
	f += test_experts(&p, "experts awq g128 E16 k8 512x1024", &awq128, 16, 8, 512, 1024, rows_dec, 3, 5e-3);
	f += test_experts(&p, "experts awq g64 sym E12 k10 256x128", &awq64s, 12, 10, 256, 128, rows_dec, 3, 5e-3);
	/* 16-bit decode kernels (w16): qwen3-30b-a3b's layer in BF16; 4 vectors per lane and slot row
	 * with more slots than one batch of 4 (k10) */
	f += test_experts(&p, "experts bf16 E128 k8 2048x768", &bf16, 128, 8, 2048, 768, rows_dec, 3, 5e-3);
	f += test_experts(&p, "experts f16 E12 k10 256x1024", &f16, 12, 10, 256, 1024, rows_dec, 3, 5e-3);
	/* the down kernel's staging above 48 KB of shared memory (the opt-in, as at Mixtral's 14336) */
	f += test_experts(&p, "experts awq g64 sym E4 k2 256x8192", &awq64s, 4, 2, 256, 8192, rows_dec, 2, 5e-3);
	f += test_route(&p, "route bf16 E16 k4 norm", &bf16, AWQ_DT_BF16, 16, 4, 96, 32, 1, 0, 1e-5);
	f += test_route(&p, "route f32 E60 k8 no-norm", &bf16, AWQ_DT_F32, 60, 8, 200, 32, 0, 0, 1e-5);
	f += test_route(&p, "route f16 E8 k2 (odd H) norm", &bf16, AWQ_DT_F16, 8, 2, 37, 16, 1, 0, 1e-5);
	/* more than 32 slots: the top-k writes its slots in batches of a warp */
	f += test_route(&p, "route bf16 E100 k40 norm", &bf16, AWQ_DT_BF16, 100, 40, 64, 32, 1, 0, 1e-5);
	f += test_route(&p, "route bf16 E70 k64 no-norm", &bf16, AWQ_DT_BF16, 70, 64, 32, 16, 0, 0, 1e-5);
	f += test_route(&p, "route+experts awq g32 E16 k4", &awq32, AWQ_DT_BF16, 16, 4, 256, 128, 1, 1, 5e-3);
	f += test_route(&p, "route+experts bf16 E8 k2", &bf16, AWQ_DT_BF16, 8, 2, 128, 64, 1, 1, 5e-3);
	f += test_route(&p, "route+experts awq g128 E128 k8", &awq128, AWQ_DT_BF16, 128, 8, 2048, 768, 1, 1, 5e-3);
	/* the add + RMSNorm after the experts folded into their down kernel (q4m: g64 / g128), with
	 * separate experts per layer too, and layers whose g32 experts keep the add + RMSNorm launches */
	f += test_fold(&p, "fold awq g128 E16 k4 512x256", &awq128, 16, 4, 512, 256, 5e-3, 1, 0);
	f += test_fold(&p, "fold awq g64 sym E12 k10 256x128", &awq64s, 12, 10, 256, 128, 5e-3, 0, 0);
	f += test_fold(&p, "no fold awq g32 E16 k4 256x128", &awq32, 16, 4, 256, 128, 5e-3, 0, 0);
	/* and the norm before the second layer folded into the matmul before it (AWQ_CUDA_EPINORM_MOE=1) */
	f += test_fold(&p, "fold in+out awq g128 E16 k4 512x256", &awq128, 16, 4, 512, 256, 5e-3, 1, 1);
	f += test_fold(&p, "fold in+out awq g64 sym E12 k10 256x128", &awq64s, 12, 10, 256, 128, 5e-3, 0, 1);
	f += test_too_big(&p);
	cu_pair_close(&p);
	printf("%s: %d failure(s)\n", f ? "FAIL" : "PASS", f);
	return f ? 1 : 0;
}

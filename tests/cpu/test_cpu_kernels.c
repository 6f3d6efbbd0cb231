/* Every SIMD kernel set this CPU runs against the scalar reference (cpu_ref.h), on random inputs
 * with odd sizes and outputs poisoned with NaN before each call. Tolerances, relative to the
 * largest reference output unless said otherwise:
 *   dense F32/F16/BF16 matmul   1e-5  (f32 summation order only; weights are widened exactly)
 *   AWQ int8 path vs reference on the int8-rounded activations   1e-5  (integer sums are exact)
 *   AWQ int8 path vs exact f32 reference: the cost of rounding activations to int8 per block
 *     (max|x|/127 steps). Blocks of 32: normalised RMS error <= 3.5%, max error <= 12% of the output
 *     RMS; whole groups of up to 128 (what a caller may still ask for): 7% and 25%. Measured worst
 *     cases (printed at the end): blocks of 32, uniform inputs ~1.2% / 3.2%; real-looking weights
 *     (Gaussian, 4-bit per group) with two 30x activation channels ~2.4% / 8.5%.
 *   AWQ f32 path                1e-5
 *   activation quantization     bit-exact
 *   attention head              1e-5 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "cpu_ref.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Roughly Gaussian (sum of uniforms): what trained weights look like before quantization. */
static float grand(void)
{
	return (frand() + frand() + frand() + frand()) * 0.8660254f;
}

static int failures;
/* worst int8-path errors vs the exact reference, by [block is AWQ_CPU_QBLOCK][real-looking] */
static struct err_stat {
	double nrmse, max;
} stats[2][2];

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		printf("FAIL: out of memory\n");
		exit(1);
	}
	return p;
}

static void poison(float *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = NAN;
}

/* Max abs error over tol * scale, scale = max |want| (or the RMS of want when rms). */
static double check(const char *what, const float *got, const float *want, size_t n, double tol, int rms)
{
	double mx = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i])) {
			printf("FAIL %s: element %zu not written or not finite\n", what, i);
			failures++;
			return INFINITY;
		}
		double d = fabs((double)got[i] - want[i]);
		mx = d > mx ? d : mx;
		scale = rms ? scale + (double)want[i] * want[i] : fmax(scale, fabs(want[i]));
	}
	if (rms)
		scale = sqrt(scale / (double)n);
	scale = scale > 0 ? scale : 1;
	if (mx > tol * scale) {
		printf("FAIL %s: max err %.3g > %.3g x %.3g\n", what, mx, tol, scale);
		failures++;
	}
	return mx / scale;
}

static void fill_dense(void *wd, enum awq_dtype t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = frand();
		awq_store_float(wd, t, i, v);
	}
}

static void dense_case(const struct awq_cpu_kernels *ks, enum awq_dtype t, int R, int N, int K, int bias_on)
{
	struct awq_weight w = {.fmt = AWQ_WFMT_DENSE, .n = N, .k = K, .dtype = t};
	uint8_t *wd = xmalloc((size_t)N * K * awq_dtype_size(t));
	uint16_t *bias = xmalloc((size_t)N * 2);
	float *x = xmalloc((size_t)R * K * 4), *xp = xmalloc((size_t)R * K * 4);
	float *o = xmalloc((size_t)R * N * 4), *r = xmalloc((size_t)R * N * 4);
	fill_dense(wd, t, (size_t)N * K);
	for (int i = 0; i < N; i++)
		bias[i] = awq_f32_to_bf16(frand());
	w.data = wd;
	if (bias_on) {
		w.bias = bias;
		w.bias_dtype = AWQ_DT_BF16;
	}
	for (int i = 0; i < R * K; i++)
		x[i] = frand();
	awq_cpu_permute_bf16(x, 0, R, K, ks->bf16_block, xp);
	awq_ref_matmul(x, R, &w, r);
	for (int perm = 0; perm < (t == AWQ_DT_BF16 ? 2 : 1); perm++) {
		char what[128];
		poison(o, (size_t)R * N);
		/* split rows and columns as the thread pool does */
		ks->dense(&w, x, perm ? xp : NULL, 0, R, 0, N / 2, o);
		ks->dense(&w, x, perm ? xp : NULL, 0, R / 2, N / 2, N, o);
		ks->dense(&w, x, perm ? xp : NULL, R / 2, R, N / 2, N, o);
		snprintf(what, sizeof(what), "%s dense %s%s R=%d N=%d K=%d", ks->name, awq_dtype_name(t),
			 perm ? " permuted" : "", R, N, K);
		check(what, o, r, (size_t)R * N, 1e-5, 0);
	}
	free(wd), free(bias), free(x), free(xp), free(o), free(r);
}

static void test_dense(const struct awq_cpu_kernels *ks)
{
	const enum awq_dtype types[3] = {AWQ_DT_F32, AWQ_DT_F16, AWQ_DT_BF16};
	const int rows_l[4] = {1, 3, 6, 9}, n_l[3] = {1, 7, 33}, k_l[6] = {1, 15, 17, 48, 100, 1000};
	for (int ti = 0; ti < 3; ti++)
		for (int ri = 0; ri < 4; ri++)
			for (int ni = 0; ni < 3; ni++)
				for (int ki = 0; ki < 6; ki++)
					dense_case(ks, types[ti], rows_l[ri], n_l[ni], k_l[ki], ki % 2);
}

/* AutoAWQ packing: 8 logical columns per int32, logical column c in nibble order^-1[c]. */
static void pack_awq(const int *q, int rows, int cols, int32_t *out)
{
	static const int order[8] = {0, 2, 4, 6, 1, 3, 5, 7};
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols / 8; c++) {
			uint32_t v = 0;
			for (int i = 0; i < 8; i++)
				v |= (uint32_t)q[r * cols + c * 8 + order[i]] << (4 * i);
			out[r * (cols / 8) + c] = (int32_t)v;
		}
}

struct awq_case {
	int R, N, K, G, zp, bias, real, block;
};

/* Random 4-bit weights, or (real) Gaussian weights quantized per group as AutoAWQ does:
 * scale = (max - min) / 15, zero = round(-min / scale). */
static void make_awq(const struct awq_case *c, int32_t *qw, int32_t *qz, uint16_t *sc)
{
	const int K = c->K, N = c->N, G = c->G, ng = K / G;
	int *q = xmalloc((size_t)K * N * sizeof(int)), *z = xmalloc((size_t)ng * N * sizeof(int));
	float *wf = xmalloc((size_t)K * N * sizeof(float));
	for (int i = 0; i < K * N; i++) {
		q[i] = (int)((frand() + 1) * 8) & 15;
		wf[i] = grand() * 0.02f;
	}
	for (int i = 0; i < ng * N; i++) {
		z[i] = (int)((frand() + 1) * 8) & 15;
		sc[i] = awq_f32_to_f16(0.01f + 0.02f * fabsf(frand()));
	}
	for (int g = 0; c->real && g < ng; g++)
		for (int n = 0; n < N; n++) {
			float lo = 0, hi = 0;
			for (int k = g * G; k < (g + 1) * G; k++) {
				lo = fminf(lo, wf[k * N + n]);
				hi = fmaxf(hi, wf[k * N + n]);
			}
			float s = (hi - lo) / 15.0f;
			int zz = c->zp ? (int)lrintf(-lo / s) : 8;
			sc[g * N + n] = awq_f32_to_f16(s);
			z[g * N + n] = zz;
			for (int k = g * G; k < (g + 1) * G; k++) {
				int v = (int)lrintf(wf[k * N + n] / s) + zz;
				q[k * N + n] = v < 0 ? 0 : v > 15 ? 15 : v;
			}
		}
	pack_awq(q, K, N, qw);
	pack_awq(z, ng, N, qz);
	free(q), free(z), free(wf);
}

/* Activations: uniform with every fifth element 4x larger, or (real) Gaussian with two massive
 * channels 30x larger, as hidden states of trained models have. */
static void make_act(const struct awq_case *c, float *x)
{
	for (int r = 0; r < c->R; r++)
		for (int k = 0; k < c->K; k++) {
			float v = frand() * (k % 5 == 0 ? 4.0f : 1.0f);
			if (c->real)
				v = grand() * (k == 3 || k == c->K / 2 + 5 ? 30.0f : 1.0f);
			x[r * c->K + k] = v;
		}
}

/* Normalised RMS error sqrt(sum err^2 / sum want^2): the int8 path's accuracy measure. */
static double nrmse(const float *got, const float *want, size_t n)
{
	double e = 0, w = 0;
	for (size_t i = 0; i < n; i++) {
		e += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
		w += (double)want[i] * want[i];
	}
	return sqrt(e / (w > 0 ? w : 1));
}

static void awq_case_run(const struct awq_cpu_kernels *ks, const struct awq_case *c)
{
	const int R = c->R, N = c->N, K = c->K, G = c->G, ng = K / G;
	int32_t *qw = xmalloc((size_t)K * N / 2), *qz = xmalloc((size_t)ng * N / 2);
	uint16_t *sc = xmalloc((size_t)ng * N * 2), *bias = xmalloc((size_t)N * 2);
	make_awq(c, qw, qz, sc);
	for (int i = 0; i < N; i++)
		bias[i] = awq_f32_to_f16(frand());
	struct awq_weight w = {.fmt = AWQ_WFMT_AWQ4, .n = N, .k = K, .qweight = qw, .qzeros = c->zp ? qz : NULL,
			       .sym_zero = 8, .scales = sc, .group_size = G, .bias = c->bias ? bias : NULL,
			       .bias_dtype = AWQ_DT_F16};
	struct awq_cpu_q4 p;
	if (!awq_cpu_q4_supported(&w) || awq_cpu_q4_alloc(&w, &p)) {
		printf("FAIL: AWQ case N=%d K=%d G=%d not repackable\n", N, K, G);
		failures++;
		return;
	}
	awq_cpu_q4_repack(&w, &p, 0, p.tiles / 2);
	awq_cpu_q4_repack(&w, &p, p.tiles / 2, p.tiles);
	float *x = xmalloc((size_t)R * K * 4), *xq = xmalloc((size_t)R * K * 4);
	float *o = xmalloc((size_t)R * N * 4), *r1 = xmalloc((size_t)R * N * 4), *r2 = xmalloc((size_t)R * N * 4);
	make_act(c, x);
	const int B = c->block, nb = K / B;
	struct awq_cpu_qact a = {.rows = R, .k = K, .group = B}, b = a;
	a.q = xmalloc((size_t)R * K), b.q = xmalloc((size_t)R * K);
	a.scale = xmalloc((size_t)R * nb * 4), b.scale = xmalloc((size_t)R * nb * 4);
	a.sum = xmalloc((size_t)R * nb * 4), b.sum = xmalloc((size_t)R * nb * 4);
	awq_cpu_quantize_ref(x, 0, R, &a);
	ks->quantize(x, 0, R / 2, &b);
	ks->quantize(x, R / 2, R, &b);
	char what[160];
	snprintf(what, sizeof(what), "R=%d N=%d K=%d G=%d block=%d zp=%d bias=%d %s", R, N, K, G, B, c->zp,
		 c->bias, c->real ? "real-looking" : "uniform");
	if (memcmp(a.q, b.q, (size_t)R * K) || memcmp(a.scale, b.scale, (size_t)R * nb * 4) ||
	    memcmp(a.sum, b.sum, (size_t)R * nb * 4)) {
		printf("FAIL %s quantize %s: differs from the scalar quantizer\n", ks->name, what);
		failures++;
	}
	for (int r = 0; r < R; r++)
		for (int k = 0; k < K; k++)
			xq[r * K + k] = a.q[r * K + k] * a.scale[r * nb + k / B];
	awq_ref_matmul(xq, R, &w, r1);
	awq_ref_matmul(x, R, &w, r2);
	const int64_t th = p.tiles / 2;
	char full[256];
	poison(o, (size_t)R * N);
	ks->q4(&p, &a, 0, R, 0, th, o);
	ks->q4(&p, &a, 0, R / 2, th, p.tiles, o);
	ks->q4(&p, &a, R / 2, R, th, p.tiles, o);
	snprintf(full, sizeof(full), "%s awq4 int8 %s vs ref on int8 activations", ks->name, what);
	check(full, o, r1, (size_t)R * N, 1e-5, 0);
	snprintf(full, sizeof(full), "%s awq4 int8 %s vs f32 ref", ks->name, what);
	double mx = check(full, o, r2, (size_t)R * N, B == AWQ_CPU_QBLOCK ? 1.2e-1 : 2.5e-1, 1);
	double e = nrmse(o, r2, (size_t)R * N), lim = B == AWQ_CPU_QBLOCK ? 3.5e-2 : 7e-2;
	if (e > lim) {
		printf("FAIL %s: normalised RMS error %.3g > %.3g\n", full, e, lim);
		failures++;
	}
	struct err_stat *st = &stats[B == AWQ_CPU_QBLOCK][c->real];
	st->nrmse = e > st->nrmse ? e : st->nrmse;
	st->max = mx > st->max ? mx : st->max;
	poison(o, (size_t)R * N);
	ks->q4_f32(&p, x, 0, R, 0, th, o);
	ks->q4_f32(&p, x, 0, R, th, p.tiles, o);
	snprintf(full, sizeof(full), "%s awq4 f32 %s vs f32 ref", ks->name, what);
	check(full, o, r2, (size_t)R * N, 1e-5, 0);
	awq_cpu_q4_free(&p);
	free(qw), free(qz), free(sc), free(bias), free(x), free(xq), free(o), free(r1), free(r2);
	free(a.q), free(a.scale), free(a.sum), free(b.q), free(b.scale), free(b.sum);
}

static void test_q4(const struct awq_cpu_kernels *ks)
{
	const int rows_l[5] = {1, 2, 3, 5, 9}, n_l[4] = {8, 24, 40, 64}, k_l[3] = {128, 192, 384};
	const int g_l[3] = {32, 64, 128};
	int i = 0;
	for (int ri = 0; ri < 5; ri++)
		for (int ni = 0; ni < 4; ni++)
			for (int ki = 0; ki < 3; ki++)
				for (int gi = 0; gi < 3; gi++)
					for (int zp = 0; zp < 2; zp++, i++) {
						struct awq_case c = {rows_l[ri], n_l[ni], k_l[ki], g_l[gi], zp, i % 3 == 0, i % 2, 0};
						if (c.K % c.G)
							continue;
						/* the backend's block, and whole groups as an older caller may ask */
						c.block = AWQ_CPU_QBLOCK;
						awq_case_run(ks, &c);
						c.block = c.G;
						if (c.G != AWQ_CPU_QBLOCK)
							awq_case_run(ks, &c);
					}
}

/* attn_group on g query heads of the second of two KV heads per cache row, against the reference
 * per head (1e-5), and bit for bit against the same kernel one head at a time (the group reads each
 * row once; the arithmetic per head must not change) */
static void test_attention(const struct awq_cpu_kernels *ks)
{
	const int d_l[3] = {64, 100, 128}, n_l[3] = {1, 7, 50}, g_l[5] = {1, 2, 3, 7, AWQ_CPU_ATTN_G};
	for (int di = 0; di < 3; di++)
		for (int ni = 0; ni < 3; ni++)
			for (int gi = 0; gi < 5; gi++) {
				const int d = d_l[di], n = n_l[ni], g = g_l[gi], stride = 2 * d;
				float *kc = xmalloc((size_t)n * stride * 4), *vc = xmalloc((size_t)n * stride * 4);
				float *q = xmalloc((size_t)g * d * 4), *p = xmalloc((size_t)g * n * 4);
				float *o = xmalloc((size_t)g * d * 4), *o1 = xmalloc((size_t)g * d * 4);
				float *rk = xmalloc((size_t)n * d * 4), *rv = xmalloc((size_t)n * d * 4);
				float *ro = xmalloc((size_t)g * d * 4);
				for (int i = 0; i < n * stride; i++)
					kc[i] = frand(), vc[i] = frand();
				for (int i = 0; i < g * d; i++)
					q[i] = frand() * 2;
				/* the reference on the second kv head, as a cache of one KV head for g heads */
				for (int s = 0; s < n; s++)
					for (int i = 0; i < d; i++)
						rk[s * d + i] = kc[s * stride + d + i], rv[s * d + i] = vc[s * stride + d + i];
				float *kl = xmalloc((size_t)d * 4), *vl = xmalloc((size_t)d * 4);
				memcpy(kl, rk + (size_t)(n - 1) * d, (size_t)d * 4);
				memcpy(vl, rv + (size_t)(n - 1) * d, (size_t)d * 4);
				awq_ref_attention(q, kl, vl, 1, n - 1, g, 1, d, 0.125f, rk, rv, ro);
				free(kl), free(vl);
				poison(o, (size_t)g * d);
				poison(p, (size_t)g * n);
				ks->attn_group(q, kc + d, vc + d, stride, n, d, g, 0.125f, p, o);
				char what[96];
				snprintf(what, sizeof(what), "%s attention heads=%d d=%d positions=%d", ks->name, g, d, n);
				check(what, o, ro, (size_t)g * d, 1e-5, 0);
				for (int h = 0; h < g; h++)
					ks->attn_group(q + (size_t)h * d, kc + d, vc + d, stride, n, d, 1, 0.125f, p,
						       o1 + (size_t)h * d);
				snprintf(what, sizeof(what), "%s attention heads=%d d=%d positions=%d, as one head each",
					 ks->name, g, d, n);
				check(what, o, o1, (size_t)g * d, 0, 0);
				free(kc), free(vc), free(q), free(p), free(o), free(o1), free(rk), free(rv), free(ro);
			}
}

static void test_set(const struct awq_cpu_kernels *ks)
{
	printf("testing %s\n", ks->name);
	test_dense(ks);
	test_q4(ks);
	test_attention(ks);
}

int main(void)
{
	const struct awq_cpu_kernels *sel = awq_cpu_kernels_select();
	int tested = 0;
#if defined(__x86_64__)
	/* the AVX2 set runs wherever the AVX-512 one does */
	if (sel == &awq_cpu_kernels_avx512vnni) {
		test_set(&awq_cpu_kernels_avx512vnni);
		tested++;
	} else {
		printf("skip avx512-vnni: not supported by this CPU\n");
	}
	if (sel) {
		test_set(&awq_cpu_kernels_avx2);
		tested++;
	}
#else
	if (sel) {
		test_set(sel);
		tested++;
	}
#endif
	if (!tested) {
		printf("SKIP: no SIMD kernel set runs on this CPU (the scalar reference is used)\n");
		return 77;
	}
	for (int bi = 1; bi >= 0; bi--)
		for (int re = 0; re < 2; re++)
			printf("AWQ int8 path vs exact f32, activation blocks of %s, %s: worst normalised RMS error "
			       "%.2f%%, worst max error %.2f%% of the output RMS\n",
			       bi ? "32" : "the whole group", re ? "real-looking weights and activations" : "uniform inputs",
			       100 * stats[bi][re].nrmse, 100 * stats[bi][re].max);
	printf("%d kernel set(s) tested, %d failure(s)\n", tested, failures);
	return failures ? 1 : 0;
}

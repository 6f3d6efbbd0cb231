/* CPU SIMD kernels against the scalar reference, on random inputs with odd sizes and NaN-poisoned
 * outputs. Tolerances: 16-bit/f32 dense matmul 1e-5 relative to the output's max (f32 summation
 * order only). AWQ int8 path: (a) exactly the reference applied to the int8-rounded activations,
 * 1e-5; (b) against the f32 reference, max error 5e-2 of the output RMS — the stated cost of
 * rounding activations to int8 per block of 64 (max|x|/127 steps): on these inputs, where every fifth
 * activation is 4x larger, the measured worst case is 3.6e-2; on plain uniform inputs ~1e-2. */
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
static int failures;

static void check(const char *what, const float *got, const float *want, size_t n, double tol, int rms)
{
	double mx = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(got[i])) {
			printf("FAIL %s: element %zu not written or not finite\n", what, i);
			failures++;
			return;
		}
		double d = fabs((double)got[i] - want[i]);
		mx = d > mx ? d : mx;
		scale = rms ? scale + (double)want[i] * want[i] : fmax(scale, fabs(want[i]));
	}
	if (rms)
		scale = sqrt(scale / n);
	if (mx > tol * (scale > 0 ? scale : 1)) {
		printf("FAIL %s: max err %.3g > %.3g x %.3g\n", what, mx, tol, scale);
		failures++;
	}
}

static void test_dense(const struct cpu_kernels *ks)
{
	const enum awq_dtype types[3] = {AWQ_DT_F32, AWQ_DT_F16, AWQ_DT_BF16};
	const int rows_l[3] = {1, 3, 6}, n_l[3] = {1, 7, 33}, k_l[5] = {1, 15, 17, 64, 100};
	for (int ti = 0; ti < 3; ti++)
		for (int ri = 0; ri < 3; ri++)
			for (int ni = 0; ni < 3; ni++)
				for (int ki = 0; ki < 5; ki++) {
					int R = rows_l[ri], N = n_l[ni], K = k_l[ki];
					struct awq_weight w = {.fmt = AWQ_WFMT_DENSE, .n = N, .k = K, .dtype = types[ti]};
					size_t es = awq_dtype_size(types[ti]);
					uint8_t *wd = malloc((size_t)N * K * es);
					uint16_t *bias = malloc((size_t)N * 2);
					float *x = malloc((size_t)R * K * 4), *o = malloc((size_t)R * N * 4), *r = malloc((size_t)R * N * 4);
					for (int i = 0; i < N * K; i++) {
						float v = frand();
						if (types[ti] == AWQ_DT_F32)
							((float *)wd)[i] = v;
						else if (types[ti] == AWQ_DT_F16)
							((uint16_t *)wd)[i] = awq_f32_to_f16(v);
						else
							((uint16_t *)wd)[i] = awq_f32_to_bf16(v);
					}
					for (int i = 0; i < N; i++)
						bias[i] = awq_f32_to_bf16(frand());
					w.data = wd;
					if (ki % 2) {
						w.bias = bias;
						w.bias_dtype = AWQ_DT_BF16;
					}
					for (int i = 0; i < R * K; i++)
						x[i] = frand();
					for (int i = 0; i < R * N; i++)
						o[i] = NAN;
					/* split columns in two calls as the thread pool does */
					ks->dense(&w, x, R, 0, N / 2, o);
					ks->dense(&w, x, R, N / 2, N, o);
					awq_ref_matmul(x, R, &w, r);
					char what[96];
					snprintf(what, sizeof(what), "%s dense %s R=%d N=%d K=%d", ks->name, awq_dtype_name(types[ti]),
						 R, N, K);
					check(what, o, r, (size_t)R * N, 1e-5, 0);
					free(wd), free(bias), free(x), free(o), free(r);
				}
}

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

static void test_q4(const struct cpu_kernels *ks)
{
	const int rows_l[3] = {1, 4, 7}, n_l[2] = {8, 40}, k_l[3] = {64, 128, 384}, g_l[2] = {64, 128};
	for (int ri = 0; ri < 3; ri++)
		for (int ni = 0; ni < 2; ni++)
			for (int ki = 0; ki < 3; ki++)
				for (int gi = 0; gi < 2; gi++)
					for (int zp = 0; zp < 2; zp++) {
						int R = rows_l[ri], N = n_l[ni], K = k_l[ki], G = g_l[gi];
						if (K % G)
							continue;
						int *q = malloc((size_t)K * N * sizeof(int)), *z = malloc((size_t)K / G * N * sizeof(int));
						int32_t *qw = malloc((size_t)K * N / 2), *qz = malloc((size_t)K / G * N / 2 + 4);
						uint16_t *sc = malloc((size_t)K / G * N * 2);
						for (int i = 0; i < K * N; i++)
							q[i] = (int)((frand() + 1) * 8) & 15;
						for (int i = 0; i < K / G * N; i++) {
							z[i] = (int)((frand() + 1) * 8) & 15;
							sc[i] = awq_f32_to_f16(0.01f + 0.02f * fabsf(frand()));
						}
						pack_awq(q, K, N, qw);
						pack_awq(z, K / G, N, qz);
						struct awq_weight w = {.fmt = AWQ_WFMT_AWQ4, .n = N, .k = K, .qweight = qw,
								       .qzeros = zp ? qz : NULL, .sym_zero = 8, .scales = sc,
								       .group_size = G};
						struct cpu_q4 p = {.n = N, .k = K, .group = G};
						p.q = malloc((size_t)N * K / 2);
						p.scales = malloc((size_t)N * K / G * 2);
						p.zeros = malloc((size_t)N * K / G);
						cpu_q4_repack(&w, &p, 0, N);
						float *x = malloc((size_t)R * K * 4), *xq = malloc((size_t)R * K * 4);
						float *o = malloc((size_t)R * N * 4), *r1 = malloc((size_t)R * N * 4), *r2 = malloc((size_t)R * N * 4);
						for (int i = 0; i < R * K; i++)
							x[i] = frand() * (i % 5 == 0 ? 4.0f : 1.0f);
						struct cpu_qact a = {.rows = R, .k = K, .group = G};
						a.q = malloc((size_t)R * K);
						a.scale = malloc((size_t)R * K / CPU_QBLOCK * 4);
						a.corr = malloc((size_t)R * K / G * 4);
						cpu_quantize_rows(x, 0, R, &a);
						for (int r = 0; r < R; r++)
							for (int k = 0; k < K; k++)
								xq[r * K + k] = a.q[r * K + k] * a.scale[r * (K / CPU_QBLOCK) + k / CPU_QBLOCK];
						for (int i = 0; i < R * N; i++)
							o[i] = NAN;
						ks->q4(&p, &a, R, 0, N / 2, o);
						ks->q4(&p, &a, R, N / 2, N, o);
						awq_ref_matmul(xq, R, &w, r1);
						awq_ref_matmul(x, R, &w, r2);
						char what[128];
						snprintf(what, sizeof(what), "%s awq4 R=%d N=%d K=%d G=%d zp=%d vs int8-rounded ref", ks->name, R,
							 N, K, G, zp);
						check(what, o, r1, (size_t)R * N, 1e-5, 0);
						snprintf(what, sizeof(what), "%s awq4 R=%d N=%d K=%d G=%d zp=%d vs f32 ref", ks->name, R, N, K,
							 G, zp);
						check(what, o, r2, (size_t)R * N, 5e-2, 1);
						free(q), free(z), free(qw), free(qz), free(sc), free(p.q), free(p.scales), free(p.zeros);
						free(x), free(xq), free(o), free(r1), free(r2), free(a.q), free(a.scale), free(a.corr);
					}
}

int main(void)
{
	const struct cpu_kernels *sel = cpu_kernels_select();
	int tested = 0;
#if defined(__x86_64__)
	const struct cpu_kernels *all[2] = {&cpu_kernels_avx512vnni, &cpu_kernels_avx2};
	for (int i = 0; i < 2; i++) {
		/* run a set only when this CPU has its instructions */
		if (i == 0 && sel != &cpu_kernels_avx512vnni) {
			printf("skip %s: not supported by this CPU\n", all[i]->name);
			continue;
		}
		if (i == 1 && !sel) {
			printf("skip %s: not supported by this CPU\n", all[i]->name);
			continue;
		}
		test_dense(all[i]);
		test_q4(all[i]);
		tested++;
	}
#endif
	if (!tested) {
		printf("SKIP: no SIMD kernel set runs on this CPU (the scalar reference is used)\n");
		return 77;
	}
	printf("%d kernel set(s) tested, %d failure(s)\n", tested, failures);
	return failures ? 1 : 0;
}

/* AWQ weight repacking and activation quantization for the int8-dot-product kernels, and run-time
 * kernel selection. Accuracy of the int8 path: activations are rounded to int8 per block of 64 with
 * scale max|x|/127, a relative error of at most 1/254 per element before the dot product; measured
 * against the f32 reference the worst output error is ~1-4% of the output RMS (tests/cpu states the bound). */
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

int cpu_q4_supported(const struct awq_weight *w)
{
	return w->fmt == AWQ_WFMT_AWQ4 && w->k % CPU_QBLOCK == 0 && w->group_size % CPU_QBLOCK == 0 &&
	       w->n % 4 == 0;
}

void cpu_q4_repack(const struct awq_weight *w, struct cpu_q4 *dst, int64_t n0, int64_t n1)
{
	const int64_t K = w->k, N = w->n, G = w->group_size, ng = K / G;
	for (int64_t n = n0; n < n1; n++) {
		for (int64_t b = 0; b < K / CPU_QBLOCK; b++) {
			uint8_t *blk = (uint8_t *)cpu_q4_block(dst->q, K, n, b);
			for (int i = 0; i < 32; i++) {
				int64_t k = b * CPU_QBLOCK + i;
				int lo = awq_awq4_get(w->qweight, N, k, n);
				int hi = awq_awq4_get(w->qweight, N, k + 32, n);
				blk[i] = (uint8_t)(lo | hi << 4);
			}
		}
		for (int64_t g = 0; g < ng; g++) {
			dst->scales[n * ng + g] = w->scales[g * N + n];
			dst->zeros[n * ng + g] =
				(uint8_t)(w->qzeros ? awq_awq4_get(w->qzeros, N, g, n) : w->sym_zero);
		}
	}
}

void cpu_quantize_rows(const float *x, int r0, int r1, struct cpu_qact *a)
{
	const int K = a->k, nb = K / CPU_QBLOCK, bpg = a->group / CPU_QBLOCK;
	for (int r = r0; r < r1; r++) {
		const float *xr = x + (size_t)r * K;
		int8_t *q = a->q + (size_t)r * K;
		float *corr = a->corr + (size_t)r * (K / a->group);
		for (int g = 0; g < K / a->group; g++)
			corr[g] = 0;
		for (int b = 0; b < nb; b++) {
			float mx = 0;
			for (int i = 0; i < CPU_QBLOCK; i++)
				mx = fmaxf(mx, fabsf(xr[b * CPU_QBLOCK + i]));
			float scale = mx / 127.0f, inv = mx > 0 ? 127.0f / mx : 0.0f;
			int sum = 0;
			for (int i = 0; i < CPU_QBLOCK; i++) {
				int v = (int)lrintf(xr[b * CPU_QBLOCK + i] * inv);
				v = v > 127 ? 127 : v < -127 ? -127 : v;
				q[b * CPU_QBLOCK + i] = (int8_t)v;
				sum += v;
			}
			a->scale[(size_t)r * nb + b] = scale;
			corr[b / bpg] += scale * (float)sum;
		}
	}
}

const struct cpu_kernels *cpu_kernels_select(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
		return &cpu_kernels_avx512vnni;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
		return &cpu_kernels_avx2;
#endif
	return NULL;
}

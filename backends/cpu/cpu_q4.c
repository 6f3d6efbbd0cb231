/* AWQ weight repacking, activation preparation and run-time kernel selection.
 *
 * Accuracy of the int8 path (tests/cpu/test_cpu_kernels.c measures it against the exact f32
 * reference and prints it): activations are rounded to int8 per block of 32 with scale max|x|/127,
 * so each element moves by at most max|x|/254 of its block; the 4-bit weights stay exact and the
 * integer sums are exact. Normalised RMS error of a matmul output: ~1.2% on uniform activations,
 * ~2.4% on Gaussian weights quantized per group with activations that have two 30x channels (max
 * error 3% / 8.5% of the output RMS) — the same trade as llama.cpp's Q4 x Q8_0 dot products.
 * Set AWQ_CPU_EXACT=1 in the environment for the exact path (f32 activations, compute-bound). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu_kernels.h"

int awq_cpu_q4_supported(const struct awq_weight *w)
{
	return w->fmt == AWQ_WFMT_AWQ4 && w->group_size > 0 && w->group_size % 8 == 0 && w->k % w->group_size == 0 &&
	       w->n % 8 == 0;
}

int awq_cpu_qblock(const struct awq_weight *w)
{
	return w->group_size % AWQ_CPU_QBLOCK == 0 ? AWQ_CPU_QBLOCK : w->group_size;
}

static int64_t tiles_of(const struct awq_weight *w)
{
	return (w->n + AWQ_CPU_TILE - 1) / AWQ_CPU_TILE;
}

static size_t align64(size_t x)
{
	return (x + 63) & ~(size_t)63;
}

size_t awq_cpu_q4_bytes(const struct awq_weight *w)
{
	size_t t = (size_t)tiles_of(w), ng = (size_t)(w->k / w->group_size);
	return align64(t * (size_t)(w->k / 8) * 64) + align64(t * ng * AWQ_CPU_TILE * 2) +
	       align64(t * ng * AWQ_CPU_TILE);
}

uint8_t *awq_cpu_q4_layout(const struct awq_weight *w, struct awq_cpu_q4 *d, uint8_t *p)
{
	size_t t = (size_t)tiles_of(w), ng = (size_t)(w->k / w->group_size);
	memset(d, 0, sizeof(*d));
	d->n = w->n;
	d->k = w->k;
	d->group = w->group_size;
	d->tiles = (int64_t)t;
	d->bias = w->bias;
	d->bias_dtype = w->bias_dtype;
	d->q = p;
	p += align64(t * (size_t)(w->k / 8) * 64);
	d->scales = (uint16_t *)(void *)p;
	p += align64(t * ng * AWQ_CPU_TILE * 2);
	d->zeros = p;
	return p + align64(t * ng * AWQ_CPU_TILE);
}

void *awq_cpu_alloc_huge(size_t bytes)
{
	const size_t huge = (size_t)2 << 20;
	bytes = (bytes + huge - 1) & ~(huge - 1);
	void *p = aligned_alloc(huge, bytes ? bytes : huge);
#if defined(MADV_HUGEPAGE)
	if (p)
		madvise(p, bytes, MADV_HUGEPAGE); /* advice only: without THP the memory is still good */
#endif
	return p;
}

int awq_cpu_q4_alloc(const struct awq_weight *w, struct awq_cpu_q4 *d)
{
	uint8_t *p = awq_cpu_alloc_huge(awq_cpu_q4_bytes(w));
	memset(d, 0, sizeof(*d));
	if (!p)
		return -1;
	awq_cpu_q4_layout(w, d, p);
	return 0;
}

void awq_cpu_q4_free(struct awq_cpu_q4 *q)
{
	free(q->q);
	q->q = NULL;
	q->scales = NULL;
	q->zeros = NULL;
}

/* One packed AutoAWQ word holds 8 columns of one k; logical column c sits in nibble order[c]. */
static void repack_word(uint32_t word, int i, uint8_t *dst)
{
	static const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
	for (int c = 0; c < 8; c++) {
		unsigned v = (word >> (4 * order[c])) & 0xfu;
		dst[4 * c + (i & 3)] |= (uint8_t)(v << (i & 4));
	}
}

void awq_cpu_q4_repack(const struct awq_weight *w, struct awq_cpu_q4 *d, int64_t t0, int64_t t1)
{
	const int64_t K = w->k, N = w->n, W = N / 8, ng = K / w->group_size;
	for (int64_t t = t0; t < t1; t++) {
		uint8_t *tile = d->q + (size_t)t * (size_t)(K / 8) * 64;
		memset(tile, 0, (size_t)(K / 8) * 64);
		for (int64_t k = 0; k < K; k++)
			for (int h = 0; h < 2; h++) {
				int64_t col = t * AWQ_CPU_TILE + h * 8;
				if (col >= N)
					continue;
				uint32_t word = (uint32_t)w->qweight[k * W + col / 8];
				repack_word(word, (int)(k & 7), tile + (k / 8) * 64 + h * 32);
			}
		for (int64_t g = 0; g < ng; g++)
			for (int j = 0; j < AWQ_CPU_TILE; j++) {
				int64_t n = t * AWQ_CPU_TILE + j;
				size_t o = ((size_t)t * (size_t)ng + (size_t)g) * AWQ_CPU_TILE + (size_t)j;
				d->scales[o] = n < N ? w->scales[g * N + n] : 0;
				d->zeros[o] = (uint8_t)(n >= N ? 0 : w->qzeros ? awq_awq4_get(w->qzeros, N, g, n) : w->sym_zero);
			}
	}
}

void awq_cpu_quantize_ref(const float *x, int r0, int r1, struct awq_cpu_qact *a)
{
	const int K = a->k, G = a->group, ng = K / G;
	for (int r = r0; r < r1; r++)
		for (int g = 0; g < ng; g++) {
			const float *xg = x + (size_t)r * K + (size_t)g * G;
			int8_t *q = a->q + (size_t)r * K + (size_t)g * G;
			float mx = 0;
			for (int i = 0; i < G; i++)
				mx = fmaxf(mx, fabsf(xg[i]));
			float inv = mx > 0 ? 127.0f / mx : 0.0f;
			int sum = 0;
			for (int i = 0; i < G; i++) {
				long v = lrintf(xg[i] * inv);
				v = v > 127 ? 127 : v < -127 ? -127 : v;
				q[i] = (int8_t)v;
				sum += (int)v;
			}
			a->scale[(size_t)r * ng + g] = mx / 127.0f;
			a->sum[(size_t)r * ng + g] = sum;
		}
}

float awq_cpu_bias(const void *bias, enum awq_dtype t, int64_t n)
{
	return bias ? awq_load_float(bias, t, (size_t)n) : 0.0f;
}

void awq_cpu_permute_bf16(const float *x, int r0, int r1, int k, int block, float *xp)
{
	const int half = block / 2;
	for (int r = r0; r < r1; r++) {
		const float *xr = x + (size_t)r * k;
		float *pr = xp + (size_t)r * k;
		int b = 0;
		for (; b + block <= k; b += block)
			for (int i = 0; i < half; i++) {
				pr[b + i] = xr[b + 2 * i];
				pr[b + half + i] = xr[b + 2 * i + 1];
			}
		for (; b < k; b++)
			pr[b] = xr[b];
	}
}

const struct awq_cpu_kernels *awq_cpu_kernels_select(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
	if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
	    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
		return &awq_cpu_kernels_avx512vnni;
	if (avx2)
		return &awq_cpu_kernels_avx2;
#elif defined(__aarch64__)
	return &awq_cpu_kernels_neon;
#endif
	return NULL;
}

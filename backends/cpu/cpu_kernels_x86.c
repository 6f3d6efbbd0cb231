/* x86 matmul kernels, compiled twice (see CMakeLists.txt): AWQ_VNNI=1 with AVX-512 VNNI/VL, and
 * AWQ_VNNI=0 with AVX2+FMA+F16C. Both use 256-bit vectors: on Zen 4 512-bit ops issue as two halves, and
 * decode is bandwidth-bound, so wider vectors would buy nothing here.
 *
 * Decode reads each weight once, so the inner loops are kept to a few instructions per 64 weights:
 * AWQ: load 32 bytes, split nibbles (and, shift, and), two int8 dot products against the quantized
 * activation block, one convert and one FMA with the block's combined scale. 16-bit: widen and FMA. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "cpu_kernels.h"

#if AWQ_VNNI
#define KNAME "avx512-vnni"
#define KSYM cpu_kernels_avx512vnni
#define SFX(x) x##_vnni
static inline __m256i dot4(__m256i acc, __m256i u8, __m256i s8)
{
	return _mm256_dpbusd_epi32(acc, u8, s8);
}
#else
#define KNAME "avx2"
#define KSYM cpu_kernels_avx2
#define SFX(x) x##_avx2
static inline __m256i dot4(__m256i acc, __m256i u8, __m256i s8)
{
	/* u8*s8 pairs sum to int16 without overflow here: weights are 0..15, so |pair| <= 2*15*128. */
	__m256i p16 = _mm256_maddubs_epi16(u8, s8);
	return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}
#endif

static inline float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline float load_bias(const void *b, enum awq_dtype t, int64_t n)
{
	return b ? awq_load_float(b, t, (size_t)n) : 0.0f;
}

/* R rows at once share each unpacked weight block. */
static inline __attribute__((always_inline)) void q4_rows(const struct cpu_q4 *w, const struct cpu_qact *a, int r0,
							   int R, int64_t n, float *out)
{
	const int64_t K = w->k, ng = K / w->group, bpg = w->group / CPU_QBLOCK;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 facc[4];
	float corr[4] = {0, 0, 0, 0};
	for (int j = 0; j < R; j++)
		facc[j] = _mm256_setzero_ps();
	for (int64_t g = 0; g < ng; g++) {
		float s = _cvtsh_ss(w->scales[n * ng + g]);
		float zs = s * (float)w->zeros[n * ng + g];
		for (int64_t b = g * bpg; b < (g + 1) * bpg; b++) {
			__m256i raw = _mm256_loadu_si256((const __m256i *)cpu_q4_block(w->q, K, n, b));
			__m256i lo = _mm256_and_si256(raw, m4);
			__m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
			for (int j = 0; j < R; j++) {
				const int8_t *ap = a->q + (size_t)(r0 + j) * K + b * CPU_QBLOCK;
				__m256i acc = dot4(_mm256_setzero_si256(), lo, _mm256_loadu_si256((const __m256i *)ap));
				acc = dot4(acc, hi, _mm256_loadu_si256((const __m256i *)(ap + 32)));
				float bs = s * a->scale[(size_t)(r0 + j) * (K / CPU_QBLOCK) + b];
				facc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(bs), facc[j]);
			}
		}
		for (int j = 0; j < R; j++)
			corr[j] += zs * a->corr[(size_t)(r0 + j) * ng + g];
	}
	float bias = load_bias(w->bias, w->bias_dtype, n);
	for (int j = 0; j < R; j++)
		out[(size_t)(r0 + j) * w->n + n] = hsum(facc[j]) - corr[j] + bias;
}

/* One row, four columns at once: four independent FMA chains hide the FMA latency that one
 * column's chain (one FMA per 64 weights) would expose in decode. */
static inline void q4_cols4(const struct cpu_q4 *w, const struct cpu_qact *a, int r, int64_t n, float *out)
{
	const int64_t K = w->k, ng = K / w->group, bpg = w->group / CPU_QBLOCK;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	const int8_t *ar = a->q + (size_t)r * K;
	const float *as = a->scale + (size_t)r * (K / CPU_QBLOCK);
	const float *ac = a->corr + (size_t)r * ng;
	__m256 facc[4];
	float corr[4] = {0, 0, 0, 0};
	for (int c = 0; c < 4; c++)
		facc[c] = _mm256_setzero_ps();
	for (int64_t g = 0; g < ng; g++) {
		float s[4];
		for (int c = 0; c < 4; c++) {
			s[c] = _cvtsh_ss(w->scales[(n + c) * ng + g]);
			corr[c] += s[c] * (float)w->zeros[(n + c) * ng + g] * ac[g];
		}
		for (int64_t b = g * bpg; b < (g + 1) * bpg; b++) {
			__m256i x0 = _mm256_loadu_si256((const __m256i *)(ar + b * CPU_QBLOCK));
			__m256i x1 = _mm256_loadu_si256((const __m256i *)(ar + b * CPU_QBLOCK + 32));
			const uint8_t *quad = cpu_q4_block(w->q, K, n, b);
			for (int c = 0; c < 4; c++) {
				__m256i raw = _mm256_loadu_si256((const __m256i *)(quad + c * 32));
				__m256i lo = _mm256_and_si256(raw, m4);
				__m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
				__m256i acc = dot4(dot4(_mm256_setzero_si256(), lo, x0), hi, x1);
				facc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(s[c] * as[b]), facc[c]);
			}
		}
	}
	for (int c = 0; c < 4; c++)
		out[(size_t)r * w->n + n + c] = hsum(facc[c]) - corr[c] + load_bias(w->bias, w->bias_dtype, n + c);
}

static void SFX(q4)(const struct cpu_q4 *w, const struct cpu_qact *a, int rows, int64_t n0, int64_t n1, float *out)
{
	for (int64_t n = n0; n < n1; n++) {
		int r = 0;
		if (rows < 4 && n % 4 == 0 && n + 4 <= n1) {
			for (; r < rows; r++)
				q4_cols4(w, a, r, n, out);
			n += 3;
			continue;
		}
		for (; r + 4 <= rows; r += 4)
			q4_rows(w, a, r, 4, n, out);
		for (; r < rows; r++)
			q4_rows(w, a, r, 1, n, out);
	}
}

/* Eight 16-bit (or f32) weights widened to f32. */
static inline __m256 load8(const void *p, enum awq_dtype t, int64_t i)
{
	if (t == AWQ_DT_BF16) {
		__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)p + i));
		return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
	}
	if (t == AWQ_DT_F16)
		return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
	return _mm256_loadu_ps((const float *)p + i);
}

static inline __attribute__((always_inline)) void dense_rows(const struct awq_weight *w, const float *x, int r0,
							      int R, int64_t n, float *out, enum awq_dtype t)
{
	const int64_t K = w->k;
	const void *row = (const uint8_t *)w->data + (size_t)n * (size_t)K * awq_dtype_size(t);
	__m256 acc[4][2];
	for (int j = 0; j < R; j++)
		acc[j][0] = acc[j][1] = _mm256_setzero_ps();
	int64_t k = 0;
	for (; k + 16 <= K; k += 16) {
		__m256 w0 = load8(row, t, k), w1 = load8(row, t, k + 8);
		for (int j = 0; j < R; j++) {
			const float *xr = x + (size_t)(r0 + j) * K + k;
			acc[j][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), acc[j][0]);
			acc[j][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), acc[j][1]);
		}
	}
	float bias = load_bias(w->bias, w->bias_dtype, n);
	for (int j = 0; j < R; j++) {
		float s = hsum(_mm256_add_ps(acc[j][0], acc[j][1]));
		for (int64_t kk = k; kk < K; kk++)
			s += x[(size_t)(r0 + j) * K + kk] * awq_load_float(row, t, (size_t)kk);
		out[(size_t)(r0 + j) * w->n + n] = s + bias;
	}
}

static inline __attribute__((always_inline)) void dense_cols(const struct awq_weight *w, const float *x, int rows,
							      int64_t n0, int64_t n1, float *out, enum awq_dtype t)
{
	for (int64_t n = n0; n < n1; n++) {
		int r = 0;
		for (; r + 4 <= rows; r += 4)
			dense_rows(w, x, r, 4, n, out, t);
		for (; r < rows; r++)
			dense_rows(w, x, r, 1, n, out, t);
	}
}

/* One instantiation per dtype so the widening is resolved at compile time. */
static void SFX(dense)(const struct awq_weight *w, const float *x, int rows, int64_t n0, int64_t n1, float *out)
{
	switch (w->dtype) {
	case AWQ_DT_BF16: dense_cols(w, x, rows, n0, n1, out, AWQ_DT_BF16); break;
	case AWQ_DT_F16: dense_cols(w, x, rows, n0, n1, out, AWQ_DT_F16); break;
	default: dense_cols(w, x, rows, n0, n1, out, AWQ_DT_F32); break;
	}
}

const struct cpu_kernels KSYM = {
	.name = KNAME,
	.q4 = SFX(q4),
	.dense = SFX(dense),
};
#endif

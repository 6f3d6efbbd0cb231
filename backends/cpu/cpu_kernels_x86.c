/* x86 kernels, compiled twice (see CMakeLists.txt): AWQ_VNNI=1 with AVX-512 VNNI/VL/BW, and
 * AWQ_VNNI=0 with AVX2+FMA+F16C. Both use 256-bit vectors: Zen 4 runs 512-bit ops as two halves and
 * decode is bandwidth-bound, so the wider form would only save front-end slots, which are not the
 * limit here. The VNNI build gets 32 registers and so more rows per weight load in prefill.
 *
 * Decode reads each weight once, so the inner loops spend a few instructions per 64-128 weights:
 * AWQ (int8 path): load 64 bytes = 16 columns x 8 k, split the nibbles (and, shift, and), four dot
 * products against two broadcast 4-byte activation words; one convert and FMA per column group.
 * BF16: widen 16 weights (32 in the VNNI build, whose BF16 loops are 512-bit) with a shift (even
 * elements) and a mask (odd ones) — exact — and two FMAs against activations permuted to match
 * (awq_cpu_permute_bf16 with the kernel set's bf16_block). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

#define AI inline __attribute__((always_inline))
/* Bytes ahead of the q4 stream to prefetch: the tiles are one linear stream, and this keeps enough
 * lines in flight for one core to approach the memory bandwidth. */
#define Q4_PREFETCH 2048
#define DENSE_PREFETCH 2048

#if AWQ_VNNI
#define KNAME "avx512-vnni"
#define KSYM awq_cpu_kernels_avx512vnni
#define SFX(x) x##_vnni
#define Q4_RMAX 4
#define DENSE_RMAX 4
#define BF16_BLOCK 32 /* bf16 weights in 512-bit vectors: activations permuted per 32 */
/* lo and hi nibbles go to separate accumulators: two short dependency chains instead of one. */
static AI void dot8(__m256i *a1, __m256i *a2, __m256i lo, __m256i xa, __m256i hi, __m256i xb)
{
	*a1 = _mm256_dpbusd_epi32(*a1, lo, xa);
	*a2 = _mm256_dpbusd_epi32(*a2, hi, xb);
}
#else
#define KNAME "avx2"
#define KSYM awq_cpu_kernels_avx2
#define SFX(x) x##_avx2
#define Q4_RMAX 2
#define DENSE_RMAX 2
#define BF16_BLOCK 16
/* u8 x s8 pairs sum to int16 without saturating: weights are 0..15, so four products stay within
 * 4 * 15 * 127 = 7620. */
static AI void dot8(__m256i *a1, __m256i *a2, __m256i lo, __m256i xa, __m256i hi, __m256i xb)
{
	(void)a2;
	__m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xa), _mm256_maddubs_epi16(hi, xb));
	*a1 = _mm256_add_epi32(*a1, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
#endif

static AI float hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static AI __m256i bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return _mm256_set1_epi32(v);
}

/* 8 scales (f16) and 8 zero points (u8) of one half tile as f32. */
static AI __m256 load_scales(const uint16_t *s)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)s));
}

static AI __m256 load_zeros(const uint8_t *z)
{
	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)z)));
}

/* Write 16 columns of one output row (fewer in the padded last tile), adding the bias. */
static AI void store_tile(const struct awq_cpu_q4 *w, int64_t t, __m256 lo, __m256 hi, float *orow)
{
	float v[AWQ_CPU_TILE];
	_mm256_storeu_ps(v, lo);
	_mm256_storeu_ps(v + 8, hi);
	awq_cpu_store_tile(w, t, v, orow);
}

/* R rows of one tile: the unpacked weights are shared by the rows. Integer sums run over one
 * activation block (B k, B | G); each block adds s * scale_b * (sum - z * asum_b) in f32. */
static AI void q4_tile(const struct awq_cpu_q4 *w, const struct awq_cpu_qact *a, int r0, const int R, int64_t t,
		       float *out)
{
	const int64_t K = w->k, G = w->group, ng = K / G, B = a->group, nb = K / B, opb = B / 8;
	const uint8_t *qt = w->q + (size_t)t * (size_t)(K / 8) * 64;
	const __m256i m4 = _mm256_set1_epi8(0x0f);
	__m256 f[Q4_RMAX][2], s[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, z[2] = {s[0], s[1]};
	for (int j = 0; j < R; j++)
		f[j][0] = f[j][1] = _mm256_setzero_ps();
	for (int64_t b = 0; b < nb; b++) {
		if (b * B % G == 0) {
			const size_t so = ((size_t)t * (size_t)ng + (size_t)(b * B / G)) * AWQ_CPU_TILE;
			s[0] = load_scales(w->scales + so), s[1] = load_scales(w->scales + so + 8);
			z[0] = load_zeros(w->zeros + so), z[1] = load_zeros(w->zeros + so + 8);
		}
		__m256i acc[Q4_RMAX][2][2];
		for (int j = 0; j < R; j++)
			acc[j][0][0] = acc[j][0][1] = acc[j][1][0] = acc[j][1][1] = _mm256_setzero_si256();
		for (int64_t o = b * opb; o < (b + 1) * opb; o++) {
			__m256i raw0 = _mm256_load_si256((const __m256i *)(qt + o * 64));
			__m256i raw1 = _mm256_load_si256((const __m256i *)(qt + o * 64 + 32));
			_mm_prefetch((const char *)(qt + o * 64 + Q4_PREFETCH), _MM_HINT_T0);
			__m256i lo0 = _mm256_and_si256(raw0, m4), hi0 = _mm256_and_si256(_mm256_srli_epi16(raw0, 4), m4);
			__m256i lo1 = _mm256_and_si256(raw1, m4), hi1 = _mm256_and_si256(_mm256_srli_epi16(raw1, 4), m4);
			for (int j = 0; j < R; j++) {
				const int8_t *ap = a->q + (size_t)(r0 + j) * K + o * 8;
				__m256i xa = bcast4(ap), xb = bcast4(ap + 4);
				dot8(&acc[j][0][0], &acc[j][0][1], lo0, xa, hi0, xb);
				dot8(&acc[j][1][0], &acc[j][1][1], lo1, xa, hi1, xb);
			}
		}
		for (int j = 0; j < R; j++) {
			const size_t ai = (size_t)(r0 + j) * (size_t)nb + (size_t)b;
			__m256 asum = _mm256_set1_ps((float)a->sum[ai]), ascale = _mm256_set1_ps(a->scale[ai]);
			for (int h = 0; h < 2; h++) {
				/* exact: |integers| stay far below 2^24 for any block up to 8192 */
				__m256 d = _mm256_cvtepi32_ps(_mm256_add_epi32(acc[j][h][0], acc[j][h][1]));
				d = _mm256_fnmadd_ps(z[h], asum, d);
				f[j][h] = _mm256_fmadd_ps(d, _mm256_mul_ps(s[h], ascale), f[j][h]);
			}
		}
	}
	for (int j = 0; j < R; j++)
		store_tile(w, t, f[j][0], f[j][1], out + (size_t)(r0 + j) * (size_t)w->n);
}

static void SFX(q4)(const struct awq_cpu_q4 *w, const struct awq_cpu_qact *a, int r0, int r1, int64_t t0,
		    int64_t t1, float *out)
{
	for (int64_t t = t0; t < t1; t++) {
		int r = r0;
		for (; r + Q4_RMAX <= r1; r += Q4_RMAX)
			q4_tile(w, a, r, Q4_RMAX, t, out);
#if Q4_RMAX > 2
		for (; r + 2 <= r1; r += 2)
			q4_tile(w, a, r, 2, t, out);
#endif
		for (; r < r1; r++)
			q4_tile(w, a, r, 1, t, out);
	}
}

/* The exact path: nibbles widened to f32 one k at a time and multiplied with f32 activations;
 * y = sum_g s * (sum_k x*q - z * sum_k x). */
static AI void q4f_tile(const struct awq_cpu_q4 *w, const float *x, int r0, const int R, int64_t t, float *out)
{
	const int64_t K = w->k, G = w->group, ng = K / G, opg = G / 8;
	const uint8_t *qt = w->q + (size_t)t * (size_t)(K / 8) * 64;
	const __m256i m4 = _mm256_set1_epi32(0x0f);
	__m256 f[2][2];
	for (int j = 0; j < R; j++)
		f[j][0] = f[j][1] = _mm256_setzero_ps();
	for (int64_t g = 0; g < ng; g++) {
		__m256 acc[2][2][2];
		for (int j = 0; j < R; j++)
			acc[j][0][0] = acc[j][0][1] = acc[j][1][0] = acc[j][1][1] = _mm256_setzero_ps();
		for (int64_t o = g * opg; o < (g + 1) * opg; o++) {
			__m256i raw0 = _mm256_load_si256((const __m256i *)(qt + o * 64));
			__m256i raw1 = _mm256_load_si256((const __m256i *)(qt + o * 64 + 32));
			for (int i = 0; i < 8; i++) {
				const int sh = 8 * (i & 3) + 4 * (i >> 2);
				__m256 w0 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(raw0, sh), m4));
				__m256 w1 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(raw1, sh), m4));
				for (int j = 0; j < R; j++) {
					__m256 xk = _mm256_set1_ps(x[(size_t)(r0 + j) * K + o * 8 + i]);
					acc[j][0][i & 1] = _mm256_fmadd_ps(w0, xk, acc[j][0][i & 1]);
					acc[j][1][i & 1] = _mm256_fmadd_ps(w1, xk, acc[j][1][i & 1]);
				}
			}
		}
		const size_t so = ((size_t)t * (size_t)ng + (size_t)g) * AWQ_CPU_TILE;
		__m256 s[2] = {load_scales(w->scales + so), load_scales(w->scales + so + 8)};
		__m256 z[2] = {load_zeros(w->zeros + so), load_zeros(w->zeros + so + 8)};
		for (int j = 0; j < R; j++) {
			const float *xg = x + (size_t)(r0 + j) * K + g * G;
			__m256 xs8 = _mm256_setzero_ps();
			for (int64_t i = 0; i < G; i += 8)
				xs8 = _mm256_add_ps(xs8, _mm256_loadu_ps(xg + i));
			__m256 xs = _mm256_set1_ps(hsum(xs8));
			for (int h = 0; h < 2; h++) {
				__m256 d = _mm256_fnmadd_ps(z[h], xs, _mm256_add_ps(acc[j][h][0], acc[j][h][1]));
				f[j][h] = _mm256_fmadd_ps(d, s[h], f[j][h]);
			}
		}
	}
	for (int j = 0; j < R; j++)
		store_tile(w, t, f[j][0], f[j][1], out + (size_t)(r0 + j) * (size_t)w->n);
}

static void SFX(q4_f32)(const struct awq_cpu_q4 *w, const float *x, int r0, int r1, int64_t t0, int64_t t1,
			float *out)
{
	for (int64_t t = t0; t < t1; t++) {
		int r = r0;
		for (; r + 2 <= r1; r += 2)
			q4f_tile(w, x, r, 2, t, out);
		for (; r < r1; r++)
			q4f_tile(w, x, r, 1, t, out);
	}
}

/* Sixteen weights of a row as two f32 vectors; for permuted bf16 the order is (even k, odd k). */
static AI void load16(const void *row, int64_t k, enum awq_dtype t, int perm, __m256 *w0, __m256 *w1)
{
	if (t == AWQ_DT_BF16 && !perm) {
		const uint16_t *r = (const uint16_t *)row + k;
		__m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)r));
		__m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + 8)));
		*w0 = _mm256_castsi256_ps(_mm256_slli_epi32(a, 16));
		*w1 = _mm256_castsi256_ps(_mm256_slli_epi32(b, 16));
	} else if (t == AWQ_DT_BF16) {
		__m256i raw = _mm256_loadu_si256((const __m256i *)((const uint16_t *)row + k));
		*w0 = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
		*w1 = _mm256_castsi256_ps(_mm256_and_si256(raw, _mm256_set1_epi32((int)0xffff0000u)));
	} else if (t == AWQ_DT_F16) {
		*w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k)));
		*w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)row + k + 8)));
	} else {
		*w0 = _mm256_loadu_ps((const float *)row + k);
		*w1 = _mm256_loadu_ps((const float *)row + k + 8);
	}
}

/* R rows x C columns; every (row, column) pair has two accumulators so the FMA chains stay short. */
static AI void dense_blk(const struct awq_weight *w, const float *x, const float *xp, int r0, const int R,
			 int64_t n, const int C, float *out, const enum awq_dtype t, const int perm)
{
	const int64_t K = w->k;
	const size_t es = t == AWQ_DT_F32 ? 4 : 2;
	const float *xs = perm ? xp : x;
	const uint8_t *rows[4];
	__m256 acc[DENSE_RMAX][4][2];
	for (int c = 0; c < C; c++)
		rows[c] = (const uint8_t *)w->data + (size_t)(n + c) * (size_t)K * es;
	for (int j = 0; j < R; j++)
		for (int c = 0; c < C; c++)
			acc[j][c][0] = acc[j][c][1] = _mm256_setzero_ps();
	int64_t k = 0;
	for (; k + 16 <= K; k += 16)
		for (int c = 0; c < C; c++) {
			__m256 w0, w1;
			load16(rows[c], k, t, perm, &w0, &w1);
			for (int j = 0; j < R; j++) {
				const float *xr = xs + (size_t)(r0 + j) * K + k;
				acc[j][c][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xr), acc[j][c][0]);
				acc[j][c][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xr + 8), acc[j][c][1]);
			}
		}
	for (int j = 0; j < R; j++)
		for (int c = 0; c < C; c++) {
			float s = hsum(_mm256_add_ps(acc[j][c][0], acc[j][c][1]));
			for (int64_t kk = k; kk < K; kk++)
				s += x[(size_t)(r0 + j) * K + kk] * awq_load_float(rows[c], t, (size_t)kk);
			out[(size_t)(r0 + j) * w->n + n + c] = s + awq_cpu_bias(w->bias, w->bias_dtype, n + c);
		}
}

/* Decode: one row of W at a time, so the weights are read as one linear stream (interleaving
 * several rows of a few KiB each defeats the hardware prefetcher and measured 2-3x slower), with
 * four accumulators to cover the FMA latency. */
static AI void dense_row1(const struct awq_weight *w, const float *x, const float *xp, int r, int64_t n,
			  float *out, const enum awq_dtype t, const int perm)
{
	const int64_t K = w->k;
	const size_t es = t == AWQ_DT_F32 ? 4 : 2;
	const float *xs = (perm ? xp : x) + (size_t)r * (size_t)K, *xr = x + (size_t)r * (size_t)K;
	const uint8_t *row = (const uint8_t *)w->data + (size_t)n * (size_t)K * es;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, w0, w1, w2, w3;
	int64_t k = 0;
	for (; k + 32 <= K; k += 32) {
		_mm_prefetch((const char *)(row + (size_t)k * es + DENSE_PREFETCH), _MM_HINT_T0);
		load16(row, k, t, perm, &w0, &w1);
		load16(row, k + 16, t, perm, &w2, &w3);
		a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xs + k), a0);
		a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xs + k + 8), a1);
		a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(xs + k + 16), a2);
		a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(xs + k + 24), a3);
	}
	for (; k + 16 <= K; k += 16) {
		load16(row, k, t, perm, &w0, &w1);
		a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xs + k), a0);
		a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xs + k + 8), a1);
	}
	float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; k < K; k++)
		s += xr[k] * awq_load_float(row, t, (size_t)k);
	out[(size_t)r * (size_t)w->n + (size_t)n] = s + awq_cpu_bias(w->bias, w->bias_dtype, n);
}

#if AWQ_VNNI
/* BF16 weights against activations permuted per 32 (BF16_BLOCK): one 64-byte load gives 32 weights,
 * widened exactly by a shift (even k) and a mask (odd k) into two 512-bit vectors. Measured on one
 * Zen 4 core (bf16 rows of k = 1024, xp 64-byte aligned): 41-47 GB/s from L2 and 30-32 GB/s from
 * memory, against 38-40 and 25-31 GB/s for the 256-bit loop, which issues twice the instructions per
 * byte (this VM's memory figures are noisy). The tail past the last full 32 is in order in xp as in
 * x and is summed from x. */
static AI __m512 bf16_even(__m512i raw)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
}

static AI __m512 bf16_odd(__m512i raw)
{
	return _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32((int)0xffff0000u)));
}

static AI float bf16_tail(const uint16_t *row, const float *xr, int64_t k, int64_t K)
{
	float s = 0;
	for (; k < K; k++)
		s += xr[k] * awq_load_float(row, AWQ_DT_BF16, (size_t)k);
	return s;
}

static AI void bf16z_row1(const struct awq_weight *w, const float *x, const float *xp, int r, int64_t n, float *out)
{
	const int64_t K = w->k;
	const uint16_t *row = (const uint16_t *)w->data + (size_t)n * (size_t)K;
	const float *xs = xp + (size_t)r * (size_t)K;
	__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 64 <= K; k += 64) {
		_mm_prefetch((const char *)(row + k) + DENSE_PREFETCH, _MM_HINT_T0);
		_mm_prefetch((const char *)(row + k) + DENSE_PREFETCH + 64, _MM_HINT_T0);
		__m512i q0 = _mm512_loadu_si512(row + k), q1 = _mm512_loadu_si512(row + k + 32);
		a0 = _mm512_fmadd_ps(bf16_even(q0), _mm512_loadu_ps(xs + k), a0);
		a1 = _mm512_fmadd_ps(bf16_odd(q0), _mm512_loadu_ps(xs + k + 16), a1);
		a2 = _mm512_fmadd_ps(bf16_even(q1), _mm512_loadu_ps(xs + k + 32), a2);
		a3 = _mm512_fmadd_ps(bf16_odd(q1), _mm512_loadu_ps(xs + k + 48), a3);
	}
	for (; k + 32 <= K; k += 32) {
		__m512i q0 = _mm512_loadu_si512(row + k);
		a0 = _mm512_fmadd_ps(bf16_even(q0), _mm512_loadu_ps(xs + k), a0);
		a1 = _mm512_fmadd_ps(bf16_odd(q0), _mm512_loadu_ps(xs + k + 16), a1);
	}
	float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
	s += bf16_tail(row, x + (size_t)r * (size_t)K, k, K);
	out[(size_t)r * (size_t)w->n + (size_t)n] = s + awq_cpu_bias(w->bias, w->bias_dtype, n);
}

/* R rows of one column: each 64-byte weight load serves every row. */
static AI void bf16z_blk(const struct awq_weight *w, const float *x, const float *xp, int r0, const int R, int64_t n,
			 float *out)
{
	const int64_t K = w->k;
	const uint16_t *row = (const uint16_t *)w->data + (size_t)n * (size_t)K;
	__m512 acc[DENSE_RMAX][2];
	for (int j = 0; j < R; j++)
		acc[j][0] = acc[j][1] = _mm512_setzero_ps();
	int64_t k = 0;
	for (; k + 32 <= K; k += 32) {
		__m512i q = _mm512_loadu_si512(row + k);
		__m512 we = bf16_even(q), wo = bf16_odd(q);
		for (int j = 0; j < R; j++) {
			const float *xs = xp + (size_t)(r0 + j) * (size_t)K + k;
			acc[j][0] = _mm512_fmadd_ps(we, _mm512_loadu_ps(xs), acc[j][0]);
			acc[j][1] = _mm512_fmadd_ps(wo, _mm512_loadu_ps(xs + 16), acc[j][1]);
		}
	}
	for (int j = 0; j < R; j++) {
		float s = _mm512_reduce_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]));
		s += bf16_tail(row, x + (size_t)(r0 + j) * (size_t)K, k, K);
		out[(size_t)(r0 + j) * (size_t)w->n + (size_t)n] = s + awq_cpu_bias(w->bias, w->bias_dtype, n);
	}
}
#endif

static AI void dense_typed(const struct awq_weight *w, const float *x, const float *xp, int r0, int r1,
			   int64_t n0, int64_t n1, float *out, const enum awq_dtype t, const int perm)
{
#if AWQ_VNNI
	if (t == AWQ_DT_BF16 && perm) {
		for (int64_t n = n0; n < n1; n++) {
			int r = r0;
			if (r1 - r0 == 1) {
				bf16z_row1(w, x, xp, r0, n, out);
				continue;
			}
			for (; r + DENSE_RMAX <= r1; r += DENSE_RMAX)
				bf16z_blk(w, x, xp, r, DENSE_RMAX, n, out);
			for (; r < r1; r++)
				bf16z_blk(w, x, xp, r, 1, n, out);
		}
		return;
	}
#endif
	if (r1 - r0 == 1) {
		for (int64_t n = n0; n < n1; n++)
			dense_row1(w, x, xp, r0, n, out, t, perm);
		return;
	}
	for (int64_t n = n0; n < n1; n++) {
		int r = r0;
		for (; r + DENSE_RMAX <= r1; r += DENSE_RMAX)
			dense_blk(w, x, xp, r, DENSE_RMAX, n, 1, out, t, perm);
		for (; r < r1; r++)
			dense_blk(w, x, xp, r, 1, n, 1, out, t, perm);
	}
}

/* One instantiation per dtype so the widening is resolved at compile time. */
static void SFX(dense)(const struct awq_weight *w, const float *x, const float *xp, int r0, int r1, int64_t n0,
		       int64_t n1, float *out)
{
	switch (w->dtype) {
	case AWQ_DT_BF16:
		if (xp)
			dense_typed(w, x, xp, r0, r1, n0, n1, out, AWQ_DT_BF16, 1);
		else
			dense_typed(w, x, xp, r0, r1, n0, n1, out, AWQ_DT_BF16, 0);
		break;
	case AWQ_DT_F16: dense_typed(w, x, xp, r0, r1, n0, n1, out, AWQ_DT_F16, 0); break;
	default: dense_typed(w, x, xp, r0, r1, n0, n1, out, AWQ_DT_F32, 0); break;
	}
}

/* Same results as awq_cpu_quantize_ref: cvtps rounds to nearest even like lrintf, max is exact. */
static void SFX(quantize)(const float *x, int r0, int r1, struct awq_cpu_qact *a)
{
	const int K = a->k, G = a->group, ng = K / G;
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	if (G % 32) {
		awq_cpu_quantize_ref(x, r0, r1, a);
		return;
	}
	for (int r = r0; r < r1; r++)
		for (int g = 0; g < ng; g++) {
			const float *xg = x + (size_t)r * K + (size_t)g * G;
			int8_t *q = a->q + (size_t)r * K + (size_t)g * G;
			__m256 m = _mm256_setzero_ps();
			for (int i = 0; i < G; i += 8)
				m = _mm256_max_ps(m, _mm256_and_ps(_mm256_loadu_ps(xg + i), absmask));
			__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
			m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
			m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
			float mx = _mm_cvtss_f32(m4);
			__m256 inv = _mm256_set1_ps(mx > 0 ? 127.0f / mx : 0.0f);
			__m256i sum = _mm256_setzero_si256();
			for (int i = 0; i < G; i += 32) {
				__m256i v[4];
				for (int u = 0; u < 4; u++) {
					v[u] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(xg + i + 8 * u), inv));
					v[u] = _mm256_max_epi32(_mm256_min_epi32(v[u], lim), nlim);
					sum = _mm256_add_epi32(sum, v[u]);
				}
				__m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
				_mm256_storeu_si256((__m256i *)(q + i), _mm256_permutevar8x32_epi32(b, order));
			}
			__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
			s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
			a->scale[(size_t)r * ng + g] = mx / 127.0f;
			a->sum[(size_t)r * ng + g] = _mm_cvtsi128_si32(s4);
		}
}

/* Cache rows ahead of the one being read, prefetched (session 27, when a head's rows were a page
 * apart in the position-major cache; the backend's cache is head-major since session 28, where the
 * hardware prefetchers follow too, and the kernel still takes any row stride). */
#define ATTN_PREFETCH 8

static AI void attn_prefetch_row(const float *row, int d)
{
	for (int i = 0; i < d; i += 16)
		_mm_prefetch((const char *)(row + i), _MM_HINT_T0);
}

/* e^x on 8 lanes: 2^n e^r with n = round(x log2 e) and r = x - n ln 2 (ln 2 in two parts), e^r by
 * Cephes' degree-6 polynomial (~1 ulp on |r| <= ln 2 / 2); x clamped to [-87.3, 88.4] so that 2^n
 * stays a normal float (the softmax's e^(s - max) <= 1 underflows to ~1e-38, not 0) */
static AI __m256 exp8(__m256 x)
{
	x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.37626f));
	const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
					 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 y = _mm256_set1_ps(1.9875691500e-4f);
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
	y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
	y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* Attention for G query heads of one KV head (G <= AWQ_CPU_ATTN_G, a constant where inlined): a
 * handful of positions in decode, up to the context in prefill. Each K and V row is read once for
 * the G heads (a grouped-query head's rows were read once per query head: 2x the cache traffic for
 * qwen3-0.6b, 4x for qwen3-8b). Per head the arithmetic and its order are those of one head alone
 * (g = 1): the dot products in two 8-wide accumulators, exp8, V summed position by position. */
static AI void attn_g(const float *q, const float *kc, const float *vc, int64_t kv_stride, int n, int d, const int G,
		      float scale, float *p, float *out)
{
	const int d8 = d & ~7;
	float mx[AWQ_CPU_ATTN_G], sum[AWQ_CPU_ATTN_G];
	for (int h = 0; h < G; h++)
		mx[h] = -INFINITY, sum[h] = 0;
	for (int s = 0; s < n; s++) {
		const float *ks = kc + (size_t)s * (size_t)kv_stride;
		if (s + ATTN_PREFETCH < n)
			attn_prefetch_row(ks + (size_t)ATTN_PREFETCH * (size_t)kv_stride, d);
		__m256 a0[AWQ_CPU_ATTN_G], a1[AWQ_CPU_ATTN_G];
		for (int h = 0; h < G; h++)
			a0[h] = _mm256_setzero_ps(), a1[h] = _mm256_setzero_ps();
		int i = 0;
		for (; i + 16 <= d8; i += 16) {
			const __m256 k0 = _mm256_loadu_ps(ks + i), k1 = _mm256_loadu_ps(ks + i + 8);
			for (int h = 0; h < G; h++) {
				a0[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)h * d + i), k0, a0[h]);
				a1[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)h * d + i + 8), k1, a1[h]);
			}
		}
		for (; i < d8; i += 8) {
			const __m256 k0 = _mm256_loadu_ps(ks + i);
			for (int h = 0; h < G; h++)
				a0[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)h * d + i), k0, a0[h]);
		}
		for (int h = 0; h < G; h++) {
			const float *qh = q + (size_t)h * d;
			float dot = hsum(_mm256_add_ps(a0[h], a1[h]));
			for (int t = i; t < d; t++)
				dot += qh[t] * ks[t];
			float *ph = p + (size_t)h * n;
			ph[s] = dot * scale;
			mx[h] = ph[s] > mx[h] ? ph[s] : mx[h];
		}
	}
	/* the exponentials 8 at a time (scalar expf was ~20 cycles a score: with the rows read once,
	 * tinyllama-1.1b's 8 heads per KV head made attention compute-bound) */
	for (int h = 0; h < G; h++) {
		float *ph = p + (size_t)h * n;
		const __m256 m8 = _mm256_set1_ps(mx[h]);
		__m256 s8 = _mm256_setzero_ps();
		int s = 0;
		for (; s + 8 <= n; s += 8) {
			const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(ph + s), m8));
			_mm256_storeu_ps(ph + s, e);
			s8 = _mm256_add_ps(s8, e);
		}
		float t = hsum(s8);
		for (; s < n; s++) {
			ph[s] = expf(ph[s] - mx[h]);
			t += ph[s];
		}
		sum[h] = t;
	}
	for (int h = 0; h < G; h++) { /* the probabilities */
		float *ph = p + (size_t)h * n;
		const float inv = 1.0f / sum[h];
		const __m256 i8 = _mm256_set1_ps(inv);
		int s = 0;
		for (; s + 8 <= n; s += 8)
			_mm256_storeu_ps(ph + s, _mm256_mul_ps(_mm256_loadu_ps(ph + s), i8));
		for (; s < n; s++)
			ph[s] *= inv;
	}
	for (int i = 0; i < G * d; i++)
		out[i] = 0;
	/* out += p v over blocks of 8 positions: each 8-float piece of out is loaded and stored once
	 * per block and head, not once per position (per element the sum still runs position by
	 * position) */
	for (int s0 = 0; s0 < n; s0 += 8) {
		const int sb = n - s0 < 8 ? n - s0 : 8;
		for (int s = s0; s < s0 + sb; s++)
			if (s + ATTN_PREFETCH < n)
				attn_prefetch_row(vc + (size_t)(s + ATTN_PREFETCH) * (size_t)kv_stride, d);
		const float *v0 = vc + (size_t)s0 * (size_t)kv_stride;
		int i = 0;
		for (; i < d8; i += 8) {
			__m256 v[8];
			for (int s = 0; s < sb; s++)
				v[s] = _mm256_loadu_ps(v0 + (size_t)s * (size_t)kv_stride + i);
			for (int h = 0; h < G; h++) {
				const float *ph = p + (size_t)h * n + s0;
				float *oh = out + (size_t)h * d + i;
				__m256 acc = _mm256_loadu_ps(oh);
				for (int s = 0; s < sb; s++)
					acc = _mm256_fmadd_ps(_mm256_set1_ps(ph[s]), v[s], acc);
				_mm256_storeu_ps(oh, acc);
			}
		}
		for (; i < d; i++)
			for (int h = 0; h < G; h++)
				for (int s = 0; s < sb; s++)
					out[(size_t)h * d + i] += p[(size_t)h * n + s0 + s] * v0[(size_t)s * (size_t)kv_stride + i];
	}
}

static void SFX(attn_group)(const float *q, const float *kc, const float *vc, int64_t kv_stride, int n, int d, int g,
			    float scale, float *p, float *out)
{
	switch (g) { /* one copy per group size, its loops over the heads unrolled */
	case 1: attn_g(q, kc, vc, kv_stride, n, d, 1, scale, p, out); break;
	case 2: attn_g(q, kc, vc, kv_stride, n, d, 2, scale, p, out); break;
	case 3: attn_g(q, kc, vc, kv_stride, n, d, 3, scale, p, out); break;
	case 4: attn_g(q, kc, vc, kv_stride, n, d, 4, scale, p, out); break;
	case 5: attn_g(q, kc, vc, kv_stride, n, d, 5, scale, p, out); break;
	case 6: attn_g(q, kc, vc, kv_stride, n, d, 6, scale, p, out); break;
	case 7: attn_g(q, kc, vc, kv_stride, n, d, 7, scale, p, out); break;
	default: attn_g(q, kc, vc, kv_stride, n, d, AWQ_CPU_ATTN_G, scale, p, out); break;
	}
}

const struct awq_cpu_kernels KSYM = {
	.name = KNAME,
	.bf16_block = BF16_BLOCK,
	.q4 = SFX(q4),
	.q4_f32 = SFX(q4_f32),
	.dense = SFX(dense),
	.quantize = SFX(quantize),
	.attn_group = SFX(attn_group),
};
#endif

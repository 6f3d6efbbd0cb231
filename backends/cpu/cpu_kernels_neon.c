/* arm64 kernels (Advanced SIMD, part of the base architecture). The AWQ int8 path uses the sdot
 * instruction when the compiler targets it (armv8.2-a+dotprod and later: one instruction multiplies
 * four weight bytes of a column by four broadcast activation bytes, the same lane layout as x86's
 * vpdpbusd) and widening multiplies with pairwise adds otherwise. bf16 weights widen exactly with a
 * long shift, f16 with the conversion instruction. Activation quantization is the scalar reference:
 * it is a small share of the time. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "cpu_kernels.h"

#define AI inline __attribute__((always_inline))
#define Q4_RMAX 2

static AI int32x4_t dot4(int32x4_t acc, int8x16_t w, int8x16_t a)
{
#if defined(__ARM_FEATURE_DOTPROD)
	return vdotq_s32(acc, w, a);
#else
	int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(a)));
	int32x4_t hi = vpaddlq_s16(vmull_high_s8(w, a));
	return vaddq_s32(acc, vpaddq_s32(lo, hi));
#endif
}

static AI int8x16_t bcast4(const int8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

/* 16 scales / zero points of one (tile, group) as four f32 vectors of four columns. */
static AI void load_sz(const struct awq_cpu_q4 *w, size_t so, float32x4_t s[4], float32x4_t z[4])
{
	uint8x16_t zb = vld1q_u8(w->zeros + so);
	uint16x8_t z0 = vmovl_u8(vget_low_u8(zb)), z1 = vmovl_high_u8(zb);
	for (int i = 0; i < 4; i++)
		s[i] = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w->scales + so + 4 * i)));
	z[0] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(z0)));
	z[1] = vcvtq_f32_u32(vmovl_high_u16(z0));
	z[2] = vcvtq_f32_u32(vmovl_u16(vget_low_u16(z1)));
	z[3] = vcvtq_f32_u32(vmovl_high_u16(z1));
}

static AI void store_tile(const struct awq_cpu_q4 *w, int64_t t, const float32x4_t f[4], float *orow)
{
	float v[AWQ_CPU_TILE];
	for (int i = 0; i < 4; i++)
		vst1q_f32(v + 4 * i, f[i]);
	awq_cpu_store_tile(w, t, v, orow);
}

static AI void q4_tile(const struct awq_cpu_q4 *w, const struct awq_cpu_qact *a, int r0, const int R, int64_t t,
		       float *out)
{
	const int64_t K = w->k, G = w->group, ng = K / G, B = a->group, nb = K / B, opb = B / 8;
	const uint8_t *qt = w->q + (size_t)t * (size_t)(K / 8) * 64;
	const uint8x16_t m4 = vdupq_n_u8(0x0f);
	float32x4_t f[Q4_RMAX][4], s[4], z[4];
	for (int i = 0; i < 4; i++) {
		s[i] = z[i] = vdupq_n_f32(0);
		for (int j = 0; j < R; j++)
			f[j][i] = vdupq_n_f32(0);
	}
	for (int64_t b = 0; b < nb; b++) {
		if (b * B % G == 0)
			load_sz(w, ((size_t)t * (size_t)ng + (size_t)(b * B / G)) * AWQ_CPU_TILE, s, z);
		int32x4_t acc[Q4_RMAX][4];
		for (int j = 0; j < R; j++)
			for (int i = 0; i < 4; i++)
				acc[j][i] = vdupq_n_s32(0);
		for (int64_t o = b * opb; o < (b + 1) * opb; o++) {
			int8x16_t lo[4], hi[4];
			for (int i = 0; i < 4; i++) {
				uint8x16_t raw = vld1q_u8(qt + o * 64 + 16 * i);
				lo[i] = vreinterpretq_s8_u8(vandq_u8(raw, m4));
				hi[i] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
			}
			for (int j = 0; j < R; j++) {
				const int8_t *ap = a->q + (size_t)(r0 + j) * K + o * 8;
				int8x16_t xa = bcast4(ap), xb = bcast4(ap + 4);
				for (int i = 0; i < 4; i++)
					acc[j][i] = dot4(dot4(acc[j][i], lo[i], xa), hi[i], xb);
			}
		}
		for (int j = 0; j < R; j++) {
			const size_t ai = (size_t)(r0 + j) * (size_t)nb + (size_t)b;
			const float asum = (float)a->sum[ai], ascale = a->scale[ai];
			for (int i = 0; i < 4; i++) {
				float32x4_t d = vmlsq_n_f32(vcvtq_f32_s32(acc[j][i]), z[i], asum);
				f[j][i] = vfmaq_f32(f[j][i], d, vmulq_n_f32(s[i], ascale));
			}
		}
	}
	for (int j = 0; j < R; j++)
		store_tile(w, t, f[j], out + (size_t)(r0 + j) * (size_t)w->n);
}

static void q4_neon(const struct awq_cpu_q4 *w, const struct awq_cpu_qact *a, int r0, int r1, int64_t t0, int64_t t1,
		    float *out)
{
	for (int64_t t = t0; t < t1; t++) {
		int r = r0;
		for (; r + 2 <= r1; r += 2)
			q4_tile(w, a, r, 2, t, out);
		for (; r < r1; r++)
			q4_tile(w, a, r, 1, t, out);
	}
}

/* The exact path: nibbles widened to f32 one k at a time. */
static void q4_f32_neon(const struct awq_cpu_q4 *w, const float *x, int r0, int r1, int64_t t0, int64_t t1,
			float *out)
{
	const int64_t K = w->k, G = w->group, ng = K / G, opg = G / 8;
	const uint32x4_t m4 = vdupq_n_u32(0x0f);
	for (int64_t t = t0; t < t1; t++) {
		const uint8_t *qt = w->q + (size_t)t * (size_t)(K / 8) * 64;
		for (int r = r0; r < r1; r++) {
			const float *xr = x + (size_t)r * K;
			float32x4_t f[4], s[4], z[4];
			for (int i = 0; i < 4; i++)
				f[i] = vdupq_n_f32(0);
			for (int64_t g = 0; g < ng; g++) {
				float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
				float xs = 0;
				load_sz(w, ((size_t)t * (size_t)ng + (size_t)g) * AWQ_CPU_TILE, s, z);
				for (int64_t o = g * opg; o < (g + 1) * opg; o++) {
					uint32x4_t raw[4];
					for (int i = 0; i < 4; i++)
						raw[i] = vreinterpretq_u32_u8(vld1q_u8(qt + o * 64 + 16 * i));
					for (int kk = 0; kk < 8; kk++) {
						const int32x4_t sh = vdupq_n_s32(-(8 * (kk & 3) + 4 * (kk >> 2)));
						const float xv = xr[o * 8 + kk];
						xs += xv;
						for (int i = 0; i < 4; i++) {
							float32x4_t wq = vcvtq_f32_u32(vandq_u32(vshlq_u32(raw[i], sh), m4));
							acc[i] = vfmaq_n_f32(acc[i], wq, xv);
						}
					}
				}
				for (int i = 0; i < 4; i++)
					f[i] = vfmaq_f32(f[i], vmlsq_n_f32(acc[i], z[i], xs), s[i]);
			}
			store_tile(w, t, f, out + (size_t)r * (size_t)w->n);
		}
	}
}

/* Eight weights of a row as two f32 vectors (in order). */
static AI void load8(const void *row, int64_t k, enum awq_dtype t, float32x4_t *w0, float32x4_t *w1)
{
	if (t == AWQ_DT_BF16) {
		uint16x8_t v = vld1q_u16((const uint16_t *)row + k);
		*w0 = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16));
		*w1 = vreinterpretq_f32_u32(vshll_high_n_u16(v, 16));
	} else if (t == AWQ_DT_F16) {
		uint16x8_t v = vld1q_u16((const uint16_t *)row + k);
		*w0 = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(v)));
		*w1 = vcvt_high_f32_f16(vreinterpretq_f16_u16(v));
	} else {
		*w0 = vld1q_f32((const float *)row + k);
		*w1 = vld1q_f32((const float *)row + k + 4);
	}
}

/* Up to four rows share each widened weight; two accumulators per row. */
static AI void dense_col(const struct awq_weight *w, const float *x, int r0, const int R, int64_t n, float *out,
			 const enum awq_dtype t)
{
	const int64_t K = w->k;
	const size_t es = t == AWQ_DT_F32 ? 4 : 2;
	const uint8_t *row = (const uint8_t *)w->data + (size_t)n * (size_t)K * es;
	float32x4_t acc[4][2];
	for (int j = 0; j < R; j++)
		acc[j][0] = acc[j][1] = vdupq_n_f32(0);
	int64_t k = 0;
	for (; k + 8 <= K; k += 8) {
		float32x4_t w0, w1;
		load8(row, k, t, &w0, &w1);
		for (int j = 0; j < R; j++) {
			const float *xr = x + (size_t)(r0 + j) * K + k;
			acc[j][0] = vfmaq_f32(acc[j][0], w0, vld1q_f32(xr));
			acc[j][1] = vfmaq_f32(acc[j][1], w1, vld1q_f32(xr + 4));
		}
	}
	for (int j = 0; j < R; j++) {
		float s = vaddvq_f32(vaddq_f32(acc[j][0], acc[j][1]));
		for (int64_t kk = k; kk < K; kk++)
			s += x[(size_t)(r0 + j) * K + kk] * awq_load_float(row, t, (size_t)kk);
		out[(size_t)(r0 + j) * w->n + n] = s + awq_cpu_bias(w->bias, w->bias_dtype, n);
	}
}

static AI void dense_typed(const struct awq_weight *w, const float *x, int r0, int r1, int64_t n0, int64_t n1,
			   float *out, const enum awq_dtype t)
{
	for (int64_t n = n0; n < n1; n++) {
		int r = r0;
		for (; r + 4 <= r1; r += 4)
			dense_col(w, x, r, 4, n, out, t);
		for (; r < r1; r++)
			dense_col(w, x, r, 1, n, out, t);
	}
}

/* Widening in order needs no permuted activations: xp is not read. */
static void dense_neon(const struct awq_weight *w, const float *x, const float *xp, int r0, int r1, int64_t n0,
		       int64_t n1, float *out)
{
	(void)xp;
	switch (w->dtype) {
	case AWQ_DT_BF16: dense_typed(w, x, r0, r1, n0, n1, out, AWQ_DT_BF16); break;
	case AWQ_DT_F16: dense_typed(w, x, r0, r1, n0, n1, out, AWQ_DT_F16); break;
	default: dense_typed(w, x, r0, r1, n0, n1, out, AWQ_DT_F32); break;
	}
}

static AI float dot(const float *a, const float *b, int d)
{
	float32x4_t acc = vdupq_n_f32(0);
	int i = 0;
	for (; i + 4 <= d; i += 4)
		acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
	float s = vaddvq_f32(acc);
	for (; i < d; i++)
		s += a[i] * b[i];
	return s;
}

/* g query heads of one KV head: each K and V row read once for the g heads (as the x86 kernel);
 * per head the arithmetic of one head alone */
static void attn_group_neon(const float *q, const float *kc, const float *vc, int64_t kv_stride, int n, int d, int g,
			    float scale, float *p, float *out)
{
	float mx[AWQ_CPU_ATTN_G], sum[AWQ_CPU_ATTN_G];
	for (int h = 0; h < g; h++)
		mx[h] = -INFINITY, sum[h] = 0;
	for (int s = 0; s < n; s++) {
		const float *ks = kc + (size_t)s * (size_t)kv_stride;
		for (int h = 0; h < g; h++) {
			float *ph = p + (size_t)h * n;
			ph[s] = dot(q + (size_t)h * d, ks, d) * scale;
			mx[h] = ph[s] > mx[h] ? ph[s] : mx[h];
		}
	}
	for (int h = 0; h < g; h++) {
		float *ph = p + (size_t)h * n;
		for (int s = 0; s < n; s++) {
			ph[s] = expf(ph[s] - mx[h]);
			sum[h] += ph[s];
		}
	}
	for (int i = 0; i < g * d; i++)
		out[i] = 0;
	for (int s = 0; s < n; s++) {
		const float *vs = vc + (size_t)s * (size_t)kv_stride;
		for (int h = 0; h < g; h++) {
			float *oh = out + (size_t)h * d;
			const float ps = p[(size_t)h * n + s] / sum[h];
			int i = 0;
			for (; i + 4 <= d; i += 4)
				vst1q_f32(oh + i, vfmaq_n_f32(vld1q_f32(oh + i), vld1q_f32(vs + i), ps));
			for (; i < d; i++)
				oh[i] += ps * vs[i];
		}
	}
}

const struct awq_cpu_kernels awq_cpu_kernels_neon = {
#if defined(__ARM_FEATURE_DOTPROD)
	.name = "neon-dotprod",
#else
	.name = "neon",
#endif
	.bf16_block = 16, /* not read: the NEON kernel widens in order */
	.q4 = q4_neon,
	.q4_f32 = q4_f32_neon,
	.dense = dense_neon,
	.quantize = awq_cpu_quantize_ref,
	.attn_group = attn_group_neon,
};
#endif

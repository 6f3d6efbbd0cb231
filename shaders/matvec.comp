#version 450
/* Matrix-vector product for steps of 1..4 rows (decode): out[r][n] = sum_k x[r][k] W[n][k] + bias[n].
 * One subgroup computes NR outputs at once so each x load serves NR weight rows; lanes stride over
 * k and finish with a subgroup reduction. Weight formats (one source, compiled per #define):
 *   FMT_Q4:    AWQ 4-bit repacked at load to [n][k/8] words (nibble e of word j = k 8j+e) and
 *              [n][k/G] scale/zero words (f16 scale | zero << 16); (q - z) is formed exactly in f32
 *              from the bits (0x4B000000 | q is the float 2^23 + q); with F16MATH two weights at a
 *              time in packed fp16 (0x6400 | q is the half 1024 + q), see dot32h.
 *   FMT_DENSE: [n][k] in DT (f32, f16, bf16); with F16MATH the products of F16 weights are taken in
 *              fp16 pairs and summed in f32 per 8 elements.
 * With MOE (MOE_EXPERTS decode) workgroup z is a slot (token t, choice j): the expert id is read
 * from the route at binding 7 (no bias), the weight rows are that expert's in a buffer of all
 * experts packed one after another, and the slot writes its own output row.
 * With SILU (the gate/up projections of an MLP and the SiLU-mul after them, decode) the up weights
 * are a second operand (binding 4, their scales/zeros at binding 6) read alongside the gate's, and
 * the output is silu(gate) * up. Only the fast paths exist in this variant (no bias; Q4 with K and
 * the group size multiples of 32, 16-bit with K a multiple of 8, f32 arithmetic): the host fuses
 * only such weights. NORM2 (4-bit SILU only, one-row steps, AWQ_VK_EPINORM=1): x is x' = h * w of
 * the residual add and RMSNorm before it, which the mat-vec before them wrote with the partial sums
 * of squares at binding 8 (epinorm.glsl); the outputs are scaled by the norm's 1 / rms. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef F16MATH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
#ifdef Q8DOT
#extension GL_EXT_spirv_intrinsics : require
#endif
layout(local_size_x_id = 1) in;
layout(constant_id = 0) const int DT = 0;
layout(constant_id = 2) const int BDT = 0;
#include "common.glsl"

#ifndef NR
#define NR 4 /* output rows per subgroup (the _nr2 variants: 2, twice the subgroups) */
#endif
#ifdef NORM2
#if !defined(FMT_Q4) || !defined(SILU) || defined(MOE)
#error "NORM2 is a form of the 4-bit SILU mat-vec only"
#endif
#define MAXR 1 /* one-row steps only */
#else
#define MAXR 4
#endif
#ifndef U
#define U 2u /* Q4: 32-k chunks per lane whose loads go out together (matvec_q4_u4: 4) */
#endif

layout(set = 0, binding = 1, std430) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 2, std430) readonly buffer W4 { uvec4 w4[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 5, std430) readonly buffer SZ { uint sz[]; };
#ifdef SILU
layout(set = 0, binding = 4, std430) readonly buffer WU4 { uvec4 wu4[]; };
layout(set = 0, binding = 6, std430) readonly buffer SZU { uint szu[]; };
#else
layout(set = 0, binding = 6, std430) readonly buffer X1 { float x1[]; };
layout(set = 0, binding = 4, std430) readonly buffer W1 { uint w1[]; };
#endif
#ifdef MOE
#include "moe_layout.glsl"
layout(set = 0, binding = 7, std430) readonly buffer Route { float route[]; };
#define BIAS(n) 0.0
#else
#include "bias.glsl"
#endif

#ifdef NORM2
#include "epinorm.glsl"
layout(set = 0, binding = 8, std430) readonly buffer PartIn { float pin[]; }; /* u5 of them */
#endif

#ifdef FMT_Q4
#include "q4dot.glsl"
#else
/* Dot of 8 activations with 8 16-bit weights, in f32. */
float dot8(uvec4 q, vec4 xa, vec4 xb)
{
	return xa.x * widen16(q.x & 0xffffu, DT) + xa.y * widen16(q.x >> 16, DT) + xa.z * widen16(q.y & 0xffffu, DT) +
	       xa.w * widen16(q.y >> 16, DT) + xb.x * widen16(q.z & 0xffffu, DT) + xb.y * widen16(q.z >> 16, DT) +
	       xb.z * widen16(q.w & 0xffffu, DT) + xb.w * widen16(q.w >> 16, DT);
}
#endif

#if defined(FMT_Q4) && !defined(SILU)

/* Dot of x[r][8j..8j+8) with one word of 8 nibbles minus the zero. */
float word_dot(uint word, uint xo, float mz)
{
	float d = 0.0;
	[[unroll]] for (uint e = 0u; e < 8u; e++)
		d += x1[xo + e] * dq(word, e, mz);
	return d;
}
#elif !defined(SILU)
float wload(uint i)
{
	return dt_value(w1[dt_word(i, DT)], i, DT);
}
#endif

/* u0 = K, u1 = N, u2 = rows (<= 4), u3 = group size (Q4), u4 = has bias;
 * MOE: u2 = 1, u5 = top_k, u6 = experts, u7 = x row per slot (else per token);
 * NORM2: u2 = 1, u5 = the producer's partial sums, f0 = eps */
void main()
{
	const uint K = pc.u0, N = pc.u1, rows = pc.u2, lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
#ifdef MOE
	const uint slot = gl_WorkGroupID.z, topk = pc.u5;
	const uint wrow = moe_expert(route[(slot / topk) * 2u * topk + slot % topk], pc.u6) * N;
	const uint xoff = (pc.u7 != 0u ? slot : slot / topk) * K, ooff = slot * N;
#else
	const uint wrow = 0u, xoff = 0u, ooff = 0u;
#endif
#ifdef NORM2
	float ssl = 0.0; /* each subgroup adds up all the partial sums itself */
	for (uint i = lane; i < pc.u5; i += sgs)
		ssl += pin[i];
	const float scale = pn_scale(subgroupAdd(ssl), K, pc.f0);
#else
	const float scale = 1.0;
#endif
	const uint per_wg = NR * (gl_WorkGroupSize.x / 32u > 0u ? gl_WorkGroupSize.x / 32u : 1u);
	for (uint n0 = flat_group() * per_wg + gl_SubgroupID * NR; n0 < (flat_group() + 1u) * per_wg && n0 < N;
	     n0 += gl_NumSubgroups * NR) {
		/* Every index into acc, accu and the per-chunk arrays below is a constant once the
		 * [[unroll]] loops are unrolled (run-time bounds are guards inside them, never loop bounds
		 * or breaks): an array indexed at run time anywhere in the shader is kept in memory
		 * instead of registers by a driver's compiler, for every access (spirv-opt
		 * --loop-unroll -O leaves no function-scope array in the fast paths). */
		float acc[MAXR][NR];
		[[unroll]] for (uint r = 0u; r < MAXR; r++)
			[[unroll]] for (uint j = 0u; j < NR; j++)
				acc[r][j] = 0.0;
#ifdef SILU
		float accu[MAXR][NR];
		[[unroll]] for (uint r = 0u; r < MAXR; r++)
			[[unroll]] for (uint j = 0u; j < NR; j++)
				accu[r][j] = 0.0;
#endif
		uint nr = min(NR, N - n0);
#ifdef FMT_Q4
		const uint G = pc.u3, KW = K / 8u, NG = K / G;
		if (K % 32u == 0u && G % 32u == 0u) {
			/* U 32-k chunks per lane and NR rows per subgroup: the U * NR 16-byte weight loads are
			 * issued before any arithmetic, and each x chunk is read once for all NR rows. Loops
			 * have constant bounds (rows past nr re-read row nr - 1 and are never stored) so the
			 * accumulators stay in registers. */
			const uint C = KW / 4u;
			for (uint c0 = lane; c0 < C; c0 += U * sgs) {
				uvec4 q[U][NR];
				float s[U][NR];
				MZ_T mz[U][NR];
#ifdef SILU
				uvec4 qu[U][NR];
				float su[U][NR];
				MZ_T mzu[U][NR];
#endif
				[[unroll]] for (uint u = 0u; u < U; u++) {
					const uint c = c0 + u * sgs < C ? c0 + u * sgs : c0, g = (c * 32u) / G;
					[[unroll]] for (uint j = 0u; j < NR; j++) {
						const uint row = wrow + n0 + min(j, nr - 1u);
						q[u][j] = w4[row * C + c];
						const uint szw = sz[row * NG + g];
						s[u][j] = unpackHalf2x16(szw).x;
						mz[u][j] = MZ_OF(szw);
#ifdef SILU
						qu[u][j] = wu4[row * C + c];
						const uint szv = szu[row * NG + g];
						su[u][j] = unpackHalf2x16(szv).x;
						mzu[u][j] = MZ_OF(szv);
#endif
					}
				}
				[[unroll]] for (uint u = 0u; u < U; u++) {
					const uint c = c0 + u * sgs;
					[[unroll]] for (uint r = 0u; r < MAXR; r++) {
						if (c < C && r < rows) {
							const uint xb = (xoff + r * K + c * 32u) / 4u;
							vec4 xv[8];
							[[unroll]] for (uint i = 0u; i < 8u; i++)
								xv[i] = x4[xb + i];
#ifdef NORM2
							const float sig = pn_pow2(xv);
#else
							const float sig = 1.0;
#endif
#ifdef Q8DOT
							uint xq[8]; /* once per chunk for all NR rows (and both weights with SILU) */
							float xd;
							int xs;
							x_q8(xv, xq, xd, xs);
#elif defined(F16MATH)
							/* once per chunk for all NR rows (and both weights with SILU) */
							f16vec2 xp[16];
							x_pairs(xv, xp);
#endif
							[[unroll]] for (uint j = 0u; j < NR; j++) {
								acc[r][j] += s[u][j] * sig * DOT32(q[u][j], xv, xp, mz[u][j]);
#ifdef SILU
								accu[r][j] += su[u][j] * sig * DOT32(qu[u][j], xv, xp, mzu[u][j]);
#endif
							}
						}
					}
				}
			}
		}
#ifndef SILU
		else {
			for (uint c = lane; c < KW; c += sgs) {
				uint g = (c * 8u) / G;
				[[unroll]] for (uint j = 0u; j < NR; j++) {
					if (j < nr) {
						uint q = w1[(wrow + n0 + j) * KW + c], szw = sz[(wrow + n0 + j) * NG + g];
						float s = unpackHalf2x16(szw).x, mz = 8388608.0 + float(szw >> 16);
						[[unroll]] for (uint r = 0u; r < MAXR; r++)
							if (r < rows)
								acc[r][j] += s * word_dot(q, xoff + r * K + c * 8u, mz);
					}
				}
			}
		}
#endif
#else
		if (DT != DT_F32 && K % 8u == 0u) {
			/* as the 4-bit path: NR row loads first, each x chunk read once, constant loop bounds */
			for (uint c = lane; c < K / 8u; c += sgs) {
				uvec4 q[NR];
				[[unroll]] for (uint j = 0u; j < NR; j++)
					q[j] = w4[(wrow + n0 + min(j, nr - 1u)) * (K / 8u) + c];
#ifdef SILU
				uvec4 qu[NR];
				[[unroll]] for (uint j = 0u; j < NR; j++)
					qu[j] = wu4[(wrow + n0 + min(j, nr - 1u)) * (K / 8u) + c];
#endif
				[[unroll]] for (uint r = 0u; r < MAXR; r++) {
					if (r < rows) {
						const vec4 xa = x4[(xoff + r * K + c * 8u) / 4u], xb = x4[(xoff + r * K + c * 8u) / 4u + 1u];
						[[unroll]] for (uint j = 0u; j < NR; j++) {
#ifdef F16MATH
							f16vec2 p = unpackFloat2x16(q[j].x) * f16vec2(xa.xy);
							p = fma(unpackFloat2x16(q[j].y), f16vec2(xa.zw), p);
							p = fma(unpackFloat2x16(q[j].z), f16vec2(xb.xy), p);
							p = fma(unpackFloat2x16(q[j].w), f16vec2(xb.zw), p);
							acc[r][j] += float(p.x) + float(p.y);
#else
							acc[r][j] += dot8(q[j], xa, xb);
#endif
#ifdef SILU
							accu[r][j] += dot8(qu[j], xa, xb);
#endif
						}
					}
				}
			}
		}
#ifndef SILU
		else if (DT == DT_F32 && K % 4u == 0u) {
			for (uint c = lane; c < K / 4u; c += sgs) {
				[[unroll]] for (uint j = 0u; j < NR; j++) {
					if (j < nr) {
						vec4 wv = uintBitsToFloat(w4[(wrow + n0 + j) * (K / 4u) + c]);
						[[unroll]] for (uint r = 0u; r < MAXR; r++)
							if (r < rows)
								acc[r][j] += dot(x4[(xoff + r * K) / 4u + c], wv);
					}
				}
			}
		} else {
			for (uint k = lane; k < K; k += sgs) {
				[[unroll]] for (uint j = 0u; j < NR; j++) {
					if (j < nr) {
						float wv = wload((wrow + n0 + j) * K + k);
						[[unroll]] for (uint r = 0u; r < MAXR; r++)
							if (r < rows)
								acc[r][j] += x1[xoff + r * K + k] * wv;
					}
				}
			}
		}
#endif
#endif
		/* nr and rows are the same in every invocation: the subgroup reductions stay uniform */
		[[unroll]] for (uint j = 0u; j < NR; j++) {
			if (j < nr) {
				float b = BIAS(n0 + j);
				[[unroll]] for (uint r = 0u; r < MAXR; r++) {
					if (r < rows) {
						float t = subgroupAdd(acc[r][j]) * scale;
#ifdef SILU
						float tu = subgroupAdd(accu[r][j]) * scale;
						if (subgroupElect())
							o[ooff + r * N + n0 + j] = t / (1.0 + exp(-t)) * tu; /* as eltwise.comp */
#else
						if (subgroupElect())
							o[ooff + r * N + n0 + j] = t + b;
#endif
					}
				}
			}
		}
	}
}

#version 450
/* Matrix product for steps of more than 4 rows on tensor cores through GL_NV_cooperative_matrix
 * (used only where the device exposes VK_NV_cooperative_matrix with fp16 16x16x16 and an f32
 * accumulator, and the build's glslang compiles it). Tiles of 64 rows x 64 outputs, k-slices of 32
 * staged in shared memory as fp16; each of the 4 subgroups owns a 32x32 quarter (2x2 matrices).
 * x is split into fp16 high and low parts (x = hi + lo to about 2^-22) and both are multiplied, so
 * activations keep f32 accuracy; the dequantized weight (q - z) * s is rounded to fp16 once.
 * Weight formats as in matvec.comp (FMT_Q4: repacked AWQ; FMT_DENSE: [n][k] F16 only). */
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(local_size_x = 128) in;
layout(constant_id = 0) const int DT = 0;
layout(constant_id = 2) const int BDT = 0;
#include "common.glsl"

#define BM 64
#define BN 64
#define BK 32

layout(set = 0, binding = 6, std430) readonly buffer X1 { float x1[]; };
layout(set = 0, binding = 4, std430) readonly buffer W1 { uint w1[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 5, std430) readonly buffer SZ { uint sz[]; };
#include "bias.glsl"

shared float16_t Ah[BM * BK];
shared float16_t Al[BM * BK];
shared float16_t Bs[BK * BN];
shared float Cs[BM * BN];

/* u0 = K, u1 = N, u2 = rows, u3 = group size (Q4), u4 = has bias */
void main()
{
	const uint K = pc.u0, N = pc.u1, rows = pc.u2, t = gl_LocalInvocationID.x;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	const uint sm = (gl_SubgroupID / 2u) * 32u, sn = (gl_SubgroupID % 2u) * 32u;
	const uint lr = t / 2u, lq = (t % 2u) * 16u;
	fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[2][2];
	for (uint i = 0u; i < 2u; i++)
		for (uint j = 0u; j < 2u; j++)
			acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
	for (uint k0 = 0u; k0 < K; k0 += BK) {
		for (uint e = 0u; e < 16u; e++) {
			uint k = k0 + lq + e;
			float v = m0 + lr < rows && k < K ? x1[(m0 + lr) * K + k] : 0.0;
			float16_t h = float16_t(v);
			Ah[lr * BK + lq + e] = h;
			Al[lr * BK + lq + e] = float16_t(v - float(h));
		}
		uint n = n0 + lr;
#ifdef FMT_Q4
		for (uint wi = 0u; wi < 2u; wi++) {
			uint kb = lq + wi * 8u, kw = k0 + kb;
			if (n < N && kw < K) {
				uint q = w1[n * (K / 8u) + kw / 8u], szw = sz[n * (K / pc.u3) + kw / pc.u3];
				float s = unpackHalf2x16(szw).x, z = float(szw >> 16);
				for (uint e = 0u; e < 8u; e++)
					Bs[(kb + e) * BN + lr] = float16_t(s * (float((q >> (4u * e)) & 15u) - z));
			} else {
				for (uint e = 0u; e < 8u; e++)
					Bs[(kb + e) * BN + lr] = float16_t(0.0);
			}
		}
#else
		for (uint e = 0u; e < 16u; e++) {
			uint k = k0 + lq + e, i = n * K + k;
			Bs[(lq + e) * BN + lr] = n < N && k < K ? float16_t(unpackHalf2x16((w1[i >> 1] >> ((i & 1u) * 16u)) & 0xffffu).x)
							       : float16_t(0.0);
		}
#endif
		barrier();
		for (uint kk = 0u; kk < BK; kk += 16u) {
			fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> ah[2], al[2], b[2];
			for (uint i = 0u; i < 2u; i++) {
				coopMatLoadNV(ah[i], Ah, (sm + 16u * i) * BK + kk, BK, false);
				coopMatLoadNV(al[i], Al, (sm + 16u * i) * BK + kk, BK, false);
				coopMatLoadNV(b[i], Bs, kk * BN + sn + 16u * i, BN, false);
			}
			for (uint i = 0u; i < 2u; i++)
				for (uint j = 0u; j < 2u; j++) {
					acc[i][j] = coopMatMulAddNV(ah[i], b[j], acc[i][j]);
					acc[i][j] = coopMatMulAddNV(al[i], b[j], acc[i][j]);
				}
		}
		barrier();
	}
	for (uint i = 0u; i < 2u; i++)
		for (uint j = 0u; j < 2u; j++)
			coopMatStoreNV(acc[i][j], Cs, (sm + 16u * i) * BN + sn + 16u * j, BN, false);
	barrier();
	for (uint idx = t; idx < BM * BN; idx += gl_WorkGroupSize.x) {
		uint m = m0 + idx / BN, nn = n0 + idx % BN;
		if (m < rows && nn < N)
			o[m * N + nn] = Cs[idx] + BIAS(nn);
	}
}

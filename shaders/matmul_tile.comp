#version 450
/* Matrix product for steps of more than 4 rows (prefill): out[r][n] = sum_k x[r][k] W[n][k] + bias[n].
 * Tiles of 64 rows x 64 outputs per workgroup; each k-slice of 32 is staged in shared memory (x
 * transposed, W dequantized to f32) and every invocation accumulates a 4x4 block in registers.
 * Weight formats as in matvec.comp (FMT_Q4: repacked AWQ; FMT_DENSE: [n][k] in DT). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
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
layout(set = 0, binding = 7, std430) readonly buffer Bias { uint bias[]; };

shared float As[BK][BM];
shared float Bs[BK][BN];

float load_bias(uint n)
{
	if (BDT == DT_F32)
		return uintBitsToFloat(bias[n]);
	return widen16((bias[n >> 1] >> ((n & 1u) * 16u)) & 0xffffu, BDT);
}

#ifndef FMT_Q4
float wload(uint i)
{
	if (DT == DT_F32)
		return uintBitsToFloat(w1[i]);
	return widen16((w1[i >> 1] >> ((i & 1u) * 16u)) & 0xffffu, DT);
}
#endif

/* u0 = K, u1 = N, u2 = rows, u3 = group size (Q4), u4 = has bias */
void main()
{
	const uint K = pc.u0, N = pc.u1, rows = pc.u2, t = gl_LocalInvocationID.x;
	const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
	const uint tx = t % 16u, ty = t / 16u, lm = t / 4u, lk = (t % 4u) * 8u;
	float acc[4][4];
	for (uint i = 0u; i < 4u; i++)
		for (uint j = 0u; j < 4u; j++)
			acc[i][j] = 0.0;
	for (uint k0 = 0u; k0 < K; k0 += BK) {
		for (uint e = 0u; e < 8u; e++) {
			uint k = k0 + lk + e;
			As[lk + e][lm] = m0 + lm < rows && k < K ? x1[(m0 + lm) * K + k] : 0.0;
		}
		uint n = n0 + lm;
#ifdef FMT_Q4
		uint kw = k0 + lk;
		if (n < N && kw < K) {
			uint q = w1[n * (K / 8u) + kw / 8u], szw = sz[n * (K / pc.u3) + kw / pc.u3];
			float s = unpackHalf2x16(szw).x, mz = 8388608.0 + float(szw >> 16);
			for (uint e = 0u; e < 8u; e++)
				Bs[lk + e][lm] = s * (uintBitsToFloat(0x4B000000u | ((q >> (4u * e)) & 15u)) - mz);
		} else {
			for (uint e = 0u; e < 8u; e++)
				Bs[lk + e][lm] = 0.0;
		}
#else
		for (uint e = 0u; e < 8u; e++) {
			uint k = k0 + lk + e;
			Bs[lk + e][lm] = n < N && k < K ? wload(n * K + k) : 0.0;
		}
#endif
		barrier();
		for (uint kk = 0u; kk < BK; kk++) {
			float a[4], b[4];
			for (uint i = 0u; i < 4u; i++) {
				a[i] = As[kk][ty + 16u * i];
				b[i] = Bs[kk][tx + 16u * i];
			}
			for (uint i = 0u; i < 4u; i++)
				for (uint j = 0u; j < 4u; j++)
					acc[i][j] += a[i] * b[j];
		}
		barrier();
	}
	for (uint j = 0u; j < 4u; j++) {
		uint n = n0 + tx + 16u * j;
		if (n >= N)
			continue;
		float b = pc.u4 != 0u ? load_bias(n) : 0.0;
		for (uint i = 0u; i < 4u; i++) {
			uint m = m0 + ty + 16u * i;
			if (m < rows)
				o[m * N + n] = acc[i][j] + b;
		}
	}
}

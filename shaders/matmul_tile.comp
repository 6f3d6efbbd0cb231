#version 450
/* Matrix product for steps of more than 4 rows (prefill): out[r][n] = sum_k x[r][k] W[n][k] + bias[n].
 * Tiles of 64 rows x 64 outputs per workgroup; each k-slice of 32 is staged in shared memory (x
 * transposed, W dequantized to f32) and every invocation accumulates a 4x4 block in registers.
 * Weight formats as in matvec.comp (FMT_Q4: repacked AWQ; FMT_DENSE: [n][k] in DT).
 * With MOE (MOE_EXPERTS prefill, dispatched indirectly) workgroup y is one 64-row tile of one
 * expert from the grouping buffer at binding 7 (moe_layout.glsl; no bias): rows are that expert's
 * permuted slots, x rows are their tokens (gather) or the slots themselves, and the weight rows are
 * the expert's in a buffer of all experts packed one after another. */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
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
#ifdef MOE
#include "moe_layout.glsl"
layout(set = 0, binding = 7, std430) readonly buffer Group { uint grp[]; };
#define BIAS(n) 0.0
#else
#include "bias.glsl"
#endif

shared float As[BK][BM];
shared float Bs[BK][BN];


#ifndef FMT_Q4
float wload(uint i)
{
	return dt_value(w1[dt_word(i, DT)], i, DT);
}
#endif

/* u0 = K, u1 = N, u2 = rows, u3 = group size (Q4), u4 = has bias;
 * MOE: u2 = experts, u5 = slot capacity S, u6 = gather x rows through slot_token */
void main()
{
	const uint K = pc.u0, N = pc.u1, t = gl_LocalInvocationID.x, n0 = gl_WorkGroupID.x * BN;
#ifdef MOE
	const uint tile = moe_tiles(pc.u2, pc.u5) + 2u * gl_WorkGroupID.y, ex = grp[tile], m0 = grp[tile + 1u];
	const uint base = grp[MOE_START + ex], rows = grp[MOE_START + ex + 1u] - base, wrow = ex * N;
#define XROW(m) (pc.u6 != 0u ? grp[moe_slot_token(pc.u2) + base + (m)] : base + (m))
#else
	const uint rows = pc.u2, m0 = gl_WorkGroupID.y * BM, base = 0u, wrow = 0u;
#define XROW(m) (m)
#endif
	const uint tx = t % 16u, ty = t / 16u, lm = t / 4u, lk = (t % 4u) * 8u;
	/* acc, a and b are indexed only inside [[unroll]] loops of constant bounds: registers */
	float acc[4][4];
	[[unroll]] for (uint i = 0u; i < 4u; i++)
		[[unroll]] for (uint j = 0u; j < 4u; j++)
			acc[i][j] = 0.0;
	for (uint k0 = 0u; k0 < K; k0 += BK) {
		for (uint e = 0u; e < 8u; e++) {
			uint k = k0 + lk + e;
			As[lk + e][lm] = m0 + lm < rows && k < K ? x1[XROW(m0 + lm) * K + k] : 0.0;
		}
		uint n = n0 + lm;
#ifdef FMT_Q4
		uint kw = k0 + lk;
		if (n < N && kw < K) {
			uint q = w1[(wrow + n) * (K / 8u) + kw / 8u], szw = sz[(wrow + n) * (K / pc.u3) + kw / pc.u3];
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
			Bs[lk + e][lm] = n < N && k < K ? wload((wrow + n) * K + k) : 0.0;
		}
#endif
		barrier();
		for (uint kk = 0u; kk < BK; kk++) {
			float a[4], b[4];
			[[unroll]] for (uint i = 0u; i < 4u; i++) {
				a[i] = As[kk][ty + 16u * i];
				b[i] = Bs[kk][tx + 16u * i];
			}
			[[unroll]] for (uint i = 0u; i < 4u; i++)
				[[unroll]] for (uint j = 0u; j < 4u; j++)
					acc[i][j] += a[i] * b[j];
		}
		barrier();
	}
	[[unroll]] for (uint j = 0u; j < 4u; j++) {
		uint n = n0 + tx + 16u * j;
		if (n < N) {
			float b = BIAS(n);
			[[unroll]] for (uint i = 0u; i < 4u; i++) {
				uint m = m0 + ty + 16u * i;
				if (m < rows)
					o[(base + m) * N + n] = acc[i][j] + b;
			}
		}
	}
}

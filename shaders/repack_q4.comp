#version 450
/* One-time load step: AutoAWQ GEMM layout (qweight [k][n/8] with the interleaved nibble order
 * 0,4,1,5,2,6,3,7; qzeros [k/G][n/8]; scales f16 [k/G][n]) to the k-contiguous layout the matmul
 * shaders read: words [n][k/8] holding k 8j..8j+7 in nibbles 0..7, and [n][k/G] words of
 * f16 scale | zero << 16. MODE 0 repacks weights (one invocation per output word), MODE 1 scales
 * and zeros (one per (n, group)). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
layout(constant_id = 0) const int MODE = 0;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer QW { uint qw[]; };
layout(set = 0, binding = 2, std430) readonly buffer QZ { uint qz[]; };
layout(set = 0, binding = 4, std430) readonly buffer SC { uint sc[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { uint o[]; };

uint nibble(uint word, uint n)
{
	const uint order[8] = uint[8](0u, 4u, 1u, 5u, 2u, 6u, 3u, 7u);
	return (word >> (4u * order[n % 8u])) & 15u;
}

/* u0 = K, u1 = N, u2 = G, u3 = has zeros (else u4 = symmetric zero) */
void main()
{
	const uint K = pc.u0, N = pc.u1, G = pc.u2, NW = N / 8u;
	uint i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	if (MODE == 0) {
		if (i >= N * (K / 8u))
			return;
		uint n = i / (K / 8u), j = i % (K / 8u), word = 0u;
		for (uint e = 0u; e < 8u; e++)
			word |= nibble(qw[(8u * j + e) * NW + n / 8u], n) << (4u * e);
		o[i] = word;
	} else {
		uint NG = K / G;
		if (i >= N * NG)
			return;
		uint n = i / NG, g = i % NG;
		uint z = pc.u3 != 0u ? nibble(qz[g * NW + n / 8u], n) : pc.u4;
		uint si = g * N + n;
		uint s = (sc[si >> 1] >> ((si & 1u) * 16u)) & 0xffffu;
		o[i] = s | (z << 16);
	}
}

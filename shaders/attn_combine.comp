#version 450
/* Merge the key splits of attention.comp: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer Part { float part[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };

/* u0 = n_heads, u2 = head_dim, u3 = splits */
void main()
{
	const uint H = pc.u0, D = pc.u2, S = pc.u3, h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
	const uint base = (r * H + h) * S * (D + 2u);
	float M = -1.0e30;
	for (uint s = 0u; s < S; s++)
		M = max(M, part[base + s * (D + 2u) + D]);
	float den = 0.0;
	for (uint s = 0u; s < S; s++)
		den += part[base + s * (D + 2u) + D + 1u] * exp(part[base + s * (D + 2u) + D] - M);
	for (uint d = gl_LocalInvocationID.x; d < D; d += gl_WorkGroupSize.x) {
		float num = 0.0;
		for (uint s = 0u; s < S; s++)
			num += part[base + s * (D + 2u) + d] * exp(part[base + s * (D + 2u) + D] - M);
		o[(r * H + h) * D + d] = num / den;
	}
}

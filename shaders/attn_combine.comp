#version 450
/* Merge the key splits of attention.comp: out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer Part { float part[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };

#include "attn_merge.glsl"

/* u0 = n_heads, u2 = head_dim, u3 = splits */
void main()
{
	const uint H = pc.u0, D = pc.u2, S = pc.u3, h = gl_WorkGroupID.x, r = gl_WorkGroupID.y;
	merge((r * H + h) * S * (D + 2u), S, D, (r * H + h) * D, gl_LocalInvocationID.x, gl_WorkGroupSize.x, 0u);
}

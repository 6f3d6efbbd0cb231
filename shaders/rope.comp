#version 450
/* rotate_half RoPE. The host writes cos/sin of every (row, i) into the step buffer per step (from
 * the same f32 angle formula as the CPU reference), so large positions lose no accuracy to a GPU's
 * short-range sin/cos. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer X { float x[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };

/* u0 = n_heads, u1 = head_dim, u2 = offset of the cos table in step.tab, u3 = offset of sin */
void main()
{
	uint half_d = pc.u1 / 2u, i = gl_GlobalInvocationID.x, h = gl_WorkGroupID.y, r = gl_WorkGroupID.z;
	if (i >= half_d)
		return;
	uint base = (r * pc.u0 + h) * pc.u1;
	float c = step.tab[pc.u2 + r * half_d + i], s = step.tab[pc.u3 + r * half_d + i];
	float x1 = x[base + i], x2 = x[base + i + half_d];
	o[base + i] = x1 * c - x2 * s;
	o[base + i + half_d] = x2 * c + x1 * s;
}

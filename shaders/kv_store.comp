#version 450
/* Append the step's k and v rows to one layer's cache at positions pos.. (the position comes from
 * the step buffer, so the recorded dispatch is reused at every position). The cache holds fp16
 * pairs, one uint per two adjacent elements (as the CUDA backend's): invocation i writes pair i. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer K { float k[]; };
layout(set = 0, binding = 2, std430) readonly buffer V { float v[]; };
layout(set = 0, binding = 3, std430) writeonly buffer KC { uint kc[]; };
layout(set = 0, binding = 4, std430) writeonly buffer VC { uint vc[]; };

/* u0 = rows * kv_dim / 2 (pairs), u1 = kv_dim (even) */
void main()
{
	uint i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	if (i >= pc.u0)
		return;
	uint dst = uint(step.pos) * (pc.u1 / 2u) + i;
	kc[dst] = packHalf2x16(vec2(k[2u * i], k[2u * i + 1u]));
	vc[dst] = packHalf2x16(vec2(v[2u * i], v[2u * i + 1u]));
}

#version 450
/* Append the step's k and v rows to one layer's cache at positions pos.. (the position comes from
 * the step buffer, so the recorded dispatch is reused at every position). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer K { float k[]; };
layout(set = 0, binding = 2, std430) readonly buffer V { float v[]; };
layout(set = 0, binding = 3, std430) writeonly buffer KC { float kc[]; };
layout(set = 0, binding = 4, std430) writeonly buffer VC { float vc[]; };

/* u0 = rows * kv_dim, u1 = kv_dim */
void main()
{
	uint i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	if (i >= pc.u0)
		return;
	uint kv_dim = pc.u1, dst = uint(step.pos) * kv_dim + i;
	kc[dst] = k[i];
	vc[dst] = v[i];
}

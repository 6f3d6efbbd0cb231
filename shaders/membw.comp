#version 450
/* Memory read bandwidth probe: each invocation sums a strided run of vec4s; the sum is written only
 * when impossible (the sign test), which keeps the loads alive without a store per invocation. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer Src { vec4 s[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };

/* u0 = vec4 count, u1 = invocations in the grid */
void main()
{
	uint i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	vec4 acc = vec4(0.0);
	for (uint j = i; j < pc.u0; j += pc.u1)
		acc += s[j];
	float t = acc.x + acc.y + acc.z + acc.w;
	if (t == -1.0)
		o[0] = t;
}

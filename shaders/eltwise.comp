#version 450
/* Element-wise ops over n floats: OP 0 = a + b, OP 1 = silu(a) * b, OP 2 = sigmoid(a[row]) * b with
 * one a per row of u1 columns (Qwen2-MoE's shared-expert gate). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
layout(constant_id = 0) const int OP = 0;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer A { float a[]; };
layout(set = 0, binding = 2, std430) readonly buffer B { float b[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };

/* u0 = n, u1 = columns per row (OP 2) */
void main()
{
	uint i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	if (i >= pc.u0)
		return;
	if (OP == 2) {
		o[i] = 1.0 / (1.0 + exp(-a[i / pc.u1])) * b[i];
		return;
	}
	float x = a[i];
	o[i] = OP == 0 ? x + b[i] : x / (1.0 + exp(-x)) * b[i];
}

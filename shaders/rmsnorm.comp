#version 450
/* out = x / sqrt(mean(x^2) + eps) * w over groups of `group` cols: one workgroup per (row, group).
 * With ADD (the add + RMSNorm fusion) x = a + b is also written to h, and the group is a whole row:
 * the residual add and the norm after it in one dispatch. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x_id = 1) in;
layout(constant_id = 0) const int DT = 0;
#include "common.glsl"
#include "reduce.glsl"

layout(set = 0, binding = 1, std430) readonly buffer X { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer W { uint w[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
#ifdef ADD
layout(set = 0, binding = 4, std430) readonly buffer B { float b[]; };
layout(set = 0, binding = 5, std430) writeonly buffer H { float h[]; };
#define XV(i) (x[i] + b[i])
#else
#define XV(i) x[i]
#endif

float wload(uint i)
{
	if (DT == DT_F32)
		return uintBitsToFloat(w[i]);
	return widen16((w[i >> 1] >> ((i & 1u) * 16u)) & 0xffffu, DT);
}

/* u0 = cols, u1 = group, u2 = rows * groups per row, f0 = eps */
void main()
{
	uint cols = pc.u0, group = pc.u1, ng = cols / group;
	uint g = flat_group(), r = g / ng, base = r * cols + (g % ng) * group;
	if (g >= pc.u2)
		return; /* the whole workgroup leaves: the grid is rounded up in 2-D */
	float ss = 0.0;
	for (uint i = gl_LocalInvocationID.x; i < group; i += gl_WorkGroupSize.x) {
		float v = XV(base + i);
#ifdef ADD
		h[base + i] = v;
#endif
		ss += v * v;
	}
	ss = wg_sum(ss);
	float inv = 1.0 / sqrt(ss / float(group) + pc.f0);
	for (uint i = gl_LocalInvocationID.x; i < group; i += gl_WorkGroupSize.x)
		o[base + i] = XV(base + i) * inv * wload(i);
}

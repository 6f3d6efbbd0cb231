#version 450
/* Per row, the index of the largest value; ties go to the lowest index, as in the CPU reference. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer X { float x[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { int o[]; };

shared float best_v[256];
shared uint best_i[256];

bool better(float v, uint i, float bv, uint bi)
{
	return v > bv || (v == bv && i < bi);
}

/* u0 = cols */
void main()
{
	uint r = gl_WorkGroupID.x, t = gl_LocalInvocationID.x, cols = pc.u0;
	float bv = 0.0;
	uint bi = 0xffffffffu;
	for (uint c = t; c < cols; c += 256u) {
		float v = x[r * cols + c];
		if (bi == 0xffffffffu || better(v, c, bv, bi)) {
			bv = v;
			bi = c;
		}
	}
	best_v[t] = bv;
	best_i[t] = bi;
	barrier();
	for (uint s = 128u; s > 0u; s >>= 1) {
		if (t < s && best_i[t + s] != 0xffffffffu &&
		    (best_i[t] == 0xffffffffu || better(best_v[t + s], best_i[t + s], best_v[t], best_i[t]))) {
			best_v[t] = best_v[t + s];
			best_i[t] = best_i[t + s];
		}
		barrier();
	}
	if (t == 0u)
		o[r] = int(best_i[0]);
}

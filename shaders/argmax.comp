#version 450
/* Per row, the index of the largest value; ties go to the lowest index, as in the CPU reference.
 * Rows of a multiple of 4 columns are read as vec4 (binding 2 views the same buffer), a quarter of
 * the dependent loads per invocation: a 152k vocabulary is ~150 per invocation instead of ~600. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer X { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { int o[]; };

shared float best_v[256];
shared uint best_i[256];

bool better(float v, uint i, float bv, uint bi)
{
	return v > bv || (v == bv && i < bi);
}

void take(float v, uint i, inout float bv, inout uint bi)
{
	if (bi == 0xffffffffu || better(v, i, bv, bi)) {
		bv = v;
		bi = i;
	}
}

/* u0 = cols */
void main()
{
	uint r = gl_WorkGroupID.x, t = gl_LocalInvocationID.x, cols = pc.u0;
	float bv = 0.0;
	uint bi = 0xffffffffu;
	if (cols % 4u == 0u) {
		const uint base = r * (cols / 4u);
		for (uint c = t; c < cols / 4u; c += 256u) {
			vec4 v = x4[base + c];
			take(v.x, 4u * c, bv, bi);
			take(v.y, 4u * c + 1u, bv, bi);
			take(v.z, 4u * c + 2u, bv, bi);
			take(v.w, 4u * c + 3u, bv, bi);
		}
	} else {
		for (uint c = t; c < cols; c += 256u)
			take(x[r * cols + c], c, bv, bi);
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

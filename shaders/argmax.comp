#version 450
/* Per row, the index of the largest value; ties go to the lowest index, as in the CPU reference.
 * Rows of a multiple of 4 columns are read as vec4 (binding 2 views the same buffer), a quarter of
 * the dependent loads per invocation. One long row (a vocabulary's logits in decode) is split over
 * workgroups (vk_run.c, session 31: one workgroup over a 152k row cost ~72 us per step on the H200):
 * mode 1, each workgroup's best of ARGMAX_SLICE columns into part[]; mode 2, one workgroup's best of
 * those. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"

layout(set = 0, binding = 1, std430) readonly buffer X { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer X4 { vec4 x4[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { int o[]; };
layout(set = 0, binding = 4, std430) buffer Part { uint part[]; }; /* modes 1, 2: value bits, index */

#define ARGMAX_SLICE 4096u

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

/* u0 = cols; u1 = mode: 0 a row per workgroup, 1 slices of row 0 into part[], 2 the best of u2
 * slices' results in part[] into o[0] */
void main()
{
	uint r = gl_WorkGroupID.x, t = gl_LocalInvocationID.x, cols = pc.u0, mode = pc.u1;
	float bv = 0.0;
	uint bi = 0xffffffffu;
	if (mode == 2u) {
		for (uint j = t; j < pc.u2; j += 256u)
			if (part[2u * j + 1u] != 0xffffffffu)
				take(uintBitsToFloat(part[2u * j]), part[2u * j + 1u], bv, bi);
	} else {
		/* columns c0..c1 of row r (mode 1: row 0, this workgroup's slice) */
		const uint c0 = mode == 1u ? r * ARGMAX_SLICE : 0u, c1 = mode == 1u ? min(cols, c0 + ARGMAX_SLICE) : cols;
		const uint row = mode == 1u ? 0u : r;
		if (cols % 4u == 0u) {
			const uint base = row * (cols / 4u);
			for (uint c = c0 / 4u + t; c < c1 / 4u; c += 256u) {
				vec4 v = x4[base + c];
				take(v.x, 4u * c, bv, bi);
				take(v.y, 4u * c + 1u, bv, bi);
				take(v.z, 4u * c + 2u, bv, bi);
				take(v.w, 4u * c + 3u, bv, bi);
			}
		} else {
			for (uint c = c0 + t; c < c1; c += 256u)
				take(x[row * cols + c], c, bv, bi);
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
	if (t == 0u) {
		if (mode == 1u) {
			part[2u * r] = floatBitsToUint(best_v[0]);
			part[2u * r + 1u] = best_i[0];
		} else {
			o[r] = int(best_i[0]);
		}
	}
}

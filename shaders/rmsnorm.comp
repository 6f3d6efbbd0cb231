#version 450
/* out = x / sqrt(mean(x^2) + eps) * w over groups of `group` cols: one workgroup per (row, group).
 * With ADD (the add + RMSNorm fusion) x = a + b is also written to h, and the group is a whole row:
 * the residual add and the norm after it in one dispatch.
 *
 * Each invocation loads its elements (REG of them per chunk of REG * workgroup size) into registers
 * before it stores anything, and keeps them for the second pass. All bindings are views of one
 * buffer, so a store may alias any later load: a loop of load, store, load ... runs as a chain of
 * dependent memory round trips (add_rmsnorm on 4096 columns took 27.7 us on an H200 with 128
 * invocations, 2 x 32 of them). Loads first makes it one round trip per pass; a group longer than
 * one chunk takes one per chunk and reads its values back in the second pass (h, not a + b: each
 * element is written and read back by the same invocation, so that holds even if h aliases a or b). */
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x_id = 1) in;
layout(constant_id = 0) const int DT = 0;
#include "common.glsl"
#include "reduce.glsl"

/* the host sizes the workgroup for about 4 elements per invocation, so 8 leaves room for devices
 * with smaller workgroups before a group needs more than one chunk */
#define REG 8u

layout(set = 0, binding = 1, std430) readonly buffer X { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer W { uint w[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
#ifdef COMBINE
/* (decode steps, AWQ_VK_MOE_FOLD=1) b is the MoE experts' output, formed here as moe_combine.comp
 * does from the slots' down projections (binding 4, slot t * top_k + j of row t) and the route's
 * weights (binding 6; u3 = top_k): its dispatch and barrier are saved */
layout(set = 0, binding = 4, std430) readonly buffer YS { float ys[]; };
layout(set = 0, binding = 5, std430) buffer H { float h[]; };
layout(set = 0, binding = 6, std430) readonly buffer Route { float route[]; };
float comb(uint i) /* i = row * cols + c */
{
	const uint K = pc.u3, t = i / pc.u0, c = i % pc.u0;
	float acc = 0.0;
	for (uint j = 0u; j < K; j++)
		acc += route[t * 2u * K + K + j] * ys[(t * K + j) * pc.u0 + c];
	return acc;
}
#define XV(i) (x[i] + comb(i))
#define XAGAIN(i) h[i]
#elif defined(ADD)
layout(set = 0, binding = 4, std430) readonly buffer B { float b[]; };
layout(set = 0, binding = 5, std430) buffer H { float h[]; };
#define XV(i) (x[i] + b[i])
#define XAGAIN(i) h[i]
#else
#define XV(i) x[i]
#define XAGAIN(i) x[i]
#endif

float wload(uint i)
{
	return dt_value(w[dt_word(i, DT)], i, DT);
}

/* u0 = cols, u1 = group, u2 = rows * groups per row, f0 = eps; COMBINE: u3 = top_k */
void main()
{
	uint cols = pc.u0, group = pc.u1, ng = cols / group;
	uint g = flat_group(), r = g / ng, base = r * cols + (g % ng) * group;
	if (g >= pc.u2)
		return; /* the whole workgroup leaves: the grid is rounded up in 2-D */
	uint wg = gl_WorkGroupSize.x, chunk = REG * wg, t = gl_LocalInvocationID.x;
	bool fits = group <= chunk; /* the usual case: one chunk, nothing read twice */
	float v[REG], wv[REG];
	float ss = 0.0;
	for (uint c0 = 0u; c0 < group; c0 += chunk) {
		[[unroll]] for (uint k = 0u; k < REG; k++) {
			uint i = c0 + k * wg + t;
			v[k] = i < group ? XV(base + i) : 0.0;
			wv[k] = fits && i < group ? wload(i) : 0.0;
		}
#ifdef ADD
		[[unroll]] for (uint k = 0u; k < REG; k++) {
			uint i = c0 + k * wg + t;
			if (i < group)
				h[base + i] = v[k];
		}
#endif
		[[unroll]] for (uint k = 0u; k < REG; k++)
			ss += v[k] * v[k];
	}
	ss = wg_sum(ss);
	float inv = 1.0 / sqrt(ss / float(group) + pc.f0);
	for (uint c0 = 0u; c0 < group; c0 += chunk) {
		if (!fits) {
			[[unroll]] for (uint k = 0u; k < REG; k++) {
				uint i = c0 + k * wg + t;
				if (i < group) {
					v[k] = XAGAIN(base + i);
					wv[k] = wload(i);
				}
			}
		}
		[[unroll]] for (uint k = 0u; k < REG; k++) {
			uint i = c0 + k * wg + t;
			if (i < group)
				o[base + i] = v[k] * inv * wv[k];
		}
	}
}

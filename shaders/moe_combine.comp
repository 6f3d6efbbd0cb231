#version 450
/* MOE_EXPERTS, last step: out[t][i] = sum_j weight_j * y[slot(t, j)][i] with the router's weights,
 * summed in j order as the CPU reference. slot(t, j) = t * top_k + j after the decode matvecs, or
 * the permuted slot of (t, j) after the grouped prefill matmuls (PERMUTED). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
layout(constant_id = 0) const int PERMUTED = 0;
#include "common.glsl"
#include "moe_layout.glsl"

layout(set = 0, binding = 1, std430) readonly buffer Route { float route[]; };
layout(set = 0, binding = 2, std430) readonly buffer Y { float y[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 4, std430) readonly buffer Group { uint grp[]; };

/* u0 = H, u1 = top_k, u2 = rows * H, u3 = E, u4 = S */
void main()
{
	const uint H = pc.u0, K = pc.u1, i = flat_group() * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
	if (i >= pc.u2)
		return;
	const uint t = i / H, c = i % H;
	float acc = 0.0;
	for (uint j = 0u; j < K; j++) {
		uint slot = PERMUTED != 0 ? grp[moe_token_slot(pc.u3, pc.u4) + t * K + j] : t * K + j;
		acc += route[t * 2u * K + K + j] * y[slot * H + c];
	}
	o[i] = acc;
}

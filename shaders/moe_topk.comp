#version 450
/* MOE_ROUTE after the router matmul: per row of logits [rows][E], p = softmax in f32, the top_k
 * largest p (ties: lower expert id first, as awq_moe_topk), divided by their sum when norm.
 * One workgroup per row; each of the top_k rounds is a workgroup argmax over the experts not yet
 * taken. Output row: [ids as floats..., weights...]. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#include "common.glsl"
#include "reduce.glsl"

#define MAXK 32

layout(set = 0, binding = 1, std430) readonly buffer Logits { float lg[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Route { float route[]; };

/* u0 = E, u1 = top_k (<= MAXK), u2 = norm */
void main()
{
	const uint E = pc.u0, K = pc.u1, t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
	const uint base = gl_WorkGroupID.x * E;
	float mx = -1.0 / 0.0;
	for (uint e = t; e < E; e += nt)
		mx = max(mx, lg[base + e]);
	mx = wg_max(mx);
	float sum = 0.0;
	for (uint e = t; e < E; e += nt)
		sum += exp(lg[base + e] - mx);
	sum = wg_sum(sum);
	uint ids[MAXK];
	float ws[MAXK];
	for (uint j = 0u; j < K; j++) {
		float best = -1.0;
		uint bid = E;
		for (uint e = t; e < E; e += nt) {
			bool taken = false;
			for (uint i = 0u; i < j; i++)
				taken = taken || ids[i] == e;
			float p = exp(lg[base + e] - mx) / sum;
			if (!taken && p > best) {
				best = p;
				bid = e;
			}
		}
		float pm = wg_max(best);
		float lowest = -wg_max(bid < E && best == pm ? -float(bid) : -3.0e38);
		/* nothing comparable (NaN logits): keep a valid id, the weight shows the NaN */
		ids[j] = pm >= 0.0 && lowest < float(E) ? uint(lowest) : j % E;
		ws[j] = pm >= 0.0 ? pm : uintBitsToFloat(0x7fc00000u);
	}
	float ksum = 0.0;
	for (uint j = 0u; j < K; j++)
		ksum += ws[j];
	const uint o = gl_WorkGroupID.x * 2u * K;
	for (uint j = t; j < K; j += nt) {
		route[o + j] = float(ids[j]);
		route[o + K + j] = pc.u2 != 0u ? ws[j] / ksum : ws[j];
	}
}

#version 450
/* MOE_EXPERTS prefill, step 1: group the step's (token, j) slots by expert. Count per expert,
 * prefix sum, permute (slot_token / token_slot), list the 64-row tiles of every expert, and write
 * the indirect dispatch sizes of the grouped matmuls (layout: moe_layout.glsl). One workgroup.
 * The order of slots inside an expert is not fixed; each row's result does not depend on it. */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
#include "common.glsl"
#include "moe_layout.glsl"

#define MAXE 1024

layout(set = 0, binding = 1, std430) readonly buffer Route { float route[]; };
layout(set = 0, binding = 3, std430) buffer Group { uint grp[]; };

shared uint cnt[MAXE];
shared uint cur[MAXE];

/* u0 = rows, u1 = top_k, u2 = E (<= MAXE), u3 = S, u4 = column tiles of gate/up, u5 = of down */
void main()
{
	const uint K = pc.u1, E = pc.u2, S = pc.u3, t = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
	const uint slots = pc.u0 * K;
	for (uint e = t; e < E; e += nt)
		cnt[e] = 0u;
	barrier();
	for (uint s = t; s < slots; s += nt)
		atomicAdd(cnt[moe_expert(route[(s / K) * 2u * K + s % K], E)], 1u);
	barrier();
	if (t == 0u) {
		const uint tiles = moe_tiles(E, S);
		uint at = 0u, n = 0u;
		for (uint e = 0u; e < E; e++) {
			grp[MOE_START + e] = at;
			cur[e] = at;
			for (uint m = 0u; m < cnt[e]; m += 64u) {
				grp[tiles + 2u * n] = e;
				grp[tiles + 2u * n + 1u] = m;
				n++;
			}
			at += cnt[e];
		}
		grp[MOE_START + E] = at;
		grp[0] = pc.u4;
		grp[1] = n;
		grp[2] = 1u;
		grp[4] = pc.u5;
		grp[5] = n;
		grp[6] = 1u;
	}
	barrier();
	for (uint s = t; s < slots; s += nt) {
		uint p = atomicAdd(cur[moe_expert(route[(s / K) * 2u * K + s % K], E)], 1u);
		grp[moe_slot_token(E) + p] = s / K;
		grp[moe_token_slot(E, S) + s] = p;
	}
}

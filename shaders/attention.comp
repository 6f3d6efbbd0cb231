#version 450
/* Causal attention over the KV cache, split along keys: workgroup (split, head, row) covers keys
 * [split*chunk, min(L, (split+1)*chunk)) of L = pos + row + 1 and writes its unnormalised output
 * with its running max and sum (online softmax). Decode uses many splits so a few heads still fill
 * the device; prefill uses one. Subgroups take keys in turn and reduce q.k across lanes; invocations
 * own output dims. GQA: head h reads kv head h / (H/Hkv).
 *
 * The splits are merged in this dispatch (u4 = 1): with one split the workgroup writes the output
 * itself; with several, each writes its partial, fences it and takes a ticket per (row, head), and
 * the workgroup that takes the last one merges all of them (as attn_combine.comp does) and puts the
 * ticket back to 0 for the next dispatch. This saves the combine's dispatch and the barrier before
 * it (several us each on an H200). u4 = 0 leaves the merge to attn_combine.comp (AWQ_VK_ATTN_MERGE=0). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;
#include "common.glsl"

#define BLK 64
#define MAXD 256

layout(set = 0, binding = 1, std430) readonly buffer Q { float q[]; };
layout(set = 0, binding = 2, std430) readonly buffer KC { float kc[]; };
layout(set = 0, binding = 4, std430) readonly buffer VC { float vc[]; };
/* coherent: the last workgroup of a (row, head) reads the other workgroups' partials */
layout(set = 0, binding = 3, std430) coherent buffer Part { float part[]; };
layout(set = 0, binding = 5, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 6, std430) coherent buffer Ticket { uint ticket[]; };

shared float qs[MAXD];
shared float sc[BLK];
shared uint is_last;

#include "attn_merge.glsl"

/* u0 = n_heads, u1 = n_kv_heads, u2 = head_dim, u3 = splits, u4 = merge here, f0 = scale */
void main()
{
	const uint H = pc.u0, HKV = pc.u1, D = pc.u2, S = pc.u3, t = gl_LocalInvocationID.x;
	const uint s = gl_WorkGroupID.x, h = gl_WorkGroupID.y, r = gl_WorkGroupID.z;
	const uint kvd = HKV * D, kh = h / (H / HKV);
	const uint L = uint(step.pos) + r + 1u, chunk = (L + S - 1u) / S;
	const uint beg = min(L, s * chunk), end = min(L, beg + chunk);
	for (uint d = t; d < D; d += gl_WorkGroupSize.x)
		qs[d] = q[(r * H + h) * D + d];
	barrier();
	float m = -1.0e30, l = 0.0, acc0 = 0.0, acc1 = 0.0;
	for (uint b0 = beg; b0 < end; b0 += BLK) {
		uint nb = min(BLK, end - b0);
		for (uint j = gl_SubgroupID; j < nb; j += gl_NumSubgroups) {
			const uint kb = (b0 + j) * kvd + kh * D;
			float d = 0.0;
			for (uint i = gl_SubgroupInvocationID; i < D; i += gl_SubgroupSize)
				d += qs[i] * kc[kb + i];
			d = subgroupAdd(d);
			if (subgroupElect())
				sc[j] = d * pc.f0;
		}
		barrier();
		float bm = m;
		for (uint j = 0u; j < nb; j++)
			bm = max(bm, sc[j]);
		float alpha = exp(m - bm);
		barrier();
		if (t < nb)
			sc[t] = exp(sc[t] - bm);
		barrier();
		l *= alpha;
		acc0 *= alpha;
		acc1 *= alpha;
		for (uint j = 0u; j < nb; j++) {
			float p = sc[j];
			l += p;
			const uint vb = (b0 + j) * kvd + kh * D;
			if (t < D)
				acc0 += p * vc[vb + t];
			if (t + 128u < D)
				acc1 += p * vc[vb + t + 128u];
		}
		m = bm;
		barrier();
	}
	const uint ob = (r * H + h) * D;
	if (pc.u4 != 0u && S == 1u) { /* the whole row in this workgroup: normalise and write */
		if (t < D)
			o[ob + t] = acc0 / l;
		if (t + 128u < D)
			o[ob + t + 128u] = acc1 / l;
		return;
	}
	const uint pb = ((r * H + h) * S + s) * (D + 2u);
	if (t < D)
		part[pb + t] = acc0;
	if (t + 128u < D)
		part[pb + t + 128u] = acc1;
	if (t == 0u) {
		part[pb + D] = end > beg ? m : -1.0e30;
		part[pb + D + 1u] = l;
	}
	if (pc.u4 == 0u)
		return;
	/* release: every invocation's partial writes before the ticket */
	memoryBarrierBuffer();
	barrier();
	if (t == 0u)
		is_last = atomicAdd(ticket[r * H + h], 1u) == S - 1u ? 1u : 0u;
	barrier();
	if (is_last == 0u)
		return;
	/* acquire: the other workgroups' partials, fenced before their tickets */
	memoryBarrierBuffer();
	merge((r * H + h) * S * (D + 2u), S, D, ob);
	if (t == 0u)
		ticket[r * H + h] = 0u;
}

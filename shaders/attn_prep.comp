#version 450
/* The inputs of one attention node in one dispatch: q and k get their folded per-head RMSNorm
 * (Qwen3's q_norm / k_norm) and rotate_half RoPE, q is written to the attention's q value, k and v
 * to the layer's cache at positions pos.. One workgroup per (head slot, row): slots 0..u0-1 are the
 * q heads (u0 = 0 when q needs nothing), then the k/v heads. Thread i takes the pair (i, i + half)
 * of the head. The arithmetic is that of rmsnorm.comp, rope.comp and kv_store.comp (the cache holds
 * fp16 pairs of adjacent elements: the pairs (i, i + half) meet in shared memory first). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 128) in;
layout(constant_id = 0) const int DT = 0;
#include "common.glsl"
#include "reduce.glsl"

layout(set = 0, binding = 1, std430) readonly buffer Q { float q[]; };
layout(set = 0, binding = 2, std430) readonly buffer K { float k[]; };
layout(set = 0, binding = 3, std430) readonly buffer V { float v[]; };
layout(set = 0, binding = 4, std430) writeonly buffer QO { float qo[]; };
layout(set = 0, binding = 5, std430) writeonly buffer KV { uint kv[]; }; /* K cache, then V at u5 (fp16 pairs) */
layout(set = 0, binding = 6, std430) readonly buffer QN { uint qn[]; };
layout(set = 0, binding = 7, std430) readonly buffer KN { uint kn[]; };

shared vec2 kp[128]; /* the rotated pairs (i, i + half) of a k head, for the fp16 cache */

float nload(uint i, bool isq)
{
	const uint j = dt_word(i, DT);
	return dt_value(isq ? qn[j] : kn[j], i, DT);
}

/* u0 = q heads prepared here (0 or n_heads), u1 = kv heads, u2 = head_dim (a multiple of 4, <= 256),
 * u3/u4 = cos/sin offsets in step.tab, u5 = V cache offset in words, u6 = flags (1 q norm, 2 k norm,
 * 4 q RoPE, 8 k RoPE), f0 = eps of the norms */
void main()
{
	const uint slot = gl_WorkGroupID.x, r = gl_WorkGroupID.y, hd = pc.u2, half_d = hd / 2u;
	const uint i = gl_LocalInvocationID.x;
	const bool isq = slot < pc.u0;
	const uint h = isq ? slot : slot - pc.u0, heads = isq ? pc.u0 : pc.u1, base = (r * heads + h) * hd;
	float x1 = 0.0, x2 = 0.0;
	if (i < half_d) {
		x1 = isq ? q[base + i] : k[base + i];
		x2 = isq ? q[base + i + half_d] : k[base + i + half_d];
	}
	if ((pc.u6 & (isq ? 1u : 2u)) != 0u) { /* uniform in the workgroup: every invocation reduces */
		float ss = wg_sum(x1 * x1 + x2 * x2);
		float inv = 1.0 / sqrt(ss / float(hd) + pc.f0);
		if (i < half_d) {
			x1 = x1 * inv * nload(i, isq);
			x2 = x2 * inv * nload(i + half_d, isq);
		}
	}
	if (i < half_d && (pc.u6 & (isq ? 4u : 8u)) != 0u) {
		float c = step.tab[pc.u3 + r * half_d + i], s = step.tab[pc.u4 + r * half_d + i];
		float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
		x1 = y1;
		x2 = y2;
	}
	if (isq) { /* uniform in the workgroup */
		if (i < half_d) {
			qo[base + i] = x1;
			qo[base + i + half_d] = x2;
		}
		return;
	}
	if (i < half_d)
		kp[i] = vec2(x1, x2);
	barrier();
	/* word w of the head: elements 2w, 2w + 1 (k: from the pairs; v: straight) */
	const uint kvd = pc.u1 * hd, dst = ((uint(step.pos) + r) * kvd + h * hd) / 2u;
	if (i < half_d / 2u) {
		kv[dst + i] = packHalf2x16(vec2(kp[2u * i].x, kp[2u * i + 1u].x));
		kv[dst + half_d / 2u + i] = packHalf2x16(vec2(kp[2u * i].y, kp[2u * i + 1u].y));
	}
	if (i < half_d)
		kv[pc.u5 + dst + i] = packHalf2x16(vec2(v[base + 2u * i], v[base + 2u * i + 1u]));
}

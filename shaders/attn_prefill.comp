#version 450
/* Causal attention of a prefill step (more than VK_MATVEC_ROWS rows) over the fp16 KV cache, in tiles:
 * workgroup (row block, head) holds RPW = 128 / TPR query rows, TPR = D / 32 invocations per row
 * (consecutive lanes of one subgroup), each owning 32 of the row's D dimensions of q (scaled) and of
 * its output. Keys go through shared memory 32 at a time, K and V as fp16 (uvec4 = 8 values), loaded
 * once for all the workgroup's rows (attention.comp, one workgroup per row and head, read every key
 * once per row). Per block: each invocation's partial q . k for the 32 keys, summed over the row's
 * TPR lanes by xor shuffles; the causal mask (key <= pos + row); an online-softmax update (running
 * max m and sum l per row, kept alike in the row's lanes); then the 32 values weighted into the
 * invocation's 32 outputs. Blocks past the workgroup's last row's keys are not visited.
 * GQA: head h reads kv head h / (H / HKV). D is 32, 64, 128 or 256 (the host checks; TPR lanes must
 * fit in the smallest subgroup). Every loop over registers is unrolled, so the arrays stay in
 * registers (tests/vulkan/check_shader_arrays.sh). The q/k norms and RoPE ran before (attn_prep.comp),
 * which also wrote this step's keys and values into the caches. */
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 128) in;
#include "common.glsl"

#define NT 128u
#define DPT 32u  /* dimensions per invocation */
#define KB 32u   /* keys per block */
#define MAXD 256u

layout(set = 0, binding = 1, std430) readonly buffer Q4 { vec4 q4[]; };
layout(set = 0, binding = 2, std430) readonly buffer KC { uvec4 kc4[]; };
layout(set = 0, binding = 4, std430) readonly buffer VC { uvec4 vc4[]; };
layout(set = 0, binding = 5, std430) writeonly buffer Out { vec4 o4[]; };

shared uvec4 Ks[KB * MAXD / 8u];
shared uvec4 Vs[KB * MAXD / 8u];

/* u0 = n_heads, u1 = n_kv_heads, u2 = head_dim, u3 = rows, f0 = scale */
void main()
{
	const uint H = pc.u0, HKV = pc.u1, D = pc.u2, rows = pc.u3, t = gl_LocalInvocationID.x;
	const uint tpr = D / DPT, rpw = NT / tpr, d8 = D / 8u;
	const uint rl = t / tpr, part = t % tpr;
	const uint h = gl_WorkGroupID.y, kh = h / (H / HKV);
	const uint r0 = gl_WorkGroupID.x * rpw, r = r0 + rl;
	const bool live = r < rows;
	const uint pos = uint(step.pos), kvd = HKV * D;
	const uint nkeys = pos + min(rows, r0 + rpw); /* the keys of the workgroup's last row */
	const uint myend = pos + r + 1u;              /* this row's: positions 0 .. pos + r */
	float qv[DPT], acc[DPT];
	const uint qb = ((live ? r : 0u) * H + h) * D / 4u + part * (DPT / 4u);
	[[unroll]] for (uint i = 0u; i < DPT / 4u; i++) {
		const vec4 v = live ? q4[qb + i] * pc.f0 : vec4(0.0);
		qv[4u * i] = v.x;
		qv[4u * i + 1u] = v.y;
		qv[4u * i + 2u] = v.z;
		qv[4u * i + 3u] = v.w;
	}
	[[unroll]] for (uint i = 0u; i < DPT; i++)
		acc[i] = 0.0;
	float m = -1.0e30, l = 0.0;
	for (uint b0 = 0u; b0 < nkeys; b0 += KB) {
		for (uint i = t; i < KB * d8; i += NT) {
			const uint key = b0 + i / d8, src = (key * kvd + kh * D) / 8u + i % d8;
			Ks[i] = key < nkeys ? kc4[src] : uvec4(0u);
			Vs[i] = key < nkeys ? vc4[src] : uvec4(0u);
		}
		barrier();
		float s[KB];
		[[unroll]] for (uint j = 0u; j < KB; j++) {
			float d = 0.0;
			[[unroll]] for (uint c = 0u; c < DPT / 8u; c++) {
				const uvec4 w = Ks[j * d8 + part * (DPT / 8u) + c];
				const vec2 a = unpackHalf2x16(w.x), b = unpackHalf2x16(w.y);
				const vec2 e = unpackHalf2x16(w.z), f = unpackHalf2x16(w.w);
				d += qv[8u * c] * a.x + qv[8u * c + 1u] * a.y + qv[8u * c + 2u] * b.x + qv[8u * c + 3u] * b.y;
				d += qv[8u * c + 4u] * e.x + qv[8u * c + 5u] * e.y + qv[8u * c + 6u] * f.x + qv[8u * c + 7u] * f.y;
			}
			s[j] = d;
		}
		for (uint off = 1u; off < tpr; off <<= 1u) /* the row's lanes: uniform trip count */
			[[unroll]] for (uint j = 0u; j < KB; j++)
				s[j] += subgroupShuffleXor(s[j], off);
		float bm = m;
		[[unroll]] for (uint j = 0u; j < KB; j++) {
			s[j] = b0 + j < myend ? s[j] : -1.0e30;
			bm = max(bm, s[j]);
		}
		const float alpha = exp(m - bm);
		l *= alpha;
		[[unroll]] for (uint i = 0u; i < DPT; i++)
			acc[i] *= alpha;
		[[unroll]] for (uint j = 0u; j < KB; j++) {
			const float p = exp(s[j] - bm);
			l += p;
			[[unroll]] for (uint c = 0u; c < DPT / 8u; c++) {
				const uvec4 w = Vs[j * d8 + part * (DPT / 8u) + c];
				const vec2 a = unpackHalf2x16(w.x), b = unpackHalf2x16(w.y);
				const vec2 e = unpackHalf2x16(w.z), f = unpackHalf2x16(w.w);
				acc[8u * c] += p * a.x;
				acc[8u * c + 1u] += p * a.y;
				acc[8u * c + 2u] += p * b.x;
				acc[8u * c + 3u] += p * b.y;
				acc[8u * c + 4u] += p * e.x;
				acc[8u * c + 5u] += p * e.y;
				acc[8u * c + 6u] += p * f.x;
				acc[8u * c + 7u] += p * f.y;
			}
		}
		m = bm;
		barrier(); /* the blocks' next keys overwrite Ks and Vs */
	}
	if (!live)
		return;
	const float inv = 1.0 / l;
	const uint ob = (r * H + h) * D / 4u + part * (DPT / 4u);
	[[unroll]] for (uint i = 0u; i < DPT / 4u; i++)
		o4[ob + i] = vec4(acc[4u * i], acc[4u * i + 1u], acc[4u * i + 2u], acc[4u * i + 3u]) * inv;
}

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
 * it (several us each on an H200). u4 = 0 leaves the merge to attn_combine.comp (AWQ_VK_ATTN_MERGE=0).
 *
 * FOLD (u5 & 16, decode steps): attn_prep.comp's work done here instead of in a dispatch of its own
 * (one dispatch and barrier fewer per layer): q comes raw (binding 1) and each workgroup applies
 * the head's norm (u5 & 1) and RoPE (u5 & 4) itself; the step's new keys (positions pos.. pos + rows
 * - 1) come raw from k (binding 7) and v (binding 8), normalised (u5 & 2) and rotated (u5 & 8) where
 * a subgroup takes them, while the caches hold the older positions; and one workgroup per kv head
 * (the last split, row 0, the group's first q head) writes the new keys and values into the caches
 * for the next steps. No workgroup reads a position another one writes. The arithmetic is
 * attn_prep's.
 * u6/u7 = the RoPE table's cos/sin offsets in step.tab, f1 = the norms' eps, DT their weights' type.
 *
 * HD (attention_d64 / _d128 / _d256: head_dim HD, subgroup shuffles, subgroups of 4 or more lanes):
 * the keys already in the cache go through fast_keys below, with 16-byte loads and every load of a
 * block in flight before its arithmetic; the step's own keys (FOLD) and the other head sizes take
 * the generic loop. In the generic loop a subgroup walks one key at a time (two 4-byte loads per
 * lane, then a reduction) and each invocation one value element per key, each a round trip: on an
 * H200 after 4096 positions it read the cache at 0.41 TB/s (163 us per llama2-7b layer). */
#extension GL_GOOGLE_include_directive : require
#ifdef HD
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
#endif
#ifdef HD
/* 128 invocations a q head, GQ = H / HKV's share of a kv head's q heads per workgroup (the host's
 * specialisation constant 2: 128 x GQ) */
layout(local_size_x_id = 2) in;
#define GQ (gl_WorkGroupSize.x / 128u)
#else
layout(local_size_x = 128) in;
#endif
layout(constant_id = 0) const int DT = 0;
#include "common.glsl"
#include "reduce.glsl"

#define BLK 64
#define MAXD 256

layout(set = 0, binding = 1, std430) readonly buffer Q { float q[]; };
/* The caches hold fp16 pairs of adjacent elements, one uint each (as the CUDA backend's): half the
 * bytes of f32 to read per key. Written only with FOLD, at the step's positions, which no workgroup
 * of it reads from here. */
layout(set = 0, binding = 2, std430) buffer KC { uint kc[]; };
layout(set = 0, binding = 4, std430) buffer VC { uint vc[]; };
layout(set = 0, binding = 7, std430) readonly buffer KR { float kr[]; };
layout(set = 0, binding = 8, std430) readonly buffer VR { float vr[]; };
layout(set = 0, binding = 9, std430) readonly buffer QN { uint qn[]; };
layout(set = 0, binding = 10, std430) readonly buffer KN { uint kn[]; };
/* coherent: the last workgroup of a (row, head) reads the other workgroups' partials */
layout(set = 0, binding = 3, std430) coherent buffer Part { float part[]; };
layout(set = 0, binding = 5, std430) writeonly buffer Out { float o[]; };
layout(set = 0, binding = 6, std430) coherent buffer Ticket { uint ticket[]; };

shared vec2 kp[MAXD / 2u]; /* FOLD: a new key's rotated pairs (i, i + D/2), for the fp16 cache */
#ifdef HD
#define FBLK (HD == 256u ? 64u : 128u) /* keys per block of fast_keys (<= 128) */
#define FAST_MIN 16u /* keys per split from which fast_keys takes the cache (see main) */
/* Slice g of the workgroup (128 invocations, whole subgroups) serves q head g of the workgroup's
 * GQ; its q at qs[g * HD], its scores at sc[g * FBLK]. */
shared float qs[HD * GQ];
shared float sc[GQ * FBLK];
#define MERGE_SLICES GQ
/* this invocation's slice and index within it, from its subgroup (never split between slices) */
uint slice_of()
{
	return gl_SubgroupID / (128u / gl_SubgroupSize);
}
uint slice_sg()
{
	return gl_SubgroupID % (128u / gl_SubgroupSize);
}
uint slice_t()
{
	return slice_sg() * gl_SubgroupSize + gl_SubgroupInvocationID;
}
#define SL_NSG (128u / gl_SubgroupSize)
/* sum / max of v over the slice (reduce.glsl over the slice's subgroups; every invocation of the
 * workgroup calls them) */
#define sl_sum(v) part_sum(v, slice_of() * SL_NSG, SL_NSG)
#define sl_max(v) part_max(v, slice_of() * SL_NSG, SL_NSG)
#define SCO (slice_of() * FBLK)
#define QO (slice_of() * HD)
#define LT slice_t()
#define LSG slice_sg()
#define LNSG SL_NSG
#define RSUM sl_sum
#else
shared float qs[MAXD];
shared float sc[BLK];
#define SCO 0u
#define QO 0u
#define LT gl_LocalInvocationID.x
#define LSG gl_SubgroupID
#define LNSG gl_NumSubgroups
#define RSUM wg_sum
#endif
shared uint is_last;

#include "attn_merge.glsl"

#define FOLD 16u
#define QNORM 1u
#define KNORM 2u
#define QROPE 4u
#define KROPE 8u
/* ILP (u5 & 32, AWQ_VK_ATTN_ILP=1): each subgroup's dot products four keys at a time (their loads
 * issued before the four reductions) and the value loop eight keys at a time (their loads before
 * the sums, the last group padded): the same arithmetic in the same order, so the same result bit
 * for bit. A short context leaves each workgroup a few keys, walked one load round trip at a time
 * without it. (Measured in session 14, before the padded last group, when a split of fewer than 8
 * keys still took the one-at-a-time loop: no gain.) */
#define ILP 32u

float nload(uint i, bool isq)
{
	const uint j = dt_word(i, DT);
	return dt_value(isq ? qn[j] : kn[j], i, DT);
}

/* FOLD: the pair (i, i + D/2) of a raw q or k head at base, of step row rr, normalised (with the
 * head's inv, 1 when not) and rotated as attn_prep.comp does */
vec2 prep_pair(float x1, float x2, uint i, uint D, uint rr, float inv, bool isq)
{
	const uint flags = pc.u5, half_d = D / 2u;
	if ((flags & (isq ? QNORM : KNORM)) != 0u) {
		x1 = x1 * inv * nload(i, isq);
		x2 = x2 * inv * nload(i + half_d, isq);
	}
	if ((flags & (isq ? QROPE : KROPE)) != 0u) {
		const float c = step.tab[pc.u6 + rr * half_d + i], sn = step.tab[pc.u7 + rr * half_d + i];
		return vec2(x1 * c - x2 * sn, x2 * c + x1 * sn);
	}
	return vec2(x1, x2);
}

/* FOLD: a head's norm scale from its sum of squares (as rmsnorm.comp) */
float head_inv(float ss, uint D)
{
	return 1.0 / sqrt(ss / float(D) + pc.f1);
}

/* This lane's share of q . k for key position `key` (the subgroup's lanes sum it): from the fp16
 * cache, or (FOLD) a key of this step, raw, normalised and rotated here. */
float key_dot(uint key, bool fold, uint pos, uint kvd, uint kh, uint D, uint HKV)
{
	const uint half_d = D / 2u;
	float d = 0.0;
	if (fold && key >= pos) {
		const uint rr = key - pos, rb = (rr * HKV + kh) * D;
		float inv = 1.0;
		if ((pc.u5 & KNORM) != 0u) {
			float ss = 0.0;
			for (uint i = gl_SubgroupInvocationID; i < D; i += gl_SubgroupSize)
				ss += kr[rb + i] * kr[rb + i];
			inv = head_inv(subgroupAdd(ss), D);
		}
		for (uint i = gl_SubgroupInvocationID; i < half_d; i += gl_SubgroupSize) {
			const vec2 y = prep_pair(kr[rb + i], kr[rb + i + half_d], i, D, rr, inv, false);
			d += qs[QO + i] * y.x + qs[QO + i + half_d] * y.y;
		}
	} else {
		const uint kb = key * kvd + kh * D;
		for (uint i = gl_SubgroupInvocationID; i < half_d; i += gl_SubgroupSize) {
			const vec2 kk = unpackHalf2x16(kc[kb / 2u + i]);
			d += qs[QO + 2u * i] * kk.x + qs[QO + 2u * i + 1u] * kk.y;
		}
	}
	return d;
}

/* Element e of the value at key position `key`: from the fp16 cache, or (FOLD) this step's, raw. */
float vval(uint key, uint e, bool fold, uint pos, uint kvd, uint kh, uint D)
{
	if (fold && key >= pos)
		return vr[(key - pos) * kvd + kh * D + e];
	const uint vb = key * kvd + kh * D;
	return unpackHalf2x16(vc[(vb + e) / 2u])[e & 1u];
}

#ifdef HD
/* The caches as 16-byte words (8 fp16 elements in order), aliasing bindings 2 and 4. */
layout(set = 0, binding = 2, std430) readonly buffer KC4 { uvec4 kc4[]; };
layout(set = 0, binding = 4, std430) readonly buffer VC4 { uvec4 vc4[]; };
#define NQ (HD / 32u)  /* 16-byte pieces of a key per lane (four lanes a key) */
#define TPK (HD / 8u)  /* invocations a value (one 16-byte piece each) */
#define KG (128u / TPK) /* values at once */
#define VI (FBLK / KG) /* values per invocation and block */
shared float vred[GQ * 128u * 8u]; /* the value groups' sums, [slice][group][HD] */

float dot8(uvec4 w, vec4 a, vec4 b)
{
	return dot(a, vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y))) + dot(b, vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)));
}

/* Keys [beg, fend), all in the cache, for the online softmax state (m, l) and this invocation's
 * output elements t and t + 128 (acc0, acc1, which start at 0). Per block of FBLK keys:
 * - scores: four lanes a key (32 keys per round), lane ql taking the key's 16-byte pieces ql, ql + 4,
 *   ..., so that the four read 64 contiguous bytes per load; every round's loads of the block go out
 *   before the first dot product, and two shuffles sum the four lanes' parts;
 * - the block's max and sum over the workgroup; invocation t keeps score t;
 * - values: TPK invocations a value (16 bytes each, coalesced), KG values at once, VI per invocation,
 *   all loaded before they are summed, into 8 accumulators per invocation,
 * then the KG groups' accumulators meet in shared memory once, at the end. Loads past the block are
 * clamped to its last key and weighted 0. */
void fast_keys(uint beg, uint fend, uint kvd, uint kh, inout float m, inout float l, out float acc0, out float acc1)
{
	const uint t = LT, so = SCO, qo = QO, vo = slice_of() * 1024u;
	const uint li = t, ql = li & 3u, slot = li >> 2u;
	const uint kv4 = kvd / 8u, kb4 = kh * (HD / 8u);
	vec4 qa[NQ], qb[NQ];
	[[unroll]] for (uint i = 0u; i < NQ; i++) {
		const uint d0 = 8u * (ql + 4u * i);
		qa[i] = vec4(qs[qo + d0], qs[qo + d0 + 1u], qs[qo + d0 + 2u], qs[qo + d0 + 3u]);
		qb[i] = vec4(qs[qo + d0 + 4u], qs[qo + d0 + 5u], qs[qo + d0 + 6u], qs[qo + d0 + 7u]);
	}
	const uint vp = t % TPK, vg = t / TPK;
	float va[8];
	[[unroll]] for (uint e = 0u; e < 8u; e++)
		va[e] = 0.0;
	for (uint b0 = beg; b0 < fend; b0 += FBLK) {
		const uint nb = min(FBLK, fend - b0);
		uvec4 kw[FBLK / 32u][NQ];
		[[unroll]] for (uint r = 0u; r < FBLK / 32u; r++) {
			const uint kb = (b0 + min(r * 32u + slot, nb - 1u)) * kv4 + kb4 + ql;
			[[unroll]] for (uint i = 0u; i < NQ; i++)
				kw[r][i] = kc4[kb + 4u * i];
		}
		[[unroll]] for (uint r = 0u; r < FBLK / 32u; r++) {
			float d = 0.0;
			[[unroll]] for (uint i = 0u; i < NQ; i++)
				d += dot8(kw[r][i], qa[i], qb[i]);
			d += subgroupShuffleXor(d, 1u);
			d += subgroupShuffleXor(d, 2u);
			if (ql == 0u && r * 32u + slot < nb)
				sc[so + r * 32u + slot] = d * pc.f0;
		}
		barrier();
		const float s = t < nb ? sc[so + t] : -1.0e30;
		const float bm = max(m, sl_max(s)); /* (its barriers order the reads of sc before the writes) */
		const float alpha = exp(m - bm), p = t < nb ? exp(s - bm) : 0.0;
		if (t < nb)
			sc[so + t] = p;
		l = l * alpha + sl_sum(p); /* (and these the writes before the reads below) */
		uvec4 vw[VI];
		[[unroll]] for (uint u = 0u; u < VI; u++)
			vw[u] = vc4[(b0 + min(vg + u * KG, nb - 1u)) * kv4 + kb4 + vp];
		[[unroll]] for (uint e = 0u; e < 8u; e++)
			va[e] *= alpha;
		[[unroll]] for (uint u = 0u; u < VI; u++) {
			const float pj = vg + u * KG < nb ? sc[so + vg + u * KG] : 0.0;
			const vec2 a = unpackHalf2x16(vw[u].x), b = unpackHalf2x16(vw[u].y);
			const vec2 c = unpackHalf2x16(vw[u].z), d = unpackHalf2x16(vw[u].w);
			va[0] += pj * a.x;
			va[1] += pj * a.y;
			va[2] += pj * b.x;
			va[3] += pj * b.y;
			va[4] += pj * c.x;
			va[5] += pj * c.y;
			va[6] += pj * d.x;
			va[7] += pj * d.y;
		}
		m = bm;
		barrier(); /* the next block rewrites sc */
	}
	[[unroll]] for (uint e = 0u; e < 8u; e++)
		vred[vo + vg * HD + vp * 8u + e] = va[e];
	barrier();
	acc0 = 0.0;
	acc1 = 0.0;
	for (uint g = 0u; g < KG; g++) {
		if (t < HD)
			acc0 += vred[vo + g * HD + t];
		if (t + 128u < HD)
			acc1 += vred[vo + g * HD + t + 128u];
	}
	barrier();
}
#endif

/* u0 = n_heads, u1 = n_kv_heads, u2 = head_dim, u3 = splits, u4 = merge here, f0 = scale; FOLD: u5
 * flags (and ILP), u6/u7 RoPE table offsets, f1 eps */
void main()
{
	const uint H = pc.u0, HKV = pc.u1, D = pc.u2, S = pc.u3, t = LT;
#ifdef HD
	/* the workgroup's q heads h0 .. h0 + GQ - 1 (of one kv head: the host's GQ divides H / HKV), this
	 * slice's h */
	const uint h0 = gl_WorkGroupID.y * GQ, h = h0 + slice_of();
#else
	const uint h0 = gl_WorkGroupID.y, h = h0;
#endif
	const uint s = gl_WorkGroupID.x, r = gl_WorkGroupID.z;
	const uint kvd = HKV * D, kh = h / (H / HKV);
	const bool fold = (pc.u5 & FOLD) != 0u;
	const uint pos = uint(step.pos), half_d = D / 2u, L = pos + r + 1u;
#ifdef HD
	/* From FAST_MIN keys per split on (the cache's keys, positions below pos, over the splits of
	 * the host's count, which is S - 1 with FOLD) fast_keys takes the cache splits: at least a block
	 * of keys each (fast_keys takes a block in about the time of one key, its loads all in flight), the
	 * rest empty; with FOLD split S - 1 takes the step's own keys (pos .. L - 1, raw, on the generic
	 * loop), so that no workgroup does both kinds of work one after the other. Below that the generic
	 * loop takes all S splits, as in the plain variant: on an H200 the HD form was 2.5-3.7% slower
	 * in decode after 16-80 positions (3 us per layer), and fast_keys pays once a split holds ~16 keys
	 * or more (the generic loop's ~0.25 us per key per split after 4096 positions). pos decides, so
	 * every row of the step takes the same form. */
	const uint SC = fold ? S - 1u : S, CL = fold ? pos : L;
	const bool fast = pos >= FAST_MIN * SC;
	const uint chunk = fast ? max((CL + SC - 1u) / SC, FBLK) : (L + S - 1u) / S;
	const uint beg = !fast || s < SC ? min(fast ? CL : L, s * chunk) : pos;
	const uint end = !fast || s < SC ? min(fast ? CL : L, beg + chunk) : L;
	const uint writer = fast ? SC - 1u : S - 1u; /* FOLD's cache writer: a light workgroup */
#else
	const uint chunk = (L + S - 1u) / S, beg = min(L, s * chunk), end = min(L, beg + chunk), writer = S - 1u;
#endif
	if (fold) {
		/* the step's new keys and values into the caches, once per kv head, by one split (the last
		 * one, or HD's last cache split: at most a chunk of keys, often fewer: the lightest
		 * workgroup); uniform per workgroup, its first slice's work */
		const bool w0 = h == h0;
		if (s == writer && r == 0u && h0 % (H / HKV) == 0u) {
			for (uint rr = 0u; rr < gl_NumWorkGroups.z; rr++) {
				const uint kb = (rr * HKV + kh) * D, dst = (pos + rr) * kvd + kh * D;
				const float x1 = t < half_d ? kr[kb + t] : 0.0, x2 = t < half_d ? kr[kb + t + half_d] : 0.0;
				float inv = 1.0;
				if ((pc.u5 & KNORM) != 0u)
					inv = head_inv(RSUM(x1 * x1 + x2 * x2), D);
				if (w0 && t < half_d)
					kp[t] = prep_pair(x1, x2, t, D, rr, inv, false);
				barrier();
				/* word w: elements 2w, 2w + 1 (dst is even: D is a multiple of 4) */
				if (w0 && t < half_d / 2u) {
					kc[dst / 2u + t] = packHalf2x16(vec2(kp[2u * t].x, kp[2u * t + 1u].x));
					kc[dst / 2u + half_d / 2u + t] = packHalf2x16(vec2(kp[2u * t].y, kp[2u * t + 1u].y));
				}
				if (w0 && t < half_d)
					vc[dst / 2u + t] = packHalf2x16(vec2(vr[kb + 2u * t], vr[kb + 2u * t + 1u]));
				barrier(); /* kp again for the next row */
			}
		}
		const uint qb = (r * H + h) * D;
		const float x1 = t < half_d ? q[qb + t] : 0.0, x2 = t < half_d ? q[qb + t + half_d] : 0.0;
		float inv = 1.0;
		if ((pc.u5 & QNORM) != 0u)
			inv = head_inv(RSUM(x1 * x1 + x2 * x2), D);
		if (t < half_d) {
			const vec2 y = prep_pair(x1, x2, t, D, r, inv, true);
			qs[QO + t] = y.x;
			qs[QO + t + half_d] = y.y;
		}
	} else {
		for (uint d = t; d < D; d += 128u)
			qs[QO + d] = q[(r * H + h) * D + d];
	}
	barrier();
	float m = -1.0e30, l = 0.0, acc0 = 0.0, acc1 = 0.0;
	uint gbeg = beg; /* the generic loop's first key */
#ifdef HD
	/* the cache splits' keys here, FOLD's split of this step's keys in the generic loop */
	if (fast && s < SC) {
		gbeg = end;
		if (end > beg)
			fast_keys(beg, end, kvd, kh, m, l, acc0, acc1);
	}
#endif
	const bool ilp = (pc.u5 & ILP) != 0u;
	for (uint b0 = gbeg; b0 < end; b0 += BLK) {
		uint nb = min(BLK, end - b0);
		if (ilp) {
			for (uint j = LSG; j < nb; j += 4u * LNSG) {
				float d[4];
				for (uint u = 0u; u < 4u; u++) { /* uniform per subgroup */
					const uint jj = j + u * LNSG;
					d[u] = jj < nb ? key_dot(b0 + jj, fold, pos, kvd, kh, D, HKV) : 0.0;
				}
				for (uint u = 0u; u < 4u; u++) {
					const uint jj = j + u * LNSG;
					const float ds = subgroupAdd(d[u]);
					if (jj < nb && subgroupElect())
						sc[SCO + jj] = ds * pc.f0;
				}
			}
		} else {
			for (uint j = LSG; j < nb; j += LNSG) {
				const float d = subgroupAdd(key_dot(b0 + j, fold, pos, kvd, kh, D, HKV));
				if (subgroupElect())
					sc[SCO + j] = d * pc.f0;
			}
		}
		barrier();
		float bm = m;
		for (uint j = 0u; j < nb; j++)
			bm = max(bm, sc[SCO + j]);
		float alpha = exp(m - bm);
		barrier();
		if (t < nb)
			sc[SCO + t] = exp(sc[SCO + t] - bm);
		barrier();
		l *= alpha;
		acc0 *= alpha;
		acc1 *= alpha;
		uint j = 0u;
		/* (ILP: the block's last, partial group of eight too, its loads clamped to the block's last
		 * key and its missing keys weighted 0: a short context leaves each split a few keys, which
		 * the one-at-a-time loop below took one load round trip each. p * v + acc with p = 0 is acc,
		 * so the sums are those of that loop bit for bit.) */
		if (ilp)
			for (; j < nb; j += 8u) {
				float v0[8], v1[8];
				for (uint u = 0u; u < 8u; u++) {
					const uint jj = min(j + u, nb - 1u);
					v0[u] = t < D ? vval(b0 + jj, t, fold, pos, kvd, kh, D) : 0.0;
					v1[u] = t + 128u < D ? vval(b0 + jj, t + 128u, fold, pos, kvd, kh, D) : 0.0;
				}
				for (uint u = 0u; u < 8u; u++) {
					const float p = j + u < nb ? sc[SCO + j + u] : 0.0;
					l += p;
					if (t < D)
						acc0 += p * v0[u];
					if (t + 128u < D)
						acc1 += p * v1[u];
				}
			}
		for (; j < nb; j++) {
			float p = sc[SCO + j];
			l += p;
			if (t < D)
				acc0 += p * vval(b0 + j, t, fold, pos, kvd, kh, D);
			if (t + 128u < D)
				acc1 += p * vval(b0 + j, t + 128u, fold, pos, kvd, kh, D);
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
	/* one ticket per workgroup (its GQ heads' partials), at its first head's slot */
	if (gl_LocalInvocationIndex == 0u)
		is_last = atomicAdd(ticket[r * H + h0], 1u) == S - 1u ? 1u : 0u;
	barrier();
	if (is_last == 0u)
		return;
	/* acquire: the other workgroups' partials, fenced before their tickets; each slice merges
	 * its head */
	memoryBarrierBuffer();
#ifdef HD
	merge((r * H + h) * S * (D + 2u), S, D, ob, t, 128u, slice_of() * MERGE_MAXS);
#else
	merge((r * H + h) * S * (D + 2u), S, D, ob, t, gl_WorkGroupSize.x, 0u);
#endif
	if (gl_LocalInvocationIndex == 0u)
		ticket[r * H + h0] = 0u;
}

/* The residual add and whole-row RMSNorm in front of a decode mat-vec (the NORM variants of
 * matvec.comp and matvec_q4k.comp, one-row steps): instead of an add_rmsnorm dispatch, a barrier
 * and then the mat-vec, every workgroup of the mat-vec forms x = (a + b) / rms(a + b) * w itself
 * into shared memory and reads its activations from there. On an H200 a dependent Vulkan dispatch
 * costs ~4.7 us however small it is (awq-vk-bench --barrier on one workgroup), while each workgroup
 * reads x whole anyway (32 KB of a and b from L2 for K = 4096).
 *
 * One round trip to memory and one barrier: each invocation loads its share of a, b and the norm
 * weight w at once, stores (a + b) * w to shared memory and sums (a + b)^2; the scale 1 / rms comes
 * out of the barrier's partial sums, and the mat-vec multiplies each activation it reads by it
 * (pn_x), so that the packed-fp16 dots see normalised values as with the separate norm (the
 * product is rounded in the other order: (v w) s against (v s) w). A first form (08d1e8e) with a
 * second pass over shared memory for the scale, the norm weight loaded there one round trip per
 * element group, and x stored chunk after chunk (every lane of a subgroup reading the same banks)
 * made llama2-7b decode 2.2x slower on an H200.
 *
 * Layout in shared memory: vec4 i of 32-element chunk c at xs4[i * C + c] (C = K / 32 chunks), so
 * that the lanes of a subgroup, which read consecutive chunks, read consecutive vec4s.
 *
 * a is the mat-vec's activation binding (1, x4), b binding 8, the norm weight binding 9 (of type
 * DT, specialisation constant 0, which the 4-bit mat-vecs do not use otherwise), and with u5 != 0
 * the first workgroup also writes the sum a + b to binding 10 (the residual stream the next add
 * reads, several barriers later). f0 = eps. K <= 4 * NORM_K4 and a multiple of 32 (the host
 * checks). Every invocation of the workgroup must call prenorm (it has a barrier). */
layout(set = 0, binding = 8, std430) readonly buffer NormB { vec4 nb4[]; };
layout(set = 0, binding = 9, std430) readonly buffer NormW { uint nw[]; };
layout(set = 0, binding = 10, std430) writeonly buffer NormSum { vec4 ns4[]; };

/* vec4s of x in shared memory: K <= 6144 (VK_PRENORM_MAXK on the host), 24 KB, which with the
 * K-split kernel's 2 KB of partial sums fits lavapipe's 32 KB of shared memory */
#define NORM_K4 1536u
#define PN_U 8u /* vec4s per invocation whose loads go out together */
shared vec4 xs4[NORM_K4];
shared float pn_red[64];

vec4 norm_w4(uint i) /* the norm weights 4i .. 4i + 3 */
{
	if (DT == DT_F32)
		return uintBitsToFloat(uvec4(nw[4u * i], nw[4u * i + 1u], nw[4u * i + 2u], nw[4u * i + 3u]));
	const uint lo = nw[2u * i], hi = nw[2u * i + 1u];
	return vec4(widen16(lo & 0xffffu, DT), widen16(lo >> 16, DT), widen16(hi & 0xffffu, DT), widen16(hi >> 16, DT));
}

/* Returns the scale 1 / rms(a + b); xs4 holds (a + b) * w. */
float prenorm(uint K, float eps, bool write_sum)
{
	const uint t = gl_LocalInvocationID.x, WG = gl_WorkGroupSize.x, K4 = K / 4u, C = K / 32u;
	float ss = 0.0;
	for (uint i0 = t; i0 < K4; i0 += PN_U * WG) {
		vec4 v[PN_U], w[PN_U];
		/* every load first: the stores below (shared, and the sum in global memory, which may
		 * alias a load for all the compiler knows) come after all of them */
		[[unroll]] for (uint u = 0u; u < PN_U; u++) {
			const uint i = min(i0 + u * WG, K4 - 1u);
			v[u] = x4[i] + nb4[i];
			w[u] = norm_w4(i);
		}
		[[unroll]] for (uint u = 0u; u < PN_U; u++) {
			const uint i = i0 + u * WG;
			if (i < K4) {
				ss += v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w;
				xs4[(i % 8u) * C + i / 8u] = v[u] * w[u];
				if (write_sum)
					ns4[i] = v[u];
			}
		}
	}
	ss = subgroupAdd(ss);
	if (subgroupElect())
		pn_red[gl_SubgroupID] = ss;
	barrier();
	float tot = 0.0;
	for (uint s = 0u; s < gl_NumSubgroups; s++)
		tot += pn_red[s];
	return 1.0 / sqrt(tot / float(K) + eps);
}

/* vec4 i of chunk c of the normalised x */
#define PN_X(c, i, C, scale) (xs4[(i) * (C) + (c)] * (scale))

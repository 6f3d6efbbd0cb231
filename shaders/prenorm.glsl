/* The residual add and whole-row RMSNorm in front of a decode mat-vec (the NORM variants of
 * matvec.comp and matvec_q4k.comp, one-row steps): instead of an add_rmsnorm dispatch, a barrier
 * and then the mat-vec, every workgroup of the mat-vec forms x = (a + b) / rms(a + b) * w itself
 * into shared memory and reads its activations from there. On an H200 a dependent Vulkan dispatch
 * costs ~4.7 us however small it is (awq-vk-bench --barrier on one workgroup), while each workgroup
 * reads x whole anyway (32 KB of a and b from L2 for K = 4096).
 *
 * a is the mat-vec's activation binding (1, x4), b binding 8, the norm weight binding 9 (of type
 * DT, specialisation constant 0, which the 4-bit mat-vecs do not use otherwise), and with u5 != 0
 * the first workgroup also writes the sum a + b to binding 10 (the residual stream the next add
 * reads, several barriers later). f0 = eps. K <= 4 * NORM_K4 (the host checks). Every invocation of
 * the workgroup must call prenorm (it has barriers). */
layout(set = 0, binding = 8, std430) readonly buffer NormB { vec4 nb4[]; };
layout(set = 0, binding = 9, std430) readonly buffer NormW { uint nw[]; };
layout(set = 0, binding = 10, std430) writeonly buffer NormSum { vec4 ns4[]; };

/* vec4s of x in shared memory: K <= 6144 (VK_PRENORM_MAXK on the host), 24 KB, which with the
 * K-split kernel's 2 KB of partial sums fits lavapipe's 32 KB of shared memory */
#define NORM_K4 1536u
#define PN_U 8u	      /* loads per invocation in flight in the first pass */
shared vec4 xs4[NORM_K4];
shared float pn_red[64];

vec4 norm_w4(uint i) /* the norm weights 4i .. 4i + 3 */
{
	if (DT == DT_F32)
		return uintBitsToFloat(uvec4(nw[4u * i], nw[4u * i + 1u], nw[4u * i + 2u], nw[4u * i + 3u]));
	const uint lo = nw[2u * i], hi = nw[2u * i + 1u];
	return vec4(widen16(lo & 0xffffu, DT), widen16(lo >> 16, DT), widen16(hi & 0xffffu, DT), widen16(hi >> 16, DT));
}

void prenorm(uint K, float eps, bool write_sum)
{
	const uint t = gl_LocalInvocationID.x, WG = gl_WorkGroupSize.x, K4 = K / 4u;
	/* first pass: a + b into shared memory (stores that alias no global load, so the PN_U pairs of
	 * loads of an invocation go out together), and the sum of squares as rmsnorm.comp forms it */
	float ss = 0.0;
	for (uint i0 = t; i0 < K4; i0 += PN_U * WG) {
		[[unroll]] for (uint u = 0u; u < PN_U; u++) {
			const uint i = i0 + u * WG;
			if (i < K4) {
				const vec4 v = x4[i] + nb4[i];
				xs4[i] = v;
				ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
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
	const float inv = 1.0 / sqrt(tot / float(K) + eps);
	/* second pass: each invocation scales the elements it stored (and writes the sum from them) */
	for (uint i = t; i < K4; i += WG) {
		const vec4 v = xs4[i];
		if (write_sum)
			ns4[i] = v;
		xs4[i] = v * inv * norm_w4(i);
	}
	barrier();
}

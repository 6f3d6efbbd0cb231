/* The residual add and whole-row RMSNorm in front of a decode mat-vec (the NORM variants of
 * matvec.comp and matvec_q4k.comp, one-row steps): instead of an add_rmsnorm dispatch, a barrier
 * and then the mat-vec, the mat-vec reads a, b and the norm weight w where it read x, and forms
 * x = (a + b) * w / rms(a + b) itself. On an H200 a dependent Vulkan dispatch costs ~4.7 us however
 * small it is (awq-vk-bench --barrier on one workgroup).
 *
 * No pass before the mat-vec: the norm's scale 1 / rms is one factor of every output, so the dots
 * run on (a + b) * w and the sum of squares of a + b goes along with them, reduced with the dots'
 * own partial sums; the output is scaled at the end. So that the packed-fp16 dots never see large
 * values (the residual stream of a real model reaches the thousands), each 32-element chunk is
 * brought into [-1, 1) by a power of two (exact), which the chunk's dots take back.
 *
 * (A first form, 08d1e8e and 727e1e6, copied the normalised row into 24 KB of shared memory per
 * workgroup before the mat-vec: with the mat-vecs' 64-invocation workgroups that capped the
 * workgroups per SM, and llama2-7b decode ran 2.1x slower on an H200.)
 *
 * a is the mat-vec's activation binding (1, x4), b binding 8, the norm weight binding 9 (of type
 * DT, specialisation constant 0, which the 4-bit mat-vecs do not use otherwise); with u5 != 0 the
 * first workgroup also writes the sum a + b to binding 10 (pn_write_sum, at its end: the residual
 * stream the next add reads, several barriers later). f0 = eps. */
layout(set = 0, binding = 8, std430) readonly buffer NormB { vec4 nb4[]; };
layout(set = 0, binding = 9, std430) readonly buffer NormW { uint nw[]; };
layout(set = 0, binding = 10, std430) writeonly buffer NormSum { vec4 ns4[]; };

vec4 norm_w4(uint i) /* the norm weights 4i .. 4i + 3 */
{
	if (DT == DT_F32)
		return uintBitsToFloat(uvec4(nw[4u * i], nw[4u * i + 1u], nw[4u * i + 2u], nw[4u * i + 3u]));
	const uint lo = nw[2u * i], hi = nw[2u * i + 1u];
	return vec4(widen16(lo & 0xffffu, DT), widen16(lo >> 16, DT), widen16(hi & 0xffffu, DT), widen16(hi >> 16, DT));
}

/* The chunk of 32 elements from vec4 o: xv = (a + b) * w / sig, sig a power of two with the
 * chunk's largest magnitude in [sig / 2, sig) (1 for an all-zero chunk); the squares of a + b are
 * added to ss. */
void pn_chunk(uint o, out vec4 xv[8], out float sig, inout float ss)
{
	vec4 v[8], w[8];
	[[unroll]] for (uint i = 0u; i < 8u; i++) {
		v[i] = x4[o + i] + nb4[o + i];
		w[i] = norm_w4(o + i);
	}
	vec4 m = vec4(0.0);
	[[unroll]] for (uint i = 0u; i < 8u; i++) {
		ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
		xv[i] = v[i] * w[i];
		m = max(m, abs(xv[i]));
	}
	int e;
	const float mx = max(max(m.x, m.y), max(m.z, m.w));
	frexp(mx, e); /* mx = f 2^e, f in [0.5, 1) */
	sig = mx > 0.0 ? ldexp(1.0, e) : 1.0;
	const float r = mx > 0.0 ? ldexp(1.0, -e) : 1.0;
	[[unroll]] for (uint i = 0u; i < 8u; i++)
		xv[i] *= r;
}

/* 1 / rms from the whole row's sum of squares (K elements), as rmsnorm.comp */
float pn_scale(float ss, uint K, float eps)
{
	return 1.0 / sqrt(ss / float(K) + eps);
}

/* The first workgroup of the first reader writes a + b (K / 4 vec4s), after its mat-vec work. */
void pn_write_sum(uint K)
{
	if (pc.u5 == 0u || flat_group() != 0u)
		return;
	for (uint i = gl_LocalInvocationID.x; i < K / 4u; i += gl_WorkGroupSize.x)
		ns4[i] = x4[i] + nb4[i];
}

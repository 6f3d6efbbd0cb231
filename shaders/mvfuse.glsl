/* Decode fusions of the mat-vec shaders (matvec.comp, matvec_q4k.comp) around a residual ADD and
 * the whole-row RMSNORM after it (plan_resnorm). FUSE_NORM comes from specialisation constant 2 =
 * bias dtype | FUSE << 4 | norm weight dtype << 8 (mv_spec2 on the host), FUSE_RES from the
 * variants compiled with RESFUSE (*_res): only those declare the scale buffer writable, so that the
 * readers (q, k and v run without barriers between them) only read it, also to the validation
 * layer's synchronization checks, which take a writable binding as written whatever the constants.
 *   FUSE_RES:  the producer (o or down projection): out = x W^T + bias + res (res at binding 8),
 *              and the norm's scale of each row of out, 1 / sqrt(mean(out^2) + eps) (eps in f0),
 *              into the pair's scale buffer (binding 10): every workgroup writes the sum of squares
 *              of its outputs, fences it and takes a ticket; the workgroup that takes the last one
 *              sums them (in a fixed order: the result does not depend on timing), writes the
 *              scales and puts the ticket back to 0 (the attention merge's pattern);
 *   FUSE_NORM: a reader of the norm (q/k/v, fused gate/up): x is the ADD's sum, scaled on load by
 *              the row's scale from binding 10 and the norm weight (binding 9), before any fp16
 *              arithmetic, so the products see normalised activations as without the fusion.
 * The scale is one load per row next to the x loads: the reader's first loads wait for nothing
 * more than before. (Computing it in the reader from x itself cost a round trip per chunk of K at
 * the start of every workgroup: gate/up 34.5 -> 68.1 us per call on an H200.) */
layout(constant_id = 2) const int SPEC2 = 0;
const int BDT = SPEC2 & 15;
const int FUSE = (SPEC2 >> 4) & 15;
const int NDT = (SPEC2 >> 8) & 15;
#define FUSE_NORM 2

layout(set = 0, binding = 8, std430) readonly buffer Res { float res[]; };
layout(set = 0, binding = 9, std430) readonly buffer NormW { uint normw[]; };
#ifdef RESFUSE
/* coherent: the last workgroup reads the others' partial sums */
layout(set = 0, binding = 10, std430) coherent buffer NormScale {
#else
layout(set = 0, binding = 10, std430) readonly buffer NormScale {
#endif
	uint ns_ticket;
	uint ns_pad[3];
	float ns_scale[4]; /* per row of x (MAXR = 4) */
	float ns_part[];   /* [row][workgroup] */
} ns;

/* the norm weights of columns k..k+3 (k a multiple of 4) */
vec4 norm_w4(uint k)
{
	if (NDT == DT_F32)
		return uintBitsToFloat(uvec4(normw[k], normw[k + 1u], normw[k + 2u], normw[k + 3u]));
	const uint a = normw[k >> 1], b = normw[(k >> 1) + 1u];
	return vec4(widen16(a & 0xffffu, NDT), widen16(a >> 16, NDT), widen16(b & 0xffffu, NDT), widen16(b >> 16, NDT));
}

#ifdef RESFUSE
shared float ns_red[64u * 4u]; /* per subgroup (reduce.glsl's 64 at most), per row */
shared uint ns_last;

/* FUSE_RES, called by every invocation of every workgroup that has outputs (uniformly): sq[r] is
 * this invocation's sum of squares of the outputs it stored for row r; wg is the workgroup's
 * index among the n_wg that have outputs, N the row length. */
void ns_finish(float sq[4], uint rows, uint wg, uint n_wg, uint N)
{
	const uint t = gl_LocalInvocationID.x;
	[[unroll]] for (uint r = 0u; r < 4u; r++) {
		const float v = subgroupAdd(sq[r]);
		if (subgroupElect())
			ns_red[gl_SubgroupID * 4u + r] = v;
	}
	barrier();
	if (t < rows) {
		float v = 0.0;
		for (uint s = 0u; s < gl_NumSubgroups; s++)
			v += ns_red[s * 4u + t];
		ns.ns_part[t * n_wg + wg] = v;
	}
	/* release: the partials before the ticket */
	memoryBarrierBuffer();
	barrier();
	if (t == 0u)
		ns_last = atomicAdd(ns.ns_ticket, 1u) == n_wg - 1u ? 1u : 0u;
	barrier();
	if (ns_last == 0u)
		return;
	/* acquire: the other workgroups' partials, fenced before their tickets */
	memoryBarrierBuffer();
	float tot[4];
	[[unroll]] for (uint r = 0u; r < 4u; r++)
		tot[r] = 0.0;
	for (uint i = t; i < n_wg; i += gl_WorkGroupSize.x)
		[[unroll]] for (uint r = 0u; r < 4u; r++)
			if (r < rows)
				tot[r] += ns.ns_part[r * n_wg + i];
	barrier(); /* ns_red is reused */
	[[unroll]] for (uint r = 0u; r < 4u; r++) {
		const float v = subgroupAdd(tot[r]);
		if (subgroupElect())
			ns_red[gl_SubgroupID * 4u + r] = v;
	}
	barrier();
	if (t < rows) {
		float v = 0.0;
		for (uint s = 0u; s < gl_NumSubgroups; s++)
			v += ns_red[s * 4u + t];
		ns.ns_scale[t] = 1.0 / sqrt(v / float(N) + pc.f0); /* as rmsnorm.comp */
	}
	if (t == 0u)
		ns.ns_ticket = 0u;
}
#endif

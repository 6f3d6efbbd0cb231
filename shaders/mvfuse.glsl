/* Decode fusions of the mat-vec shaders (matvec.comp, matvec_q4k.comp), chosen by specialisation
 * constant 2 = bias dtype | FUSE << 4 | norm weight dtype << 8 (vk_mv_spec on the host):
 *   FUSE_RES:  out = x W^T + bias + res, res at binding 8 (the residual ADD after an o or down
 *              projection, in the projection's store: the ADD's dispatch and barrier go away);
 *   FUSE_NORM: x is the input of a whole-row RMSNORM (weight at binding 9, eps in f0) that the
 *              mat-vec applies itself: x * w on load, the row's 1 / sqrt(mean(x^2) + eps) from the
 *              same loads. The scale is taken before the products so that the fp16 arithmetic sees
 *              normalised activations, as without the fusion (a residual stream of a few thousand
 *              would overflow fp16 products). */
layout(constant_id = 2) const int SPEC2 = 0;
const int BDT = SPEC2 & 15;
const int FUSE = (SPEC2 >> 4) & 15;
const int NDT = (SPEC2 >> 8) & 15;
#define FUSE_RES 1
#define FUSE_NORM 2

layout(set = 0, binding = 8, std430) readonly buffer Res { float res[]; };
layout(set = 0, binding = 9, std430) readonly buffer NormW { uint normw[]; };

/* the norm weights of columns k..k+3 (k a multiple of 4) */
vec4 norm_w4(uint k)
{
	if (NDT == DT_F32)
		return uintBitsToFloat(uvec4(normw[k], normw[k + 1u], normw[k + 2u], normw[k + 3u]));
	const uint a = normw[k >> 1], b = normw[(k >> 1) + 1u];
	return vec4(widen16(a & 0xffffu, NDT), widen16(a >> 16, NDT), widen16(b & 0xffffu, NDT), widen16(b >> 16, NDT));
}

/* 1 / sqrt(mean(x^2) + eps) of a row, from its sum of squares over K columns (as rmsnorm.comp) */
float norm_inv(float ss, uint K)
{
	return 1.0 / sqrt(ss / float(K) + pc.f0);
}

/* The 4-bit dot products of the mat-vec shaders (matvec.comp, matvec_q4k.comp): 32 activations
 * with the 32 nibbles of four words (nibble e of word i is k = 8i + e), minus the group's zero;
 * the caller applies the scale. */
float dq(uint word, uint e, float mz)
{
	return uintBitsToFloat(0x4B000000u | ((word >> (4u * e)) & 15u)) - mz;
}

/* Dot of 32 activations (8 vec4) with 32 nibbles (4 words) minus the zero. */
float dot32(uvec4 w, vec4 xv[8], float m)
{
	float d = 0.0;
	[[unroll]] for (uint i = 0u; i < 4u; i++) {
		const uint wd = w[i];
		const vec4 xa = xv[2u * i], xc = xv[2u * i + 1u];
		d += xa.x * dq(wd, 0u, m) + xa.y * dq(wd, 1u, m) + xa.z * dq(wd, 2u, m) + xa.w * dq(wd, 3u, m);
		d += xc.x * dq(wd, 4u, m) + xc.y * dq(wd, 5u, m) + xc.z * dq(wd, 6u, m) + xc.w * dq(wd, 7u, m);
	}
	return d;
}

#ifdef Q8DOT
/* The same dot on int8 activations (matvec_*_q8; shaderIntegerDotProduct): a 32-k chunk of x is
 * rounded to int8 with the scale max|x| / 127 (as the CPU backend's SIMD path, per block of 32),
 * then each weight word makes two 4 x 8-bit packed dots: its low nibbles (k = 8i + 0, 2, 4, 6, bytes
 * 0..3 of w & 0x0F0F0F0F, values 0..15 as signed bytes) with the even activations and its high
 * nibbles with the odd ones. The zero comes off once per chunk: sum (q - z) x = sum q x - z sum x.
 * About 20 instructions per 32 weights against dot32h's ~75, yet 4% slower llama2-7b decode on an
 * H200 (the mat-vecs are not ALU-bound there): a knob, AWQ_VK_Q8=1. The rounding of x costs ~0.4%
 * relative on a dot of random data (mm_tol). OpSDot through GL_EXT_spirv_intrinsics: this glslang
 * (12) has no GL_EXT_integer_dot_product. */
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8(uint a, uint b, spirv_literal int packed_format); /* OpSDot, PackedVectorFormat4x8Bit = 0 */

/* x_q8: the chunk's activations as int8 (xq[2i]: even k of word i, xq[2i + 1]: odd), their scale
 * and the sum of the int8 values */
void x_q8(vec4 xv[8], out uint xq[8], out float xd, out int xs)
{
	vec4 m = abs(xv[0]);
	[[unroll]] for (uint i = 1u; i < 8u; i++)
		m = max(m, abs(xv[i]));
	const float amax = max(max(m.x, m.y), max(m.z, m.w));
	const float inv = amax > 0.0 ? 1.0 / amax : 0.0;
	xd = amax / 127.0;
	xs = 0;
	[[unroll]] for (uint i = 0u; i < 4u; i++) {
		const vec4 a = xv[2u * i], b = xv[2u * i + 1u];
		xq[2u * i] = packSnorm4x8(vec4(a.x, a.z, b.x, b.z) * inv); /* round(v * 127) of v in [-1, 1] */
		xq[2u * i + 1u] = packSnorm4x8(vec4(a.y, a.w, b.y, b.w) * inv);
		xs += sdot4x8(xq[2u * i], 0x01010101u, 0) + sdot4x8(xq[2u * i + 1u], 0x01010101u, 0);
	}
}

float dot32q(uvec4 w, uint xq[8], float xd, int xs, int z)
{
	int d = 0;
	[[unroll]] for (uint i = 0u; i < 4u; i++)
		d += sdot4x8(w[i] & 0x0F0F0F0Fu, xq[2u * i], 0) + sdot4x8((w[i] >> 4) & 0x0F0F0F0Fu, xq[2u * i + 1u], 0);
	return xd * float(d - z * xs);
}
#define MZ_T int
#define MZ_OF(w) int((w) >> 16)
#define DOT32(q, xv, xp, m) dot32q(q, xq, xd, xs, m)
#elif defined(F16MATH)
/* The same dot in packed fp16 (matvec_q4*_f16; shaderFloat16): 0x6400 | q is the half 1024 + q, so
 * one mask and or make two weights (nibbles e and e + 4 of a word, one per half) and one subtract of
 * 1024 + zero makes them q - z exactly; the products of a word are summed in fp16 (4 per half, as
 * the dense F16MATH path's 8 per word) and in f32 across words. About 2 instructions per weight
 * against the f32 path's 5, which on an H200 is the ALU's whole rate at the memory's. xp holds
 * the activations in that order: xp[4i + e] = (x[8i + e], x[8i + e + 4]). */
float dot32h(uvec4 w, f16vec2 xp[16], f16vec2 mz)
{
	float d = 0.0;
	[[unroll]] for (uint i = 0u; i < 4u; i++) {
		const uint wd = w[i];
		f16vec2 p = f16vec2(0.0);
		[[unroll]] for (uint e = 0u; e < 4u; e++)
			p = fma(unpackFloat2x16(((wd >> (4u * e)) & 0x000F000Fu) | 0x64006400u) - mz, xp[4u * i + e], p);
		d += float(p.x) + float(p.y);
	}
	return d;
}

/* the activations of a 32-k chunk in dot32h's order, once per chunk for all the rows it serves */
void x_pairs(vec4 xv[8], out f16vec2 xp[16])
{
	[[unroll]] for (uint i = 0u; i < 4u; i++)
		[[unroll]] for (uint e = 0u; e < 4u; e++)
			xp[4u * i + e] = f16vec2(xv[2u * i][e], xv[2u * i + 1u][e]);
}
#define MZ_T f16vec2
#define MZ_OF(w) f16vec2(float16_t(1024.0 + float((w) >> 16)))
#define DOT32(q, xv, xp, m) dot32h(q, xp, m)
#else
#define MZ_T float
#define MZ_OF(w) (8388608.0 + float((w) >> 16)) /* the zero (sz word's high half) as dq subtracts it */
#define DOT32(q, xv, xp, m) dot32(q, xv, m)
#endif

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

#ifdef F16MATH
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

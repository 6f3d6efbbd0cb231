/* The residual add and whole-row RMSNorm between two decode mat-vecs without a dispatch of their
 * own (AWQ_VK_EPINORM=1, one-row steps): the mat-vec before them (EPI, the K-split kernel: the
 * attention's o projection, the MLP's down projection) writes in its epilogue the sum h = h_prev +
 * its output, x' = h * w (w the norm's weight) and, per workgroup, the sum of squares of its h
 * values; the mat-vecs after them (NORM2) read x' where they read x, add up those partial sums
 * (one float per workgroup of the producer: 512 for a 4096-row projection) and scale their outputs
 * by 1 / rms(h), the norm's scale being one factor of every output. No activation is read twice
 * (a fold into the readers alone, 08d1e8e..e5828a3, read a, b and w there and lost).
 *
 * x' is not normalised, and a real model's residual stream reaches the thousands: so that the
 * packed-fp16 dots never overflow, NORM2 brings each 32-element chunk into [-1, 1) by a power of two
 * (exact) and takes it back in the chunk's products (pn_pow2). */

/* 1 / rms from the whole row's sum of squares (K elements), as rmsnorm.comp */
float pn_scale(float ss, uint K, float eps)
{
	return 1.0 / sqrt(ss / float(K) + eps);
}

/* Scale a chunk into [0.5, 1) in magnitude by a power of two; returns the factor to take back (1 for
 * zeros and denormals). From the exponent bits: exact, and no library call whose edge cases vary. */
float pn_pow2(inout vec4 xv[8])
{
	vec4 m = abs(xv[0]);
	[[unroll]] for (uint i = 1u; i < 8u; i++)
		m = max(m, abs(xv[i]));
	const uint eb = (floatBitsToUint(max(max(m.x, m.y), max(m.z, m.w))) >> 23) & 0xffu;
	if (eb == 0u || eb > 252u)
		return 1.0;
	const float r = uintBitsToFloat((253u - eb) << 23); /* 2^(126 - eb) */
	[[unroll]] for (uint i = 0u; i < 8u; i++)
		xv[i] *= r;
	return uintBitsToFloat((eb + 1u) << 23); /* 2^(eb - 126) */
}

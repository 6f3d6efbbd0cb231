#version 450
/* The greedy chain's step to the next position (vk_chain): the last dispatch of a chained one-token
 * step. It feeds the step's argmax to the next step as its token, puts it in the host's ring at the
 * step's position, advances the step buffer's position by one and copies that position's RoPE rows
 * from the table of every position (written by the host with write_step's arithmetic, so a chained
 * step sees the same values as a step the host prepared).
 *
 * SAMPLE (the chain_sample variant, a sampled chain): the token is drawn instead, as the host
 * sampler's top-k branch draws it (core/sampler.c): the row's top_k best logits (larger, then lower
 * id; -0 as +0) by a radix selection over order-preserving 32-bit keys in this one workgroup (four
 * passes of a shared histogram, then the keys equal to the threshold taken lowest index first),
 * ranked; weights exp(v * inv_t - max) in double, top-p, min-p, probabilities rounded to float, the
 * first candidate whose running sum passes u, the 53 top bits of the next xoshiro256** output. GLSL
 * has no double exp: exp_d below (Cody-Waite reduction, degree-13 polynomial with fma, < 1 ulp; like
 * CUDA's it may differ from glibc's in the last place, a ~1e-16 chance of another token). Needs
 * shaderFloat64 and shaderInt64. */
#extension GL_GOOGLE_include_directive : require
#ifdef SAMPLE
#extension GL_ARB_gpu_shader_int64 : require
#define WG 256u
#else
#define WG 64u
#endif
layout(local_size_x = WG) in;
#define STEP_ACCESS
#include "common.glsl"

layout(set = 0, binding = 1, std430) writeonly buffer Tok { int tok[]; }; /* the token input's first row */
/* per RoPE slot s: words 4s..4s+3 = cos_off, sin_off, half, first float of its table; a slot's table
 * holds half cos values then half sin values per position */
layout(set = 0, binding = 2, std430) readonly buffer Ropes { uint hdr[16]; float rt[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Ring { int ring[]; };
layout(set = 0, binding = 4, std430) readonly buffer Amax { int amax[]; }; /* the argmax output */

#ifdef SAMPLE
layout(set = 0, binding = 5, std430) readonly buffer Logits { float lg[]; }; /* the logits' first row */
/* the sampler: 1/T, top-p, min-p, top-k and the stream (lo, hi words), advanced here per draw */
layout(set = 0, binding = 6, std430) buffer Samp { float inv_t, top_p, min_p; uint top_k; uvec2 rng[4]; } sp;

#define MAXK 256u
shared uint hist[256];
shared uint sh_prefix, sh_left, sh_count, sh_pick;
shared uint cnt[WG];
shared uint cid[MAXK];
shared uint ckey[MAXK];
shared uint rid[MAXK];
shared double w[MAXK];

uint okey(float v)
{
	uint b = floatBitsToUint(v);
	if (b == 0x80000000u)
		b = 0u; /* -0 as +0 */
	if ((b & 0x7fffffffu) > 0x7f800000u)
		return 0u; /* NaN: below every number */
	return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

/* a ranks before b: larger key, then lower index */
bool before(uint ka, uint ia, uint kb, uint ib)
{
	return ka != kb ? ka > kb : ia < ib;
}

double exp_d(double x)
{
	if (x < -745.2LF)
		return 0.0LF;
	const double n = roundEven(x * 1.4426950408889634074LF);
	/* ln 2 = hi + lo, hi with its low 32 bits zero: n * hi is exact for |n| < 2^20 */
	const double r = fma(-n, 1.90821492927058770002e-10LF, fma(-n, 6.93147180369123816490e-01LF, x));
	double p = 1.0LF / 6227020800.0LF;
	p = fma(p, r, 1.0LF / 479001600.0LF);
	p = fma(p, r, 1.0LF / 39916800.0LF);
	p = fma(p, r, 1.0LF / 3628800.0LF);
	p = fma(p, r, 1.0LF / 362880.0LF);
	p = fma(p, r, 1.0LF / 40320.0LF);
	p = fma(p, r, 1.0LF / 5040.0LF);
	p = fma(p, r, 1.0LF / 720.0LF);
	p = fma(p, r, 1.0LF / 120.0LF);
	p = fma(p, r, 1.0LF / 24.0LF);
	p = fma(p, r, 1.0LF / 6.0LF);
	p = fma(p, r, 0.5LF);
	p = fma(p, r, 1.0LF);
	p = fma(p, r, 1.0LF);
	const int e = int(n);
	/* two steps, so that a result below the normal range rounds once, from its final scale */
	return e < -1000 ? ldexp(ldexp(p, e + 1000), -1000) : ldexp(p, e);
}

/* a / b rounded to nearest: the quotient refined by one fma step from its exact remainder */
double div_rn(double a, double b)
{
	const double q = a / b;
	return fma(fma(-q, b, a), 1.0LF / b, q);
}

uint64_t rotl(uint64_t x, uint k)
{
	return (x << k) | (x >> (64u - k));
}

/* xoshiro256** (core/sampler.c awq_rng_next) on the state in sp.rng */
uint64_t rng_next()
{
	uint64_t s0 = packUint2x32(sp.rng[0]), s1 = packUint2x32(sp.rng[1]), s2 = packUint2x32(sp.rng[2]),
		 s3 = packUint2x32(sp.rng[3]);
	const uint64_t r = rotl(s1 * 5ul, 7u) * 9ul, t = s1 << 17u;
	s2 ^= s0;
	s3 ^= s1;
	s1 ^= s2;
	s0 ^= s3;
	s2 ^= t;
	s3 = rotl(s3, 45u);
	sp.rng[0] = unpackUint2x32(s0);
	sp.rng[1] = unpackUint2x32(s1);
	sp.rng[2] = unpackUint2x32(s2);
	sp.rng[3] = unpackUint2x32(s3);
	return r;
}

/* The drawn token of the row lg[0..V) (every invocation calls it; invocation 0's result counts). */
uint draw(uint V)
{
	const uint t = gl_LocalInvocationID.x, k = sp.top_k;
	/* the k-th largest key: 8 bits a pass from the top, among the keys sharing the prefix so far */
	if (t == 0u) {
		sh_prefix = 0u;
		sh_left = k;
	}
	for (int shift = 24; shift >= 0; shift -= 8) {
		hist[t] = 0u;
		barrier();
		const uint prefix = sh_prefix;
		for (uint i = t; i < V; i += WG) {
			const uint key = okey(lg[i]);
			if (shift == 24 || (key >> uint(shift + 8)) == prefix)
				atomicAdd(hist[(key >> uint(shift)) & 255u], 1u);
		}
		barrier();
		if (t == 0u) {
			uint c = 0u, d = 255u;
			for (;; d--) {
				if (c + hist[d] >= sh_left || d == 0u)
					break;
				c += hist[d];
			}
			sh_prefix = (prefix << 8) | d;
			sh_left -= c;
		}
		barrier();
	}
	/* every key above the threshold, then the sh_left lowest-index keys equal to it: each invocation
	 * counts the equal keys of its contiguous range, one scan, and its range again */
	const uint T = sh_prefix, need = sh_left, len = (V + WG - 1u) / WG, b0 = min(V, t * len), b1 = min(V, b0 + len);
	if (t == 0u)
		sh_count = 0u;
	uint eq = 0u;
	for (uint i = b0; i < b1; i++)
		eq += okey(lg[i]) == T ? 1u : 0u;
	cnt[t] = eq;
	barrier();
	if (t == 0u) {
		uint s = 0u;
		for (uint j = 0u; j < WG; j++) {
			const uint e = cnt[j];
			cnt[j] = s;
			s += e;
		}
	}
	barrier();
	uint taken = cnt[t];
	for (uint i = b0; i < b1; i++) {
		const uint key = okey(lg[i]);
		if (key > T || (key == T && taken++ < need)) {
			const uint slot = atomicAdd(sh_count, 1u);
			cid[slot] = i;
			ckey[slot] = key;
		}
	}
	barrier();
	/* ranked: each candidate's place is the number before it */
	if (t < k) {
		uint rank = 0u;
		for (uint j = 0u; j < k; j++)
			rank += before(ckey[j], cid[j], ckey[t], cid[t]) ? 1u : 0u;
		rid[rank] = cid[t];
	}
	barrier();
	/* the weights in the host's arithmetic: (double)(float v * inv_t) - max */
	if (t < k) {
		precise float top = lg[rid[0]] * sp.inv_t, v = lg[rid[t]] * sp.inv_t;
		w[t] = exp_d(double(v) - double(top));
	}
	barrier();
	if (t == 0u) {
		double sum = 0.0LF;
		for (uint j = 0u; j < k; j++)
			sum += w[j];
		uint keep = k;
		if (sp.top_p < 1.0) {
			double cum = 0.0LF;
			uint n = 0u;
			while (n < keep) {
				cum += div_rn(w[n], sum);
				n++;
				if (cum >= double(sp.top_p))
					break;
			}
			keep = n;
		}
		if (sp.min_p > 0.0) {
			uint n = 1u;
			while (n < keep && w[n] >= double(sp.min_p))
				n++;
			keep = n;
		}
		sum = 0.0LF;
		for (uint j = 0u; j < keep; j++)
			sum += w[j];
		const double u = double(rng_next() >> 11u) * (1.0LF / 9007199254740992.0LF);
		double cum = 0.0LF;
		uint j = 0u;
		for (; j + 1u < keep; j++) {
			cum += double(float(div_rn(w[j], sum)));
			if (u < cum)
				break;
		}
		sh_pick = rid[j];
	}
	barrier();
	return sh_pick;
}
#endif

/* u0 = RoPE slots, u1 = max_ctx; SAMPLE: u2 = the logits' columns */
void main()
{
	const uint t = gl_LocalInvocationID.x;
#ifdef SAMPLE
	const int pos = step.pos, id = int(draw(pc.u2));
#else
	const int pos = step.pos, id = amax[0];
#endif
	barrier(); /* every invocation has read the position before it changes */
	if (t == 0u) {
		tok[0] = id;
		ring[uint(pos & 63)] = id;
		step.pos = pos + 1;
	}
	const uint next = uint(pos + 1);
	if (next >= pc.u1)
		return; /* the context is full: no step follows */
	for (uint s = 0u; s < pc.u0; s++) {
		const uint half_ = hdr[4u * s + 2u], src = hdr[4u * s + 3u] + next * 2u * half_;
		for (uint k = t; k < half_; k += WG) {
			step.tab[hdr[4u * s] + k] = rt[src + k];
			step.tab[hdr[4u * s + 1u] + k] = rt[src + half_ + k];
		}
	}
}

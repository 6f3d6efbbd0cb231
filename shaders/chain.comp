#version 450
/* The greedy chain's step to the next position (vk_chain): the last dispatch of a chained one-token
 * step. It feeds the step's argmax to the next step as its token, puts it in the host's ring at the
 * step's position, advances the step buffer's position by one and copies that position's RoPE rows
 * from the table of every position (written by the host with write_step's arithmetic, so a chained
 * step sees the same values as a step the host prepared).
 *
 * SAMPLE (the chain_sample variant, a sampled chain): the token is drawn instead, as the host
 * sampler's top-k branch draws it (core/sampler.c), from the row's top_k best logits that the levels
 * of topk_part.comp dispatched before it left ranked in ks[] (larger, then lower id; -0 as +0):
 * weights exp(v * inv_t - max) in double, top-p, min-p, probabilities rounded to float, the first
 * candidate whose running sum passes u, the 53 top bits of the next xoshiro256** output. GLSL has no
 * double exp: exp_d below (Cody-Waite reduction, degree-13 polynomial with fma, < 1 ulp; like CUDA's
 * it may differ from glibc's in the last place, a ~1e-16 chance of another token). Needs
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
layout(set = 0, binding = 7, std430) readonly buffer Keys { uint64_t ks[]; }; /* topk_part's levels */

#define MAXK 256u
shared uint sh_pick;
shared uint rid[MAXK];
shared double w[MAXK];

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

/* The drawn token from the row's top-k at ks[at..] (every invocation calls it; invocation 0's result
 * counts). */
uint draw(uint at)
{
	const uint t = gl_LocalInvocationID.x, k = sp.top_k;
	if (t < k)
		rid[t] = ~uint(ks[at + t] & 0xfffffffful); /* the key's low word: the inverted column */
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

/* u0 = RoPE slots, u1 = max_ctx; SAMPLE: u2 = where the ranked top-k starts in ks[] */
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

#version 450
/* The greedy chain's step to the next position (vk_chain): the last dispatch of a chained one-token
 * step. It feeds the step's argmax to the next step as its token, puts it in the host's ring at the
 * step's position, advances the step buffer's position by one and copies that position's RoPE rows
 * from the table of every position (written by the host with write_step's arithmetic, so a chained
 * step sees the same values as a step the host prepared). */
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;
#define STEP_ACCESS
#include "common.glsl"

layout(set = 0, binding = 1, std430) writeonly buffer Tok { int tok[]; }; /* the token input's first row */
/* per RoPE slot s: words 4s..4s+3 = cos_off, sin_off, half, first float of its table; a slot's table
 * holds half cos values then half sin values per position */
layout(set = 0, binding = 2, std430) readonly buffer Ropes { uint hdr[16]; float rt[]; };
layout(set = 0, binding = 3, std430) writeonly buffer Ring { int ring[]; };
layout(set = 0, binding = 4, std430) readonly buffer Amax { int amax[]; }; /* the argmax output */

/* u0 = RoPE slots, u1 = max_ctx */
void main()
{
	const uint t = gl_LocalInvocationID.x;
	const int pos = step.pos, id = amax[0];
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
		for (uint k = t; k < half_; k += 64u) {
			step.tab[hdr[4u * s] + k] = rt[src + k];
			step.tab[hdr[4u * s + 1u] + k] = rt[src + half_ + k];
		}
	}
}

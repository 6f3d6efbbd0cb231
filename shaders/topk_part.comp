#version 450
/* One level of the sampled chain's top-k (vk_run.c rec_topk): each workgroup takes the k best of
 * 4096 entries and writes them ranked (best first, 0 after the last where it has fewer) to
 * ks[out + workgroup * k ..]. The first level reads the logits' first row, the next ones the level
 * before's keys, until one workgroup is left: its k are the row's top-k, ranked, for chain_sample.
 * Many workgroups share the row (one workgroup over a 152k row took ~0.5 ms on the H200: session 31).
 *
 * An entry's key is 64 bits: the value's order-preserving bits (-0 as +0, NaN below every number)
 * above the inverted column, so keys are unique and a larger key is a larger value, then a lower
 * column (the host sampler's order); no entry's key is 0. The k largest are found by radix selection
 * over the 16 keys each invocation holds: eight bits a pass from the top, a histogram of the next
 * digit among the keys sharing the prefix so far, the digit where the k-th falls (a scan over the
 * bins), until the keys sharing the prefix are exactly the ones still wanted. Needs shaderInt64. */
#extension GL_GOOGLE_include_directive : require
#extension GL_ARB_gpu_shader_int64 : require
#define WG 256u
#define PER 16u
layout(local_size_x = WG) in;
#include "common.glsl"

layout(set = 0, binding = 5, std430) readonly buffer Logits { float lg[]; }; /* the logits' first row */
layout(set = 0, binding = 7, std430) buffer Keys { uint64_t ks[]; };          /* the levels' keys */

shared uint hist[256], scan[256];
shared uint64_t sh_prefix;
shared uint sh_left, sh_done, sh_count;
shared uint64_t sel[256];

uint64_t entry_key(float v, uint col)
{
	uint b = floatBitsToUint(v);
	if (b == 0x80000000u)
		b = 0u; /* -0 as +0 */
	if ((b & 0x7fffffffu) > 0x7f800000u)
		b = 0u; /* NaN: below every number (-inf is 0x007fffff) */
	else
		b = (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
	return (uint64_t(b) << 32) | uint64_t(~col);
}

/* u0 = entries in, u1 = k, u2 = where this level's input keys start in ks[] (0xffffffff: the logits),
 * u3 = where its output starts */
void main()
{
	const uint t = gl_LocalInvocationID.x, n = pc.u0, k = pc.u1, base = gl_WorkGroupID.x * WG * PER;
	uint64_t kv[PER];
	uint have = 0u;
	for (uint u = 0u; u < PER; u++) {
		const uint i = base + u * WG + t;
		kv[u] = i >= n ? 0ul : pc.u2 == 0xffffffffu ? entry_key(lg[i], i) : ks[pc.u2 + i];
		have += kv[u] != 0ul ? 1u : 0u;
	}
	if (t == 0u) {
		sh_count = 0u;
		sh_prefix = 0ul;
		sh_left = k;
		sh_done = 0u;
	}
	barrier();
	atomicAdd(sh_count, have);
	barrier();
	const uint total = sh_count;
	barrier(); /* read before it is reset below */
	/* bound: the k wanted keys are those of at least it (every nonzero one where there are at most k) */
	uint64_t bound = 1ul;
	if (total > k) {
		for (int shift = 56;; shift -= 8) {
			hist[t] = 0u;
			barrier();
			const uint64_t pf = sh_prefix;
			const uint left = sh_left;
			for (uint u = 0u; u < PER; u++) {
				const uint64_t key = kv[u];
				if (key != 0ul && (shift == 56 || (key >> uint(shift + 8)) == pf))
					atomicAdd(hist[uint(key >> uint(shift)) & 255u], 1u);
			}
			barrier();
			/* counts from the top bin down: invocation t holds bin 255 - t; inclusive sums */
			const uint mine = hist[255u - t];
			scan[t] = mine;
			barrier();
			for (uint o = 1u; o < WG; o <<= 1) {
				const uint add = t >= o ? scan[t - o] : 0u;
				barrier();
				scan[t] += add;
				barrier();
			}
			const uint incl = scan[t], excl = incl - mine;
			if (excl < left && left <= incl) {
				sh_prefix = (pf << 8) | uint64_t(255u - t);
				sh_left = left - excl;
				sh_done = mine == left - excl || shift == 0 ? 1u : 0u;
			}
			barrier();
			const uint64_t p = sh_prefix;
			const bool done = sh_done != 0u;
			barrier(); /* read before the next pass changes them */
			if (done) {
				bound = p << uint(shift);
				break;
			}
		}
	}
	/* the selected keys, then each one's rank: how many selected ones are larger */
	if (t == 0u)
		sh_count = 0u;
	barrier();
	for (uint u = 0u; u < PER; u++)
		if (kv[u] != 0ul && kv[u] >= bound)
			sel[atomicAdd(sh_count, 1u)] = kv[u];
	barrier();
	const uint m = sh_count, dst = pc.u3 + gl_WorkGroupID.x * k;
	if (t < m) {
		const uint64_t key = sel[t];
		uint rank = 0u;
		for (uint j = 0u; j < m; j++)
			rank += sel[j] > key ? 1u : 0u;
		ks[dst + rank] = key;
	} else if (t < k) {
		ks[dst + t] = 0ul;
	}
}
